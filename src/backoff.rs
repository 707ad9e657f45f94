//! No login storms: after the plugin fails for a request nobody can answer
//! a prompt for, further such requests get that failure back instead of
//! another plugin run, for a while (`KUBE_CREDENTIAL_CACHE_FAILURE_BACKOFF`).
//!
//! Background tools (IDE extensions, Lens/Headlamp, `watch kubectl …`) ask
//! for a credential every few seconds. When the plugin needs a person (a
//! browser login, an MFA code) and fails or times out, every ask runs it
//! again: a browser tab per ask (int128/kubelogin #904, #1330). kcc sees
//! every ask, so it can stop that, without ever being worse than no cache:
//!
//! - **who backs off**: only a *non-interactive* request — `spec.interactive:
//!   false` in `KUBERNETES_EXEC_INFO`, or, when the client sets none
//!   (client-node), stdin not being a terminal ([`is_interactive`]). A
//!   request from a terminal always runs the plugin: a person is there;
//! - **when**: after a run of the plugin for a non-interactive request failed
//!   (non-zero exit, killed by the timeout, unusable output). Failures of
//!   interactive requests are recorded (below) but neither start nor extend
//!   the back-off: a person cancelling a prompt says nothing about the
//!   background;
//! - **the curve** ([`wait_after`]): 5 s after the first failure, doubling
//!   with every further one (10 s, 20 s, … 160 s) up to the setting (5 min by
//!   default). A background loop asking every 2 s for 5 minutes runs a
//!   failing plugin 6 times instead of 150. A back-off idle for longer than
//!   its cap starts again at 5 s;
//! - **what the request gets**: the plugin's last stderr (its last
//!   [`crate::capture::TAIL_LIMIT`] bytes) and exit code — or kcc's own
//!   error for a plugin that could not run — and one plain line saying kcc
//!   did not run the plugin, since when it fails, when it runs next and how
//!   to retry now;
//! - **what ends it**: any successful run for the key, by any request
//!   (foreground or background refresh, any client); `kcc clear` for the key;
//!   the setting `0`/`off`. A still-valid cached credential is always served:
//!   the back-off is looked at only where the plugin would otherwise run.
//!
//! The same record answers the **waiters of a failed single flight**: callers
//! that queued on the flight lock while the plugin ran get the failure it
//! produced ([`Why::FailedWhileWaiting`]) instead of each running the plugin
//! again, one after another (8 callers of a plugin failing after 1 s used to
//! return at 1, 2, … 8 s). That holds with the back-off off too (a failure is
//! a flight's result like a credential is) and for interactive waiters when
//! the failed run was interactive too; an interactive waiter behind a failed
//! non-interactive run runs the plugin itself: it can answer the prompt the
//! other could not.
//!
//! The record is a small JSON file per key beside the flight lock
//! (`cache.flight/<hash>.failed`, 0600 in the private store directory,
//! written atomically), never in the index: it holds the plugin's stderr,
//! which kubectl shows the user anyway but which is not metadata. The
//! stderr is kept only where kcc's stderr is not a terminal
//! ([`crate::capture`]); in a terminal the plugin gets the terminal itself.
//!
//! Time is [`now`]: the wall clock, shifted in debug builds by
//! [`CLOCK_SHIFT_ENV`] seconds, so a test drives the real binary through
//! 5 minutes of asks in a few seconds. Release builds ignore the variable.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::capture::Capture;
use crate::diagnostics::{Diag, span, when};
use crate::report::ExitWith;
use crate::store::{Store, file};

/// The first wait, after one failure.
pub const FIRST_WAIT: SignedDuration = SignedDuration::from_secs(5);

/// The default longest wait (`KUBE_CREDENTIAL_CACHE_FAILURE_BACKOFF`).
pub const DEFAULT_MAX: SignedDuration = SignedDuration::from_mins(5);

/// Debug builds only: seconds added to the wall clock of every back-off
/// decision and record (tests simulate minutes of requests in seconds).
pub const CLOCK_SHIFT_ENV: &str = "KCC_TEST_CLOCK_SHIFT";

/// Most of kcc's own error text kept in a record.
const ERROR_LIMIT: usize = 4096;

/// A record file larger than this is not one kcc wrote: ignored.
const RECORD_LIMIT: usize = 64 * 1024;

