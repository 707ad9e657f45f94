//! The keyring backend against a real Secret Service: a private session bus
//! and gnome-keyring per test, inside the test's own HOME/XDG world, never
//! the user's.
//!
//! The fixture lives in [`crate::secret_service`] (the benchmark uses it too).

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::secret_service::SecretService;
use crate::util::*;

/// Files under the world's HOME and XDG directories (not the test's own
/// plugin files, which hold the credential on purpose) that contain `needle`.
fn files_containing(w: &World, needle: &str) -> Vec<PathBuf> {
    let roots = [w.home.clone(), w.cache_home.clone(), w.path("xdg-config"), w.path("xdg-data"), w.path("run")];
    w.files()
        .into_iter()
        .filter(|p| roots.iter().any(|r| p.starts_with(r)))
        .filter(|p| fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|win| win == needle.as_bytes())))
        .collect()
}

fn index_json(w: &World) -> serde_json::Value {
    let path = w.store_file().with_file_name("cache.index.json");
    serde_json::from_str(&fs::read_to_string(path).unwrap_or_else(|_| "{}".into())).unwrap()
}

fn debug_cache(w: &World, args: &[&str]) -> std::process::Output {
    w.cmd("kcc-cache").env("KUBE_CREDENTIAL_CACHE_DEBUG", "1").args(args).output().unwrap()
}

#[cfg(unix)]
#[test]
fn keyring_miss_then_hit_keeps_the_token_off_disk() {
    let mut w = World::new();
    let Some(ss) = SecretService::start(&mut w) else { return };
    let cred = credential("v1", SECRET, Some(&in_secs(3600)));
    let plugin = w.plugin("plug", &cred, 0.0);
    let plugin = plugin.to_str().unwrap();

    let first = debug_cache(&w, &[plugin]);
    assert_eq!(ok(&first).trim(), cred);
    assert!(stderr(&first).contains("backend: keyring (auto:"), "{}", stderr(&first));
    let second = debug_cache(&w, &[plugin]);
    assert_eq!(ok(&second).trim(), cred);
    assert!(stderr(&second).contains("hit:"), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("keyring: read directly over D-Bus"),
        "a hit reads over kcc's own D-Bus client, not the keyring crate: {}",
        stderr(&second)
    );
    assert_eq!(w.runs("plug"), 1, "the second call must be served from the keyring");
    assert!(!stderr(&second).contains(SECRET), "debug output leaked the token");

    let found = ss.search();
    assert!(found.contains(SECRET), "secret-tool does not find the token: {found}");
    assert!(found.contains("Password for 'user="), "the Go kcc's label: {found}");
    assert!(!w.store_file().exists(), "cache.json must not be written in keyring mode");
    assert_eq!(files_containing(&w, SECRET), Vec::<PathBuf>::new(), "the token is on disk");
    let index = index_json(&w);
    let entries = index["entries"].as_object().unwrap();
    assert_eq!(entries.len(), 1);
    let entry = entries.values().next().unwrap();
    assert_eq!(entry["backend"], "keyring");
    assert_eq!(entry["parts"], 1);
    let mode = fs::metadata(w.store_file().with_file_name("cache.index.json")).unwrap().permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);

    // Forced keyring reads the same entry.
    let forced = w.cmd("kcc-cache").env("KUBE_CREDENTIAL_CACHE_BACKEND", "keyring").arg(plugin).output().unwrap();
    assert_eq!(ok(&forced).trim(), cred);
    assert_eq!(w.runs("plug"), 1);
}

#[test]
fn an_unchanged_credential_is_not_rewritten() {
    let mut w = World::new();
    let Some(ss) = SecretService::start(&mut w) else { return };
    let out = run_helper(&w, "set-twice", "kcc-test-unchanged");
    assert!(out.contains("first: changed=true parts=3"), "{out}");
    assert!(out.contains("second: changed=false parts=3"), "{out}");
    assert!(ss.search().contains("kcc-test-unchanged#3"));
}

