//! One module per mode; each exposes `run(args) -> Result<ExitCode>`.

pub mod cache;
pub mod clear;
pub mod doctor;
pub mod inject;

use color_eyre::eyre::eyre;

use crate::report::ExitWith;

/// The error of a mode whose issue has not landed yet.
pub(crate) fn not_yet(mode: &str) -> color_eyre::Report {
    eyre!(ExitWith { code: 2, message: format!("'kcc {mode}' is not yet implemented in this version") })
}
