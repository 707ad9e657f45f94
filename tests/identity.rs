//! Never the previous identity (issue 18): a cached credential follows
//! identity switches made outside the kubeconfig — gcloud configurations,
//! rewritten AWS profiles, exported credentials, the Azure CLI's default
//! subscription, an oidc-login logout — while ordinary token refreshes by the
//! same identity keep hitting.
//!
//! The gcloud and AWS tests run the real tools (`gcloud` and
//! `gke-gcloud-auth-plugin` offline through `auth/access_token_file`, `aws
//! eks get-token` with fake keys); the Azure and oidc-login ones run small
//! scripts that read and write the same files the real tools do (their
//! sources: Azure/kubelogin `pkg/token`, int128/kubelogin
//! `pkg/cmd/tokencache.go` and `clean.go`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::apiserver::{ApiServer, aws_env, token_sha256};
use crate::kube::{self, ExecUser, find_on_path, write_kubeconfig};
use crate::util::*;

const DEBUG: (&str, &str) = ("KUBE_CREDENTIAL_CACHE_DEBUG", "1");

fn token_of(out: &Output) -> String {
    let v: serde_json::Value = serde_json::from_str(ok(out).trim()).expect("an ExecCredential");
    assert!(v.get("kccIdentity").is_none(), "kcc's identity record reached the client: {v}");
    v["status"]["token"].as_str().expect("status.token").to_owned()
}

/// A real tool from the machine image; the tests fail (not skip) without it.
fn real(name: &str) -> PathBuf {
    find_on_path(name).unwrap_or_else(|| {
        panic!("the real `{name}` is not on PATH; these tests drive it offline (it is part of the machine image with the Google Cloud SDK, or `pip install awscli` for aws)")
    })
}

/// `gke-gcloud-auth-plugin` under its own name in the world's bin, counting its runs.
fn counting_gke_plugin(w: &World) -> PathBuf {
    let real = real("gke-gcloud-auth-plugin");
    let count = w.path("gke-gcloud-auth-plugin.count");
    w.script("gke-gcloud-auth-plugin", &format!("echo run >> '{}'\nexec '{}' \"$@\"", count.display(), real.display()))
}

/// Runs the real gcloud in the world with `CLOUDSDK_CONFIG=cfg`.
fn gcloud(w: &World, cfg: &Path, args: &[&str]) {
    let out = w.cmd(real("gcloud")).args(args).arg("--quiet").env("CLOUDSDK_CONFIG", cfg).output().unwrap();
    assert!(out.status.success(), "gcloud {args:?}: {}", stderr(&out));
}