/// The record's file name suffix in the flight directory.
const SUFFIX: &str = "failed";

/// The clock of the back-off (see the module docs).
pub fn now() -> Timestamp {
    let now = Timestamp::now();
    #[cfg(debug_assertions)]
    if let Some(secs) = std::env::var(CLOCK_SHIFT_ENV).ok().and_then(|v| v.trim().parse::<i64>().ok()) {
        return now.checked_add(SignedDuration::from_secs(secs)).unwrap_or(now);
    }
    now
}

/// Whether a person can answer the plugin: what `KUBERNETES_EXEC_INFO`
/// declares (client-go derives it from its stdin and `interactiveMode`),
/// else — a client that sets no exec info, like client-node, which pipes
/// the plugin's stdin — whether stdin is a terminal.
pub fn is_interactive(declared: Option<bool>, stdin_is_terminal: bool) -> bool {
    declared.unwrap_or(stdin_is_terminal)
}

/// How long non-interactive requests are answered from the record after
/// `streak` failures in a row: 5 s, doubling, at most `max`.
pub fn wait_after(streak: u32, max: SignedDuration) -> SignedDuration {
    if streak == 0 {
        return SignedDuration::ZERO;
    }
    let mut wait = FIRST_WAIT.min(max);
    for _ in 1..streak {
        wait = match wait.checked_mul(2) {
            Some(w) if w < max => w,
            _ => return max,
        };
    }
    wait
}

/// One failed run of the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// When the run ended (RFC 3339, full precision).
    pub at: String,
    /// The exit code the request ended with.
    pub code: u8,
    /// Whether it ran for an interactive request.
    pub interactive: bool,
    /// The end of the plugin's stderr; None when it went to a terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// kcc's own error, when the plugin could not run or printed no
    /// usable credential (None: the plugin's exit code says it all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Outcome {
    fn at(&self) -> Option<Timestamp> {
        self.at.parse().ok()
    }
}

/// What kcc remembers of a key's failing plugin (the record on disk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// The cache key (not a secret: the index holds it too).
    pub key: String,
    /// The plugin command, file name only (never its arguments).
    pub exec: String,
    /// The latest failed run, for any request: what waiters of that flight get.
    pub latest: Outcome,
    /// The latest failed run for a non-interactive request: what the
    /// back-off answers with (an interactive failure, whose output went to
    /// a terminal, does not replace it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<Outcome>,
    /// Failures of non-interactive requests in a row (0: no back-off).
    #[serde(default)]
    pub streak: u32,
    /// When the streak began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Non-interactive requests run the plugin again from this time on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_try: Option<String>,
}

impl Failure {
    /// The failure the back-off answers with.
    pub fn answer(&self) -> &Outcome {
        self.background.as_ref().unwrap_or(&self.latest)
    }

    /// When non-interactive requests run the plugin again, if they wait.
    pub fn next_try(&self) -> Option<Timestamp> {
        self.next_try.as_deref().and_then(|t| t.parse().ok())
    }
}

/// How a run failed.
#[derive(Debug, Clone, Copy)]
pub struct FailedRun<'a> {
    /// The exit code kcc ends with.
    pub code: u8,
    /// The end of the plugin's stderr, when it was captured.
    pub stderr: Option<&'a [u8]>,
    /// kcc's own error, when there is one.
    pub error: Option<&'a str>,
}

/// Why the plugin is not run for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// A non-interactive request within the back-off.
    BackingOff {
        /// When the plugin runs again.
        until: Timestamp,
    },
    /// The flight this request waited for failed while it waited.
    FailedWhileWaiting,
}

/// Whether this request is answered from `record` instead of running the
/// plugin: a pure function of the record, the request and the time.
/// `waited_since` is when the request began waiting for the flight lock
/// (None: it has not taken it yet).
pub fn decide(
    record: Option<&Failure>,
    interactive: bool,
    waited_since: Option<Timestamp>,
    max: Option<SignedDuration>,
    now: Timestamp,
) -> Option<Why> {
    let record = record?;
    if let (Some(since), Some(failed)) = (waited_since, record.latest.at())
        && failed >= since
        && (record.latest.interactive || !interactive)
    {
        return Some(Why::FailedWhileWaiting);
    }
    if interactive || max.is_none() {
        return None;
    }
    let until = record.next_try().filter(|t| *t > now)?;
    (record.streak > 0).then_some(Why::BackingOff { until })
}

