//! End to end with the real parts: real kubectl, a local TLS API server that
//! checks bearer tokens ([`ApiServer`]), kcc-cache in the kubeconfig's exec
//! section, and the real `aws eks get-token` (offline, with AWS's example
//! key). The server's request log shows what kubectl really sent; counting
//! wrappers show how often the plugin really ran.

use std::path::PathBuf;

use crate::apiserver::{self, AWS_ACCESS_KEY_ID, AWS_CLUSTER, ApiServer, aws_env, token_sha256};
use crate::kube::{self, ExecUser, find_on_path, write_kubeconfig};
use crate::util::*;

/// What the test server puts in its `/version` answer.
const SERVER_MARK: &str = "kcc-test-apiserver";

/// Runs `kubectl get --raw /version` and asserts that the server answered.
#[track_caller]
fn version_ok(w: &World, kubeconfig: &std::path::Path) -> String {
    let out = ok(&kube::get_version(w, kubeconfig));
    assert!(out.contains(SERVER_MARK), "kubectl printed something else than the test server's version: {out}");
    out
}

/// The real `aws` CLI; the e2e tests fail (not skip) without it.
fn real_aws() -> PathBuf {
    find_on_path("aws").unwrap_or_else(|| {
        panic!(
            "the real `aws` CLI is not on PATH; the end-to-end tests run `aws eks get-token` offline. \
             Install it with `pip install awscli` (or apt-get install awscli) and make sure `aws` is on PATH"
        )
    })
}

/// Puts an `aws` into the world's bin/ (first on PATH) that counts its runs
/// in `aws.count` (see [`World::runs`]) and then runs the real one.
fn counting_aws(w: &World) -> PathBuf {
    let real = real_aws();
    w.script("aws", &format!("echo run >> '{}'\nexec '{}' \"$@\"", w.path("aws.count").display(), real.display()))
}

const GET_TOKEN: [&str; 7] = ["aws", "eks", "get-token", "--cluster-name", AWS_CLUSTER, "--region", "us-east-1"];

/// The token of an ExecCredential printed on stdout.
fn token_of(exec_credential: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(exec_credential.trim()).expect("an ExecCredential");
    v["status"]["token"].as_str().expect("status.token").to_owned()
}

#[test]
fn kubectl_without_kcc_runs_the_plugin_on_every_call() {
    // The baseline that makes the cached tests meaningful: the counter sees
    // every run kubectl makes.
    let w = World::new();
    let server = ApiServer::start(&w);
    let token = "kcc-e2e-baseline-token";
    server.allow(token);
    let plugin = w.plugin("plug", &credential("v1", token, Some(&in_secs(3600))), 0.0);
    let kubeconfig = w.path("kubeconfig");
    write_kubeconfig(&kubeconfig, &server, &ExecUser::new(plugin.display().to_string()));
    for _ in 0..3 {
        version_ok(&w, &kubeconfig);
    }
    assert_eq!(w.runs("plug"), 3);
    assert_eq!(server.accepted().len(), 3);
}

#[test]
fn kubectl_through_kcc_cache_runs_the_plugin_once() {
    let w = World::new();
    let server = ApiServer::start(&w);
    let token = "kcc-e2e-cached-token-5b1e";
    server.allow(token);
    let plugin = w.plugin("plug", &credential("v1", token, Some(&in_secs(3600))), 0.0);
    let kubeconfig = w.path("kubeconfig");
    write_kubeconfig(&kubeconfig, &server, &ExecUser::new("kcc-cache").args([plugin.to_str().unwrap(), "--some-flag"]));

    for _ in 0..5 {
        version_ok(&w, &kubeconfig);
    }
    assert_eq!(w.runs("plug"), 1, "kcc-cache must serve calls 2-5 from the cache");
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 5, "requests: {:?}", server.requests());
    assert!(accepted.iter().all(|r| r.token_sha256.as_deref() == Some(&token_sha256(token)) && r.path == "/version"));
    assert_eq!(server.request_count(), 5, "no other requests: {:?}", server.requests());
}

