//! kcc's integration tests: one test binary (so cargo links once) that drives
//! the built `kcc` executable the way kubectl does. Each module is one area;
//! `util` is the harness.

mod util;

mod apiserver;
mod kube;
mod secret_service;

mod backoff;
mod cache;
mod clear;
mod cli;
mod clients;
#[cfg(unix)]
mod corpus;
mod doctor;
mod generate;
mod heal;
mod identity;
mod inject;
mod install;
#[cfg(target_os = "linux")]
mod kernel;
mod keyring;
mod kubectl;
#[cfg(unix)]
mod kubectl_plugin;
mod linkage;
mod personalities;
mod readme;
mod refresh;
mod regression;
mod torture;
