//! Running the real credential plugin.
//!
//! The plugin gets kcc's stdin and stderr (interactive MFA or device-code
//! prompts must reach the user, as kubectl would let them) and the whole
//! environment, `KUBERNETES_EXEC_INFO` included. (Where kcc's stderr is not
//! a terminal, a foreground miss hands the plugin a [`crate::capture`] file
//! instead, copied to kcc's stderr as it comes, so the failure back-off can
//! repeat its error.) Only stdout is captured,
//! bounded so a runaway plugin cannot exhaust memory. Its exit code is
//! passed on unchanged. With `KUBE_CREDENTIAL_CACHE_PLUGIN_TIMEOUT` set, a
//! plugin that has not finished in time is killed (SIGKILL; processes it
//! started itself are not, as kubectl would not either).

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Most a plugin may print. A real ExecCredential is a few KB (an EKS token
/// with an SSO session ~6.3 KB, a client certificate chain a few KB more).
pub const MAX_OUTPUT: usize = 4 * 1024 * 1024;

/// Counts nested kcc runs (`kcc-cache` → plugin → … → `kcc-cache`), so a
/// kubeconfig or wrapper script that makes kcc call itself fails instead of
/// looping forever (rustup's `RUST_RECURSION_COUNT`).
pub const RECURSION_ENV: &str = "KUBE_CREDENTIAL_CACHE_RECURSION_DEPTH";
/// Deepest nesting allowed; a plugin may legitimately use kubectl with a
/// kcc-wrapped kubeconfig itself, a loop may not.
pub const MAX_RECURSION: u32 = 8;

/// What the plugin printed and how it ended.
#[derive(Debug)]
pub struct PluginRun {
    /// Its stdout.
    pub stdout: Vec<u8>,
    /// Its exit status.
    pub status: ExitStatus,
    /// How long it ran.
    pub took: Duration,
}

/// Why the plugin could not give a credential.
#[derive(Debug)]
pub enum PluginError {
    /// The command is not on PATH / does not exist.
    NotFound(String),
    /// It exists but cannot be executed.
    NotExecutable(String, io::Error),
    /// Any other spawn or I/O failure.
    Io(String, io::Error),
    /// It printed more than [`MAX_OUTPUT`] bytes.
    TooMuchOutput(String),
    /// It ran longer than `KUBE_CREDENTIAL_CACHE_PLUGIN_TIMEOUT` and was killed.
    TimedOut(String, Duration),
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginError::NotFound(cmd) => write!(
                f,
                "credential plugin '{cmd}' not found; install it or check the exec command in your kubeconfig (PATH is searched for names without a path separator, with PATHEXT on Windows)"
            ),
            PluginError::NotExecutable(cmd, e) => {
                write!(f, "credential plugin '{cmd}' cannot be executed ({e}); check its permissions")
            }
            PluginError::Io(cmd, e) => write!(f, "running credential plugin '{cmd}' failed: {e}"),
            PluginError::TooMuchOutput(cmd) => write!(
                f,
                "credential plugin '{cmd}' printed more than {} MiB; that is not an ExecCredential, nothing was cached",
                MAX_OUTPUT / 1024 / 1024
            ),
            PluginError::TimedOut(cmd, limit) => write!(
                f,
                "credential plugin '{cmd}' did not finish within {} ({}) and was stopped; nothing was cached",
                crate::duration::format_go_duration(jiff::SignedDuration::try_from(*limit).unwrap_or_default()),
                crate::config::ENV_PLUGIN_TIMEOUT
            ),
        }
    }
}

impl std::error::Error for PluginError {}

impl PluginError {
    /// The exit code kcc ends with: 127/126 like a shell, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            PluginError::NotFound(_) => 127,
            PluginError::NotExecutable(..) => 126,
            _ => 1,
        }
    }
}

