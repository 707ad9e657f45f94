//! One module per mode; each exposes `run(args) -> Result<ExitCode>`.

pub mod cache;
pub mod clear;
pub mod doctor;
pub mod generate;
pub mod inject;
pub mod install_links;