#[test]
fn gcloud_configuration_switch_from_alice_to_bob_gets_bobs_token_through_kubectl() {
    let w = World::new();
    let plugin = counting_gke_plugin(&w);
    let cfg = w.path("gcloud");
    let (alice, bob) = ("kcc-id-alice-token-51ab", "kcc-id-bob-token-7c2d");
    for (name, token) in [("alice", alice), ("bob", bob)] {
        let file = w.path(&format!("{name}.token"));
        fs::write(&file, token).unwrap();
        gcloud(&w, &cfg, &["config", "configurations", "create", name, "--no-activate"]);
        let file = file.to_str().unwrap();
        gcloud(&w, &cfg, &["config", "set", "auth/access_token_file", file, "--configuration", name]);
    }
    gcloud(&w, &cfg, &["config", "configurations", "activate", "alice"]);

    let server = ApiServer::start(&w);
    server.allow(alice);
    server.allow(bob);
    let user = ExecUser::new("kcc-cache")
        .api("v1beta1")
        .args([plugin.to_str().unwrap()])
        .env("CLOUDSDK_CONFIG", cfg.to_str().unwrap());
    let kubeconfig = w.path("kubeconfig");
    write_kubeconfig(&kubeconfig, &server, &user);
    let last_token = || server.requests().pop().and_then(|r| r.token_sha256).unwrap_or_default();
    let direct = || {
        // What kubectl passes, so the key is the kubeconfig user's.
        w.cmd("kcc-cache")
            .arg(&plugin)
            .env("CLOUDSDK_CONFIG", &cfg)
            .env("KUBERNETES_EXEC_INFO", exec_info("v1beta1", Some(&server.url)))
            .env(DEBUG.0, DEBUG.1)
            .output()
            .unwrap()
    };

    // alice active: alice's token, and the second call is a hit.
    for _ in 0..2 {
        ok(&kube::get_version(&w, &kubeconfig));
        assert_eq!(last_token(), token_sha256(alice));
    }
    assert_eq!(w.runs("gke-gcloud-auth-plugin"), 1);

    // gcloud refreshing alice's tokens (its databases, the token file) and
    // rewriting her configuration unchanged: still alice, still a hit.
    fs::write(cfg.join("access_tokens.db"), "refreshed").unwrap();
    fs::write(cfg.join("credentials.db"), "refreshed").unwrap();
    fs::write(w.path("alice.token"), "kcc-id-alice-token-refreshed").unwrap();
    let config_alice = cfg.join("configurations/config_alice");
    fs::write(&config_alice, fs::read(&config_alice).unwrap()).unwrap();
    let out = direct();
    assert_eq!(token_of(&out), alice);
    assert!(stderr(&out).contains("hit:"), "{}", stderr(&out));
    assert_eq!(w.runs("gke-gcloud-auth-plugin"), 1, "a token refresh by the same identity is no switch");
    fs::write(w.path("alice.token"), alice).unwrap();

    // bob activated with the real gcloud: the next call is bob's.
    gcloud(&w, &cfg, &["config", "configurations", "activate", "bob"]);
    let out = direct();
    assert_eq!(token_of(&out), bob, "never the previous identity");
    let err = stderr(&out);
    assert!(err.contains("identity changed: gcloud configuration alice"), "{err}");
    assert!(err.contains("→ gcloud configuration bob"), "{err}");
    for secret in [alice, bob, "access_token_file ="] {
        assert!(!err.contains(secret), "debug output shows '{secret}': {err}");
    }
    assert_eq!(w.runs("gke-gcloud-auth-plugin"), 2);
    ok(&kube::get_version(&w, &kubeconfig));
    assert_eq!(last_token(), token_sha256(bob), "kubectl now acts as bob");
    assert_eq!(w.runs("gke-gcloud-auth-plugin"), 2, "bob's credential is served from the cache");
    assert_eq!(w.store_keys().len(), 1, "the old entry was replaced, not kept beside");

    // CLOUDSDK_ACTIVE_CONFIG_NAME per shell beats the active_config file.
    let out = w
        .cmd("kcc-cache")
        .arg(&plugin)
        .env("CLOUDSDK_CONFIG", &cfg)
        .env("CLOUDSDK_ACTIVE_CONFIG_NAME", "alice")
        .env("KUBERNETES_EXEC_INFO", exec_info("v1beta1", Some(&server.url)))
        .output()
        .unwrap();
    assert_eq!(token_of(&out), alice);
    assert_eq!(w.runs("gke-gcloud-auth-plugin"), 3);
    let index = w.index_json();
    let row = index["entries"].as_object().unwrap().values().next().unwrap().clone();
    assert_eq!(
        row["identity"]["description"],
        "gcloud configuration alice (access token file ".to_string() + w.path("alice.token").to_str().unwrap() + ")"
    );
}

/// The access key id that signed an `aws eks get-token` token.
fn signing_key(token: &str) -> String {
    let b64 = token.strip_prefix("k8s-aws-v1.").expect("an EKS token");
    let url = String::from_utf8(base64url_decode(b64)).unwrap();
    let at = url.find("X-Amz-Credential=").expect("a presigned URL") + "X-Amz-Credential=".len();
    url[at..].split("%2F").next().unwrap().to_owned()
}

