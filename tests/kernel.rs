//! The kernel keyring backend, for real: the persistent keyring of the uid
//! running the tests (root here and in CI) — in each world's own user
//! namespace, so every test has a persistent keyring of its own that goes
//! with it (`tests/private_keyrings.rs`) — and, for quotas, of a fresh
//! non-root uid with the kernel's default quota (200 keys, 20,000 bytes),
//! entered with `setpriv` (quotas are per kernel uid, namespaces or not). The failure modes of Docker's seccomp profile are
//! a real seccomp filter ([`World::deny_keyctl`]).
//!
//! clear, refresh ahead and healing on this backend are the same tests as on
//! the file, run with `KCC_TEST_BACKEND=kernel` (see `.ci/kernel-keyring`).

use std::fs;
use std::process::{Command, Output};

use crate::util::*;

/// Whether the kernel keyring can be used here; a skip (a failure under
/// `KCC_NO_SKIP=1`) when not.
pub fn kernel_usable() -> bool {
    // SAFETY: a keyctl that only looks up (and links) the persistent keyring.
    let r = unsafe {
        libc::syscall(libc::SYS_keyctl, 22 /* GET_PERSISTENT */, -1i64, -2i64 /* @p */)
    };
    if r < 0 {
        skip(&format!("the kernel keyring is not usable here: {}", std::io::Error::last_os_error()));
        return false;
    }
    true
}

pub fn kernel_world() -> World {
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_BACKEND", "auto");
    w.set_env("XDG_RUNTIME_DIR", w.path("no-bus-here").to_str().unwrap());
    w
}

fn debug_cache(w: &World, args: &[&str]) -> Output {
    w.cmd("kcc-cache").env("KUBE_CREDENTIAL_CACHE_DEBUG", "1").args(args).output().unwrap()
}

/// Files under the world's HOME and XDG directories (not the plugin's own
/// files, which hold the credential on purpose) that contain `needle`.
fn files_containing(w: &World, needle: &str) -> Vec<std::path::PathBuf> {
    let roots = [w.home.clone(), w.cache_home.clone()];
    w.files()
        .into_iter()
        .filter(|p| roots.iter().any(|r| p.starts_with(r)))
        .filter(|p| fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|win| win == needle.as_bytes())))
        .collect()
}

/// The `/proc/keys` line of the kcc key whose description contains `needle`.
pub fn proc_keys_line(needle: &str) -> Option<String> {
    fs::read_to_string("/proc/keys")
        .ok()?
        .lines()
        .find(|l| l.contains("kube-credential-cache:") && l.contains(needle))
        .map(String::from)
}

/// Adds a `user` key `description` holding `payload`, with no timeout, to
/// the persistent keyring that `w`'s commands see (its own), as another
/// program (or an older kcc) would: from a child that entered the world's
/// namespace, so the test process's own keyrings are never touched.
pub fn add_key_in(w: &World, description: &str, payload: &str) {
    use std::os::unix::process::CommandExt;
    let desc = std::ffi::CString::new(description).unwrap();
    let payload = payload.as_bytes().to_vec();
    let mut cmd = w.cmd_direct("true");
    // SAFETY: raw add_key/keyctl system calls on buffers the closure owns;
    // nothing allocates between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let ring = libc::syscall(libc::SYS_keyctl, 22 /* GET_PERSISTENT */, -1i64, -2i64 /* @p */);
            if ring < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let id = libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                desc.as_ptr(),
                payload.as_ptr(),
                payload.len(),
                ring,
            );
            if id < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
        })
    };
    let status = cmd.status().unwrap();
    assert!(status.success(), "add_key {description:?} in the world's keyring failed");
}

/// The `/proc/keys` lines whose description contains `needle` (every
/// namespace's keys of this uid are listed there).
pub fn proc_keys_with(needle: &str) -> Vec<String> {
    fs::read_to_string("/proc/keys").unwrap().lines().filter(|l| l.contains(needle)).map(String::from).collect()
}

fn clear_all(w: &World) {
    ok(&w.cmd("kcc").args(["clear", "--all"]).output().unwrap());
}

