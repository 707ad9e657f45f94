//! Reporting a failure, once, in `main`.
//!
//! kubectl shows an exec plugin's stderr verbatim inside its own error, so by
//! default a failure is one plain line, `kcc: what went wrong: why; what to
//! do`, without colour. The full color-eyre report (cause chain, location)
//! appears only under `KUBE_CREDENTIAL_CACHE_DEBUG`, coloured only when stderr
//! is a terminal and `NO_COLOR` is unset — color-eyre checks neither itself.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use color_eyre::Report;

/// An error that carries the exit code kcc should end with (a plugin's own
/// exit code, 127 for a missing plugin, 2 for a usage error).
#[derive(Debug)]
pub struct ExitWith {
    /// The code.
    pub code: u8,
    /// What to tell the user.
    pub message: String,
}

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitWith {}

/// Whether colour may be used on stderr.
pub fn stderr_wants_colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Installs color-eyre's hook for the full report. Called only when debug
/// output is on: the plain one-line report needs no hook, and a cache hit
/// must not pay for one.
pub fn install_full_reports() {
    use color_eyre::config::{HookBuilder, Theme};
    let theme = if stderr_wants_colour() { Theme::dark() } else { Theme::new() };
    let _ = HookBuilder::default().theme(theme).display_env_section(false).install();
}

/// Prints `report` (one line, or in full under debug) and returns the exit code.
pub fn report(report: &Report, full: bool) -> ExitCode {
    let code = report
        .chain()
        .find_map(|e| e.downcast_ref::<ExitWith>().map(|x| x.code))
        .or_else(|| report.chain().find_map(|e| e.downcast_ref::<crate::plugin::PluginError>().map(|p| p.exit_code())))
        .unwrap_or(1);
    let mut stderr = std::io::stderr().lock();
    if full {
        let _ = writeln!(stderr, "kcc: {report:?}");
    } else {
        let line = report.chain().map(|e| e.to_string()).collect::<Vec<_>>().join(": ");
        let line = line.replace(['\n', '\r'], " ");
        let _ = writeln!(stderr, "kcc: {line}");
    }
    ExitCode::from(code)
}