/// The record after a failed run: the last failure, with the streak carried
/// on (non-interactive: one more, the next wait from [`wait_after`];
/// interactive: unchanged). A streak whose back-off lapsed longer than `max`
/// ago starts again.
pub fn after_failure(
    prev: Option<&Failure>,
    key: &str,
    exec: &str,
    run: &FailedRun<'_>,
    interactive: bool,
    max: Option<SignedDuration>,
    now: Timestamp,
) -> Failure {
    let (streak, since, next_try) = match (interactive, max) {
        (true, _) => prev.map_or((0, None, None), |p| (p.streak, p.since.clone(), p.next_try.clone())),
        (false, None) => (0, None, None),
        (false, Some(max)) => {
            let going_on =
                prev.filter(|p| p.streak > 0).filter(|p| p.next_try().is_some_and(|t| now.duration_since(t) <= max));
            let streak = going_on.map_or(1, |p| p.streak.saturating_add(1));
            let since = going_on.and_then(|p| p.since.clone()).unwrap_or_else(|| when(now));
            let next = now.checked_add(wait_after(streak, max)).unwrap_or(Timestamp::MAX);
            (streak, Some(since), Some(when(next)))
        }
    };
    let latest = Outcome {
        at: now.to_string(),
        code: run.code,
        interactive,
        stderr: run.stderr.map(|b| String::from_utf8_lossy(b).into_owned()),
        error: run.error.map(|e| bounded(e, ERROR_LIMIT)),
    };
    // Kept apart only while an interactive failure is the latest.
    let background = if interactive { prev.map(Failure::answer).filter(|o| !o.interactive).cloned() } else { None };
    Failure { key: key.to_string(), exec: exec.to_string(), latest, background, streak, since, next_try }
}

fn bounded(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A request answered from the record.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The recorded failure.
    pub failure: Failure,
    /// Why the plugin is not run.
    pub why: Why,
}

impl Replay {
    /// The line kcc prints (after `kcc: `): that it did not run the
    /// plugin, since when it fails, when it runs next, how to retry now.
    pub fn explain(&self, now: Timestamp) -> String {
        let f = &self.failure;
        let o = self.outcome();
        let output = match (&o.stderr, &o.error) {
            (Some(s), _) if !s.trim().is_empty() => "; its error output is above",
            (None, None) => "; its output went to the terminal of the request that ran it",
            _ => "",
        };
        let retry =
            format!("to retry now, run the command in a terminal, or run: kcc clear --key {}", shell_quote(&f.key));
        match self.why {
            Why::FailedWhileWaiting => format!(
                "did not run '{}' again: it failed (exit code {}) for a concurrent request that this one waited for{output}; the next request runs it again",
                f.exec, o.code
            ),
            Why::BackingOff { until } => {
                let history = match (f.streak, &f.since) {
                    (n, Some(since)) if n > 1 => format!("it has failed {n} times in a row since {since}"),
                    (_, Some(since)) => format!("it failed at {since}"),
                    _ => "it failed".to_string(),
                };
                format!(
                    "did not run '{}': {history} for requests without a terminal (exit code {}{output}); such requests get this answer until {} (in {}), then it runs again; {retry}",
                    f.exec,
                    o.code,
                    when(until),
                    span(until.duration_since(now)),
                )
            }
        }
    }

    /// Answers the request: the recorded stderr verbatim, then the
    /// explanation; the exit code is the recorded one. kcc's own error
    /// comes back as an error (one line, with the explanation).
    pub fn answer(&self, now: Timestamp) -> Result<ExitCode, ExitWith> {
        use std::io::Write;
        let o = self.outcome();
        let mut err = io::stderr().lock();
        if let Some(text) = &o.stderr {
            let _ = err.write_all(text.as_bytes());
            if !text.is_empty() && !text.ends_with('\n') {
                let _ = err.write_all(b"\n");
            }
        }
        let explained = self.explain(now);
        match &o.error {
            Some(error) => Err(ExitWith { code: o.code.max(1), message: format!("{error}; kcc {explained}") }),
            None => {
                let _ = writeln!(err, "kcc: {explained}");
                Ok(ExitCode::from(o.code.max(1)))
            }
        }
    }

