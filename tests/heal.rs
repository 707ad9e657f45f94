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
    // As client-go sends it: compact, kind first (the only family whose
    // re-ask alone means a 401).
    w.set_env("KUBERNETES_EXEC_INFO", &exec_info("v1", None));
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let call = || w.cmd_direct("kcc-cache").arg(&plugin).output().unwrap();
    ok(&call());
    let second = call();
    assert!(stdout(&second).contains(SECRET));
    let err = stderr(&second);
    assert!(
        err.contains("heal: client-go client asks again") && err.contains("treating it as rejected"),
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
    assert_eq!(meta.len(), 96, "a fixed-size record");
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

#[test]
fn a_failed_forced_refresh_serves_the_cached_credential_and_counts_against_the_bound() {
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_DEBUG", "1");
    w.set_env("KUBERNETES_EXEC_INFO", &exec_info("v1", None));
    // Works once, then fails (an MFA plugin with no terminal to ask on).
    let plugin = w.script(
        "plug",
        &format!(
            "echo run >> plug.count\n[ $(wc -l < plug.count) -gt 1 ] && {{ echo 'cannot prompt' >&2; exit 3; }}\nprintf '%s' '{}'",
            credential("v1", SECRET, Some(&in_secs(3600)))
        ),
    );
    let call = || w.cmd_direct("kcc-cache").arg(&plugin).output().unwrap();
    ok(&call());
    let second = call();
    assert!(ok(&second).contains(SECRET), "the cached credential is served, not the plugin's failure");
    let err = stderr(&second);
    assert!(err.contains("heal: the forced refresh failed") && err.contains("serving the cached credential"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    assert_eq!(w.runs("plug"), 2);
    let third = call();
    assert!(ok(&third).contains(SECRET));
    assert!(stderr(&third).contains("at most one forced refresh per key"), "{}", stderr(&third));
    assert_eq!(w.runs("plug"), 2, "the failed refresh counts against the bound");
}

#[test]
fn a_client_without_exec_info_asking_again_is_served_when_kcc_cannot_ask_the_server() {
    // Like client-node with no cluster to be found: a re-ask proves nothing.
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_DEBUG", "1");
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let call = || w.cmd_direct("kcc-cache").arg(&plugin).output().unwrap();
    ok(&call());
    for _ in 0..3 {
        let out = call();
        assert!(ok(&out).contains(SECRET));
        let err = stderr(&out);
        assert!(
            err.contains("heal: no-exec-info client asks again")
                && err.contains("the server cannot be asked: serving the cached credential")
                && err.contains("KUBE_CREDENTIAL_CACHE_USER"),
            "{err}"
        );
    }
    assert_eq!(w.runs("plug"), 1, "no refresh without a 401 from the server");
}

#[test]
fn a_python_client_asking_again_is_verified_once_with_the_server_and_served() {
    // The Python client's exec info (spaces, apiVersion first) with the cluster.
    let mut w = World::new();
    let server = ApiServer::start(&w);
    server.allow(SECRET);
    let info = format!(
        r#"{{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "spec": {{"cluster": {{"server": "{}", "certificate-authority-data": "{}"}}, "interactive": false}}}}"#,
        server.url, server.ca_data_base64
    );
    w.set_env("KUBERNETES_EXEC_INFO", &info);
    w.set_env("KUBE_CREDENTIAL_CACHE_DEBUG", "1");
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let call = || w.cmd_direct("kcc-cache").arg(&plugin).output().unwrap();
    ok(&call());
    let second = call();
    let err = stderr(&second);
    assert!(ok(&second).contains(SECRET));
    assert!(err.contains("the server answered HTTP 200 to the cached credential (not 401): serving it"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    let third = call();
    let err = stderr(&third);
    assert!(err.contains("python client asks again") && err.contains("s ago and said HTTP 200: serving"), "{err}");
    assert_eq!(server.requests().len(), 1, "one check for two re-asks: {:?}", server.requests());
    assert_eq!(w.runs("plug"), 1);
    let doctor = stdout(&w.cmd("kcc").arg("doctor").output().unwrap());
    assert!(doctor.contains("healing: last served to a python client") && doctor.contains("said HTTP 200"), "{doctor}");

    // Revoked: the next re-ask (after the interval, simulated by a fresh
    // record) is a 401 and refreshes.
    server.revoke(SECRET);
    for f in std::fs::read_dir(w.store_file().with_file_name("cache.flight")).unwrap().flatten() {
        if f.path().extension().is_some_and(|e| e == "served") {
            let text = std::fs::read_to_string(f.path()).unwrap();
            let fields: Vec<&str> = text.split_whitespace().collect();
            // k2 PID START ENTRY FORCED VERIFIED STATUS FAMILY: forget the check.
            let old = format!("k2 {} {} {} 0 0 0 p", fields[1], fields[2], fields[3]);
            let mut bytes = old.into_bytes();
            bytes.resize(95, b' ');
            bytes.push(b'\n');
            std::fs::write(f.path(), bytes).unwrap();
        }
    }
    let fourth = call();
    assert!(ok(&fourth).contains(SECRET), "the plugin still prints the same token here");
    assert!(
        stderr(&fourth).contains("answered HTTP 401 to the cached credential: running the plugin"),
        "{}",
        stderr(&fourth)
    );
    assert_eq!(w.runs("plug"), 2);
}

/// The server check itself (`kcc::heal::verify::probe`) against the local
/// TLS API server, with every TLS and proxy setting client-go honours.
mod server_check {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use kcc::heal::ServerSaid;
    use kcc::heal::cluster::Cluster;
    use kcc::heal::verify::{BOUND, probe};

    use super::*;
    use crate::apiserver::{CertSpec, TestCert};

    fn cluster(server: &ApiServer) -> Cluster {
        Cluster {
            server: server.url.clone(),
            ca_pem: Some(std::fs::read(&server.ca_file).unwrap()),
            ..Cluster::default()
        }
    }

    fn token(t: &str) -> String {
        credential("v1", t, Some(&in_secs(3600)))
    }

    #[test]
    fn an_accepted_token_is_200_a_revoked_one_401_and_only_its_hash_reaches_the_log() {
        let w = World::new();
        let server = ApiServer::start(&w);
        server.allow(SECRET);
        assert_eq!(probe(&cluster(&server), &token(SECRET), BOUND).said, ServerSaid::Status(200));
        server.revoke(SECRET);
        assert_eq!(probe(&cluster(&server), &token(SECRET), BOUND).said, ServerSaid::Status(401));
        let log = server.requests();
        assert_eq!(
            log.iter().map(|r| (r.path.as_str(), r.status)).collect::<Vec<_>>(),
            [("/version", 200), ("/version", 401)]
        );
        assert_eq!(log[0].token_sha256.as_deref(), Some(token_sha256(SECRET).as_str()));
    }

    #[test]
    fn tls_settings_are_honoured_and_a_failed_handshake_is_no_answer() {
        let w = World::new();
        let server = ApiServer::start(&w);
        server.allow(SECRET);
        let cred = token(SECRET);
        let no_ca = Cluster { ca_pem: None, ..cluster(&server) };
        let p = probe(&no_ca, &cred, BOUND);
        assert_eq!(p.said, ServerSaid::NoAnswer, "the system roots do not trust the test CA");
        assert!(p.detail.unwrap_or_default().contains("certificate"), "the reason is given");
        let insecure = Cluster { insecure: true, ..no_ca };
        assert_eq!(probe(&insecure, &cred, BOUND).said, ServerSaid::Status(200), "insecure-skip-tls-verify");
        let wrong_name = Cluster { tls_server_name: Some("other.example".into()), ..cluster(&server) };
        assert_eq!(probe(&wrong_name, &cred, BOUND).said, ServerSaid::NoAnswer, "tls-server-name is checked");
        let right_name = Cluster { tls_server_name: Some("127.0.0.1".into()), ..cluster(&server) };
        assert_eq!(probe(&right_name, &cred, BOUND).said, ServerSaid::Status(200));
        let prefixed = Cluster { server: format!("{}/some/prefix", server.url), ..cluster(&server) };
        assert_eq!(probe(&prefixed, &cred, BOUND).said, ServerSaid::Status(404), "the path prefix is kept");
    }

    /// A server presenting a certificate made here, trusted as the cluster's CA.
    fn serving(w: &World, name: &str, spec: CertSpec<'_>) -> (ApiServer, Cluster) {
        let cert = TestCert::make(&w.path("certs"), name, spec);
        let server = ApiServer::start_serving(w, Some(&cert));
        server.allow(SECRET);
        let c = cluster(&server);
        (server, c)
    }

    const CA_LEAF: CertSpec<'static> = CertSpec { san: "IP:127.0.0.1", ca: true, eku: None, expired: false };

    #[test]
    fn a_self_signed_ca_served_as_its_own_leaf_is_accepted_as_client_go_accepts_it() {
        let w = World::new();
        let (_server, c) = serving(&w, "ca-leaf", CA_LEAF);
        let p = probe(&c, &token(SECRET), BOUND);
        assert_eq!(p.said, ServerSaid::Status(200), "{:?}", p.detail);
        let named = Cluster { tls_server_name: Some("127.0.0.1".into()), ..c.clone() };
        assert_eq!(probe(&named, &token(SECRET), BOUND).said, ServerSaid::Status(200));
        let (_s, c) = serving(&w, "ca-leaf-server-auth", CertSpec { eku: Some("serverAuth"), ..CA_LEAF });
        assert_eq!(probe(&c, &token(SECRET), BOUND).said, ServerSaid::Status(200), "serverAuth EKU");
    }

    #[test]
    fn a_self_signed_ca_leaf_is_still_refused_for_what_client_go_refuses() {
        let w = World::new();
        let refused = |c: &Cluster, why: &str, words: &[&str]| {
            let p = probe(c, &token(SECRET), BOUND);
            assert_eq!(p.said, ServerSaid::NoAnswer, "{why}");
            let detail = p.detail.unwrap_or_default();
            assert!(words.iter().any(|w| detail.contains(w)), "{why}: {detail}");
        };
        let (_s1, c) = serving(&w, "ca-leaf-wrong-san", CertSpec { san: "IP:127.0.0.2,DNS:other.example", ..CA_LEAF });
        refused(&c, "wrong SAN", &["NotValidForName", "not valid for"]);
        let (_s2, c) = serving(&w, "ca-leaf", CA_LEAF);
        let wrong_name = Cluster { tls_server_name: Some("api.example".into()), ..c.clone() };
        refused(&wrong_name, "tls-server-name not in the SAN", &["NotValidForName", "not valid for"]);
        let (_s3, c) = serving(&w, "ca-leaf-expired", CertSpec { expired: true, ..CA_LEAF });
        refused(&c, "expired", &["Expired", "expired"]);
        let (_s4, c) = serving(&w, "ca-leaf-client-only", CertSpec { eku: Some("clientAuth"), ..CA_LEAF });
        refused(&c, "EKU without serverAuth", &["server authentication"]);
        // Unknown CA: the cluster names another self-signed CA than the one served.
        let other = TestCert::make(&w.path("certs"), "other-ca", CA_LEAF);
        let (_s5, c) = serving(&w, "ca-leaf-2", CA_LEAF);
        let unknown = Cluster { ca_pem: Some(std::fs::read(&other.cert).unwrap()), ..c };
        refused(&unknown, "unknown CA", &["UnknownIssuer", "CaUsedAsEndEntity"]);
        // An ordinary expired leaf (CA:FALSE, itself the configured CA) is refused too.
        let (_s6, c) = serving(&w, "leaf-expired", CertSpec { ca: false, expired: true, ..CA_LEAF });
        refused(&c, "expired non-CA", &["Expired", "expired"]);
    }

    #[test]
    fn a_client_certificate_credential_is_presented_in_the_handshake() {
        let w = World::new();
        let server = ApiServer::start(&w);
        let read = |f: &str| std::fs::read_to_string(server.dir.join(f)).unwrap();
        let cert = serde_json::json!({
            "kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1",
            "status": {"clientCertificateData": read("client.crt"), "clientKeyData": read("client.key"),
                       "expirationTimestamp": in_secs(3600)}
        })
        .to_string();
        assert_eq!(probe(&cluster(&server), &cert, BOUND).said, ServerSaid::Status(200));
        assert_eq!(server.requests().pop().unwrap().auth.as_deref(), Some("cert"));
        let no_cert = serde_json::json!({"kind": "ExecCredential", "status": {"token": ""}}).to_string();
        assert_eq!(probe(&cluster(&server), &no_cert, BOUND).said, ServerSaid::Status(401));
    }

    #[test]
    fn a_silent_server_is_no_answer_within_the_bound() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let _hold = std::thread::spawn(move || {
            let conns: Vec<_> = listener.incoming().take(1).collect();
            std::thread::sleep(Duration::from_secs(10));
            drop(conns);
        });
        let start = std::time::Instant::now();
        let p = probe(&Cluster { server: url, insecure: true, ..Cluster::default() }, &token(SECRET), BOUND);
        assert_eq!(p.said, ServerSaid::NoAnswer);
        // Well under the 10 s the server stays silent, with room for a loaded machine.
        assert!(start.elapsed() < BOUND + Duration::from_secs(2), "{:?}", start.elapsed());
    }

    /// A one-connection HTTP CONNECT proxy; records the CONNECT line.
    fn connect_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://user:p%40ss@{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let (client, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(client.try_clone().unwrap());
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push(line.trim_end().to_string());
            }
            let target = head[0].split_whitespace().nth(1).unwrap().to_string();
            log.lock().unwrap().extend(head);
            let upstream = TcpStream::connect(target).unwrap();
            let mut c = client;
            c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
            let (mut c2, mut u2) = (c.try_clone().unwrap(), upstream.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut u2, &mut c2));
            let mut upstream = upstream;
            let _ = std::io::copy(&mut reader, &mut upstream);
        });
        (url, seen)
    }

    #[test]
    fn proxy_url_is_used_through_http_connect_with_its_credentials() {
        let w = World::new();
        let server = ApiServer::start(&w);
        server.allow(SECRET);
        let (proxy, seen) = connect_proxy();
        let via = Cluster { proxy_url: Some(proxy), ..cluster(&server) };
        assert_eq!(probe(&via, &token(SECRET), BOUND).said, ServerSaid::Status(200));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen[0], format!("CONNECT 127.0.0.1:{} HTTP/1.1", server.port), "{seen:?}");
        // user:p@ss
        assert!(seen.iter().any(|l| l == "Proxy-Authorization: Basic dXNlcjpwQHNz"), "{seen:?}");
        let socks = Cluster { proxy_url: Some("socks5://127.0.0.1:1".into()), ..cluster(&server) };
        let p = probe(&socks, &token(SECRET), BOUND);
        assert_eq!(p.said, ServerSaid::NoAnswer, "socks5 is not supported: the cached credential is served");
        assert!(p.detail.unwrap().contains("not supported"));
    }
}
