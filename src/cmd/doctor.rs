//! `kcc doctor` (not yet implemented: see the issue tracker).

use std::process::ExitCode;

use color_eyre::Result;

use crate::cli::DoctorArgs;

/// Runs `kcc doctor`.
pub fn run(_args: DoctorArgs) -> Result<ExitCode> {
    Err(super::not_yet("doctor"))
}