/// Runs `command args…`, capturing stdout. `depth` is this kcc's nesting
/// level; the child sees `depth + 1`. With a `timeout` the plugin is killed
/// when it has not exited in time (closing stdout early does not count).
/// `stderr`: where the plugin's stderr goes instead of kcc's own (a
/// [`crate::capture::Capture`]); None inherits kcc's.
pub fn run(
    command: &OsStr,
    args: &[OsString],
    depth: u32,
    timeout: Option<Duration>,
    stderr: Option<std::fs::File>,
) -> Result<PluginRun, PluginError> {
    let shown = command.to_string_lossy().into_owned();
    let started = Instant::now();
    let deadline = timeout.map(|t| started + t);
    // On Windows `Command` finds only `NAME.exe` on PATH; kubectl (Go's
    // exec.LookPath) also honours PATHEXT (`aws` → `aws.cmd`), so kcc looks
    // the command up the same way first. On Unix `Command`'s own PATH
    // search is already Go's (and costs nothing extra).
    let program = if cfg!(windows) {
        crate::platform::find_command(&shown).ok_or_else(|| PluginError::NotFound(shown.clone()))?.into_os_string()
    } else {
        command.to_os_string()
    };
    let mut child = Command::new(&program)
        .args(args)
        .env(RECURSION_ENV, (depth + 1).to_string())
        // A kcc inside the plugin serves its caller; it is never a background refresher.
        .env_remove(crate::refresh::REFRESHER_ENV)
        .stdin(Stdio::inherit())
        .stderr(stderr.map_or_else(Stdio::inherit, Stdio::from))
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => PluginError::NotFound(shown.clone()),
            io::ErrorKind::PermissionDenied => PluginError::NotExecutable(shown.clone(), e),
            _ => PluginError::Io(shown.clone(), e),
        })?;
    let stop = |child: &mut std::process::Child, error: PluginError| {
        let _ = child.kill();
        let _ = child.wait();
        Err(error)
    };
    let Some((stdout, read)) = read_stdout(&mut child, deadline) else {
        return stop(&mut child, PluginError::TimedOut(shown, timeout.unwrap_or_default()));
    };
    if stdout.len() > MAX_OUTPUT {
        return stop(&mut child, PluginError::TooMuchOutput(shown));
    }
    if let Err(e) = read {
        return stop(&mut child, PluginError::Io(shown, e));
    }
    let status = match wait_until(&mut child, deadline) {
        Ok(Some(status)) => status,
        Ok(None) => return stop(&mut child, PluginError::TimedOut(shown, timeout.unwrap_or_default())),
        Err(e) => return Err(PluginError::Io(shown, e)),
    };
    Ok(PluginRun { stdout, status, took: started.elapsed() })
}

/// Reads the child's stdout until it is closed, at most [`MAX_OUTPUT`] + 1
/// bytes (more means "too much": the caller stops the plugin without reading
/// the rest). None when `deadline` passed first.
///
/// The reading happens on a helper thread so the deadline holds even while
/// the plugin keeps stdout open and prints nothing; a reader left blocked
/// there dies with kcc, which exits right after a timeout.
fn read_stdout(child: &mut std::process::Child, deadline: Option<Instant>) -> Option<(Vec<u8>, io::Result<()>)> {
    let Some(pipe) = child.stdout.take() else { return Some((Vec::new(), Ok(()))) };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdout = Vec::with_capacity(8192);
        let read = pipe.take(MAX_OUTPUT as u64 + 1).read_to_end(&mut stdout).map(drop);
        let _ = tx.send((stdout, read));
    });
    match deadline {
        None => rx.recv().ok(),
        Some(deadline) => rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok(),
    }
}

/// Waits for the child to exit; `Ok(None)` when `deadline` passed first.
/// The child has closed stdout by now, so it normally exits at once: the
/// polling below only runs for plugins that close stdout and keep going.
fn wait_until(child: &mut std::process::Child, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
    let Some(deadline) = deadline else { return child.wait().map(Some) };
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The exit code to pass on for a plugin's status (128+signal when killed).
pub fn exit_code_of(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code).unwrap_or(1).max(if code != 0 { 1 } else { 0 });
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return u8::try_from(128 + signal).unwrap_or(1);
        }
    }
    1
}

/// How a plugin command line's first word names kcc itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfName {
    /// `kcc-cache` (`.exe`): the proxy; the plugin follows.
    Proxy,
    /// `kcc` or `kubectl-kcc` (`.exe`): the proxy only with `cache` next.
    Multi,
}

