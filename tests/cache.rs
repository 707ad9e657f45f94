//! `kcc cache` / `kcc-cache`: the caching proxy, driven as kubectl drives it.

use crate::util::*;

#[test]
fn miss_then_hit_through_both_personalities() {
    let w = World::new();
    let cred = credential("v1", SECRET, Some(&in_secs(3600)));
    let plugin = w.plugin("plug", &cred, 0.0);
    let first = ok(&w.cache(&[plugin.to_str().unwrap(), "--flag"]));
    assert_eq!(first.trim(), cred);
    let second = ok(&w.cmd("kcc").args(["cache", "--", plugin.to_str().unwrap(), "--flag"]).output().unwrap());
    assert_eq!(second.trim(), cred);
    assert_eq!(w.runs("plug"), 1, "the second call must be served from the cache");
}

fn cred_1h() -> String {
    credential("v1", SECRET, Some(&in_secs(3600)))
}

#[test]
fn plugin_flags_are_passed_through_untouched() {
    let w = World::new();
    let plugin = w.plugin("plug", &cred_1h(), 0.0);
    let p = plugin.to_str().unwrap();
    ok(&w.cache(&[p, "-h", "--region", "eu-west-1", "--", "help", "a=b"]));
    ok(&w.cmd("kcc").args(["cache", p, "--help"]).output().unwrap());
    let args = std::fs::read_to_string(w.path("plug.args")).unwrap();
    assert_eq!(args, "-h --region eu-west-1 -- help a=b\n--help\n");
}

#[test]
fn a_lone_help_prints_usage_and_runs_nothing() {
    let w = World::new();
    for args in [vec!["-h"], vec!["--help"], vec!["help"]] {
        let out = ok(&w.cache(&args));
        assert!(out.contains("Usage: kcc-cache"), "{out}");
    }
    let out = ok(&w.cmd("kcc").args(["cache", "--help"]).output().unwrap());
    assert!(out.contains("Usage: kcc cache"), "{out}");
    let none = w.cache(&[]);
    assert_eq!(none.status.code(), Some(2));
    assert!(stderr(&none).contains("missing the plugin command"));
}

#[test]
fn a_credential_inside_the_refresh_margin_is_refreshed() {
    let mut w = World::new();
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(20))), 0.0);
    let p = plugin.to_str().unwrap();
    ok(&w.cache(&[p]));
    ok(&w.cache(&[p]));
    assert_eq!(w.runs("plug"), 2, "20s left is inside the default 30s margin");
    w.set_env("KUBE_CREDENTIAL_CACHE_REFRESH_MARGIN", "10s");
    ok(&w.cache(&[p]));
    ok(&w.cache(&[p]));
    assert_eq!(w.runs("plug"), 3, "with a 10s margin the 20s credential is served");
}

#[test]
fn zero_and_absent_expiry_get_the_default_ttl() {
    for expiry in [None, Some("0001-01-01T00:00:00Z")] {
        let mut w = World::new();
        w.set_env("KUBE_CREDENTIAL_CACHE_DEFAULT_TTL", "2h");
        let cred = credential("v1beta1", SECRET, expiry);
        let plugin = w.plugin("plug", &cred, 0.0);
        let p = plugin.to_str().unwrap();
        assert_eq!(ok(&w.cache(&[p])).trim(), cred, "a miss prints exactly what the plugin printed");
        let hit = ok(&w.cache(&[p]));
        assert_eq!(w.runs("plug"), 1, "no expiry ({expiry:?}) must be cached with the default TTL");
        let served: serde_json::Value = serde_json::from_str(&hit).unwrap();
        let t: jiff::Timestamp = served["status"]["expirationTimestamp"].as_str().unwrap().parse().unwrap();
        let left = t.duration_since(jiff::Timestamp::now()).as_secs();
        assert!((7000..=7200).contains(&left), "default TTL of 2h applied, got {left}s");
        assert_eq!(served["status"]["token"], SECRET);
    }
}

#[test]
fn a_recently_expired_credential_is_not_treated_as_without_expiry() {
    let w = World::new();
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(-300))), 0.0);
    let p = plugin.to_str().unwrap();
    ok(&w.cache(&[p]));
    ok(&w.cache(&[p]));
    assert_eq!(w.runs("plug"), 2, "expired 5 minutes ago is expired, not 'no expiry'");
    assert!(w.store_keys().is_empty(), "an already expired credential is not stored");
}