#[test]
fn parallel_kubectl_calls_through_kcc_cache_run_the_plugin_once() {
    let w = World::new();
    let server = ApiServer::start(&w);
    let token = "kcc-e2e-parallel-token-81aa";
    server.allow(token);
    // Slow enough that every kubectl asks while the first run is in flight.
    let plugin = w.plugin("slow", &credential("v1", token, Some(&in_secs(3600))), 0.5);
    let kubeconfig = w.path("kubeconfig");
    write_kubeconfig(&kubeconfig, &server, &ExecUser::new("kcc-cache").args([plugin.to_str().unwrap()]));

    let children: Vec<_> = (0..6)
        .map(|_| {
            w.cmd(kube::kubectl())
                .args(["get", "--raw", "/version", "--request-timeout=20s", "--kubeconfig"])
                .arg(&kubeconfig)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start kubectl")
        })
        .collect();
    for child in children {
        let out = ok(&child.wait_with_output().unwrap());
        assert!(out.contains(SERVER_MARK), "{out}");
    }
    assert_eq!(w.runs("slow"), 1, "concurrent kubectl calls must share one plugin run");
    assert_eq!(server.accepted().len(), 6, "{:?}", server.requests());
}

#[test]
fn kubectl_keeps_failing_while_the_plugin_prints_a_revoked_token() {
    // Healing (tests/heal.rs) refreshes after a rejection, but it cannot
    // invent a valid token: when the plugin keeps printing the revoked one,
    // every call fails, and the forced refreshes are bounded (one per key per
    // 30 s), so the plugin is not run on every call.
    let w = World::new();
    let server = ApiServer::start(&w);
    let token = "kcc-e2e-revoked-token-c40d";
    server.allow(token);
    let plugin = w.plugin("plug", &credential("v1", token, Some(&in_secs(3600))), 0.0);
    let kubeconfig = w.path("kubeconfig");
    write_kubeconfig(&kubeconfig, &server, &ExecUser::new("kcc-cache").args([plugin.to_str().unwrap()]));
    version_ok(&w, &kubeconfig);

    server.revoke(token);
    for _ in 0..3 {
        let out = kube::get_version(&w, &kubeconfig);
        assert!(!out.status.success(), "kubectl must fail with a revoked token: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains("Unauthorized") || err.contains("must be logged in"), "{err}");
        assert!(!stdout(&out).contains(SERVER_MARK));
    }
    assert_eq!(w.runs("plug"), 2, "one forced refresh after the first rejection, then the 30 s bound holds");
    let requests = server.requests();
    let rejected: Vec<_> = requests.iter().filter(|r| r.status == 401).collect();
    assert!(!rejected.is_empty(), "{requests:?}");
    assert!(rejected.iter().all(|r| r.token_sha256.as_deref() == Some(&token_sha256(token))), "{requests:?}");
}

#[test]
fn kubectl_with_real_aws_eks_get_token_through_kcc_runs_aws_once() {
    let w = World::new();
    counting_aws(&w);
    let server = ApiServer::start(&w);
    let mut user = ExecUser::new("kcc-cache").api("v1beta1").args(GET_TOKEN);
    for (name, value) in aws_env(&w) {
        user = user.env(name, value);
    }
    let kubeconfig = w.path("kubeconfig");
    write_kubeconfig(&kubeconfig, &server, &user);

    for _ in 0..4 {
        version_ok(&w, &kubeconfig);
    }
    assert_eq!(w.runs("aws"), 1, "aws must run once; kcc-cache serves the rest");
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 4, "requests: {:?}", server.requests());
    assert!(
        accepted.iter().all(|r| r.auth.as_deref() == Some("aws")),
        "the server must have accepted a real aws token, not an allow-listed one: {accepted:?}"
    );
    let first = accepted[0].token_sha256.clone();
    assert!(accepted.iter().all(|r| r.token_sha256 == first), "one cached token for every call: {accepted:?}");
}

