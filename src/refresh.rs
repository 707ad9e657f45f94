//! Refresh ahead (`KUBE_CREDENTIAL_CACHE_REFRESH_AHEAD`, off by default): a
//! hit on a credential that expires within the window is served at once, and
//! a detached background process fetches its successor, so the call after
//! expiry is a hit instead of waiting for the plugin.
//!
//! The background refresher is kcc itself, re-executed as
//! `kcc cache -- PLUGIN ARGS…` with [`REFRESHER_ENV`] set to the expiry of the
//! entry it replaces: in a new session (`setsid`), stdin `/dev/null`, stdout
//! and stderr appended to `cache.refresh.log` beside the store (0600, reset
//! when it passes [`LOG_LIMIT`]). It takes the same single-flight lock as a
//! foreground refresh, re-checks the entry (replaced meanwhile → nothing to
//! do), runs the plugin with `KUBERNETES_EXEC_INFO` saying
//! `"interactive": false` (nobody is there to answer a prompt), stores the
//! result and prints nothing but a summary line to its log.
//!
//! No storms — when a refresh ahead starts:
//! - only on a hit inside the window (`expiry - now < window`; a credential
//!   inside the refresh margin is a foreground miss as before);
//! - only when no refresher of the key is alive: the refresher holds a
//!   per-key lock (`cache.flight/<hash>.ahead`) for its whole life, and the
//!   hit that starts it takes that lock too while it checks and marks the
//!   index, so of many simultaneous hits exactly one starts a refresher;
//! - only when the index allows it: each attempt records `at`, `result` and
//!   `nextAllowed` in the entry's index row (`background`). After a success
//!   the next attempt waits **half the new credential's lifetime**; after a
//!   failure (a plugin that needs a prompt, a network error) it waits
//!   [`failure_backoff`] (half the window, 10 s to 5 min) and the next
//!   foreground miss refreshes normally.
//!
//! The half-lifetime spacing is what keeps a window longer than a
//! credential's lifetime from refreshing on every call: a 5-minute credential
//! with a 10-minute window is always inside the window, yet is refreshed in
//! the background at most once per 2.5 minutes. (A rule "only a credential
//! that has lived half its lifetime" would never refresh a credential that a
//! foreground miss just fetched into the window, which is the case a window
//! longer than the lifetime is for.)
//!
//! Cost on the hit path: nothing when the setting is off; one comparison when
//! the credential is outside the window; a try-lock, an index read and write
//! and a spawn only when a refresh is due.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

use jiff::{SignedDuration, Timestamp};

use crate::config::Config;
use crate::diagnostics::{self, Diag, when};
use crate::duration::format_go_duration;
use crate::lock::FileLock;
use crate::store::{BackgroundAttempt, Store, file};

/// Set in a background refresher's environment to the expiry (RFC 3339) of
/// the entry it was started to replace. Internal; never set it yourself.
pub const REFRESHER_ENV: &str = "KUBE_CREDENTIAL_CACHE_REFRESHER";

/// The refresher log is emptied before a refresher starts once it is larger.
pub const LOG_LIMIT: u64 = 64 * 1024;

const MIN_BACKOFF: SignedDuration = SignedDuration::from_secs(10);
const MAX_BACKOFF: SignedDuration = SignedDuration::from_mins(5);

/// The expiry a background refresher was started for, when this process is one.
pub fn requested() -> Option<String> {
    std::env::var(REFRESHER_ENV).ok().filter(|v| !v.is_empty())
}

/// How long to wait after a failed (or still running) background refresh:
/// half the window, at least 10 s, at most 5 min.
pub fn failure_backoff(window: SignedDuration) -> SignedDuration {
    (window / 2).clamp(MIN_BACKOFF, MAX_BACKOFF)
}

/// How long to wait after a successful background refresh: half the new
/// credential's remaining lifetime.
pub fn success_spacing(expiry: Timestamp, now: Timestamp) -> SignedDuration {
    (expiry.duration_since(now) / 2).max(SignedDuration::ZERO)
}

/// Whether a hit on a credential expiring at `expiry` is inside the window.
pub fn in_window(config: &Config, expiry: Timestamp, now: Timestamp) -> bool {
    !config.refresh_ahead.is_zero() && expiry.duration_since(now) < config.refresh_ahead
}

/// A background attempt in words, for debug output and `kcc doctor`.
pub fn describe(bg: &BackgroundAttempt) -> String {
    let detail = if bg.detail.is_empty() { String::new() } else { format!(" ({})", bg.detail) };
    format!("last background refresh {} at {}{detail}; next allowed at {}", bg.result, bg.at, bg.next_allowed)
}

