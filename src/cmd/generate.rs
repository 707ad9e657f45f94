//! `kcc generate <man|bash|zsh|fish>` (hidden): prints one generated file.
//! The committed copies under `man/` and `completions/` are its output; a
//! test fails when they drift (regenerate with `scripts/regenerate`).

use std::io::Write;
use std::process::ExitCode;

use color_eyre::Result;
use color_eyre::eyre::WrapErr;

use crate::cli::GenerateArgs;
use crate::generate;

/// Prints the artefact on stdout.
pub fn run(args: GenerateArgs) -> Result<ExitCode> {
    let text = generate::render(args.artefact);
    std::io::stdout().lock().write_all(text.as_bytes()).wrap_err("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}
