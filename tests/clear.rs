//! `kcc clear`: purging by selector, on a store filled by real `kcc-cache`
//! calls plus entries the Go kcc wrote.

use std::fs;

use crate::util::*;

/// A store with: alice@https://a and bob@https://b (fresh), carol@https://a
/// (expired by hand), and a Go kcc entry dave@https://a. Returns the keys in
/// that order.
pub fn populate(w: &World) -> [String; 4] {
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let call = |user: &str, server: &str| {
        let out = w
            .cmd("kcc-cache")
            .arg(&plugin)
            .arg("get-token")
            .env("KUBE_CREDENTIAL_CACHE_USER", user)
            .env("KUBERNETES_EXEC_INFO", exec_info("v1", Some(server)))
            .output()
            .unwrap();
        ok(&out);
    };
    call("alice", "https://a");
    call("bob", "https://b");
    call("carol", "https://a");
    assert_eq!(w.runs("plug"), 3);

    let keys = w.store_keys();
    let key_of = |user: &str| keys.iter().find(|k| k.starts_with(&format!("user=\"{user}\""))).unwrap().clone();
    let (alice, bob, carol) = (key_of("alice"), key_of("bob"), key_of("carol"));
    if w.backend() == "file" {
        let mut store = w.store_json();
        store["credentials"][&carol]["status"]["expirationTimestamp"] = in_secs(-600).into();
        fs::write(w.store_file(), serde_json::to_string(&store).unwrap()).unwrap();
    } else {
        // In a secret store the expiry clear sees is the index's.
        let mut index = w.index_json();
        index["entries"][&carol]["expiry"] = in_secs(-600).into();
        fs::write(w.index_file(), serde_json::to_string(&index).unwrap()).unwrap();
    }
    let mut store = if w.store_file().exists() { w.store_json() } else { serde_json::json!({"credentials": {}}) };
    let creds = store["credentials"].as_object_mut().unwrap();
    let go = r#"user="dave" server="https://a""#.to_string();
    let go_cred: serde_json::Value = serde_json::from_str(&credential("v1", SECRET, Some(&in_secs(3600)))).unwrap();
    creds.insert(go.clone(), go_cred);
    fs::write(w.store_file(), serde_json::to_string(&store).unwrap()).unwrap();
    [alice, bob, carol, go]
}

