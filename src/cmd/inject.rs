//! `kcc inject` (not yet implemented: see the issue tracker).

use std::process::ExitCode;

use color_eyre::Result;

use crate::cli::InjectArgs;

/// Runs `kcc inject`.
pub fn run(_args: InjectArgs) -> Result<ExitCode> {
    Err(super::not_yet("inject"))
}