#[test]
fn listed_env_vars_are_part_of_the_key_and_others_are_not() {
    let w = World::new();
    let plugin = w.plugin("plug", &cred_1h(), 0.0);
    let p = plugin.to_str().unwrap();
    let run = |vars: &[(&str, &str)]| {
        let mut c = w.cmd("kcc-cache");
        c.arg(p);
        for (k, v) in vars {
            c.env(k, v);
        }
        ok(&c.output().unwrap());
    };
    run(&[("AWS_PROFILE", "dev")]);
    run(&[("AWS_PROFILE", "dev"), ("UNLISTED", "1")]);
    assert_eq!(w.runs("plug"), 1);
    run(&[("AWS_PROFILE", "prod")]);
    assert_eq!(w.runs("plug"), 2, "AWS_PROFILE is in the default key list");
    run(&[("AWS_PROFILE", "prod"), ("TEAM", "a"), ("KUBE_CREDENTIAL_CACHE_CACHEKEY_ENV_LIST", "TEAM")]);
    run(&[("AWS_PROFILE", "other"), ("TEAM", "a"), ("KUBE_CREDENTIAL_CACHE_CACHEKEY_ENV_LIST", "TEAM")]);
    assert_eq!(w.runs("plug"), 3, "with a custom list only TEAM counts");
    run(&[("TEAM", "b"), ("KUBE_CREDENTIAL_CACHE_CACHEKEY_ENV_LIST", "TEAM")]);
    assert_eq!(w.runs("plug"), 4);
}

#[test]
fn api_versions_are_cached_separately() {
    let w = World::new();
    let v1 = w.plugin("v1", &credential("v1", "tok-v1", Some(&in_secs(3600))), 0.0);
    let call = |api: &str| {
        ok(&w
            .cmd("kcc-cache")
            .arg(&v1)
            .env("KUBERNETES_EXEC_INFO", exec_info(api, Some("https://k")))
            .output()
            .unwrap())
    };
    call("v1");
    call("v1");
    assert_eq!(w.runs("v1"), 1);
    w.set_plugin_output("v1", &credential("v1beta1", "tok-b", Some(&in_secs(3600))));
    let out = call("v1beta1");
    assert!(out.contains("v1beta1"), "kubectl asking for v1beta1 must never get the v1 entry: {out}");
    assert_eq!(w.runs("v1"), 2);
    assert!(call("v1").contains("\"apiVersion\":\"client.authentication.k8s.io/v1\""));
    assert_eq!(w.runs("v1"), 2, "both versions stay cached side by side");
}

