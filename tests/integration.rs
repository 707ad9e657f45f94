//! kcc's integration tests: one test binary (so cargo links once) that drives
//! the built `kcc` executable the way kubectl does. Each module is one area;
//! `util` is the harness.

mod util;

mod apiserver;
mod kube;

mod cache;
mod clear;
mod doctor;
mod heal;
mod inject;
mod keyring;
mod kubectl;
mod refresh;