#[test]
fn kcc_cache_serves_aws_eks_get_token_from_the_cache() {
    let w = World::new();
    counting_aws(&w);
    let run = || {
        let mut cmd = w.cmd("kcc-cache");
        cmd.args(GET_TOKEN).envs(aws_env(&w));
        ok(&cmd.output().expect("run kcc-cache"))
    };
    let first = run();
    assert_eq!(w.runs("aws"), 1);
    let token = token_of(&first);
    assert!(token.starts_with("k8s-aws-v1."), "not an EKS token: {token}");
    let second = run();
    assert_eq!(w.runs("aws"), 1, "the second call must be served without running aws");
    assert_eq!(token_of(&second), token);
    assert!(w.store_text().contains(&token), "the token is in the store");
}

#[test]
fn the_test_server_rejects_aws_tokens_signed_with_another_secret() {
    // Proves the server checks real aws tokens instead of accepting anything
    // that looks like one.
    let w = World::new();
    counting_aws(&w);
    let server = ApiServer::start(&w);
    let mut user = ExecUser::new("aws").api("v1beta1").args(&GET_TOKEN[1..]);
    for (name, value) in aws_env(&w) {
        let value = if name == "AWS_SECRET_ACCESS_KEY" { "another-secret".into() } else { value };
        user = user.env(name, value);
    }
    let kubeconfig = w.path("kubeconfig");
    write_kubeconfig(&kubeconfig, &server, &user);
    let out = kube::get_version(&w, &kubeconfig);
    assert!(!out.status.success(), "{}", stdout(&out));
    let requests = server.requests();
    assert!(!requests.is_empty() && requests.iter().all(|r| r.status == 401), "{requests:?}");
    assert!(requests[0].why.as_deref().unwrap_or_default().contains("signature"), "{requests:?}");
}

#[test]
fn the_test_server_rejects_forged_aws_tokens() {
    let w = World::new();
    let server = ApiServer::start(&w);
    let plugin = w.plugin("forger", "", 0.0);
    let kubeconfig = w.path("kubeconfig");
    write_kubeconfig(&kubeconfig, &server, &ExecUser::new(plugin.display().to_string()));
    let now = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let url = |key: &str, date: &str, headers: &str, signature: &str| {
        format!(
            "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15\
             &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={key}%2F20250101%2Fus-east-1%2Fsts%2Faws4_request\
             &X-Amz-Date={date}&X-Amz-Expires=60&X-Amz-SignedHeaders={headers}&X-Amz-Signature={signature}"
        )
    };
    let sig = "e46f0b19e4546cbdc89d5270a2d3becf74748a4894993e3c79ac14d07f10dca1";
    // Each forgery, and the reason the server must give for rejecting it.
    let forged = [
        ("access key id", url("AKIAOTHERKEYEXAMPLE1", &now, "host%3Bx-k8s-aws-id", sig)),
        ("15 minutes", url(AWS_ACCESS_KEY_ID, "20200101T000000Z", "host%3Bx-k8s-aws-id", sig)),
        ("x-k8s-aws-id is not a signed header", url(AWS_ACCESS_KEY_ID, &now, "host", sig)),
        ("no signature", url(AWS_ACCESS_KEY_ID, &now, "host%3Bx-k8s-aws-id", "")),
        ("signature mismatch", url(AWS_ACCESS_KEY_ID, &now, "host%3Bx-k8s-aws-id", sig)),
    ];
    for (why, url) in &forged {
        let token = format!("k8s-aws-v1.{}", apiserver::base64url(url.as_bytes()));
        w.set_plugin_output("forger", &credential("v1", &token, Some(&in_secs(600))));
        let before = server.request_count();
        let out = kube::get_version(&w, &kubeconfig);
        assert!(!out.status.success(), "a token with '{why}' was accepted");
        let requests = server.requests();
        let new = &requests[before..];
        assert!(!new.is_empty(), "kubectl sent no request: {}", stderr(&out));
        for r in new {
            assert_eq!(r.status, 401, "{r:?}");
            assert_eq!(r.token_sha256.as_deref(), Some(token_sha256(&token).as_str()), "{r:?}");
            assert!(r.why.as_deref().unwrap_or_default().contains(why), "expected '{why}': {r:?}");
        }
    }
}

