//! Regression tests for review findings, each named after the finding it pins
//! (issue 21 and later), driving the built binary like the other modules.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::kube;
use crate::util::*;

/// `kubectl config view` of a kubeconfig, as JSON (panics with kubectl's message).
fn view(w: &World, file: &Path) -> Json {
    let out = w
        .cmd(kube::kubectl())
        .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
        .arg(file)
        .output()
        .expect("run kubectl");
    assert!(out.status.success(), "kubectl refused {}: {}", file.display(), stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The exec section of user `name` (kubectl sorts users by name).
fn exec_of<'a>(view: &'a Json, name: &str) -> &'a Json {
    let users = view["users"].as_array().expect("users");
    &users.iter().find(|u| u["name"] == name).unwrap_or_else(|| panic!("no user '{name}' in {view}"))["user"]["exec"]
}

/// Issue 21 item 6: `kcc cache kcc-cache-token.sh prod` took the plugin for
/// kcc's own wrapper, dropped it and ran `prod` (exit 127).
#[test]
fn plugin_named_kcc_cache_something_is_taken_for_kcc() {
    let w = World::new();
    w.plugin("kcc-cache-token.sh", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    for call in [&["cache", "kcc-cache-token.sh", "prod"][..], &["cache", "--", "kcc-cache-token.sh", "prod"]] {
        let out = w.cmd("kcc").args(call).output().unwrap();
        assert!(ok(&out).contains(SECRET), "{call:?}: the plugin's credential, not prod's 127");
    }
    let out = w.cache(&["kcc-cache-token.sh", "prod"]);
    assert!(ok(&out).contains(SECRET));
    assert_eq!(w.runs("kcc-cache-token.sh"), 1, "one miss, then hits");
    let args = fs::read_to_string(w.path("kcc-cache-token.sh.args")).unwrap();
    assert_eq!(args, "prod\n", "the plugin got its own argument");
}

/// Issue 21 item 6: `inject -i` called a user whose command is
/// `/opt/tools/kcc-cache-token.sh` "already injected", and `-r` rewrote it
/// to `command: --profile`.
#[test]
fn plugin_named_kcc_cache_something_is_injected_and_restored_exactly() {
    let w = World::new();
    let file = w.path("config");
    let original = "apiVersion: v1\nkind: Config\nusers:\n- name: prod\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /opt/tools/kcc-cache-token.sh\n      args: [--profile, prod]\n- name: cached\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /opt/tools/kcc-cached\n";
    fs::write(&file, original).unwrap();
    let before = view(&w, &file);

    let out = w.cmd("kcc").args(["inject", "-i"]).arg(&file).output().unwrap();
    ok(&out);
    let injected = view(&w, &file);
    for (user, plugin) in [("prod", "/opt/tools/kcc-cache-token.sh"), ("cached", "/opt/tools/kcc-cached")] {
        let exec = exec_of(&injected, user);
        assert_eq!(exec["command"], "kcc-cache", "user {user} is wrapped: {exec}");
        assert_eq!(exec["args"][0], plugin, "{exec}");
    }
    assert_eq!(exec_of(&injected, "prod")["args"].as_array().unwrap().len(), 3, "plugin, --profile, prod");

    ok(&w.cmd("kcc").args(["inject", "-r", "-i"]).arg(&file).output().unwrap());
    assert_eq!(view(&w, &file), before, "restore gives the original back");
    assert_eq!(exec_of(&view(&w, &file), "prod")["command"], "/opt/tools/kcc-cache-token.sh");

    // And a user with exactly kcc's name stays "already injected".
    let again = w.cmd("kcc").args(["inject", "-i"]).arg(&file).output().unwrap();
    ok(&again);
    let twice = view(&w, &file);
    ok(&w.cmd("kcc").args(["inject", "-i"]).arg(&file).output().unwrap());
    assert_eq!(view(&w, &file), twice, "injecting twice equals injecting once");

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
    }}