pub fn base64url_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' | b'+' => 62,
        _ => 63,
    };
    let bits: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::new();
    for chunk in bits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &v)| n | (u32::from(v) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn real_aws(w: &World) -> PathBuf {
    let real = real("aws");
    w.script("aws", &format!("echo run >> '{}'\nexec '{}' \"$@\"", w.path("aws.count").display(), real.display()))
}

const GET_TOKEN: [&str; 6] = ["eks", "get-token", "--cluster-name", "test", "--region", "us-east-1"];

/// `aws eks get-token` through kcc with the world's AWS files and `env`.
fn eks(w: &World, aws: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = w.cmd("kcc-cache");
    cmd.arg(aws).args(GET_TOKEN).env(DEBUG.0, DEBUG.1);
    for (name, value) in aws_env(w) {
        if !name.starts_with("AWS_ACCESS_KEY_ID") && name != "AWS_SECRET_ACCESS_KEY" {
            cmd.env(name, value);
        }
    }
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

fn credentials_file(w: &World, profiles: &[(&str, &str)]) {
    let mut text = String::new();
    for (profile, key) in profiles {
        text.push_str(&format!("[{profile}]\naws_access_key_id = {key}\naws_secret_access_key = secret-of-{key}\n\n"));
    }
    fs::create_dir_all(w.path("aws")).unwrap();
    fs::write(w.path("aws/credentials"), text).unwrap();
}

#[test]
fn aws_credentials_rewritten_for_the_same_profile_get_a_token_of_the_new_keys() {
    let w = World::new();
    let aws = real_aws(&w);
    let (one, two) = ("AKIAKCCIDENTITY1ONE", "AKIAKCCIDENTITY2TWO");
    credentials_file(&w, &[("prod", one), ("dev", "AKIAKCCOTHERPROFILE")]);
    let env = [("AWS_PROFILE", "prod")];
    let first = eks(&w, &aws, &env);
    assert_eq!(signing_key(&token_of(&first)), one);
    assert!(stderr(&first).contains("identity: AWS profile prod"), "{}", stderr(&first));

    // Another profile rewritten (aws configure --profile dev): still a hit.
    credentials_file(&w, &[("prod", one), ("dev", "AKIAKCCOTHERPROFIL2")]);
    assert_eq!(signing_key(&token_of(&eks(&w, &aws, &env))), one);
    assert_eq!(w.runs("aws"), 1, "rewriting another profile's section is no switch");

    // saml2aws / aws configure rewrite prod's keys: the next token is signed by them.
    credentials_file(&w, &[("prod", two), ("dev", "AKIAKCCOTHERPROFIL2")]);
    let out = eks(&w, &aws, &env);
    assert_eq!(signing_key(&token_of(&out)), two, "never the previous credentials");
    assert!(stderr(&out).contains("identity changed: AWS profile prod"), "{}", stderr(&out));
    assert_eq!(w.runs("aws"), 2);
    for file in w.files() {
        let text = fs::read_to_string(&file).unwrap_or_default();
        if file.starts_with(w.cache_home.as_path()) {
            assert!(!text.contains("secret-of-"), "{} holds a secret key", file.display());
        }
    }
}

/// A fake `aws` (any tool named aws gets the AWS sources) printing `token`.
fn fake_aws(w: &World, token: &str) -> PathBuf {
    w.plugin("aws", &credential("v1beta1", token, Some(&in_secs(3600))), 0.0)
}

fn aws_files_env(w: &World) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_CONFIG_FILE", w.path("aws/config").display().to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", w.path("aws/credentials").display().to_string()),
        ("AWS_PROFILE", "sso".into()),
    ]
}