#[test]
fn debug_output_through_kubectl_never_contains_the_token() {
    let w = World::new();
    let server = ApiServer::start(&w);
    server.allow(SECRET);
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let kubeconfig = w.path("kubeconfig");
    let user = ExecUser::new("kcc-cache").args([plugin.to_str().unwrap()]).env("KUBE_CREDENTIAL_CACHE_DEBUG", "1");
    write_kubeconfig(&kubeconfig, &server, &user);

    let miss = kube::get_version(&w, &kubeconfig);
    let hit = kube::get_version(&w, &kubeconfig);
    for (what, out, expect) in [("miss", &miss, "miss: "), ("hit", &hit, "hit: ")] {
        ok(out);
        let err = stderr(out);
        assert!(
            err.contains("kcc: debug:") && err.contains(expect),
            "kubectl shows kcc's debug output ({what}): {err}"
        );
        assert!(!err.contains(SECRET), "the token leaked into debug output ({what}): {err}");
    }
    assert_eq!(w.runs("plug"), 1);
}

#[test]
fn the_test_server_stops_when_dropped() {
    let w = World::new();
    let server = ApiServer::start(&w);
    let port = server.port;
    assert!(apiserver::listening(port));
    drop(server);
    assert!(!apiserver::listening(port), "the server still listens on {port} after drop");
}

#[test]
fn kcc_inject_in_place_then_kubectl_runs_real_aws_once() {
    // The user's journey: a kubeconfig that runs `aws eks get-token`
    // directly, `kcc-injector -i` once, then kubectl as usual.
    let w = World::new();
    counting_aws(&w);
    let server = ApiServer::start(&w);
    let mut user = ExecUser::new("aws").api("v1beta1").args(&GET_TOKEN[1..]);
    for (name, value) in aws_env(&w) {
        user = user.env(name, value);
    }
    let kubeconfig = w.path("kubeconfig");
    write_kubeconfig(&kubeconfig, &server, &user);

    version_ok(&w, &kubeconfig);
    assert_eq!(w.runs("aws"), 1, "before inject kubectl runs aws itself");

    ok(&w.cmd("kcc-injector").arg("-i").arg(&kubeconfig).output().expect("run kcc-injector"));
    let injected = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(injected.contains("command: kcc-cache"), "{injected}");
    assert!(injected.contains("KUBE_CREDENTIAL_CACHE_USER"), "{injected}");

    for _ in 0..3 {
        version_ok(&w, &kubeconfig);
    }
    assert_eq!(w.runs("aws"), 2, "after inject aws runs once for three kubectl calls");
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 4, "requests: {:?}", server.requests());
    assert!(accepted.iter().all(|r| r.auth.as_deref() == Some("aws")), "{accepted:?}");
    let through_kcc = &accepted[1..];
    assert!(
        through_kcc.iter().all(|r| r.token_sha256 == through_kcc[0].token_sha256),
        "the three calls after inject share one cached token: {accepted:?}"
    );

    // Restore: kubectl runs aws directly again, on every call.
    ok(&w.cmd("kcc").args(["inject", "-i", "-r"]).arg(&kubeconfig).output().expect("run kcc inject -r"));
    let restored = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(restored.contains("command: aws") && !restored.contains("kcc-cache"), "{restored}");
    version_ok(&w, &kubeconfig);
    version_ok(&w, &kubeconfig);
    assert_eq!(w.runs("aws"), 4, "restored users run aws on every call");
}
