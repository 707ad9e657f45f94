//! The fuzzing corpus (`tests/corpus/<target>/`: the nastiest known inputs
//! and every input a fuzzer found a bug with) driven through the built
//! binary wherever the input reaches it: plugin output, `KUBERNETES_EXEC_INFO`,
//! the store file, kubeconfigs for `inject` and `doctor`. Every run must end
//! within a time bound and a memory bound, without a panic, and must either
//! serve a valid credential or fail with a clear error and cache nothing bad.
//! (`src/fuzz.rs` runs the same inputs through every fuzz target's
//! properties: `fuzz::tests::the_corpus_passes_every_target`.)

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// Each run's time bound (debug build, a loaded 2-core machine).
const TIME_BOUND: Duration = Duration::from_secs(20);
/// Each run's peak RSS bound.
const RSS_BOUND_KIB: i64 = 200 * 1024;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 5, "{} holds only {} inputs", dir.display(), files.len());
    files
}

/// Runs `cmd` with a time bound; returns its output and peak RSS (KiB).
/// A run past the bound is killed and fails the test.
#[cfg(unix)]
pub fn run_bounded(cmd: &mut Command, what: &str) -> (Output, i64) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let (mut status, mut usage): (i32, libc::rusage) = (0, unsafe { std::mem::zeroed() });
    loop {
        // SAFETY: pid is our own unreaped child; status and usage are valid out-pointers.
        let waited = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if waited == pid {
            break;
        }
        assert_eq!(waited, 0, "wait4: {}", std::io::Error::last_os_error());
        if started.elapsed() > TIME_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {TIME_BOUND:?} (a hang)");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::mem::forget(child); // already reaped
    use std::os::unix::process::ExitStatusExt;
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    };
    (output, usage.ru_maxrss)
}

/// No panic (exit 101, "panicked"), no signal, within the memory bound, and
/// an error (when it failed) that is one plain `kcc:` line or more.
#[track_caller]
fn assert_clean(out: &Output, rss_kib: i64, what: &str) {
    let err = stderr(out);
    assert!(!err.contains("panicked") && out.status.code() != Some(101), "{what}: panic\n{err}");
    assert!(out.status.code().is_some(), "{what}: killed by a signal ({:?})\n{err}", out.status);
    assert!(rss_kib < RSS_BOUND_KIB, "{what}: peak RSS {rss_kib} KiB");
    if !out.status.success() {
        // doctor reports its findings on stdout, everything else on stderr.
        assert!(err.contains("kcc") || stdout(out).contains("problem"), "{what}: failed without saying why: {err}");
    }
}

#[cfg(unix)]
#[test]
fn every_plugin_output_in_the_corpus_is_served_valid_or_refused_with_nothing_cached() {
    let w = World::new();
    let (mut served, mut refused) = (0, 0);
    for (i, input) in corpus("exec_credential").into_iter().enumerate() {
        let what = input.display().to_string();
        // A plugin of its own per input: one failing plugin's back-off must not answer for the next.
        let plugin = w.script(&format!("corpus-plugin-{i}"), &format!("cat '{}'", input.display()));
        let (out, rss) = run_bounded(w.cmd("kcc-cache").arg(&plugin), &what);
        assert_clean(&out, rss, &what);
        let bytes = fs::read(&input).unwrap();
        if out.status.success() {
            // Served: exactly a credential kcc itself accepts, and now cached.
            assert!(kcc::credential::validate(&out.stdout).is_ok(), "{what}: served an invalid credential");
            assert!(kcc::credential::validate(&bytes).is_ok(), "{what}: served although the output is invalid");
            let (again, rss) = run_bounded(w.cmd("kcc-cache").arg(&plugin), &what);
            assert_clean(&again, rss, &what);
            served += 1;
        } else {
            assert!(kcc::credential::validate(&bytes).is_err(), "{what}: a valid credential refused: {}", stderr(&out));
            assert!(stderr(&out).contains("nothing was cached"), "{what}: {}", stderr(&out));
            refused += 1;
        }
        // What is cached always parses and never holds a refused input.
        if w.store_file().exists() {
            let store = w.store_text();
            kcc::store::file::parse_all(store.as_bytes()).unwrap_or_else(|e| panic!("{what}: store corrupt: {e}"));
        }
        let _ = fs::remove_file(w.store_file());
    }
    eprintln!("plugin outputs: {served} served, {refused} refused");
    assert!(served >= 3 && refused >= 10, "{served} served, {refused} refused");
}

#[cfg(unix)]
#[test]
fn a_60_mb_single_line_credential_and_4_mb_of_nesting_are_refused_in_bounded_time_and_memory() {
    let w = World::new();
    // 60 MB that looks like a credential (one huge token): refused at 4 MiB.
    let huge = w.script(
        "huge",
        r#"printf '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"'; head -c 62914560 /dev/zero | tr '\0' a; printf '"}}'"#,
    );
    let (out, rss) = run_bounded(w.cmd("kcc-cache").arg(&huge), "60 MB credential");
    assert_clean(&out, rss, "60 MB credential");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("more than 4 MiB"), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("aaaaaaaa"),
        "the token is quoted: {}",
        &stderr(&out)[..200.min(stderr(&out).len())]
    );
    // Just under the cap, 2 MB deep: serde_json's recursion limit refuses it at once.
    let deep = w.script("deep", "head -c 2000000 /dev/zero | tr '\\0' '['");
    let started = Instant::now();
    let (out, rss) = run_bounded(w.cmd("kcc-cache").arg(&deep), "deep nesting");
    assert_clean(&out, rss, "deep nesting");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("recursion limit"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(!w.store_file().exists() || w.store_keys().is_empty(), "something was cached");
}