/// Whether `command` is one of kcc's own names: its last path component
/// (`/` or `\`, so a Windows kubeconfig reads the same everywhere) is
/// exactly `kcc-cache`, `kcc` or `kubectl-kcc`, optionally with `.exe`,
/// ASCII case ignored (Windows file names are). Exact on purpose: a plugin
/// named `kcc-cache-token.sh` or `kcc-cached` is somebody else's program,
/// and taking it for kcc would drop the plugin from its own command line.
pub fn self_name(command: &str) -> Option<SelfName> {
    let file = command.rsplit(['/', '\\']).next().unwrap_or(command).to_ascii_lowercase();
    let stem = file.strip_suffix(".exe").unwrap_or(&file);
    match stem {
        "kcc-cache" => Some(SelfName::Proxy),
        "kcc" | "kubectl-kcc" => Some(SelfName::Multi),
        _ => None,
    }
}

/// Whether `command` (then `next`) is kcc's caching personality, so a
/// kubeconfig wrapped twice (`kcc-cache kcc-cache aws …`, the Go kcc's
/// `kcc-cache` around ours, `kubectl-kcc cache -- aws …`) is unwrapped
/// instead of caching twice. Returns how many leading words to drop.
pub fn self_wrapping_prefix(command: &OsStr, next: Option<&OsStr>) -> Option<usize> {
    match self_name(command.to_str()?)? {
        SelfName::Proxy => Some(1),
        SelfName::Multi => (next == Some(OsStr::new("cache"))).then_some(2),
    }
}

/// Drops every leading `kcc-cache` / `kcc cache` (and a `--` after it) from
/// a plugin command line: what kcc actually runs, and what its key is
/// computed from. Returns the rest and how many wrappers were dropped; the
/// rest is empty when the wrappers named no plugin.
pub fn unwrap_self(mut args: &[OsString]) -> (&[OsString], usize) {
    let mut levels = 0;
    while let Some(first) = args.first() {
        let Some(n) = self_wrapping_prefix(first, args.get(1).map(OsString::as_os_str)) else { break };
        args = &args[n.min(args.len())..];
        if args.first().is_some_and(|a| a == "--") {
            args = &args[1..];
        }
        levels += 1;
    }
    (args, levels)
}

/// Resolves `command` the way kubectl will (PATH for bare names, PATHEXT
/// on Windows), canonicalised, to compare two spellings of one program.
pub fn resolve(command: &OsStr) -> Option<PathBuf> {
    crate::platform::find_command(&command.to_string_lossy()).and_then(|p| p.canonicalize().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn only_kccs_exact_names_are_kcc() {
        for (command, want) in [
            ("kcc-cache", Some(SelfName::Proxy)),
            ("/usr/local/bin/kcc-cache", Some(SelfName::Proxy)),
            (r"C:\Tools\KCC-CACHE.EXE", Some(SelfName::Proxy)),
            ("kcc", Some(SelfName::Multi)),
            ("kcc.exe", Some(SelfName::Multi)),
            ("/home/u/.krew/bin/kubectl-kcc", Some(SelfName::Multi)),
            ("kubectl-kcc.exe", Some(SelfName::Multi)),
            ("/opt/tools/kcc-cache-token.sh", None),
            ("kcc-cache-token.sh", None),
            ("kcc-cache.sh", None),
            ("kcc-cached", None),
            ("kcc-cache(2)", None),
            ("kcc-injector", None),
            ("kubectl-kcc-foo", None),
            ("my-kcc", None),
            ("", None),
        ] {
            assert_eq!(self_name(command), want, "{command}");
        }
    }

    #[test]
    fn unwrap_self_drops_kccs_own_wrappers_only() {
        let cases: [(&[&str], &[&str], usize); 7] = [
            (&["kcc-cache", "aws", "eks"], &["aws", "eks"], 1),
            (&["kcc", "cache", "--", "aws"], &["aws"], 1),
            (&["kubectl-kcc", "cache", "--", "aws", "eks"], &["aws", "eks"], 1),
            (&["/k/kubectl-kcc", "cache", "kcc-cache", "aws"], &["aws"], 2),
            (&["kubectl-kcc", "doctor"], &["kubectl-kcc", "doctor"], 0),
            (&["kcc-cache-token.sh", "prod"], &["kcc-cache-token.sh", "prod"], 0),
            (
                &["/opt/tools/kcc-cache-token.sh", "--profile", "p"],
                &["/opt/tools/kcc-cache-token.sh", "--profile", "p"],
                0,
            ),
        ];
        for (input, rest, levels) in cases {
            let argv = words(input);
            let (got, n) = unwrap_self(&argv);
            assert_eq!((got, n), (words(rest).as_slice(), levels), "{input:?}");
        }
    }
}