    /// The failed run this answer repeats: the flight's own for its
    /// waiters, the last non-interactive one for the back-off.
    pub fn outcome(&self) -> &Outcome {
        match self.why {
            Why::FailedWhileWaiting => &self.failure.latest,
            Why::BackingOff { .. } => self.failure.answer(),
        }
    }
}

/// `text` in single quotes for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The record of `key` in `store`.
pub fn record_path(store: &Store, key: &str) -> PathBuf {
    store.flight_path(key).with_extension(SUFFIX)
}

/// Reads a record; a missing, oversized or unparsable one is none.
pub fn load(path: &Path) -> Option<Failure> {
    let bytes = file::read(path).ok().flatten()?;
    if bytes.len() > RECORD_LIMIT {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

/// Removes the record of `key` (a success ends the back-off). Returns
/// whether there was one. Anything but a regular file there is left alone
/// (kcc never touches a FIFO or a device node in its store).
pub fn forget(store: &Store, key: &str) -> bool {
    let path = record_path(store, key);
    file::refuse_non_regular_at(&path).is_ok() && std::fs::remove_file(path).is_ok()
}

/// Every record in `flight_dir` (for `kcc doctor`), by key.
pub fn list(flight_dir: &Path) -> Vec<(PathBuf, Failure)> {
    let Ok(entries) = std::fs::read_dir(flight_dir) else { return Vec::new() };
    let mut out: Vec<(PathBuf, Failure)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension() == Some(OsStr::new(SUFFIX)))
        .filter_map(|p| load(&p).map(|f| (p, f)))
        .collect();
    out.sort_by(|a, b| a.1.key.cmp(&b.1.key));
    out
}

/// Removes the records whose key `select` picks (for `kcc clear`); returns
/// their keys. `dry_run` removes nothing.
pub fn remove_where(flight_dir: &Path, dry_run: bool, select: impl Fn(&str) -> bool) -> Vec<String> {
    list(flight_dir)
        .into_iter()
        .filter(|(_, f)| select(&f.key))
        .filter(|(path, _)| dry_run || std::fs::remove_file(path).is_ok())
        .map(|(_, f)| f.key)
        .collect()
}

/// `kcc doctor`'s words for a record: what happens, and how to retry now.
pub fn describe(f: &Failure, max: Option<SignedDuration>, now: Timestamp) -> Option<(String, String)> {
    let until = f.next_try().filter(|t| *t > now && f.streak > 0 && max.is_some())?;
    let since = f.since.as_deref().unwrap_or(&f.answer().at);
    let message = format!(
        "'{}' failed {} time{} in a row since {since} for requests without a terminal (last exit code {}): kcc answers such requests for this key with its last error, without running it, until {} (in {})",
        f.exec,
        f.streak,
        if f.streak == 1 { "" } else { "s" },
        f.answer().code,
        when(until),
        span(until.duration_since(now)),
    );
    let fix = format!(
        "to retry now, run the kubectl command in a terminal (a request from a terminal always runs the plugin) or run: kcc clear --key {}; {}=0 turns the back-off off",
        shell_quote(&f.key),
        crate::config::ENV_FAILURE_BACKOFF
    );
    Some((message, fix))
}

/// One request's dealings with the record (see the module docs): checked
/// before the flight lock and again after it, written after a failed run.
#[derive(Debug)]
pub struct Attempt {
    path: PathBuf,
    key: String,
    exec: String,
    interactive: bool,
    max: Option<SignedDuration>,
    waited_since: Option<Timestamp>,
}

impl Attempt {
    /// The attempt of a request for `key` running `command`.
    pub fn new(store: &Store, key: &str, command: &OsStr, interactive: bool, max: Option<SignedDuration>) -> Attempt {
        let exec = Path::new(command).file_name().unwrap_or(command).to_string_lossy().into_owned();
        Attempt { path: record_path(store, key), key: key.into(), exec, interactive, max, waited_since: None }
    }

    /// Marks the moment this request begins waiting for the flight lock.
    pub fn waiting(&mut self) {
        self.waited_since = Some(now());
    }

    /// Whether to answer from the record instead of running the plugin.
    pub fn check(&self, diag: &Diag) -> Option<Replay> {
        let record = load(&self.path);
        let now = now();
        let why = decide(record.as_ref(), self.interactive, self.waited_since, self.max, now);
        match (&why, &record) {
            (Some(why), Some(r)) => diag.debug(|| match why {
                Why::FailedWhileWaiting => format!(
                    "failure back-off: '{}' failed (exit code {}) while this request waited for it; answering with that failure",
                    r.exec, r.latest.code
                ),
                Why::BackingOff { until } => format!(
                    "failure back-off: non-interactive request, '{}' failed {} time(s) in a row; not running it until {}",
                    r.exec,
                    r.streak,
                    when(*until)
                ),
            }),
            (None, Some(r)) if r.streak > 0 => diag.debug(|| {
                let who = if self.interactive { "an interactive request always runs the plugin" } else { "the back-off is over" };
                format!("failure back-off: '{}' failed {} time(s) in a row; {who}", r.exec, r.streak)
            }),
            _ => {}
        }
        Some(Replay { failure: record?, why: why? })
    }

    /// Starts keeping the plugin's stderr, when kcc's stderr is not a
    /// terminal (see [`crate::capture`]). None: the plugin inherits it.
    pub fn capture(&self) -> Option<Capture> {
        use std::io::IsTerminal;
        if io::stderr().is_terminal() {
            return None;
        }
        let scratch = self.path.with_extension(format!("stderr.{}", std::process::id()));
        let _ = std::fs::remove_file(&scratch);
        Capture::start(&scratch).ok()
    }

    /// Records a failed run (never fails the request: a record that cannot
    /// be written only means no back-off).
    pub fn failed(&self, run: FailedRun<'_>, diag: &Diag) {
        let prev = load(&self.path);
        let now = now();
        let record = after_failure(prev.as_ref(), &self.key, &self.exec, &run, self.interactive, self.max, now);
        match file::write_atomic(&self.path, &serde_json::to_vec(&record).unwrap_or_default()) {
            Ok(()) => diag.debug(|| match (&record.next_try, self.interactive) {
                (Some(next), false) => format!(
                    "failure back-off: '{}' failed {} time(s) in a row; requests without a terminal get this failure until {next}",
                    record.exec, record.streak
                ),
                (_, true) => "failure back-off: an interactive request failed; the back-off is unchanged".into(),
                (None, false) => "failure back-off: off; the failure is kept for requests waiting on it".into(),
            }),
            Err(e) => diag.debug(|| format!("failure back-off: cannot write {} ({e})", self.path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const MAX: Option<SignedDuration> = Some(DEFAULT_MAX);

    fn fail(prev: Option<&Failure>, interactive: bool, at: Timestamp) -> Failure {
        let run = FailedRun { code: 3, stderr: Some(b"login needed\n"), error: None };
        after_failure(prev, "k", "plug", &run, interactive, MAX, at)
    }

    #[test]
    fn the_curve_doubles_from_5s_to_the_cap() {
        let max = DEFAULT_MAX;
        let waits: Vec<i64> = (0..10).map(|n| wait_after(n, max).as_secs()).collect();
        assert_eq!(waits, [0, 5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(wait_after(u32::MAX, max), max);
        assert_eq!(wait_after(1, SignedDuration::from_secs(2)), SignedDuration::from_secs(2), "a cap below 5 s");
    }

    #[test]
    fn interactive_is_declared_else_a_terminal_on_stdin() {
        assert!(is_interactive(Some(true), false));
        assert!(!is_interactive(Some(false), true));
        assert!(is_interactive(None, true));
        assert!(!is_interactive(None, false));
    }

    #[test]
    fn non_interactive_requests_back_off_and_interactive_ones_always_run() {
        let t0 = t("2026-01-01T00:00:00Z");
        let r = fail(None, false, t0);
        assert_eq!((r.streak, r.next_try.as_deref()), (1, Some("2026-01-01T00:00:05Z")));
        let soon = t0 + SignedDuration::from_secs(4);
        assert_eq!(
            decide(Some(&r), false, None, MAX, soon),
            Some(Why::BackingOff { until: t("2026-01-01T00:00:05Z") })
        );
        assert_eq!(decide(Some(&r), true, None, MAX, soon), None, "a terminal always runs the plugin");
        assert_eq!(decide(Some(&r), false, None, None, soon), None, "the setting turns it off");
        assert_eq!(decide(Some(&r), false, None, MAX, t0 + SignedDuration::from_secs(5)), None, "over");
        assert_eq!(decide(None, false, None, MAX, soon), None);
    }

    #[test]
    fn a_streak_grows_and_an_interactive_failure_leaves_it_alone() {
        let t0 = t("2026-01-01T00:00:00Z");
        let r1 = fail(None, false, t0);
        let r2 = fail(Some(&r1), false, t0 + SignedDuration::from_secs(6));
        assert_eq!((r2.streak, r2.since.as_deref()), (2, Some("2026-01-01T00:00:00Z")));
        assert_eq!(r2.next_try.as_deref(), Some("2026-01-01T00:00:16Z"));
        let ri = fail(Some(&r2), true, t0 + SignedDuration::from_secs(7));
        assert_eq!((ri.streak, &ri.next_try, ri.latest.interactive), (2, &r2.next_try, true));
        assert_eq!(ri.answer(), &r2.latest, "the back-off still answers with the background failure");
        let ri2 = fail(Some(&ri), true, t0 + SignedDuration::from_secs(8));
        assert_eq!(ri2.answer(), &r2.latest);
        let r3 = fail(Some(&ri2), false, t0 + SignedDuration::from_secs(17));
        assert_eq!((r3.background.as_ref(), r3.answer()), (None, &r3.latest));
        // Idle for longer than the cap after the back-off lapsed: start over.
        let late = fail(Some(&r2), false, t0 + SignedDuration::from_mins(10));
        assert_eq!((late.streak, late.since.as_deref()), (1, Some("2026-01-01T00:10:00Z")));
        // Off: no streak, but the failure is still kept for waiters.
        let off = after_failure(None, "k", "p", &FailedRun { code: 1, stderr: None, error: None }, false, None, t0);
        assert_eq!((off.streak, &off.next_try), (0, &None));
    }

    #[test]
    fn waiters_get_the_failure_of_the_flight_they_waited_for() {
        let t0 = t("2026-01-01T00:00:00Z");
        let waited = Some(t0);
        let later = t0 + SignedDuration::from_secs(1);
        let noninteractive = fail(None, false, later);
        let interactive = fail(None, true, later);
        for max in [MAX, None] {
            assert_eq!(decide(Some(&noninteractive), false, waited, max, later), Some(Why::FailedWhileWaiting));
            assert_eq!(decide(Some(&interactive), true, waited, max, later), Some(Why::FailedWhileWaiting));
            assert_eq!(decide(Some(&interactive), false, waited, max, later), Some(Why::FailedWhileWaiting));
        }
        assert_eq!(
            decide(Some(&noninteractive), true, waited, MAX, later),
            None,
            "a terminal behind a failed background run runs the plugin: it can answer the prompt"
        );
        let before = fail(None, true, t0 - SignedDuration::from_secs(1));
        assert_eq!(decide(Some(&before), true, waited, MAX, later), None, "an older failure is not this flight's");
    }

    #[test]
    fn the_record_round_trips_and_explains_itself() {
        let t0 = t("2026-01-01T00:00:00Z");
        let r = fail(Some(&fail(None, false, t0)), false, t0 + SignedDuration::from_secs(6));
        let back: Failure = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let replay = Replay { failure: r.clone(), why: Why::BackingOff { until: r.next_try().unwrap() } };
        let line = replay.explain(t0 + SignedDuration::from_secs(7));
        for part in [
            "did not run 'plug'",
            "2 times in a row since 2026-01-01T00:00:00Z",
            "exit code 3",
            "until 2026-01-01T00:00:16Z",
            "in 9s",
            "kcc clear --key 'k'",
            "in a terminal",
        ] {
            assert!(line.contains(part), "{part}: {line}");
        }
        assert!(!line.contains('\n'), "one line: {line}");
        assert_eq!(shell_quote(r#"user="a'b""#), r#"'user="a'\''b"'"#);
        let (message, fix) = describe(&r, MAX, t0 + SignedDuration::from_secs(7)).unwrap();
        assert!(message.contains("until 2026-01-01T00:00:16Z") && fix.contains("kcc clear --key"), "{message} {fix}");
        assert!(describe(&r, MAX, t0 + SignedDuration::from_mins(1)).is_none(), "over: nothing to report");
        assert!(bounded(&"é".repeat(3000), ERROR_LIMIT).len() <= ERROR_LIMIT + '…'.len_utf8());
    }
}