#[test]
fn auto_picks_file_without_a_session_bus_and_with_keyctl_denied() {
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_BACKEND", "auto");
    w.deny_keyctl(libc::EPERM);
    w.set_env("XDG_RUNTIME_DIR", w.path("no-bus-here").to_str().unwrap());
    let cred = credential("v1", SECRET, Some(&in_secs(3600)));
    let plugin = w.plugin("plug", &cred, 0.0);
    let out = debug_cache(&w, &[plugin.to_str().unwrap()]);
    ok(&out);
    let err = stderr(&out);
    assert!(err.contains("backend: file (auto: no secret store reachable: keyring: no D-Bus session bus"), "{err}");
    assert!(err.contains("kernel: the kernel keyring is denied: keyctl returned EPERM"), "{err}");
    assert_eq!(w.store_keys().len(), 1);
    ok(&w.cache(&[plugin.to_str().unwrap()]));
    assert_eq!(w.runs("plug"), 1);
}

#[test]
fn auto_picks_file_quickly_with_a_bus_but_no_secret_service() {
    let mut w = World::new();
    // The system's gnome-keyring is D-Bus activatable here: the probe must not start it.
    let Some(ss) = SecretService::bus_only(&mut w) else { return };
    w.deny_keyctl(libc::ENOSYS);
    let cred = credential("v1", SECRET, Some(&in_secs(3600)));
    let plugin = w.plugin("plug", &cred, 0.0);
    let plugin = plugin.to_str().unwrap();
    ok(&w.cache(&[plugin]));
    let start = Instant::now();
    let out = debug_cache(&w, &[plugin]);
    let took = start.elapsed();
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("backend: file (auto: no secret store reachable: keyring: a session bus, but no Secret Service"),
        "{err}"
    );
    let probe = err.split("probe took ").nth(1).and_then(|s| s.split("ms").next()).unwrap_or("?").to_string();
    eprintln!("bus without Secret Service: whole hit {:.1} ms, probe {probe} ms", took.as_secs_f64() * 1000.0);
    assert!(took < Duration::from_millis(500), "a hit took {took:?}");
    assert_eq!(w.runs("plug"), 1);
    assert!(!ss.has_owner(), "the probe activated a Secret Service");
}

#[test]
fn forced_keyring_without_a_bus_is_a_clear_error() {
    let mut w = World::new();
    w.set_env("XDG_RUNTIME_DIR", w.path("no-bus-here").to_str().unwrap());
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let out = w.cmd("kcc-cache").env("KUBE_CREDENTIAL_CACHE_BACKEND", "keyring").arg(&plugin).output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("KUBE_CREDENTIAL_CACHE_BACKEND=keyring but no secret store is reachable"), "{err}");
    assert!(err.contains("KUBE_CREDENTIAL_CACHE_BACKEND=file"), "{err}");
    assert_eq!(err.lines().count(), 1, "one plain line for kubectl: {err}");
    assert!(stdout(&out).is_empty());
    assert_eq!(w.runs("plug"), 0);
}

#[test]
fn locked_collection_serves_without_caching() {
    let mut w = World::new();
    let Some(ss) = SecretService::start(&mut w) else { return };
    ss.lock();
    let cred = credential("v1", SECRET, Some(&in_secs(3600)));
    let plugin = w.plugin("plug", &cred, 0.0);
    let plugin = plugin.to_str().unwrap();
    for backend in ["auto", "keyring"] {
        let out = w
            .cmd("kcc-cache")
            .env("KUBE_CREDENTIAL_CACHE_DEBUG", "1")
            .env("KUBE_CREDENTIAL_CACHE_BACKEND", backend)
            .arg(plugin)
            .output()
            .unwrap();
        assert_eq!(ok(&out).trim(), cred, "{backend}");
        let err = stderr(&out);
        assert!(err.contains("locked") && err.contains("not cached"), "{backend}: {err}");
        assert!(!err.contains("warning"), "a locked keyring is explained under debug only: {err}");
    }
    ok(&w.cache(&[plugin]));
    assert_eq!(w.runs("plug"), 3, "nothing may be cached while the keyring is locked");
    assert!(!w.store_file().exists(), "no plaintext fallback");
    assert_eq!(index_json(&w)["entries"].as_object().map_or(0, |m| m.len()), 0);
    assert_eq!(files_containing(&w, SECRET), Vec::<PathBuf>::new());
}

