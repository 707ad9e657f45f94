//! The chimera: one executable that is `kcc`, `kcc-cache` or `kcc-injector`
//! depending on the name it was called by (see [`kcc::personality`]).
//!
//! `main` stays thin: pick up argv, hand it to [`kcc::dispatch::run`], report
//! an error once and turn it into the exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    let debug = kcc::config::debug_requested();
    if debug {
        kcc::report::install_full_reports();
    }
    match kcc::dispatch::run(std::env::args_os().collect()) {
        Ok(code) => code,
        Err(report) => kcc::report::report(&report, debug),
    }
}
