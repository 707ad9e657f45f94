//! Regression tests for the security review findings (issue 21), each named
//! after the finding it pins.

use std::time::{Duration, Instant};

use crate::util::*;

/// Finding 7 (low): failures serialised by single flight. 8 concurrent
/// callers of a plugin that fails after 1 s returned at 1, 2, … 8 s and ran
/// it 8 times; without kcc all return in 1 s. The waiters of a failed
/// flight now get its failure (same exit code, same stderr): with the
/// failure back-off on and off (sharing a flight's result is not the
/// back-off), and for interactive callers behind an interactive failure.
#[test]
fn failures_serialised_by_single_flight_waiters_of_a_failed_flight_get_its_failure() {
    let interactive_info =
        r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":true}}"#;
    for (name, backoff, info) in [
        ("backoff-on", "5m", None),
        ("backoff-off", "0", None),
        ("interactive", "5m", Some(interactive_info.to_string())),
        ("kubectl-like", "0", Some(exec_info("v1", None))),
    ] {
        let mut w = World::new();
        w.set_env("KUBE_CREDENTIAL_CACHE_FAILURE_BACKOFF", backoff);
        if let Some(info) = &info {
            w.set_env("KUBERNETES_EXEC_INFO", info);
        }
        let plugin = w.script(
            "slowfail",
            &format!(
                "echo run >> '{}'\nsleep 1\necho 'kcc-test: login failed' >&2\nexit 5",
                w.path("slowfail.count").display()
            ),
        );
        let started = Instant::now();
        let children: Vec<_> = (0..8)
            .map(|_| {
                w.cmd("kcc-cache")
                    .arg(&plugin)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut slowest = Duration::ZERO;
        for child in children {
            let out = child.wait_with_output().unwrap();
            slowest = slowest.max(started.elapsed());
            assert_eq!(
                out.status.code(),
                Some(5),
                "{name}: every caller gets the plugin's exit code: {}",
                stderr(&out)
            );
            assert!(stderr(&out).contains("kcc-test: login failed"), "{name}: and its error: {}", stderr(&out));
            assert_eq!(stdout(&out), "", "{name}");
        }
        let runs = w.runs("slowfail");
        eprintln!("{name}: 8 callers done after {slowest:?}, {runs} plugin run(s)");
        assert!(runs <= 2, "{name}: the plugin ran {runs} times for 8 concurrent callers");
        // 1 s of plugin, then 7 waiters answered from the record (a loaded
        // machine adds process start-up; serialised runs would take 8 s).
        assert!(
            slowest < Duration::from_millis(2500 * runs as u64),
            "{name}: the last caller returned after {slowest:?}"
        );
    }
}