#[cfg(unix)]
#[test]
fn every_exec_info_in_the_corpus_still_gets_the_credential_and_a_hit() {
    let w = World::new();
    let plugin = w.plugin("p", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    for (i, input) in corpus("exec_info").into_iter().enumerate() {
        let what = input.display().to_string();
        let info = String::from_utf8_lossy(&fs::read(&input).unwrap()).replace('\0', "");
        for round in 0..2 {
            let (out, rss) = run_bounded(w.cmd("kcc-cache").arg(&plugin).env("KUBERNETES_EXEC_INFO", &info), &what);
            assert_clean(&out, rss, &what);
            // An apiVersion kcc cannot serve is refused by name; anything else is served.
            if out.status.success() {
                assert!(stdout(&out).contains(SECRET), "{what}");
            } else {
                assert!(stderr(&out).contains("apiVersion"), "{what}: {}", stderr(&out));
            }
            let _ = round;
        }
        assert!(w.runs("p") <= 2 * (i + 1), "{what}: ran {} times", w.runs("p"));
    }
}

#[cfg(unix)]
#[test]
fn every_store_file_in_the_corpus_is_survived_by_cache_clear_and_doctor() {
    for input in corpus("cache_file") {
        let what = input.display().to_string();
        let w = World::new();
        let plugin = w.plugin("p", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
        fs::create_dir_all(w.store_file().parent().unwrap()).unwrap();
        fs::write(w.store_file(), fs::read(&input).unwrap()).unwrap();
        let (out, rss) = run_bounded(w.cmd("kcc-cache").arg(&plugin), &what);
        assert_clean(&out, rss, &what);
        assert!(ok(&out).contains(SECRET), "{what}: a corrupt store must not stop the credential");
        let (out, rss) = run_bounded(w.cmd("kcc-cache").arg(&plugin), &what);
        assert_clean(&out, rss, &what);
        ok(&out);
        for args in [&["doctor"][..], &["clear", "--all", "--dry-run"], &["clear", "--expired"]] {
            let (out, rss) = run_bounded(w.cmd("kcc").args(args), &format!("{what}: kcc {args:?}"));
            assert_clean(&out, rss, &what);
        }
    }
}

#[cfg(unix)]
#[test]
fn every_kubeconfig_in_the_corpus_is_injected_or_refused_by_name_and_never_damaged() {
    let w = World::new();
    let mut refused = 0;
    for input in corpus("kubeconfig") {
        let what = input.display().to_string();
        let file = w.path("config");
        let original = fs::read(&input).unwrap();
        fs::write(&file, &original).unwrap();
        let started = Instant::now();
        let (out, rss) = run_bounded(w.cmd("kcc").args(["inject", "-i"]).arg(&file), &what);
        assert_clean(&out, rss, &what);
        assert!(started.elapsed() < Duration::from_secs(5), "{what}: inject took {:?}", started.elapsed());
        if !out.status.success() {
            assert!(
                stderr(&out).contains(&*file.to_string_lossy()),
                "{what}: the error names no file: {}",
                stderr(&out)
            );
            assert_eq!(fs::read(&file).unwrap(), original, "{what}: a refused kubeconfig was changed");
            refused += 1;
        } else {
            // What kcc wrote loads again, and restores.
            let (out, rss) = run_bounded(w.cmd("kcc").args(["inject", "-i", "-r"]).arg(&file), &what);
            assert_clean(&out, rss, &what);
            ok(&out);
        }
        let (out, rss) = run_bounded(w.cmd("kcc").args(["doctor", "--kubeconfig"]).arg(&file), &what);
        assert_clean(&out, rss, &what);
        let _ = fs::remove_file(file.with_file_name("config.kcc-backup"));
    }
    assert!(refused >= 5, "only {refused} refused");
}

#[cfg(unix)]
#[test]
fn a_billion_laughs_kubeconfig_is_refused_at_once_naming_the_aliases() {
    let w = World::new();
    let file = w.path("config");
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/kubeconfig/billion-laughs.yaml");
    fs::copy(&input, &file).unwrap();
    let started = Instant::now();
    let (out, rss) = run_bounded(w.cmd("kcc").args(["inject", "-i"]).arg(&file), "billion laughs");
    assert_clean(&out, rss, "billion laughs");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("aliases expand to more than 1024 KiB"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    // Against a tiny kubeconfig's run: the peak counts what the child shared with the test process.
    let small = w.path("small");
    fs::write(&small, "kind: Config\nusers: []\n").unwrap();
    let (_, baseline) = run_bounded(w.cmd("kcc").arg("inject").arg(&small), "small kubeconfig");
    assert!(rss - baseline < 64 * 1024, "peak RSS {rss} KiB against {baseline} KiB for a tiny kubeconfig");
    assert_eq!(fs::read(&file).unwrap(), fs::read(&input).unwrap());
}
