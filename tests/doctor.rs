//! `kcc doctor`: reports on real set-ups (store filled by `kcc-cache`,
//! kubeconfigs from real tools), exit codes, the JSON schema, and that no
//! secret is ever printed.

use std::fs;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

use crate::util::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubeconfig").join(name)
}

const PROD_USER: &str = "arn:aws:eks:us-west-2:111122223333:cluster/prod";
const PROD_SERVER: &str = "https://A1B2C3D4E5F60718293A4B5C6D7E8F90.gr7.us-west-2.eks.amazonaws.com";

/// A fake `aws` on PATH, and the call kubectl makes for the prod user of
/// `go-kcc-injected.yaml` (same args, exec env and KUBERNETES_EXEC_INFO).
fn cache_prod_like_kubectl(w: &World) {
    w.plugin("aws", &credential("v1beta1", SECRET, Some(&in_secs(3600))), 0.0);
    let out = w
        .cmd("kcc-cache")
        .args(["aws", "--region", "us-west-2", "eks", "get-token", "--cluster-name", "prod", "--output", "json"])
        .env("AWS_PROFILE", "prod-admin")
        .env("KUBE_CREDENTIAL_CACHE_USER", PROD_USER)
        .env("KUBERNETES_EXEC_INFO", exec_info("v1beta1", Some(PROD_SERVER)))
        .output()
        .unwrap();
    ok(&out);
}

fn doctor(w: &World, args: &[&str]) -> Output {
    let out = w.cmd("kcc").arg("doctor").args(args).output().unwrap();
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains(SECRET), "doctor printed the secret:\n{all}");
    // Nothing from a kubeconfig's credentials either. An exec env value is
    // printed only as the identity it names (issue 18: "AWS profile
    // prod-admin" is the words a user recognises; a profile name is no secret).
    // The identity's sources name the profile's section of the AWS files too.
    let outside_identity = ["AWS profile prod-admin", "ini:profile prod-admin", "ini:prod-admin"]
        .iter()
        .fold(all.clone(), |text, named| text.replace(named, ""));
    for never in ["eyJhbGciOiJSUzI1NiIsImtpZCI6ImNpIn0", "LS0tLS1CRUdJTi", "prod-admin"] {
        assert!(!outside_identity.contains(never), "doctor printed '{never}':\n{all}");
    }
    out
}

fn doctor_json(w: &World, args: &[&str]) -> (Value, Option<i32>) {
    let out = doctor(w, &[args, &["--json"]].concat());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)));
    (v, out.status.code())
}

fn codes(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["severity"].as_str().unwrap().to_string(), f["code"].as_str().unwrap().to_string()))
        .collect()
}

fn has(report: &Value, severity: &str, code: &str) -> bool {
    codes(report).iter().any(|(s, c)| s == severity && c == code)
}