/// Called after a hit was printed: starts a background refresh when one is
/// due (see the module docs). Never fails the call: problems are debug output.
#[allow(clippy::too_many_arguments)]
pub fn after_hit(
    config: &Config,
    store: &Store,
    key: &str,
    expiry: Timestamp,
    now: Timestamp,
    command: &OsStr,
    plugin_args: &[OsString],
    diag: &Diag,
) {
    if !in_window(config, expiry, now) {
        return;
    }
    let window = format_go_duration(config.refresh_ahead);
    let lock_path = store.ahead_lock_path(key);
    let lock =
        match lock_path.parent().map_or(Ok(()), file::ensure_dir).and_then(|()| FileLock::try_acquire(&lock_path)) {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                diag.debug(|| "refresh ahead: a background refresh of this key is already running".into());
                return;
            }
            Err(e) => {
                diag.debug(|| format!("refresh ahead: cannot take {} ({e}); not refreshing", lock_path.display()));
                return;
            }
        };
    // Under the lock: whoever marked the index before us wins.
    let Some(meta) = store.meta(key) else {
        diag.debug(|| "refresh ahead: the index has no row for this key; not refreshing in the background".into());
        return;
    };
    if let Some(bg) = &meta.background
        && bg.next_allowed.parse::<Timestamp>().is_ok_and(|t| t > now)
    {
        diag.debug(|| format!("refresh ahead: within the {window} window, but not yet: {}", describe(bg)));
        return;
    }
    let marked = store.update_meta(key, diag, |e| {
        e.background = Some(BackgroundAttempt {
            at: when(now),
            result: "started".into(),
            detail: String::new(),
            next_allowed: when(now + failure_backoff(config.refresh_ahead)),
        })
    });
    if let Err(e) = marked {
        diag.debug(|| format!("refresh ahead: cannot update the index ({e}); not refreshing in the background"));
        return;
    }
    drop(lock);
    match spawn(store, command, plugin_args, expiry) {
        Ok(pid) => diag.debug(|| {
            format!(
                "refresh ahead: expires in {}, within the {window} window; started background refresher pid {pid} (log: {})",
                diagnostics::span(expiry.duration_since(now)),
                store.paths.refresh_log().display()
            )
        }),
        Err(e) => {
            diag.debug(|| format!("refresh ahead: cannot start the background refresher ({e})"));
            record(store, key, diag, now, "failed", &format!("could not start: {e}"), config.refresh_ahead, None);
        }
    }
}

/// Records the outcome of a background attempt in the key's index row.
/// `new_expiry` is the new credential's expiry after a success.
#[allow(clippy::too_many_arguments)]
pub fn record(
    store: &Store,
    key: &str,
    diag: &Diag,
    at: Timestamp,
    result: &str,
    detail: &str,
    window: SignedDuration,
    new_expiry: Option<Timestamp>,
) -> BackgroundAttempt {
    let now = Timestamp::now();
    let wait = match new_expiry {
        Some(expiry) => success_spacing(expiry, now),
        None => failure_backoff(window),
    };
    let attempt = BackgroundAttempt {
        at: when(at),
        result: result.into(),
        detail: detail.into(),
        next_allowed: when(now + wait),
    };
    let row = attempt.clone();
    if let Err(e) = store.update_meta(key, diag, |e| e.background = Some(row)) {
        diag.warn(&format!("cannot record the background refresh in the index ({e})"));
    }
    attempt
}

/// `KUBERNETES_EXEC_INFO` with `spec.interactive` set to false, the rest
/// kept; unparsable input is returned unchanged.
pub fn non_interactive(exec_info: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(exec_info) else { return exec_info.to_string() };
    let Some(obj) = value.as_object_mut() else { return exec_info.to_string() };
    let spec = obj.entry("spec").or_insert_with(|| serde_json::json!({}));
    if let Some(spec) = spec.as_object_mut() {
        spec.insert("interactive".into(), serde_json::Value::Bool(false));
    }
    value.to_string()
}

/// Opens the refresher log for appending (0600), emptied when it has grown
/// past [`LOG_LIMIT`].
fn open_log(path: &Path) -> io::Result<File> {
    let too_big = std::fs::symlink_metadata(path).is_ok_and(|m| m.len() > LOG_LIMIT);
    let mut options = OpenOptions::new();
    if too_big {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    options.create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    file::open_regular(&mut options, path)
}

/// Starts the detached refresher: kcc itself, same plugin command line.
fn spawn(store: &Store, command: &OsStr, plugin_args: &[OsString], seen_expiry: Timestamp) -> io::Result<u32> {
    let exe = std::env::current_exe()?;
    let log = open_log(&store.paths.refresh_log())?;
    let mut cmd = Command::new(exe);
    cmd.arg("cache")
        .arg("--")
        .arg(command)
        .args(plugin_args)
        .env(REFRESHER_ENV, when(seen_expiry))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Ok(info) = std::env::var("KUBERNETES_EXEC_INFO") {
        cmd.env("KUBERNETES_EXEC_INFO", non_interactive(&info));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe and touches no memory of ours;
        // it only fails when we already lead a process group, which a child
        // just forked never does.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    }
    // Not waited for: it outlives us on purpose (re-parented when we exit).
    let child = cmd.spawn()?;
    Ok(child.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_info_becomes_non_interactive_and_keeps_the_rest() {
        let info = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"server":"https://x"},"interactive":true}}"#;
        let v: serde_json::Value = serde_json::from_str(&non_interactive(info)).unwrap();
        assert_eq!(v["spec"]["interactive"], false);
        assert_eq!(v["spec"]["cluster"]["server"], "https://x");
        assert_eq!(v["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(non_interactive("garbage"), "garbage");
    }

    #[test]
    fn back_off_and_spacing() {
        assert_eq!(failure_backoff(SignedDuration::from_mins(10)), SignedDuration::from_mins(5));
        assert_eq!(failure_backoff(SignedDuration::from_hours(2)), SignedDuration::from_mins(5));
        assert_eq!(failure_backoff(SignedDuration::from_secs(4)), SignedDuration::from_secs(10));
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(success_spacing(now + SignedDuration::from_mins(5), now), SignedDuration::from_secs(150));
    }
}