fn clear(w: &World, args: &[&str]) -> String {
    let out = w.cmd("kcc").arg("clear").args(args).output().unwrap();
    let text = ok(&out);
    assert!(!text.contains(SECRET) && !stderr(&out).contains(SECRET), "clear printed the secret: {text}");
    text
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn index_keys(w: &World) -> Vec<String> {
    let path = w.store_file().with_file_name("cache.index.json");
    let index: serde_json::Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    index["entries"].as_object().unwrap().keys().cloned().collect()
}

#[test]
fn clear_without_selector_removes_everything_from_store_and_index() {
    let w = World::new();
    let keys = populate(&w);
    let out = clear(&w, &[]);
    for k in &keys {
        assert!(out.contains(&format!("removed: {k}\n")), "{out}");
    }
    assert!(out.contains("removed 4 of 4 cached entries"), "{out}");
    assert!(w.store_keys().is_empty());
    assert!(index_keys(&w).is_empty());
}

#[test]
fn clear_all_flag_equals_no_selector() {
    let w = World::new();
    populate(&w);
    clear(&w, &["--all"]);
    assert!(w.store_keys().is_empty());
}

#[test]
fn clear_by_user_matches_kcc_and_go_keys() {
    let w = World::new();
    let [alice, bob, carol, go] = populate(&w);
    let out = clear(&w, &["--user", "alice"]);
    assert!(out.contains(&alice) && out.contains("removed 1 of 4"), "{out}");
    clear(&w, &["--user=dave"]);
    assert_eq!(sorted(w.store_keys()), sorted(vec![bob.clone(), carol.clone()]));
    assert_eq!(sorted(index_keys(&w)), sorted(vec![bob, carol]));
    assert!(!w.store_keys().contains(&go));
}

#[test]
fn clear_by_server_removes_every_entry_for_that_server() {
    let w = World::new();
    let [_, bob, _, _] = populate(&w);
    let out = clear(&w, &["--server", "https://a/"]);
    assert!(out.contains("removed 3 of 4"), "{out}");
    assert_eq!(w.store_keys(), vec![bob]);
}

#[test]
fn clear_by_key_is_exact_and_repeatable() {
    let w = World::new();
    let [alice, bob, carol, go] = populate(&w);
    clear(&w, &["--key", &alice, "--key", &go, "--key", "user=\"alice\""]);
    assert_eq!(sorted(w.store_keys()), sorted(vec![bob, carol]));
}

#[test]
fn clear_expired_keeps_fresh_entries() {
    let w = World::new();
    let [alice, bob, carol, go] = populate(&w);
    let out = clear(&w, &["--expired"]);
    assert!(out.contains(&format!("removed: {carol}")), "{out}");
    assert_eq!(sorted(w.store_keys()), sorted(vec![alice, bob, go]));
}

#[test]
fn clear_selectors_and_combine_and_nothing_matched_is_not_an_error() {
    let w = World::new();
    populate(&w);
    let out = clear(&w, &["--user", "alice", "--server", "https://b"]);
    assert!(out.contains("no cached entry matched; nothing removed (4 entries kept)"), "{out}");
    assert_eq!(w.store_keys().len(), 4);
    let out = clear(&w, &["--user", "carol", "--expired"]);
    assert!(out.contains("removed 1 of 4"), "{out}");
}

#[test]
fn clear_dry_run_lists_and_changes_nothing() {
    let w = World::new();
    let keys = populate(&w);
    let before = w.store_text();
    let out = clear(&w, &["--dry-run", "--server", "https://a"]);
    assert!(out.contains(&format!("would remove: {}", keys[0])), "{out}");
    assert!(out.contains("dry run: would remove 3 of 4 cached entries; nothing was changed"), "{out}");
    assert_eq!(w.store_text(), before);
    assert_eq!(index_keys(&w).len(), 3);
}

#[test]
fn cleared_credential_is_fetched_again() {
    let w = World::new();
    populate(&w);
    clear(&w, &["--user", "alice"]);
    let plugin = w.bin.join("plug");
    let out = w
        .cmd("kcc-cache")
        .arg(&plugin)
        .arg("get-token")
        .env("KUBE_CREDENTIAL_CACHE_USER", "alice")
        .env("KUBERNETES_EXEC_INFO", exec_info("v1", Some("https://a")))
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(w.runs("plug"), 4, "alice's credential must come from the plugin again");
}

#[test]
fn clear_on_empty_store_says_so() {
    let w = World::new();
    let out = clear(&w, &[]);
    assert!(out.contains("is empty; nothing to remove"), "{out}");
}

#[test]
fn corrupt_store_is_refused_with_a_selector_and_reset_by_all() {
    let w = World::new();
    fs::create_dir_all(w.store_file().parent().unwrap()).unwrap();
    fs::write(w.store_file(), "{not json").unwrap();
    let out = w.cmd("kcc").args(["clear", "--user", "alice"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("kcc clear --all"), "{}", stderr(&out));
    assert_eq!(w.store_text(), "{not json");
    let text = clear(&w, &["--all"]);
    assert!(text.contains("corrupt"), "{text}");
    assert!(w.store_keys().is_empty());
}

#[test]
fn all_with_a_selector_is_a_usage_error() {
    let w = World::new();
    let out = w.cmd("kcc").args(["clear", "--all", "--expired"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("'--all' cannot be combined"), "{}", stderr(&out));
}

#[test]
fn clear_waits_for_the_store_lock_held_by_a_writer() {
    let w = World::new();
    populate(&w);
    let lock = w.store_file().with_file_name("cache.lock");
    // A writer (as kcc cache does) holds the exclusive store lock for a while.
    let mut holder = std::process::Command::new("flock").arg(&lock).args(["sleep", "1"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let started = std::time::Instant::now();
    clear(&w, &[]);
    let waited = started.elapsed();
    holder.wait().unwrap();
    assert!(waited >= std::time::Duration::from_millis(600), "clear did not wait for the lock ({waited:?})");
    assert!(w.store_keys().is_empty());
}

/// Issue 20.2: `rm -rf ~/.cache` is how people clear caches. On the file
/// backend that removes the credentials; on the kernel keyring it removes
/// only the index, and the keys stay (they would still be served).
/// `clear --dry-run` must list them, `clear --all` remove them: afterwards
/// every call runs the plugin again, on every backend.
#[test]
fn clear_all_after_the_cache_directory_is_deleted_forgets_everything() {
    let w = World::new();
    let [alice, bob, carol, _go] = populate(&w);
    fs::remove_dir_all(w.store_file().parent().unwrap()).unwrap();

    let dry = clear(&w, &["--all", "--dry-run"]);
    let again = |user: &str, server: &str| {
        ok(&w
            .cmd("kcc-cache")
            .arg(w.bin.join("plug"))
            .arg("get-token")
            .env("KUBE_CREDENTIAL_CACHE_USER", user)
            .env("KUBERNETES_EXEC_INFO", exec_info("v1", Some(server)))
            .output()
            .unwrap());
    };
    if w.backend() == "file" {
        assert!(dry.contains("is empty; nothing to remove"), "{dry}");
    } else {
        // alice and bob are fresh; carol's index said expired, her key is fresh.
        for k in [&alice, &bob, &carol] {
            assert!(
                dry.contains(&format!("would remove: {k} (no index entry: found in the {} store)", w.backend())),
                "{dry}"
            );
        }
        again("alice", "https://a");
        assert_eq!(w.runs("plug"), 3, "a dry run removed alice's key: her call was not served from it");
    }

    let out = clear(&w, &["--all"]);
    assert!(!out.contains("would"), "{out}");
    again("alice", "https://a");
    again("bob", "https://b");
    assert_eq!(
        w.runs("plug"),
        5,
        "a credential outlived 'kcc clear --all' after the cache directory was deleted: {out}"
    );
    clear(&w, &["--all"]);
}