#[test]
fn two_users_on_one_server_never_share() {
    let w = World::new();
    let plugin = w.plugin("plug", &cred_1h(), 0.0);
    let call = |user: &str| {
        let out = w
            .cmd("kcc-cache")
            .arg(&plugin)
            .env("KUBERNETES_EXEC_INFO", exec_info("v1", Some("https://one.example")))
            .env("KUBE_CREDENTIAL_CACHE_USER", user)
            .output()
            .unwrap();
        ok(&out);
    };
    call("alice");
    w.set_plugin_output("plug", &credential("v1", "bob-token", Some(&in_secs(3600))));
    call("bob");
    call("alice");
    call("bob");
    assert_eq!(w.runs("plug"), 2);
    let keys = w.store_keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with(r#"user="alice" server="https://one.example""#)), "{keys:?}");
}

#[test]
fn a_failing_plugin_passes_its_exit_code_and_stderr_and_caches_nothing() {
    let w = World::new();
    let plugin = w.script("fails", "echo 'token expired, run aws sso login' >&2\necho partial\nexit 3");
    let out = w.cache(&[plugin.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "", "nothing on stdout when the plugin fails");
    assert!(stderr(&out).contains("run aws sso login"));
    assert!(w.store_keys().is_empty());
}

#[test]
fn garbage_output_is_a_clear_error_and_caches_nothing() {
    let w = World::new();
    for (name, body) in [
        ("html", "echo '<html>502 Bad Gateway</html>'"),
        ("notoken", r#"echo '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{}}'"#),
        ("wrongkind", r#"echo '{"kind":"Pod","apiVersion":"v1"}'"#),
        ("empty", "true"),
    ] {
        let plugin = w.script(name, body);
        let out = w.cache(&[plugin.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(stdout(&out), "", "{name}");
        let err = stderr(&out);
        assert!(err.starts_with("kcc: credential plugin '"), "{name}: {err}");
        assert!(err.contains("nothing was cached"), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "one plain line for kubectl: {err}");
        assert!(!err.contains('\u{1b}'), "no colour codes into a pipe");
    }
    assert!(w.store_text().is_empty() || w.store_keys().is_empty());
    let html = w.cache(&[w.bin.join("html").to_str().unwrap()]);
    // Described, never quoted (issue 21 item 5: such output may be a token).
    let err = stderr(&html);
    assert!(err.contains("beginning with '<' (an HTML or XML page?)") && !err.contains("502 Bad Gateway"), "{err}");
}

#[test]
fn a_missing_plugin_command_is_named() {
    let w = World::new();
    let out = w.cache(&["no-such-plugin-xyz", "get-token"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("'no-such-plugin-xyz' not found"), "{}", stderr(&out));
}

#[test]
fn invalid_settings_name_the_variable_and_run_nothing() {
    let w = World::new();
    let plugin = w.plugin("plug", &cred_1h(), 0.0);
    for (var, value) in [
        ("KUBE_CREDENTIAL_CACHE_REFRESH_MARGIN", "30"),
        ("KUBE_CREDENTIAL_CACHE_DEFAULT_TTL", "an hour"),
        ("KUBE_CREDENTIAL_CACHE_NO_EXPIRY_THRESHOLD", "1d"),
        ("KUBE_CREDENTIAL_CACHE_BACKEND", "disk"),
        ("KUBE_CREDENTIAL_CACHE_DEBUG", "maybe"),
        ("KUBE_CREDENTIAL_CACHE_CACHEKEY_ENV_LIST", "A=B"),
    ] {
        let out = w.cmd("kcc-cache").arg(&plugin).env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{var}={value}");
        let err = stderr(&out);
        assert!(err.contains(var) && err.contains(value), "{var}: {err}");
        assert_eq!(stdout(&out), "");
    }
    assert_eq!(w.runs("plug"), 0);
}

#[test]
fn parallel_cold_callers_run_the_plugin_once() {
    let w = World::new();
    let plugin = w.plugin("slow", &cred_1h(), 0.5);
    let children: Vec<_> = (0..32)
        .map(|_| w.cmd("kcc-cache").arg(&plugin).stdout(std::process::Stdio::piped()).spawn().unwrap())
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(stdout(&out).contains(SECRET), "every caller is served");
        assert!(out.status.success());
    }
    assert_eq!(w.runs("slow"), 1, "32 simultaneous misses, one plugin run");
}

#[test]
fn parallel_distinct_keys_are_all_kept() {
    let w = World::new();
    let plugin = w.plugin("plug", &cred_1h(), 0.05);
    let children: Vec<_> = (0..24)
        .map(|i| {
            w.cmd("kcc-cache")
                .arg(&plugin)
                .arg(format!("--cluster-{i}"))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(w.store_keys().len(), 24, "concurrent writers must not lose each other's entries");
    assert_eq!(w.runs("plug"), 24);
}

#[cfg(unix)]
#[test]
fn the_store_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let plugin = w.plugin("plug", &cred_1h(), 0.0);
    ok(&w.cache(&[plugin.to_str().unwrap()]));
    let file = w.store_file();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    for f in std::fs::read_dir(file.parent().unwrap()).unwrap().flatten() {
        let m = mode(&f.path());
        assert_eq!(m & 0o077, 0, "{} is mode {m:o}", f.path().display());
    }
}

#[test]
fn entries_written_by_the_go_kcc_are_kept() {
    let w = World::new();
    let go_entry = credential("v1beta1", "go-token", Some(&in_secs(3600)));
    let go_key = r#"user="alice" server="https://go.example""#;
    std::fs::create_dir_all(w.store_file().parent().unwrap()).unwrap();
    let go_file =
        serde_json::json!({ "credentials": { go_key: serde_json::from_str::<serde_json::Value>(&go_entry).unwrap() } });
    std::fs::write(w.store_file(), serde_json::to_string(&go_file).unwrap()).unwrap();
    let plugin = w.plugin("plug", &cred_1h(), 0.0);
    ok(&w.cache(&[plugin.to_str().unwrap()]));
    let store = w.store_json();
    assert_eq!(store["credentials"][go_key]["status"]["token"], "go-token", "the Go kcc's entry survives our write");
    assert_eq!(store["credentials"].as_object().unwrap().len(), 2);
    ok(&w.cache(&[plugin.to_str().unwrap()]));
    assert_eq!(w.runs("plug"), 1, "a file in the Go layout is read too");
}

#[test]
fn a_corrupt_store_is_recovered_with_one_warning() {
    let w = World::new();
    std::fs::create_dir_all(w.store_file().parent().unwrap()).unwrap();
    std::fs::write(w.store_file(), "{\"credentials\": {\"trunc").unwrap();
    let plugin = w.plugin("plug", &cred_1h(), 0.0);
    let first = w.cache(&[plugin.to_str().unwrap()]);
    assert!(stdout(&first).contains(SECRET));
    assert!(stderr(&first).contains("corrupt"), "{}", stderr(&first));
    let second = w.cache(&[plugin.to_str().unwrap()]);
    assert!(stdout(&second).contains(SECRET));
    assert_eq!(stderr(&second), "", "warned once, then quiet");
    assert_eq!(w.runs("plug"), 1);
    assert_eq!(w.store_keys().len(), 1);
}

#[test]
fn an_unwritable_store_still_serves_the_credential() {
    let w = World::new();
    let plugin = w.plugin("plug", &cred_1h(), 0.0);
    // Even root cannot create a directory below /dev/null.
    let out =
        w.cmd("kcc-cache").arg(&plugin).env("KUBE_CREDENTIAL_CACHE_FILE", "/dev/null/kcc/cache.json").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(SECRET));
    assert!(stderr(&out).contains("not cached"), "{}", stderr(&out));
}

#[test]
fn a_full_disk_still_serves_the_credential() {
    let w = World::new();
    let big = "x".repeat(8000);
    let plugin = w.plugin("plug", &credential("v1", &format!("{SECRET}{big}"), Some(&in_secs(3600))), 0.0);
    // RLIMIT_FSIZE of 4 KiB: the count file fits, the 8 KB store write does not.
    let out = w
        .cmd("bash")
        .arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f 4; exec kcc-cache '{}'", plugin.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(SECRET));
    assert!(stderr(&out).contains("not cached"), "{}", stderr(&out));
    assert!(w.store_keys().is_empty(), "no partial store left behind");
}

#[test]
fn debug_output_explains_miss_and_hit_without_the_token() {
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_DEBUG", "1");
    let plugin = w.plugin("plug", &cred_1h(), 0.0);
    let miss = w.cache(&[plugin.to_str().unwrap()]);
    let hit = w.cache(&[plugin.to_str().unwrap()]);
    let (miss_err, hit_err) = (stderr(&miss), stderr(&hit));
    assert!(miss_err.contains("cache key: user="), "{miss_err}");
    assert!(miss_err.contains("miss: no entry"), "{miss_err}");
    assert!(miss_err.contains("refreshed: ran"), "{miss_err}");
    assert!(hit_err.contains("hit: expires"), "{hit_err}");
    assert!(!miss_err.contains(SECRET) && !hit_err.contains(SECRET));
}

#[test]
fn a_plain_hit_prints_nothing_on_stderr() {
    let w = World::new();
    let plugin = w.plugin("plug", &cred_1h(), 0.0);
    ok(&w.cache(&[plugin.to_str().unwrap()]));
    let hit = w.cache(&[plugin.to_str().unwrap()]);
    assert_eq!(stderr(&hit), "");
}

#[test]
fn a_kubeconfig_wrapped_twice_caches_once() {
    let w = World::new();
    let plugin = w.plugin("plug", &cred_1h(), 0.0);
    let p = plugin.to_str().unwrap();
    ok(&w.cache(&["kcc-cache", p, "x"]));
    ok(&w.cache(&["kcc", "cache", "--", p, "x"]));
    ok(&w.cache(&[p, "x"]));
    assert_eq!(w.runs("plug"), 1, "all three are the same call");
    assert_eq!(w.store_keys().len(), 1);
}

#[test]
fn a_plugin_that_leads_back_to_kcc_fails_instead_of_looping() {
    let w = World::new();
    let looping = w.script("loop", "exec kcc-cache \"$0\" \"$@\"");
    let out = w.cache(&[looping.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("calling itself"), "{}", stderr(&out));
}