#[test]
fn parallel_cold_callers_run_the_plugin_once_with_the_keyring() {
    let mut w = World::new();
    let Some(_ss) = SecretService::start(&mut w) else { return };
    let cred = credential("v1", SECRET, Some(&in_secs(3600)));
    let plugin = w.plugin("slow", &cred, 0.5);
    let children: Vec<Child> = (0..16)
        .map(|_| {
            w.cmd("kcc-cache")
                .env("KUBE_CREDENTIAL_CACHE_BACKEND", "keyring")
                .arg(&plugin)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(ok(&out).trim(), cred);
    }
    assert_eq!(w.runs("slow"), 1, "16 parallel cold callers must share one plugin run");
    assert!(!w.store_file().exists());
}

#[test]
fn a_credential_larger_than_the_entry_limit_round_trips_split_and_is_removed_whole() {
    let mut w = World::new();
    let Some(ss) = SecretService::start(&mut w) else { return };
    w.set_env("KUBE_CREDENTIAL_CACHE_KEYRING_ENTRY_LIMIT", "256");
    let token = format!("{SECRET}-{}", "x".repeat(1500));
    let big = credential("v1", &token, Some(&in_secs(3600)));
    let plugin = w.plugin("big", &big, 0.0);
    let plugin = plugin.to_str().unwrap();
    let first = debug_cache(&w, &[plugin]);
    assert_eq!(ok(&first).trim(), big);
    let second = debug_cache(&w, &[plugin]);
    assert_eq!(ok(&second).trim(), big);
    assert_eq!(w.runs("big"), 1, "the split credential must be served from the keyring");
    assert!(stderr(&second).contains("keyring: read directly over D-Bus"), "{}", stderr(&second));

    let index = index_json(&w);
    let (key, entry) = index["entries"].as_object().unwrap().iter().next().unwrap();
    let parts = entry["size"].as_u64().unwrap().div_ceil(256);
    assert!(parts >= 6, "{entry}");
    assert_eq!(entry["parts"], parts);
    assert!(stderr(&first).contains(&format!("split across {parts} entries (limit 256 bytes)")), "{}", stderr(&first));
    let found = ss.search();
    assert!(found.contains(&format!("kcc-split:v1:{parts}:")), "{found}");
    for i in 1..=parts {
        assert!(found.contains(&format!("{key}#{i}")), "part {i} missing: {found}");
    }
    assert!(!found.contains(&format!("{key}#{}", parts + 1)));
    assert_eq!(files_containing(&w, SECRET), Vec::<PathBuf>::new());

    // A small credential afterwards leaves no stale parts behind.
    let small = credential("v1", SECRET, Some(&in_secs(7200)));
    w.set_plugin_output("big", &small);
    let refresh = w.cmd("kcc-cache").env("KUBE_CREDENTIAL_CACHE_REFRESH_MARGIN", "61m").arg(plugin).output().unwrap();
    assert_eq!(ok(&refresh).trim(), small);
    assert_eq!(w.runs("big"), 2);
    let found = ss.search();
    assert!(!found.contains(&format!("{key}#1")), "stale parts: {found}");
    assert!(!found.contains("kcc-split"), "{found}");

    // Split again, then removed through the store API `kcc clear` will use.
    let big = credential("v1", &token, Some(&in_secs(10800)));
    w.set_plugin_output("big", &big);
    let refresh = w.cmd("kcc-cache").env("KUBE_CREDENTIAL_CACHE_REFRESH_MARGIN", "121m").arg(plugin).output().unwrap();
    assert_eq!(ok(&refresh).trim(), big);
    assert_eq!(w.runs("big"), 3);
    assert!(ss.search().contains(&format!("{key}#{parts}")));
    let removed = run_helper(&w, "remove", key);
    assert!(removed.contains("removed: true"), "{removed}");
    let found = ss.search();
    assert!(!found.contains("kube-credential-cache"), "entries left after removal: {found}");
    assert_eq!(index_json(&w)["entries"].as_object().map_or(0, |m| m.len()), 0);
}

/// Runs [`keyring_library_helper`] in a child test process with the world's
/// environment: the keyring crate reads the bus address from its own process
/// environment, which a test must not change under its siblings. Used until
/// `kcc clear` exists to drive the store API it will call.
fn run_helper(w: &World, action: &str, key: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = w
        .cmd(&exe)
        .args(["--exact", "keyring::keyring_library_helper", "--ignored", "--nocapture", "--test-threads=1"])
        .env("KCC_TEST_HELPER", action)
        .env("KCC_TEST_KEY", key)
        .env("KCC_TEST_STORE_FILE", w.store_file())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// Not a test on its own: the child half of [`run_helper`], which runs it
/// in a child process (`--ignored --exact`) with `KCC_TEST_HELPER` set, from
/// `an_unchanged_credential_is_not_rewritten` and the split-entry test. It is
/// `#[ignore]`d so it does not run alone, where it has nothing to do (it
/// returns at once without those variables); CI exercises it through them.
#[test]
#[ignore = "helper process of the keyring tests"]
fn keyring_library_helper() {
    use kcc::store::{Keyring, Store};
    let (Ok(action), Ok(key)) = (std::env::var("KCC_TEST_HELPER"), std::env::var("KCC_TEST_KEY")) else { return };
    let file = std::env::var_os("KCC_TEST_STORE_FILE").unwrap();
    let paths = kcc::paths::StorePaths::resolve(Some(&file)).unwrap();
    match action.as_str() {
        "remove" => {
            let store = Store::with_keyring(paths, Keyring::new(256));
            let listed: Vec<String> = store.list_index().into_iter().map(|(k, _)| k).collect();
            assert_eq!(listed, std::slice::from_ref(&key));
            let removed = store.remove(&key, &kcc::diagnostics::Diag::new(true)).unwrap();
            println!("removed: {removed}");
        }
        "set-twice" => {
            let keyring = Keyring::new(128);
            let secret = "s".repeat(300);
            let first = keyring.set(&key, &secret).unwrap();
            println!("first: changed={} parts={}", first.changed, first.parts);
            let second = keyring.set(&key, &secret).unwrap();
            println!("second: changed={} parts={}", second.changed, second.parts);
            assert_eq!(keyring.get(&key).unwrap().as_deref(), Some(secret.as_str()));
        }
        other => panic!("unknown helper action {other}"),
    }
}

/// Runs `kcc ARGS…` in the world and returns stdout (asserting success and
/// that nothing printed contains the test secret).
fn kcc_ok(w: &World, args: &[&str]) -> String {
    let out = w.cmd("kcc").args(args).output().unwrap();
    assert!(!stdout(&out).contains(SECRET) && !stderr(&out).contains(SECRET), "kcc {args:?} printed the secret");
    ok(&out)
}

#[test]
fn clear_and_doctor_work_on_keyring_entries_split_ones_included() {
    let mut w = World::new();
    let Some(ss) = SecretService::start(&mut w) else { return };
    w.set_env("KUBE_CREDENTIAL_CACHE_KEYRING_ENTRY_LIMIT", "256");
    // alice's credential fits one entry but is close to the limit; bob's is split.
    let alice = credential("v1", &format!("{SECRET}-alice-{}", "a".repeat(40)), Some(&in_secs(3600)));
    assert!(alice.len() * 5 > 256 * 4 && alice.len() <= 256, "{}", alice.len());
    let bob = credential("v1", &format!("{SECRET}-bob-{}", "b".repeat(1500)), Some(&in_secs(3600)));
    let run = |user: &str, plugin: &str| {
        let out = w.cmd("kcc-cache").env("KUBE_CREDENTIAL_CACHE_USER", user).arg(plugin).output().unwrap();
        ok(&out)
    };
    let alice_plugin = w.plugin("alice-plugin", &alice, 0.0);
    let bob_plugin = w.plugin("bob-plugin", &bob, 0.0);
    let (alice_plugin, bob_plugin) = (alice_plugin.to_str().unwrap(), bob_plugin.to_str().unwrap());
    assert_eq!(run("alice", alice_plugin).trim(), alice);
    assert_eq!(run("bob", bob_plugin).trim(), bob);
    assert!(ss.search().contains("-alice-") && ss.search().contains("kcc-split:v1:"));

    // doctor lists both keyring entries and flags alice's size, without secrets.
    let report: serde_json::Value = serde_json::from_str(&kcc_ok(&w, &["doctor", "--json"])).unwrap();
    let entries = report["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{report}");
    assert!(entries.iter().all(|e| e["backend"] == "keyring" && e["next"]["kind"] == "hit"), "{entries:?}");
    let size_findings: Vec<&serde_json::Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["code"] == "keyring-size").collect();
    assert_eq!(size_findings.len(), 1, "{report}");
    assert!(size_findings[0]["subject"].as_str().unwrap().contains("user=\"alice\""), "{report}");
    kcc_ok(&w, &["doctor"]);

    // clear --user alice --dry-run changes nothing; without --dry-run it removes alice only.
    let listed = kcc_ok(&w, &["clear", "--user", "alice", "--dry-run"]);
    assert!(listed.contains("user=\"alice\""), "{listed}");
    assert!(ss.search().contains("-alice-"), "a dry run removed the entry");
    let removed = kcc_ok(&w, &["clear", "--user", "alice"]);
    assert!(removed.contains("user=\"alice\"") && !removed.contains("user=\"bob\""), "{removed}");
    let found = ss.search();
    assert!(!found.contains("-alice-"), "alice's entry is still in the keyring: {found}");
    assert!(found.contains("kcc-split:v1:"), "bob's entry must stay: {found}");
    assert_eq!(run("bob", bob_plugin).trim(), bob);
    assert_eq!(w.runs("bob-plugin"), 1, "bob is still served from the keyring");

    // clear with no selector removes bob's split entry and every part.
    kcc_ok(&w, &["clear"]);
    let found = ss.search();
    assert!(!found.contains("kube-credential-cache"), "entries left in the keyring: {found}");
    assert_eq!(run("alice", alice_plugin).trim(), alice);
    assert_eq!(w.runs("alice-plugin"), 2, "a cleared credential is fetched again");
}

/// `secret-tool` on the fixture's private bus: stores `secret` under
/// `attrs`, or looks them up (the secret, "" when there is none).
fn secret_tool(ss: &SecretService, args: &[&str], stdin: &str) -> String {
    let mut child = std::process::Command::new("secret-tool")
        .args(args)
        .env("DBUS_SESSION_BUS_ADDRESS", &ss.address)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run secret-tool");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned()
}

/// Issue 20.2 on the Secret Service: entries whose index is gone are found
/// by searching kcc's service attribute (split ones folded into one key),
/// listed by `--dry-run`, removed by `clear --all` and counted by doctor;
/// another program's item is never touched.
#[test]
fn keyring_entries_without_an_index_are_found_by_clear_and_doctor() {
    let mut w = World::new();
    let Some(ss) = SecretService::start(&mut w) else { return };
    w.set_env("KUBE_CREDENTIAL_CACHE_KEYRING_ENTRY_LIMIT", "256");
    let alice = credential("v1", &format!("{SECRET}-alice"), Some(&in_secs(3600)));
    let bob = credential("v1", &format!("{SECRET}-bob-{}", "b".repeat(1500)), Some(&in_secs(3600)));
    for (user, cred) in [("alice", &alice), ("bob", &bob)] {
        let plugin = w.plugin(&format!("{user}-plugin"), cred, 0.0);
        ok(&w.cmd("kcc-cache").env("KUBE_CREDENTIAL_CACHE_USER", user).arg(plugin).output().unwrap());
    }
    assert!(ss.search().contains("kcc-split:v1:"), "bob's credential is split");
    secret_tool(&ss, &["store", "--label=other", "service", "other-program", "username", "alice"], "not kcc's");
    // The Go kcc's entry (it keeps no index): cleared too, but not called an orphan.
    let go_cred = credential("v1", SECRET, Some(&in_secs(3600)));
    secret_tool(
        &ss,
        &["store", "--label=go", "service", "kube-credential-cache", "username", r#"user="dave" server="https://a""#],
        &go_cred,
    );
    fs::remove_file(w.index_file()).unwrap();

    let doctor = kcc_ok(&w, &["doctor"]);
    assert!(doctor.contains("2 kcc entries in the keyring without an index entry"), "{doctor}");
    assert!(doctor.contains("written by the Go kcc"), "{doctor}");
    let dry = kcc_ok(&w, &["clear", "--all", "--dry-run"]);
    assert!(dry.contains("dry run: would remove 3 of 3 cached entries"), "{dry}");
    for user in ["alice", "bob"] {
        assert!(dry.contains(&format!("would remove: user=\"{user}\"")), "{dry}");
    }
    assert!(dry.contains("(no index entry: found in the keyring store)"), "{dry}");
    assert!(ss.search().contains("-alice"), "a dry run removed an entry");

    let removed = kcc_ok(&w, &["clear", "--all"]);
    assert!(removed.contains("removed 3 of 3 cached entries (from the keyring store)"), "{removed}");
    let left = ss.search();
    assert!(!left.contains(SECRET) && !left.contains("kcc-split"), "kcc entries left in the keyring: {left}");
    assert_eq!(secret_tool(&ss, &["lookup", "service", "other-program", "username", "alice"], ""), "not kcc's");
    assert!(!kcc_ok(&w, &["doctor"]).contains("without an index entry"));
}
