//! The chimera: one executable that is `kcc`, `kcc-cache` or `kcc-injector`
//! depending on the name it was called by (see [`kcc::personality`]).
//!
//! `main` stays thin: pick up argv, hand it to [`kcc::dispatch::run`], report
//! an error once and turn it into the exit code.
//!
//! On Unix `main` is the C entry point (`no_main`): a cache hit is over in
//! well under a millisecond, and the Rust runtime's start-up work costs a
//! measurable share of it (it reads `/proc/self/maps` to find the main
//! thread's stack guard and installs a stack-overflow handler with its own
//! alternate stack). Without it, a stack overflow is a plain SIGSEGV
//! instead of a message, SIGPIPE keeps its default action (a closed stdout
//! ends kcc quietly, as it does `cat`), and stdout is flushed here.
//! `std::env::args_os` still works: glibc and the other Unix libcs hand argv
//! to the standard library before `main`.

#![cfg_attr(unix, no_main)]

use std::io::Write;
use std::process::ExitCode;

/// Runs kcc and returns its exit code.
fn kcc_main() -> ExitCode {
    let debug = kcc::config::debug_requested();
    if debug {
        kcc::report::install_full_reports();
    }
    let code = match kcc::dispatch::run(std::env::args_os().collect()) {
        Ok(code) => code,
        Err(report) => kcc::report::report(&report, debug),
    };
    let _ = std::io::stdout().flush();
    code
}

#[cfg(unix)]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    exit_status(kcc_main())
}

#[cfg(not(unix))]
fn main() -> ExitCode {
    kcc_main()
}

/// The numeric status of an [`ExitCode`] (the standard library has no
/// stable accessor; kcc only ever makes them from a `u8`).
#[cfg(unix)]
fn exit_status(code: ExitCode) -> std::ffi::c_int {
    (0..=u8::MAX).find(|&n| ExitCode::from(n) == code).map_or(1, std::ffi::c_int::from)
}
