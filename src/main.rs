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
//! ends kcc quietly, as it does `cat`), and stdout is flushed here. argv is
//! taken from `main`'s own parameters (only glibc also hands it to the
//! standard library without the Rust runtime; musl and the BSDs do not).

#![cfg_attr(all(unix, not(test)), no_main)]

use std::io::Write;
use std::process::ExitCode;

/// Runs kcc with its argv and returns its exit code.
fn kcc_main(argv: Vec<std::ffi::OsString>) -> ExitCode {
    let debug = kcc::config::debug_requested();
    if debug {
        kcc::report::install_full_reports();
    }
    let code = match kcc::dispatch::run(argv) {
        Ok(code) => code,
        Err(report) => kcc::report::report(&report, debug),
    };
    let _ = std::io::stdout().flush();
    code
}

#[cfg(all(unix, not(test)))]
#[unsafe(no_mangle)]
extern "C" fn main(argc: std::ffi::c_int, argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    use std::os::unix::ffi::OsStrExt;
    let count = usize::try_from(argc).unwrap_or(0);
    let args = (0..count)
        .map(|i| {
            // SAFETY: the C runtime passes `argc` valid, NUL-terminated
            // strings in `argv`, alive for the whole process.
            let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            std::ffi::OsStr::from_bytes(arg.to_bytes()).to_os_string()
        })
        .collect();
    exit_status(kcc_main(args))
}

#[cfg(any(not(unix), test))]
fn main() -> ExitCode {
    kcc_main(std::env::args_os().collect())
}

/// The numeric status of an [`ExitCode`] (the standard library has no
/// stable accessor; kcc only ever makes them from a `u8`).
#[cfg(all(unix, not(test)))]
fn exit_status(code: ExitCode) -> std::ffi::c_int {
    (0..=u8::MAX).find(|&n| ExitCode::from(n) == code).map_or(1, std::ffi::c_int::from)
}