#[test]
fn healthy_setup_exits_0_and_computes_the_key_kcc_cache_used() {
    let w = World::new();
    cache_prod_like_kubectl(&w);
    let stored = w.store_keys();
    assert_eq!(stored.len(), 1);
    let kubeconfig = fixture("go-kcc-injected.yaml");
    let out = doctor(&w, &["--kubeconfig", kubeconfig.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("healthy: no problems found"), "{text}");
    assert!(text.contains(&format!("key  {}", stored[0])), "doctor must show the key kcc-cache stored:\n{text}");
    assert!(text.contains("next call: hit: expires"), "{text}");
    assert!(text.contains("wrapped by kcc-cache"), "{text}");
    assert!(text.contains("KUBE_CREDENTIAL_CACHE_REFRESH_MARGIN"), "{text}");
    assert!(text.contains("mode 0600"), "{text}");
}

#[test]
fn invalid_settings_are_problems_naming_the_variable_and_doctor_carries_on() {
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_REFRESH_MARGIN", "30");
    w.set_env("KUBE_CREDENTIAL_CACHE_BACKEND", "disk");
    w.set_env("KUBE_CREDENTIAL_CACHE_REFRESH_MARGN", "1m");
    let out = doctor(&w, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("invalid KUBE_CREDENTIAL_CACHE_REFRESH_MARGIN='30'"), "{text}");
    assert!(text.contains("invalid KUBE_CREDENTIAL_CACHE_BACKEND='disk'"), "{text}");
    assert!(text.contains("KUBE_CREDENTIAL_CACHE_REFRESH_MARGN is set but is not a kcc setting"), "{text}");
    assert!(text.contains("cached entries"), "doctor must go on after an invalid setting:\n{text}");
    let (json, code) = doctor_json(&w, &[]);
    assert_eq!(code, Some(1));
    let margin =
        json["settings"].as_array().unwrap().iter().find(|s| s["name"] == "KUBE_CREDENTIAL_CACHE_REFRESH_MARGIN");
    assert_eq!(margin.unwrap()["valid"], false);
    assert_eq!(margin.unwrap()["value"], "30");
    assert!(has(&json, "problem", "invalid-setting"));
    assert!(has(&json, "warning", "unknown-setting"));
}

#[test]
fn wrapped_and_unwrapped_users_from_merged_kubeconfigs() {
    let w = World::new();
    cache_prod_like_kubectl(&w);
    let list =
        format!("{}:{}", fixture("go-kcc-injected.yaml").display(), fixture("eks-update-kubeconfig.yaml").display());
    let out =
        w.cmd("kcc").args(["doctor", "--json", "--context", "staging"]).env("KUBECONFIG", &list).output().unwrap();
    assert!(!stdout(&out).contains(SECRET));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let k = &json["kubeconfig"];
    assert_eq!(k["files"].as_array().unwrap().len(), 2);
    assert_eq!(k["files"][0]["source"], "env");
    assert_eq!(k["currentContext"], PROD_USER);
    assert_eq!(k["context"], "staging");
    let users = k["users"].as_array().unwrap();
    assert_eq!(users.len(), 2, "the first file's prod user hides the second's: {users:?}");
    let prod = &users[0];
    assert_eq!(prod["name"], PROD_USER);
    assert_eq!(prod["wrapped"], true);
    assert_eq!(prod["wrapper"], "kcc-cache");
    assert_eq!(prod["plugin"], "aws");
    assert_eq!(prod["cacheUser"], PROD_USER);
    assert_eq!(prod["provideClusterInfo"], true);
    assert_eq!(prod["contexts"][0]["selected"], false);
    assert_eq!(prod["contexts"][0]["key"], w.store_keys()[0].as_str());
    assert_eq!(prod["contexts"][0]["next"]["kind"], "hit");
    let staging = &users[1];
    assert_eq!(staging["wrapped"], false);
    assert_eq!(staging["wrapper"], Value::Null);
    assert_eq!(staging["contexts"][0]["name"], "staging");
    assert_eq!(staging["contexts"][0]["selected"], true);
    assert_eq!(staging["contexts"][0]["key"], Value::Null);
}

#[test]
fn json_report_follows_the_documented_schema() {
    let mut w = World::new();
    // `auto` where keyctl is denied (as in a Docker container): the file.
    w.set_env("KUBE_CREDENTIAL_CACHE_BACKEND", "auto");
    w.deny_keyctl(libc::EPERM);
    cache_prod_like_kubectl(&w);
    let (json, code) = doctor_json(&w, &["--kubeconfig", fixture("go-kcc-injected.yaml").to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(json["schemaVersion"], 1);
    assert!(json["version"].as_str().unwrap().starts_with("kcc "));
    assert_eq!(json["healthy"], true);
    assert_eq!(
        json["settings"].as_array().unwrap().len(),
        kcc::config::SETTINGS.len(),
        "one row per KUBE_CREDENTIAL_CACHE_* setting"
    );
    assert_eq!(json["backend"]["setting"], "auto");
    assert_eq!(json["backend"]["chosen"], "file");
    assert_eq!(
        json["backend"]["probe"]["reachable"], false,
        "no session bus in the test world: the probe finds no keyring"
    );
    assert_eq!(json["backend"]["kernel"]["usable"], false);
    assert!(json["backend"]["kernel"]["reason"].as_str().unwrap().contains("EPERM"), "{}", json["backend"]);
    let store = &json["store"];
    assert_eq!(store["path"], w.store_file().to_str().unwrap());
    assert_eq!(store["mode"], "0600");
    assert_eq!(store["ownedByYou"], true);
    assert_eq!(store["dir"]["mode"], "0700");
    assert_eq!(store["entries"], 1);
    let entry = &json["entries"][0];
    assert_eq!(entry["format"], "kcc");
    assert_eq!(entry["backend"], "file");
    assert_eq!(entry["user"], PROD_USER);
    assert_eq!(entry["server"], PROD_SERVER);
    assert_eq!(entry["apiVersion"], "client.authentication.k8s.io/v1beta1");
    assert_eq!(entry["expirySource"], "reported");
    assert!(entry["secondsLeft"].as_i64().unwrap() > 3500);
    assert_eq!(entry["next"]["kind"], "hit");
    assert!(entry["next"]["text"].as_str().unwrap().starts_with("hit: expires"));
    assert_eq!(entry["background"], Value::Null, "no refresh ahead ran");
    assert_eq!(entry["forcedRefresh"], Value::Null, "no forced refresh ran");
    assert_eq!(json["findings"].as_array().unwrap().len(), 0);
}

#[cfg(unix)]
#[test]
fn store_readable_by_others_is_a_problem() {
    let w = World::new();
    cache_prod_like_kubectl(&w);
    fs::set_permissions(w.store_file(), fs::Permissions::from_mode(0o644)).unwrap();
    let (json, code) = doctor_json(&w, &[]);
    assert_eq!(code, Some(1));
    assert!(has(&json, "problem", "store-permissions"), "{:?}", codes(&json));
    let fix = json["findings"].as_array().unwrap().iter().find(|f| f["code"] == "store-permissions").unwrap();
    assert!(fix["fix"].as_str().unwrap().starts_with("chmod 600"));
}

#[test]
fn default_ttl_entries_and_go_leftovers_are_warnings() {
    let w = World::new();
    let plugin = w.plugin("passman", &credential("v1", SECRET, None), 0.0);
    ok(&w.cmd("kcc-cache").arg(&plugin).output().unwrap());
    let mut store = w.store_json();
    let go_cred: Value = serde_json::from_str(&credential("v1", SECRET, Some(&in_secs(3600)))).unwrap();
    store["credentials"].as_object_mut().unwrap().insert(r#"user="dave" server="https://a""#.into(), go_cred);
    fs::write(w.store_file(), serde_json::to_string(&store).unwrap()).unwrap();
    let (json, code) = doctor_json(&w, &[]);
    assert_eq!(code, Some(0), "warnings alone keep doctor healthy: {:?}", codes(&json));
    assert!(has(&json, "warning", "default-ttl"));
    assert!(has(&json, "warning", "go-leftovers"));
    let entries = json["entries"].as_array().unwrap();
    let go = entries.iter().find(|e| e["format"] == "go").unwrap();
    assert_eq!(go["user"], "dave");
    assert_eq!(go["next"]["kind"], "never-served");
    let ttl = entries.iter().find(|e| e["format"] == "kcc").unwrap();
    assert_eq!(ttl["expirySource"], "default-ttl");
    assert_eq!(ttl["next"]["defaultTtl"], true);
    assert!(ttl["next"]["text"].as_str().unwrap().contains("default TTL"), "{ttl}");
}

#[test]
fn pitfalls_in_a_kubeconfig_are_found() {
    let w = World::new();
    w.plugin("aws", &credential("v1", SECRET, None), 0.0);
    let kubeconfig = w.path("pitfalls.yaml");
    fs::write(
        &kubeconfig,
        r#"apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://c"}
contexts:
- {name: a, context: {cluster: c, user: a}}
- {name: b, context: {cluster: c, user: b}}
- {name: gone, context: {cluster: c, user: gone}}
- {name: rel, context: {cluster: c, user: rel}}
- {name: tty, context: {cluster: c, user: tty}}
current-context: a
users:
- name: a
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: kcc-cache, args: [aws, eks], env: [{name: AZURE_CONFIG_DIR, value: /a}]}
- name: b
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: kcc-cache, args: [aws, eks], env: [{name: AZURE_CONFIG_DIR, value: /b}]}
- name: gone
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: kcc-cache, args: [no-such-plugin-xyz]}
- name: rel
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: kcc-cache, args: [./bin/get-token]}
- name: tty
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: kcc, args: [cache, aws, tty], interactiveMode: Always}
"#,
    )
    .unwrap();
    let kuberc = w.path("kuberc");
    fs::write(
        &kuberc,
        "apiVersion: kubectl.config.k8s.io/v1beta1\nkind: Preference\ncredentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n- name: aws\n",
    )
    .unwrap();
    let out = w
        .cmd("kcc")
        .args(["doctor", "--json", "--kubeconfig", kubeconfig.to_str().unwrap()])
        .env("KUBERC", &kuberc)
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    for (severity, code) in [
        ("problem", "shared-key"),
        ("problem", "plugin-not-found"),
        ("problem", "relative-plugin-path"),
        ("warning", "interactive-always"),
        ("problem", "kuberc-blocks-kcc"),
    ] {
        assert!(has(&json, severity, code), "missing {severity} {code}: {:?}", codes(&json));
    }
    let shared = json["findings"].as_array().unwrap().iter().find(|f| f["code"] == "shared-key").unwrap();
    assert!(shared["message"].as_str().unwrap().contains("AZURE_CONFIG_DIR"), "{shared}");
    let blocked = json["findings"].as_array().unwrap().iter().any(|f| {
        f["code"] == "kuberc-blocks-kcc" && f["message"].as_str().unwrap().contains("allows 'aws' but not 'kcc-cache'")
    });
    assert!(blocked, "{:?}", json["findings"]);
    assert_eq!(json["kubeconfig"]["users"][4]["wrapper"], "kcc cache");

    // The same in text: problems listed at the end, each with a fix.
    let text = stdout(&doctor(&w, &["--kubeconfig", kubeconfig.to_str().unwrap()]));
    let problems = text.split("\nproblems\n").nth(1).expect("a problems section");
    assert!(problems.contains("fix: "), "{text}");
}

