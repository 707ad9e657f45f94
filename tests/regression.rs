//! Regression tests for review findings, each named after the finding it pins
//! (issue 21 and later), driving the built binary like the other modules.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::apiserver::{ApiServer, token_sha256};
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
}

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

/// A plugin printing the token `SECRET-<first argument>` for an hour.
fn token_per_argument_plugin(w: &World) -> std::path::PathBuf {
    let cred = credential("v1", "SECRET-__ARG__", Some(&in_secs(3600)));
    let (before, after) = cred.split_once("__ARG__").unwrap();
    w.script("plug.sh", &format!("printf '%s%s%s' '{before}' \"$1\" '{after}'"))
}

/// `~/.kube/config` whose user `admin` runs `kcc-cache plug.sh <arg>` against `server`.
fn home_kubeconfig(w: &World, server: &ApiServer, arg: &str) {
    let dir = w.path("home/.kube");
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: cluster-a\n  cluster: {{server: '{}', certificate-authority-data: '{}'}}\ncontexts:\n- name: a\n  context: {{cluster: cluster-a, user: admin}}\ncurrent-context: a\nusers:\n- name: admin\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: kcc-cache\n      args: [plug.sh, {arg}]\n      env: [{{name: KUBE_CREDENTIAL_CACHE_USER, value: admin}}]\n",
        server.url, server.ca_data_base64
    );
    std::fs::write(dir.join("config"), text).unwrap();
}

/// Two calls of a client without exec info (client-node) from one parent:
/// the second is a re-ask, which makes kcc look for the cluster.
fn node_style_re_ask(w: &World, arg: &str) -> String {
    let call = || {
        w.cmd_direct("kcc-cache").args(["plug.sh", arg]).env("KUBE_CREDENTIAL_CACHE_USER", "admin").output().unwrap()
    };
    assert!(ok(&call()).contains(&format!("SECRET-{arg}")));
    let second = call();
    assert!(ok(&second).contains(&format!("SECRET-{arg}")));
    stderr(&second)
}

#[test]
fn healing_sends_a_cached_token_to_another_cluster() {
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_DEBUG", "1");
    let server = ApiServer::start(&w);
    token_per_argument_plugin(&w);
    home_kubeconfig(&w, &server, "cluster-a");
    // The application loaded another kubeconfig whose `admin` runs plug.sh cluster-b.
    let err = node_style_re_ask(&w, "cluster-b");
    assert!(err.contains("runs another plugin command"), "{err}");
    let sent: Vec<_> = server.requests().into_iter().filter_map(|r| r.token_sha256).collect();
    assert!(!sent.contains(&token_sha256("SECRET-cluster-b")), "cluster-b's token reached cluster-a's server");
    assert!(sent.is_empty(), "the server was not asked at all: {sent:?}");

    // The control: the user of ~/.kube/config itself is checked with its server.
    let err = node_style_re_ask(&w, "cluster-a");
    assert!(err.contains("asking the API server"), "{err}");
    let sent: Vec<_> = server.requests().into_iter().filter_map(|r| r.token_sha256).collect();
    assert_eq!(sent, [token_sha256("SECRET-cluster-a")]);
}

/// A listener that records the first line of every connection (a CONNECT
/// request when a client uses it as its proxy) and closes it.
fn recording_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut line = String::new();
            let _ = BufReader::new(&conn).read_line(&mut line);
            log.lock().unwrap().push(line.trim_end().to_owned());
        }
    });
    (url, seen)
}

#[test]
fn heal_check_ignores_a_no_proxy_cidr() {
    let (proxy, seen) = recording_proxy();
    // A server in 10.0.0.0/8 (nothing answers there: the direct attempt
    // times out within the check's bound and the cached token is served).
    let info = r#"{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "spec": {"cluster": {"server": "https://10.255.255.1:6443"}, "interactive": false}}"#;
    let run = |no_proxy: Option<&str>| {
        let mut w = World::new();
        w.set_env("KUBE_CREDENTIAL_CACHE_DEBUG", "1");
        w.set_env("KUBERNETES_EXEC_INFO", info);
        w.set_env("HTTPS_PROXY", &proxy);
        if let Some(n) = no_proxy {
            w.set_env("NO_PROXY", n);
        }
        let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
        let call = || w.cmd_direct("kcc-cache").arg(&plugin).output().unwrap();
        ok(&call());
        let second = call();
        assert!(ok(&second).contains(SECRET), "the cached credential is served");
        stderr(&second)
    };
    let err = run(Some("example.com,10.0.0.0/8"));
    assert!(err.contains("asking the API server https://10.255.255.1:6443"), "{err}");
    assert_eq!(seen.lock().unwrap().clone(), Vec::<String>::new(), "NO_PROXY=10.0.0.0/8 bypasses the proxy");
    // The control: without the exception the check goes through the proxy.
    run(None);
    assert_eq!(seen.lock().unwrap().clone(), ["CONNECT 10.255.255.1:6443 HTTP/1.1"]);
}

/// Issue 20.2, as filed: after `rm -rf ~/.cache`, kernel keys no index names
/// stayed in the kernel, where `kcc clear --all` could not find them (one CI
/// run left 65 in root's persistent keyring).
#[cfg(target_os = "linux")]
#[test]
fn kernel_keys_outlive_their_index_rm_rf_cache_then_clear_all_forgets_them() {
    if !crate::kernel::kernel_usable() {
        return;
    }
    let w = crate::kernel::kernel_world();
    let plugins: Vec<_> =
        (0..3).map(|i| w.plugin(&format!("p{i}"), &credential("v1", SECRET, Some(&in_secs(3600))), 0.0)).collect();
    for p in &plugins {
        ok(&w.cache(&[p.to_str().unwrap()]));
    }
    let ids: Vec<String> = w.index_json()["entries"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.split("id=").nth(1).unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    fs::remove_dir_all(&w.cache_home).unwrap();
    let out = ok(&w.cmd("kcc").args(["clear", "--all"]).output().unwrap());
    assert!(out.contains("removed 3 of 3 cached entries (from the kernel store)"), "{out}");
    for id in &ids {
        assert!(crate::kernel::gone_soon(id), "key {id} outlived 'kcc clear --all'");
    }
}