fn call(w: &World, plugin: &Path, env: &[(&str, String)]) -> Output {
    let mut cmd = w.cmd("kcc-cache");
    cmd.arg(plugin).args(["eks", "get-token"]).env(DEBUG.0, DEBUG.1);
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

#[test]
fn an_aws_sso_token_refresh_keeps_hitting_and_a_logout_does_not() {
    let w = World::new();
    let plugin = fake_aws(&w, "kcc-id-sso-token-1");
    fs::create_dir_all(w.path("aws")).unwrap();
    fs::write(
        w.path("aws/config"),
        "[profile sso]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\n\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n",
    )
    .unwrap();
    let cache = w.home.join(".aws/sso/cache");
    fs::create_dir_all(&cache).unwrap();
    let token_file = cache.join("2d41f0a1c5b8e3a7f6d9c0b1a2e3f4d5c6b7a8e9.json");
    fs::write(&token_file, r#"{"accessToken":"sso-1","expiresAt":"2030-01-01T00:00:00Z"}"#).unwrap();
    let env = aws_files_env(&w);
    assert_eq!(token_of(&call(&w, &plugin, &env)), "kcc-id-sso-token-1");

    // The CLI refreshes the SSO token: the cache file is rewritten (also by rename).
    fs::write(&token_file, r#"{"accessToken":"sso-2","expiresAt":"2030-01-02T00:00:00Z"}"#).unwrap();
    let tmp = cache.join("tmp");
    fs::write(&tmp, r#"{"accessToken":"sso-3","expiresAt":"2030-01-03T00:00:00Z"}"#).unwrap();
    fs::rename(&tmp, &token_file).unwrap();
    let out = call(&w, &plugin, &env);
    assert_eq!(token_of(&out), "kcc-id-sso-token-1");
    assert_eq!(w.runs("aws"), 1, "an SSO token refresh is no switch: {}", stderr(&out));

    // Another role chosen in the profile: a switch.
    w.set_plugin_output("aws", &credential("v1beta1", "kcc-id-sso-token-2", Some(&in_secs(3600))));
    let config = fs::read_to_string(w.path("aws/config")).unwrap().replace("Admin", "ReadOnly");
    fs::write(w.path("aws/config"), config).unwrap();
    assert_eq!(token_of(&call(&w, &plugin, &env)), "kcc-id-sso-token-2");
    assert_eq!(w.runs("aws"), 2);

    // aws sso logout removes the cache: the logged-out session's token is not served.
    fs::remove_file(&token_file).unwrap();
    w.set_plugin_output("aws", &credential("v1beta1", "kcc-id-sso-token-3", Some(&in_secs(3600))));
    assert_eq!(token_of(&call(&w, &plugin, &env)), "kcc-id-sso-token-3");
    assert_eq!(w.runs("aws"), 3);
}

#[test]
fn a_thousand_hits_with_an_unchanged_identity_run_the_plugin_once() {
    let w = World::new();
    let plugin = fake_aws(&w, "kcc-id-thousand");
    credentials_file(&w, &[("sso", "AKIAKCCTHOUSAND")]);
    let env = aws_files_env(&w);
    assert_eq!(token_of(&call(&w, &plugin, &env)), "kcc-id-thousand");
    let mut cmd = w.cmd("/bin/sh");
    cmd.arg("-c")
        .arg("i=0; while [ $i -lt 1000 ]; do kcc-cache \"$0\" eks get-token > /dev/null || exit 1; i=$((i+1)); done")
        .arg(&plugin);
    for (name, value) in &env {
        cmd.env(name, value);
    }
    ok(&cmd.output().unwrap());
    assert_eq!(w.runs("aws"), 1, "1,000 hits with the same identity: one plugin run");
}

#[test]
fn exported_credentials_switched_in_the_environment_get_a_new_token() {
    let w = World::new();
    let plugin = fake_aws(&w, "kcc-id-role-a");
    let mut env = aws_files_env(&w);
    env.push(("AWS_ACCESS_KEY_ID", "ASIAKCCROLEA".into()));
    env.push(("AWS_SESSION_TOKEN", "kcc-session-token-of-role-a".into()));
    assert_eq!(token_of(&call(&w, &plugin, &env)), "kcc-id-role-a");
    assert_eq!(token_of(&call(&w, &plugin, &env)), "kcc-id-role-a");
    assert_eq!(w.runs("aws"), 1);

    // Only the session token changes (a new session of the same key id).
    w.set_plugin_output("aws", &credential("v1beta1", "kcc-id-role-b", Some(&in_secs(3600))));
    env[4].1 = "kcc-session-token-of-role-b".into();
    let out = call(&w, &plugin, &env);
    assert_eq!(token_of(&out), "kcc-id-role-b");
    assert_eq!(w.runs("aws"), 2);
    for file in w.files().into_iter().filter(|f| f.starts_with(w.cache_home.as_path())) {
        let text = fs::read_to_string(&file).unwrap_or_default();
        assert!(!text.contains("kcc-session-token-of"), "{} holds the session token", file.display());
    }
    assert!(!stderr(&out).contains("kcc-session-token-of"), "{}", stderr(&out));
}

#[test]
fn identity_off_keeps_the_entry_and_identity_files_apply_to_any_plugin() {
    let w = World::new();
    let plugin = fake_aws(&w, "kcc-id-off-1");
    credentials_file(&w, &[("sso", "AKIAKCCOFF1")]);
    let mut env = aws_files_env(&w);
    env.push(("KUBE_CREDENTIAL_CACHE_IDENTITY", "off".into()));
    assert_eq!(token_of(&call(&w, &plugin, &env)), "kcc-id-off-1");
    credentials_file(&w, &[("sso", "AKIAKCCOFF2")]);
    w.set_plugin_output("aws", &credential("v1beta1", "kcc-id-off-2", Some(&in_secs(3600))));
    assert_eq!(token_of(&call(&w, &plugin, &env)), "kcc-id-off-1", "built-in sources off: no check");
    assert_eq!(w.runs("aws"), 1);

    // A plugin kcc knows nothing about, with its identity in a file.
    let who = w.path("idp-user");
    fs::write(&who, "alice\n").unwrap();
    let custom = w.plugin("corp-token", &credential("v1", "kcc-id-custom-alice", Some(&in_secs(3600))), 0.0);
    let files = vec![("KUBE_CREDENTIAL_CACHE_IDENTITY_FILES", format!("{}:/nonexistent/kcc-id", who.display()))];
    assert_eq!(token_of(&call(&w, &custom, &files)), "kcc-id-custom-alice");
    fs::write(&who, "alice\n").unwrap(); // rewritten, same content
    assert_eq!(token_of(&call(&w, &custom, &files)), "kcc-id-custom-alice");
    assert_eq!(w.runs("corp-token"), 1, "a touched file with the same content is the same identity");
    fs::write(&who, "bob\n").unwrap();
    w.set_plugin_output("corp-token", &credential("v1", "kcc-id-custom-bob", Some(&in_secs(3600))));
    let out = call(&w, &custom, &files);
    assert_eq!(token_of(&out), "kcc-id-custom-bob");
    assert!(!stderr(&out).contains("bob\n"), "file content never shown: {}", stderr(&out));
    assert_eq!(w.runs("corp-token"), 2);

    let bad =
        w.cmd("kcc-cache").arg(&custom).env("KUBE_CREDENTIAL_CACHE_IDENTITY_FILES", "relative/file").output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("KUBE_CREDENTIAL_CACHE_IDENTITY_FILES"), "{}", stderr(&bad));
    assert_eq!(w.runs("corp-token"), 2, "a bad setting runs nothing");
}

/// `azureProfile.json` as the Azure CLI writes it (UTF-8 with a byte-order
/// mark), with `default` as the default subscription.
fn azure_profile(dir: &Path, default: &str) {
    let subs: Vec<serde_json::Value> = [("sub-dev-1111", "Dev"), ("sub-prod-2222", "Prod")]
        .iter()
        .map(|(id, name)| {
            serde_json::json!({"id": id, "name": name, "state": "Enabled", "tenantId": "tenant-1",
                "user": {"name": "dev@example.com", "type": "user"}, "isDefault": *id == default,
                "environmentName": "AzureCloud", "homeTenantId": "tenant-1", "managedByTenants": []})
        })
        .collect();
    let json = serde_json::json!({"installationId": "i-1", "subscriptions": subs});
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("azureProfile.json"), format!("\u{feff}{json}")).unwrap();
}

#[test]
fn azure_kubelogin_follows_az_account_set_and_not_token_refreshes() {
    let w = World::new();
    let az = w.path("azure");
    azure_profile(&az, "sub-dev-1111");
    // kubelogin -l azurecli asks az, which answers for its default subscription.
    let plugin = w.script(
        "kubelogin",
        &format!(
            "echo run >> '{count}'\n\
             sub=$(python3 -c 'import json,os,sys; p=json.load(open(os.environ[\"AZURE_CONFIG_DIR\"]+\"/azureProfile.json\", encoding=\"utf-8-sig\")); print([s[\"id\"] for s in p[\"subscriptions\"] if s[\"isDefault\"]][0])')\n\
             printf '{{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"spec\":{{}},\"status\":{{\"token\":\"az-token-%s\",\"expirationTimestamp\":\"{exp}\"}}}}' \"$sub\"",
            count = w.path("kubelogin.count").display(),
            exp = in_secs(3600)
        ),
    );
    let env = [("AZURE_CONFIG_DIR", az.display().to_string())];
    let run = || {
        let mut cmd = w.cmd("kcc-cache");
        cmd.arg(&plugin).args([
            "get-token",
            "--login",
            "azurecli",
            "--server-id",
            "6dae42f8-4368-4678-94ff-3960e28e3630",
        ]);
        cmd.envs(env.iter().map(|(k, v)| (*k, v))).env(DEBUG.0, DEBUG.1).output().unwrap()
    };
    assert_eq!(token_of(&run()), "az-token-sub-dev-1111");
    // az refreshing its tokens rewrites the MSAL cache, not the profile.
    fs::write(az.join("msal_token_cache.json"), "{\"AccessToken\":{}}").unwrap();
    assert_eq!(token_of(&run()), "az-token-sub-dev-1111");
    assert_eq!(w.runs("kubelogin"), 1);

    azure_profile(&az, "sub-prod-2222"); // az account set --subscription Prod
    let out = run();
    assert_eq!(token_of(&out), "az-token-sub-prod-2222", "never the previous subscription");
    let err = stderr(&out);
    assert!(err.contains("identity changed: Azure subscription 'Dev' (sub-dev-1111), user dev@example.com"), "{err}");
    assert!(err.contains("→ Azure subscription 'Prod' (sub-prod-2222)"), "{err}");
    assert_eq!(w.runs("kubelogin"), 2);
}

/// An int128/kubelogin stand-in: `get-token` serves its token cache (one
/// file per issuer/client, named by a SHA-256 as the real one), logging in
/// (a new token) when it is empty; `clean` deletes the cache directory.
fn oidc_login(w: &World) -> PathBuf {
    w.script(
        "kubectl-oidc_login",
        &format!(
            "dir=\"${{KUBECACHEDIR:-$HOME/.kube/cache}}/oidc-login\"\n\
             for a in \"$@\"; do case \"$a\" in --token-cache-dir=*) dir=\"${{a#--token-cache-dir=}}\";; esac; done\n\
             if [ \"$1\" = clean ]; then rm -rf \"$dir\"; exit 0; fi\n\
             echo run >> '{count}'\n\
             f=\"$dir/8f1c2b0e9d4a7c6b5e3f2a1d0c9b8a7f6e5d4c3b2a1908f7e6d5c4b3a2918070\"\n\
             if [ ! -f \"$f\" ]; then mkdir -p \"$dir\"; n=$(wc -l < '{count}'); printf '{{\"id_token\":\"oidc-token-%s\",\"refresh_token\":\"r\"}}' \"$n\" > \"$f\"; fi\n\
             tok=$(sed 's/.*\"id_token\":\"\\([^\"]*\\)\".*/\\1/' \"$f\")\n\
             printf '{{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"spec\":{{}},\"status\":{{\"token\":\"%s\",\"expirationTimestamp\":\"{exp}\"}}}}' \"$tok\"",
            count = w.path("kubectl-oidc_login.count").display(),
            exp = in_secs(3600)
        ),
    )
}

#[test]
fn after_oidc_login_clean_the_next_call_does_not_get_the_old_token() {
    let w = World::new();
    let plugin = oidc_login(&w);
    let kubecache = w.path("kubecache");
    let run = || {
        w.cmd("kcc-cache")
            .arg(&plugin)
            .args(["get-token", "--oidc-issuer-url=https://idp.example.com", "--oidc-client-id=kubernetes"])
            .env("KUBECACHEDIR", &kubecache)
            .env(DEBUG.0, DEBUG.1)
            .output()
            .unwrap()
    };
    assert_eq!(token_of(&run()), "oidc-token-1");
    let second = run();
    assert_eq!(token_of(&second), "oidc-token-1");
    assert_eq!(w.runs("kubectl-oidc_login"), 1, "the cache the first login wrote is no switch: {}", stderr(&second));

    let out = w.cmd(&plugin).arg("clean").env("KUBECACHEDIR", &kubecache).output().unwrap();
    assert!(out.status.success() && !kubecache.join("oidc-login").exists());
    let out = run();
    assert_eq!(token_of(&out), "oidc-token-2", "a logged-out identity's token is never served");
    assert!(stderr(&out).contains("identity changed: oidc-login token cache"), "{}", stderr(&out));
    assert_eq!(token_of(&run()), "oidc-token-2");
    assert_eq!(w.runs("kubectl-oidc_login"), 2);
}

#[test]
fn refresh_ahead_and_healing_keep_working_with_an_identity() {
    // Refresh ahead: the background refresher stores its credential with the
    // identity, and the next call is a hit on it.
    let w = World::new();
    let plugin = fake_aws(&w, "kcc-id-ahead-1");
    w.set_plugin_output("aws", &credential("v1beta1", "kcc-id-ahead-1", Some(&in_secs(120))));
    credentials_file(&w, &[("sso", "AKIAKCCAHEAD")]);
    let mut env = aws_files_env(&w);
    env.push(("KUBE_CREDENTIAL_CACHE_REFRESH_AHEAD", "5m".into()));
    assert_eq!(token_of(&call(&w, &plugin, &env)), "kcc-id-ahead-1");
    w.set_plugin_output("aws", &credential("v1beta1", "kcc-id-ahead-2", Some(&in_secs(3600))));
    assert_eq!(token_of(&call(&w, &plugin, &env)), "kcc-id-ahead-1", "served at once, refreshed behind");
    let start = std::time::Instant::now();
    while w.runs("aws") < 2 || !w.store_text().contains("kcc-id-ahead-2") {
        assert!(start.elapsed().as_secs() < 20, "no background refresh: {}", w.store_text());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(token_of(&call(&w, &plugin, &env)), "kcc-id-ahead-2");
    assert_eq!(w.runs("aws"), 2, "the refreshed entry, stored with its identity, is a hit");
    let index = w.index_json();
    let row = index["entries"].as_object().unwrap().values().next().unwrap().clone();
    assert_eq!(row["identity"]["description"], "AWS profile sso");

    // Healing: kubectl's call after a 401 refreshes, and the next call hits.
    let w = World::new();
    let (old, new) = ("kcc-id-heal-old", "kcc-id-heal-new");
    let plugin = fake_aws(&w, old);
    credentials_file(&w, &[("sso", "AKIAKCCHEAL")]);
    let server = ApiServer::start(&w);
    server.allow(old);
    let mut user = ExecUser::new("kcc-cache").args([plugin.to_str().unwrap(), "eks", "get-token"]).api("v1beta1");
    for (name, value) in aws_files_env(&w) {
        user = user.env(name, value);
    }
    let kubeconfig = w.path("kubeconfig");
    write_kubeconfig(&kubeconfig, &server, &user);
    ok(&kube::get_version(&w, &kubeconfig));
    server.revoke(old);
    server.allow(new);
    w.set_plugin_output("aws", &credential("v1beta1", new, Some(&in_secs(3600))));
    assert!(!kube::get_version(&w, &kubeconfig).status.success());
    assert_eq!(w.runs("aws"), 2, "kubectl's call after the 401 refreshed");
    ok(&kube::get_version(&w, &kubeconfig));
    assert_eq!(w.runs("aws"), 2, "the healed credential is a hit");
    assert_eq!(server.requests().pop().unwrap().token_sha256.as_deref(), Some(token_sha256(new).as_str()));
}

#[test]
fn doctor_shows_each_entrys_identity_and_clear_identity_changed_removes_the_stale_ones() {
    let w = World::new();
    let token = "kcc-id-doctor-token";
    let plugin = fake_aws(&w, token);
    credentials_file(&w, &[("a", "AKIAKCCDOCTORA"), ("b", "AKIAKCCDOCTORB")]);
    let server = ApiServer::start(&w);
    server.allow(token);
    let mut user = ExecUser::new("kcc-cache").args([plugin.to_str().unwrap(), "eks", "get-token"]).api("v1beta1");
    user = user.env("AWS_SHARED_CREDENTIALS_FILE", w.path("aws/credentials").to_str().unwrap());
    let kubeconfig = w.path("kubeconfig");
    write_kubeconfig(&kubeconfig, &server, &user);
    let kubectl = w
        .cmd(kube::kubectl())
        .args(["get", "--raw", "/version", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("AWS_DEFAULT_PROFILE", "a")
        .output()
        .unwrap();
    ok(&kubectl);
    // An entry no kubeconfig user has: kcc cannot tell whether it is current.
    ok(&call(&w, &plugin, &aws_files_env(&w)));
    assert_eq!(w.store_keys().len(), 2);

    let doctor = |profile: &str, json: bool| {
        let mut cmd = w.cmd("kcc");
        cmd.args(["doctor", "--kubeconfig"]).arg(&kubeconfig).env("AWS_DEFAULT_PROFILE", profile);
        if json {
            cmd.arg("--json");
        }
        stdout(&cmd.output().unwrap())
    };
    let text = doctor("a", false);
    assert!(text.contains("identity: AWS profile a (current)"), "{text}");
    assert!(text.contains("identity: AWS profile sso (no kubeconfig user has this key"), "{text}");

    let report: serde_json::Value = serde_json::from_str(&doctor("b", true)).unwrap();
    let entries = report["entries"].as_array().unwrap();
    let stale = entries.iter().find(|e| e["identity"]["recorded"] == "AWS profile a").expect("the kubectl entry");
    assert_eq!(stale["identity"]["matches"], false, "{stale}");
    assert_eq!(stale["identity"]["current"], "AWS profile b");
    assert!(stale["identity"]["sources"].as_array().unwrap().iter().any(|s| s == "env AWS_DEFAULT_PROFILE"));
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["code"] == "identity-changed"), "{findings:?}");
    let text = doctor("b", false);
    assert!(text.contains("next call: miss: identity changed: AWS profile a → AWS profile b"), "{text}");
    assert!(!text.contains("AKIAKCCDOCTOR") && !text.contains("secret-of-"), "{text}");

    let clear = |profile: &str| {
        let out = w
            .cmd("kcc")
            .args(["clear", "--identity-changed"])
            .env("KUBECONFIG", &kubeconfig)
            .env("AWS_DEFAULT_PROFILE", profile)
            .output()
            .unwrap();
        ok(&out)
    };
    assert!(clear("a").contains("no cached entry matched"), "the current identity's entry stays");
    assert_eq!(w.store_keys().len(), 2);
    let out = clear("b");
    assert!(out.contains("removed 1 of 2"), "{out}");
    let left = w.store_keys();
    assert_eq!(left.len(), 1, "the entry no kubeconfig user has is kept: {left:?}");
}