#[test]
fn wrapper_missing_from_path_is_a_problem() {
    let w = World::new();
    w.plugin("aws", &credential("v1", SECRET, None), 0.0);
    fs::remove_file(w.bin.join("kcc-cache")).unwrap();
    let (json, code) = doctor_json(&w, &["--kubeconfig", fixture("go-kcc-injected.yaml").to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(has(&json, "problem", "wrapper-not-found"), "{:?}", codes(&json));
}

#[test]
fn kubeconfig_with_static_credentials_never_leaks_them() {
    let w = World::new();
    let out = doctor(&w, &["--kubeconfig", fixture("oidc-login-and-static.yaml").to_str().unwrap()]);
    let text = stdout(&out);
    assert!(text.contains("user 'oidc'"), "{text}");
    assert!(text.contains("not wrapped"), "{text}");
    let (json, _) = doctor_json(&w, &["--kubeconfig", fixture("aks-kubelogin.yaml").to_str().unwrap()]);
    assert!(json["kubeconfig"]["users"].is_array());
}

#[test]
fn equals_form_options_are_accepted() {
    // Users type `--kubeconfig=~/.kube/dev`; argh alone knows only the split form.
    let w = World::new();
    let file = fixture("go-kcc-injected.yaml");
    let (json, code) =
        doctor_json(&w, &[&format!("--kubeconfig={}", file.display()), &format!("--context={PROD_USER}")]);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["kubeconfig"]["files"][0]["path"], file.to_str().unwrap(), "{json}");
    assert_eq!(json["kubeconfig"]["files"][0]["source"], "flag");
    assert_eq!(json["kubeconfig"]["context"], PROD_USER);
}

#[test]
fn exec_users_kcc_does_not_wrap_are_a_warning_naming_the_inject_that_fixes_it() {
    let w = World::new();
    let plain = fixture("eks-update-kubeconfig.yaml");
    let shown = plain.display().to_string();
    let (json, code) = doctor_json(&w, &["--kubeconfig", &shown]);
    assert_eq!(code, Some(0), "a warning, not a problem: {json}");
    let finding = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "not-wrapped")
        .unwrap_or_else(|| panic!("no not-wrapped finding: {json}"));
    assert_eq!(finding["severity"], "warning");
    assert_eq!(finding["fix"], format!("kcc inject -i '{shown}'"));
    let text = stdout(&doctor(&w, &["--kubeconfig", &shown]));
    assert!(!text.contains("healthy: no problems found"), "{text}");
    assert!(text.contains(&format!("kcc inject -i '{shown}'")), "{text}");
    // Wrapped users are not named.
    let (json, _) = doctor_json(&w, &["--kubeconfig", fixture("go-kcc-injected.yaml").to_str().unwrap()]);
    assert!(!has(&json, "warning", "not-wrapped"), "{json}");
}