#[test]
fn auto_without_a_secret_service_keeps_the_token_in_the_kernel_keyring_until_it_expires() {
    if !kernel_usable() {
        return;
    }
    let w = kernel_world();
    let cred = credential("v1", SECRET, Some(&in_secs(3600)));
    let plugin = w.plugin("plug", &cred, 0.0);
    let plugin = plugin.to_str().unwrap();

    let first = debug_cache(&w, &[plugin]);
    assert_eq!(ok(&first).trim(), cred);
    let err = stderr(&first);
    assert!(err.contains("backend: kernel (auto: keyring: no D-Bus session bus"), "{err}");
    assert!(err.contains("stored in the kernel keyring"), "{err}");
    let second = debug_cache(&w, &[plugin]);
    assert_eq!(ok(&second).trim(), cred);
    assert!(stderr(&second).contains("hit:"), "{}", stderr(&second));
    assert!(!stderr(&second).contains(SECRET), "debug output leaked the token");
    assert_eq!(w.runs("plug"), 1, "the second call must be served from the kernel keyring");

    assert!(files_containing(&w, SECRET).is_empty(), "the token reached the disk: {:?}", files_containing(&w, SECRET));
    let index = w.index_json();
    let (key, row) = index["entries"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(row["backend"], "kernel");
    // The kernel holds it with a timeout at the credential's expiry (/proc/keys: `59m`).
    let line = proc_keys_line(key.split("id=").nth(1).unwrap()).expect("the key is in /proc/keys");
    let timeout = line.split_whitespace().nth(3).unwrap();
    assert!(timeout == "59m" || timeout == "1h", "timeout column {timeout:?}: {line}");
    assert!(line.contains(&format!("kube-credential-cache:{key}")), "{line}");

    let cleared = ok(&w.cmd("kcc").args(["clear", "--all"]).output().unwrap());
    assert!(cleared.contains("removed 1 of 1 cached entry (from the kernel store)"), "{cleared}");
    let third = debug_cache(&w, &[plugin]);
    ok(&third);
    assert_eq!(w.runs("plug"), 2, "clear removed the kernel key");
    clear_all(&w);
}

#[test]
fn keyctl_denied_as_under_dockers_seccomp_profile_falls_to_the_file_and_doctor_says_why() {
    for (errno, words) in [(libc::EPERM, "EPERM"), (libc::ENOSYS, "ENOSYS")] {
        let mut w = kernel_world();
        w.deny_keyctl(errno);
        let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
        let out = debug_cache(&w, &[plugin.to_str().unwrap()]);
        ok(&out);
        let err = stderr(&out);
        assert!(err.contains("backend: file (auto: no secret store reachable: keyring: no D-Bus"), "{err}");
        assert!(err.contains("kernel: the kernel keyring is") && err.contains(words), "{err}");
        assert_eq!(w.store_keys().len(), 1);

        let doctor = w.cmd("kcc").arg("doctor").output().unwrap();
        let text = String::from_utf8_lossy(&doctor.stdout);
        assert!(text.contains("kernel keyring: unusable (") && text.contains(words), "{text}");

        // Forced, it is an error that says what to do; kubectl gets no credential.
        w.set_env("KUBE_CREDENTIAL_CACHE_BACKEND", "kernel");
        let forced = w.cache(&[plugin.to_str().unwrap()]);
        assert_eq!(forced.status.code(), Some(1));
        assert!(stderr(&forced).contains("KUBE_CREDENTIAL_CACHE_BACKEND=kernel but the kernel keyring cannot be used"));
    }
}

#[test]
fn switching_from_the_file_moves_every_plaintext_entry_into_the_kernel_keyring() {
    if !kernel_usable() {
        return;
    }
    let mut w = kernel_world();
    let a = w.plugin("a", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let b = w.plugin("b", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let c = w.plugin("c", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    w.set_env("KUBE_CREDENTIAL_CACHE_BACKEND", "file");
    ok(&w.cache(&[a.to_str().unwrap()]));
    ok(&w.cache(&[b.to_str().unwrap()]));
    assert_eq!(w.store_keys().len(), 2);
    w.set_env("KUBE_CREDENTIAL_CACHE_BACKEND", "auto");
    let out = debug_cache(&w, &[c.to_str().unwrap()]);
    ok(&out);
    assert!(stderr(&out).contains("moved in the kernel keyring"), "{}", stderr(&out));
    assert!(files_containing(&w, SECRET).is_empty(), "plaintext left: {:?}", files_containing(&w, SECRET));
    // The moved entries are hits from the kernel keyring.
    ok(&w.cache(&[a.to_str().unwrap()]));
    ok(&w.cache(&[b.to_str().unwrap()]));
    assert_eq!((w.runs("a"), w.runs("b"), w.runs("c")), (1, 1, 1));
    let rows = w.index_json()["entries"].as_object().unwrap().clone();
    assert_eq!(rows.len(), 3);
    assert!(rows.values().all(|r| r["backend"] == "kernel"), "{rows:?}");
    clear_all(&w);
}

/// A uid of its own per test run, so its persistent keyring starts empty.
fn fresh_uid(offset: u32) -> u32 {
    40_000 + (std::process::id() % 20_000) * 2 + offset
}

/// `kcc …` (or `kcc-cache …`) as `uid`, under a shell (as every kubectl
/// call is, so healing never takes the test for a client).
fn as_uid(w: &World, uid: u32, personality: &str, args: &[&str]) -> Output {
    let id = uid.to_string();
    let mut cmd: Command = w.cmd_direct("setpriv");
    cmd.args(["--reuid", &id, "--regid", &id, "--clear-groups", "--", "/bin/sh", "-c", "\"$0\" \"$@\"; exit $?"])
        .arg(w.bin.join(personality))
        .args(args)
        .env("KUBE_CREDENTIAL_CACHE_DEBUG", "1");
    cmd.output().unwrap()
}

#[test]
fn over_the_default_non_root_quota_every_call_succeeds_and_nothing_is_plaintext() {
    if !kernel_usable() {
        return;
    }
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        skip("entering another uid needs root");
        return;
    }
    let limit = |name: &str| -> u64 {
        fs::read_to_string(format!("/proc/sys/kernel/keys/{name}")).unwrap().trim().parse().unwrap()
    };
    let (max_keys, max_bytes) = (limit("maxkeys"), limit("maxbytes"));
    let w = kernel_world();
    let uid = fresh_uid(0);
    assert!(Command::new("chown").args(["-R", &format!("{uid}:{uid}")]).arg(w.dir.path()).status().unwrap().success());

    // 20 EKS-sized credentials (~1.4 KB each) do not fit in 20,000 bytes.
    let token = |i: usize| format!("{SECRET}-{i:02}-{}", "k".repeat(1300));
    let plugins: Vec<_> = (0..20)
        .map(|i| w.plugin(&format!("p{i:02}"), &credential("v1", &token(i), Some(&in_secs(3600 + 60 * i as i64))), 0.0))
        .collect();
    let mut evicted = 0;
    for (i, p) in plugins.iter().enumerate() {
        let out = as_uid(&w, uid, "kcc-cache", &[p.to_str().unwrap()]);
        let text = ok(&out);
        assert!(text.contains(&token(i)), "call {i} did not print its credential");
        let err = stderr(&out);
        assert!(err.contains("backend: kernel"), "{err}");
        assert!(!err.contains(SECRET), "debug output leaked a token");
        evicted += err.matches("is full: evicted the entry that expires first").count();
    }
    assert!(evicted > 0, "20 credentials of 1.4 KB fit into {max_bytes} bytes?");
    assert!(files_containing(&w, SECRET).is_empty(), "plaintext while the kernel keyring is in use");

    // The newest is a hit; the first ones (expiring first) were given up.
    let newest = plugins.last().unwrap().to_str().unwrap();
    let hit = as_uid(&w, uid, "kcc-cache", &[newest]);
    ok(&hit);
    assert!(stderr(&hit).contains("hit:"), "{}", stderr(&hit));
    assert_eq!(w.runs("p19"), 1);
    let rows = w.index_json()["entries"].as_object().unwrap().clone();
    assert!(rows.len() < 20 && !rows.is_empty(), "{} index rows", rows.len());
    assert_eq!(rows.len() + evicted, 20, "every entry is kept or was evicted once (no over-eviction)");
    assert!(rows.values().all(|r| r["exec"] != "p00"), "the entry expiring first was kept");

    // doctor (as that user) shows the entries and the quota left.
    let doctor = as_uid(&w, uid, "kcc", &["doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout).into_owned();
    assert!(text.contains(&format!("kernel keyring entries: {}", rows.len())), "{text}");
    assert!(text.contains(&format!("keys go to the persistent keyring of uid {uid}")), "{text}");
    let quota = text.lines().find(|l| l.contains("kernel key quota:")).unwrap_or_else(|| panic!("{text}"));
    assert!(
        quota.contains(&format!("of {max_keys} keys")) && quota.contains(&format!("of {max_bytes} bytes")),
        "{quota}"
    );
    let left: u64 = quota.rsplit(" keys, ").next().unwrap().split(' ').next().unwrap().parse().unwrap();
    assert_eq!(
        text.contains("the kernel key quota has"),
        left < 2048,
        "a warning exactly when under 2 KB are left: {text}"
    );

    ok(&as_uid(&w, uid, "kcc", &["clear", "--all"]));
    let after = as_uid(&w, uid, "kcc", &["doctor"]);
    assert!(String::from_utf8_lossy(&after.stdout).contains("kernel keyring entries: 0"));
}

#[test]
fn a_credential_larger_than_the_whole_quota_is_served_uncached_not_written_to_the_file() {
    if !kernel_usable() {
        return;
    }
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        skip("entering another uid needs root");
        return;
    }
    let w = kernel_world();
    let uid = fresh_uid(1);
    assert!(Command::new("chown").args(["-R", &format!("{uid}:{uid}")]).arg(w.dir.path()).status().unwrap().success());
    let big = format!("{SECRET}-{}", "x".repeat(24_000));
    let plugin = w.plugin("big", &credential("v1", &big, Some(&in_secs(3600))), 0.0);
    for _ in 0..2 {
        let out = as_uid(&w, uid, "kcc-cache", &[plugin.to_str().unwrap()]);
        assert!(ok(&out).contains(&big));
        assert!(stderr(&out).contains("served but not cached"), "{}", stderr(&out));
    }
    assert_eq!(w.runs("big"), 2, "not cached, so the plugin runs each time");
    assert!(files_containing(&w, SECRET).is_empty(), "plaintext while the kernel keyring is in use");
}

/// A kcc call for `user` with its own server, as kubectl makes it.
fn cache_as(w: &World, plugin: &std::path::Path, user: &str) {
    let out = w
        .cmd("kcc-cache")
        .arg(plugin)
        .env("KUBE_CREDENTIAL_CACHE_USER", user)
        .env("KUBERNETES_EXEC_INFO", exec_info("v1", Some(&format!("https://{user}.example"))))
        .output()
        .unwrap();
    ok(&out);
}

#[test]
fn orphaned_kernel_keys_are_found_listed_and_removed_by_clear_and_reported_by_doctor() {
    if !kernel_usable() {
        return;
    }
    let w = kernel_world();
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    cache_as(&w, &plugin, "alice");
    cache_as(&w, &plugin, "bob");
    let keys: Vec<String> = w.index_json()["entries"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 2);
    let key_of = |user: &str| keys.iter().find(|k| k.starts_with(&format!("user=\"{user}\""))).unwrap().clone();
    let (alice, bob) = (key_of("alice"), key_of("bob"));
    // An orphan whose credential expired (written without a kernel timeout,
    // as an interrupted or older kcc could leave it), and two keys of other
    // programs: one with another prefix, one that only starts like kcc's.
    let unique = w.dir.path().file_name().unwrap().to_str().unwrap().to_string();
    let stale = format!("user=\"carol\" server=\"https://carol.example\" exec=\"plug\" api=\"v1\" id={unique}");
    add_key_in(&w, &format!("kube-credential-cache:{stale}"), &credential("v1", SECRET, Some(&in_secs(-600))));
    let foreign = [format!("other-program:{unique}"), format!("kube-credential-cache-backup:{unique}")];
    for desc in &foreign {
        add_key_in(&w, desc, "not kcc's");
    }

    // The usual way to clear caches: the index and everything beside it go.
    fs::remove_dir_all(w.store_file().parent().unwrap()).unwrap();
    assert!(w.index_json().as_object().unwrap().is_empty());

    // doctor: the three orphans, counted, with the way out.
    let (report, text) = {
        let json = w.cmd("kcc").args(["doctor", "--json"]).output().unwrap();
        let text = w.cmd("kcc").arg("doctor").output().unwrap();
        (serde_json::from_slice::<serde_json::Value>(&json.stdout).unwrap(), stdout(&text))
    };
    let orphaned: Vec<&str> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["orphaned"] == true && e["backend"] == "kernel")
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        sorted(orphaned.iter().map(|k| k.to_string()).collect()),
        sorted(vec![alice.clone(), bob.clone(), stale.clone()])
    );
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "orphaned-entries")
        .expect("an orphaned-entries finding");
    assert_eq!(finding["severity"], "warning");
    assert!(
        finding["message"].as_str().unwrap().starts_with("3 kcc entries in the kernel keyring without an index entry"),
        "{finding}"
    );
    assert!(finding["fix"].as_str().unwrap().contains("kcc clear --all"), "{finding}");
    assert!(text.contains("(not in the index: an orphan, see warnings)"), "{text}");
    assert!(!text.contains(SECRET) && !report.to_string().contains(SECRET), "doctor printed a token");

    // --dry-run lists them and changes nothing.
    let dry = ok(&w.cmd("kcc").args(["clear", "--all", "--dry-run"]).output().unwrap());
    for k in [&alice, &bob, &stale] {
        assert!(dry.contains(&format!("would remove: {k} (no index entry: found in the kernel store)")), "{dry}");
    }
    assert!(dry.contains("dry run: would remove 3 of 3 cached entries"), "{dry}");
    assert_eq!(proc_keys_with(&unique).len(), 3, "dry run removed a key");
    assert!(proc_keys_line(alice.split("id=").nth(1).unwrap()).is_some(), "dry run removed a key");

    // --expired reads the credential's own expiry: only the stale one.
    let expired = ok(&w.cmd("kcc").args(["clear", "--expired"]).output().unwrap());
    assert!(expired.contains(&format!("removed: {stale} (no index entry")), "{expired}");
    assert!(expired.contains("removed 1 of 3 cached entries (from the kernel store)"), "{expired}");
    // --user and --server match an orphan on its key.
    let user =
        ok(&w.cmd("kcc").args(["clear", "--user", "alice", "--server", "https://alice.example"]).output().unwrap());
    assert!(user.contains("removed 1 of 2 cached entries"), "{user}");
    assert!(gone_soon(alice.split("id=").nth(1).unwrap()), "alice's key is still in the kernel");
    assert!(proc_keys_line(bob.split("id=").nth(1).unwrap()).is_some(), "bob's key went with alice's");
    // Before the clear, bob's orphan is still what his calls are served from.
    cache_as(&w, &plugin, "bob");
    assert_eq!(w.runs("plug"), 2, "bob's orphaned key was served");

    // --key matches an orphan by its key.
    let by_key = ok(&w.cmd("kcc").args(["clear", "--dry-run", "--key", &bob]).output().unwrap());
    assert!(by_key.contains(&format!("would remove: {bob} (no index entry")), "{by_key}");
    assert!(by_key.contains("dry run: would remove 1 of 1 cached entry"), "{by_key}");

    let all = ok(&w.cmd("kcc").args(["clear", "--all"]).output().unwrap());
    assert!(all.contains(&format!("removed: {bob}")), "{all}");
    assert!(gone_soon(bob.split("id=").nth(1).unwrap()), "bob's key is still in the kernel");
    let left: Vec<String> = proc_keys_with(&unique);
    assert_eq!(left.len(), 2, "exactly the two foreign keys are left: {left:?}");
    for desc in &foreign {
        assert!(left.iter().any(|l| l.contains(&format!(" {desc}:"))), "{desc} was touched: {left:?}");
    }
    let doctor = stdout(&w.cmd("kcc").arg("doctor").output().unwrap());
    assert!(!doctor.contains("without an index entry"), "{doctor}");
    cache_as(&w, &plugin, "bob");
    assert_eq!(w.runs("plug"), 3, "after clear --all nothing is served from the kernel");
    clear_all(&w);
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn every_world_has_kernel_keyrings_of_its_own_and_they_go_with_it() {
    if !kernel_usable() {
        return;
    }
    let a = kernel_world();
    let b = kernel_world();
    let plugin = a.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    ok(&a.cache(&[plugin.to_str().unwrap()]));
    let key = a.index_json()["entries"].as_object().unwrap().keys().next().unwrap().clone();
    let id = key.split("id=").nth(1).unwrap().to_string();
    assert!(proc_keys_line(&id).is_some());
    // Another world (another test) neither sees nor clears it.
    let other = ok(&b.cmd("kcc").args(["clear", "--all", "--dry-run"]).output().unwrap());
    assert!(!other.contains(&id), "{other}");
    ok(&b.cmd("kcc").args(["clear", "--all"]).output().unwrap());
    assert!(proc_keys_line(&id).is_some(), "another world's clear removed this world's key");
    // The test forgets to clear: the key still goes with its world.
    drop(a);
    assert!(gone_soon(&id), "a dropped world's key stayed in the kernel: {:?}", proc_keys_line(&id));
}

/// Whether the key whose description contains `needle` leaves `/proc/keys`
/// within 2 s: an unlinked key goes when the kernel's key collector runs,
/// a moment after the last reference.
pub fn gone_soon(needle: &str) -> bool {
    (0..100).any(|_| {
        if proc_keys_line(needle).is_none() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        false
    })
}
