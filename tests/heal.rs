//! Healing after a rejected credential (`KUBE_CREDENTIAL_CACHE_HEAL`): real
//! kubectl runs the plugin once per process, and once more after a 401; kcc
//! answers that second request with a fresh credential instead of the
//! rejected one.

use crate::apiserver::{ApiServer, token_sha256};
use crate::kube::{self, ExecUser, write_kubeconfig};
use crate::util::*;

const SERVER_MARK: &str = "kcc-test-apiserver";

/// A server, a counting plugin printing `token` for an hour, and a
/// kubeconfig whose user runs it through kcc-cache (with `env` in the exec env).
fn setup(w: &World, token: &str, env: &[(&str, &str)]) -> (ApiServer, std::path::PathBuf) {
    let server = ApiServer::start(w);
    server.allow(token);
    let plugin = w.plugin("plug", &credential("v1", token, Some(&in_secs(3600))), 0.0);
    let mut user = ExecUser::new("kcc-cache").args([plugin.to_str().unwrap()]);
    for (name, value) in env {
        user = user.env(name, value);
    }
    let kubeconfig = w.path("kubeconfig");
    write_kubeconfig(&kubeconfig, &server, &user);
    (server, kubeconfig)
}

fn index_entry(w: &World) -> serde_json::Value {
    let text = std::fs::read_to_string(w.store_file().with_file_name("cache.index.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["entries"].as_object().unwrap().values().next().unwrap().clone()
}

#[test]
fn kubectl_recovers_on_the_call_after_the_server_revokes_the_token() {
    let w = World::new();
    let (old, new) = ("kcc-heal-old-token-1a2b", "kcc-heal-new-token-3c4d");
    let (server, kubeconfig) = setup(&w, old, &[]);
    assert!(ok(&kube::get_version(&w, &kubeconfig)).contains(SERVER_MARK));
    assert_eq!(w.runs("plug"), 1);

    // The session is revoked; the plugin would now get a new, valid token.
    server.revoke(old);
    server.allow(new);
    w.set_plugin_output("plug", &credential("v1", new, Some(&in_secs(3600))));

    let failing = kube::get_version(&w, &kubeconfig);
    assert!(!failing.status.success(), "client-go does not retry the rejected request: {}", stdout(&failing));
    assert_eq!(w.runs("plug"), 2, "kubectl's second plugin call (after the 401) refreshed the credential");

    let healed = kube::get_version(&w, &kubeconfig);
    assert!(ok(&healed).contains(SERVER_MARK), "the next call works with the fresh token");
    assert_eq!(w.runs("plug"), 2, "the plugin ran exactly twice in total");
    let last = server.requests().pop().unwrap();
    assert_eq!(last.token_sha256.as_deref(), Some(token_sha256(new).as_str()), "{last:?}");
    assert_eq!(last.status, 200);
    assert!(index_entry(&w)["forced"]["at"].is_string(), "the forced refresh is recorded: {}", index_entry(&w));

    let doctor = stdout(&w.cmd("kcc").arg("doctor").output().unwrap());
    assert!(doctor.contains("last forced refresh (healing)"), "{doctor}");
}

#[test]
fn twenty_ordinary_kubectl_calls_never_force_a_refresh() {
    let w = World::new();
    let token = "kcc-heal-valid-token-5e6f";
    let (server, kubeconfig) = setup(&w, token, &[]);
    for i in 0..20 {
        if i % 4 == 3 {
            // Discovery (several requests in one process) still runs the plugin once.
            let out = w.cmd(kube::kubectl()).args(["api-versions", "--kubeconfig"]).arg(&kubeconfig).output().unwrap();
            assert!(ok(&out).contains("v1"), "{}", stdout(&out));
        } else {
            assert!(ok(&kube::get_version(&w, &kubeconfig)).contains(SERVER_MARK));
        }
    }
    assert_eq!(w.runs("plug"), 1, "every kubectl is a new client: no call looks like a rejection");
    assert!(server.accepted().len() >= 20, "{:?}", server.requests());
    assert!(server.requests().iter().all(|r| r.status != 401), "{:?}", server.requests());
    assert!(index_entry(&w)["forced"].is_null(), "{}", index_entry(&w));
}

#[test]
fn with_healing_switched_off_the_rejected_token_is_served_until_it_expires() {
    let w = World::new();
    let (old, new) = ("kcc-heal-off-old-7a8b", "kcc-heal-off-new-9c0d");
    let (server, kubeconfig) = setup(&w, old, &[("KUBE_CREDENTIAL_CACHE_HEAL", "0")]);
    ok(&kube::get_version(&w, &kubeconfig));
    server.revoke(old);
    server.allow(new);
    w.set_plugin_output("plug", &credential("v1", new, Some(&in_secs(3600))));
    for _ in 0..2 {
        assert!(!kube::get_version(&w, &kubeconfig).status.success());
    }
    assert_eq!(w.runs("plug"), 1, "the old behaviour: the cache answers kubectl's retry itself");
}

#[test]
fn one_parent_calling_again_forces_at_most_one_refresh_per_interval() {
    // A script calling kcc-cache in a loop is one parent for many calls: the
    // second call looks like a rejection, the bound stops it from turning
    // the cache off.
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_DEBUG", "1");
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let call = || w.cmd_direct("kcc-cache").arg(&plugin).output().unwrap();
    ok(&call());
    let second = call();
    assert!(stdout(&second).contains(SECRET));
    let err = stderr(&second);
    assert!(
        err.contains("heal:") && err.contains("treating it as rejected"),
        "every forced refresh is explained: {err}"
    );
    assert_eq!(w.runs("plug"), 2);
    for _ in 0..4 {
        let out = call();
        assert!(stdout(&out).contains(SECRET));
        assert!(stderr(&out).contains("at most one forced refresh per key per 30s"), "{}", stderr(&out));
    }
    assert_eq!(w.runs("plug"), 2, "one forced refresh per key per 30 s");
    assert!(!err.contains(SECRET));
}

#[cfg(unix)]
#[test]
fn the_served_client_record_is_private_and_holds_no_token() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    // A direct child: the test process is the client (a shell parent is
    // never one, so nothing would be recorded).
    ok(&w.cmd_direct("kcc-cache").arg(&plugin).output().unwrap());
    let flight = w.store_file().with_file_name("cache.flight");
    let served: Vec<_> = std::fs::read_dir(&flight)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "served"))
        .collect();
    assert_eq!(served.len(), 1, "{served:?}");
    let meta = std::fs::metadata(&served[0]).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 64, "a fixed-size record");
    assert!(!std::fs::read_to_string(&served[0]).unwrap().contains(SECRET));
    assert_eq!(w.runs("plug"), 1);
}

#[test]
fn a_shell_asking_twice_is_not_a_rejected_client() {
    // `for i in 1 2; do kcc-cache …; done`: one shell parent, two requests,
    // nothing rejected: the second is a plain hit.
    let w = World::new();
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let script = format!("for i in 1 2 3; do kcc-cache '{}' || exit 1; done", plugin.display());
    let out = w.cmd_direct("/bin/sh").arg("-c").arg(&script).env("KUBE_CREDENTIAL_CACHE_DEBUG", "1").output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(w.runs("plug"), 1, "a shell loop is served from the cache:\n{err}");
    assert!(!err.contains("heal:"), "no heal verdict for a shell parent:\n{err}");
}
