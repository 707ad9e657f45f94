//! The kernel keyring backend, for real: the persistent keyring of the uid
//! running the tests (root here and in CI) and, for quotas, of a fresh
//! non-root uid with the kernel's default quota (200 keys, 20,000 bytes),
//! entered with `setpriv`. The failure modes of Docker's seccomp profile are
//! a real seccomp filter ([`World::deny_keyctl`]).
//!
//! clear, refresh ahead and healing on this backend are the same tests as on
//! the file, run with `KCC_TEST_BACKEND=kernel` (see `.ci/kernel-keyring`).

use std::fs;
use std::process::{Command, Output};

use crate::util::*;

/// Whether the kernel keyring can be used here; a skip (a failure under
/// `KCC_NO_SKIP=1`) when not.
fn kernel_usable() -> bool {
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

fn kernel_world() -> World {
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
fn proc_keys_line(needle: &str) -> Option<String> {
    fs::read_to_string("/proc/keys")
        .ok()?
        .lines()
        .find(|l| l.contains("kube-credential-cache:") && l.contains(needle))
        .map(String::from)
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