#[test]
fn doctor_says_what_healing_and_refresh_ahead_do_on_this_platform() {
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_REFRESH_AHEAD", "10m");
    let (json, _) = doctor_json(&w, &[]);
    let p = &json["platform"];
    assert_eq!(p["os"], std::env::consts::OS);
    assert_eq!(p["healing"], cfg!(target_os = "linux"), "{p}");
    assert!(p["refreshAheadText"].as_str().unwrap().starts_with("on: a hit within 10m"), "{p}");
    let text = stdout(&doctor(&w, &[]));
    assert!(text.contains(&format!("platform ({})", std::env::consts::OS)), "{text}");
}

/// Issue 20.2: kernel keys whose index is gone (the index file was deleted)
/// are counted, marked, and doctor says how to remove them; a warning, so
/// doctor still exits 0.
#[cfg(target_os = "linux")]
#[test]
fn doctor_counts_orphaned_kernel_keys_and_says_how_to_remove_them() {
    if !crate::kernel::kernel_usable() {
        return;
    }
    let w = crate::kernel::kernel_world();
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    ok(&w.cache(&[plugin.to_str().unwrap()]));
    let clean = doctor(&w, &[]);
    assert!(!stdout(&clean).contains("without an index entry"), "{}", stdout(&clean));
    fs::remove_file(w.index_file()).unwrap();

    let out = doctor(&w, &[]);
    assert_eq!(out.status.code(), Some(0), "an orphan is a warning, not a problem: {}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("1 kcc entry in the kernel keyring without an index entry"), "{text}");
    assert!(text.contains("'kcc clear --all' removes them"), "{text}");
    assert!(text.contains("(not in the index: an orphan, see warnings)"), "{text}");
    let (json, _) = doctor_json(&w, &[]);
    assert!(codes(&json).contains(&("warning".into(), "orphaned-entries".into())), "{json}");
    assert_eq!(json["entries"][0]["orphaned"], true);
    assert_eq!(json["entries"][0]["backend"], "kernel");
    ok(&w.cmd("kcc").args(["clear", "--all"]).output().unwrap());
    assert!(!stdout(&doctor(&w, &[])).contains("without an index entry"));
}
