//! Regression tests for security findings, each named after the finding it
//! pins (issue 21's review).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::apiserver::{ApiServer, token_sha256};
use crate::util::*;

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
