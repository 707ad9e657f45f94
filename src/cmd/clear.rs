//! `kcc clear` (not yet implemented: see the issue tracker).

use std::process::ExitCode;

use color_eyre::Result;

use crate::cli::ClearArgs;

/// Runs `kcc clear`.
pub fn run(_args: ClearArgs) -> Result<ExitCode> {
    Err(super::not_yet("clear"))
}
