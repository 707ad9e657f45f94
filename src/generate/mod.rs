//! The man page and shell completions, generated from the argh definitions
//! in [`crate::cli`] (`#[derive(ArgsInfo)]`) plus hand-written prose, the
//! way ripgrep's `rg --generate` and uutils' `uudoc` keep docs and flags in
//! one place. Output is deterministic (no dates, no git revision) so the
//! committed copies can be compared byte for byte by a test.

pub mod completions;
pub mod man;

use crate::cli::Artefact;

/// The text of one artefact.
pub fn render(artefact: Artefact) -> String {
    match artefact {
        Artefact::Man => man::render(),
        Artefact::Bash => completions::bash(),
        Artefact::Zsh => completions::zsh(),
        Artefact::Fish => completions::fish(),
    }
}

/// The command that rewrites every committed artefact (README "Regenerating").
pub const REGENERATE: &str = "scripts/regenerate";
