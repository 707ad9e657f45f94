//! Torture tests: kcc killed at random moments, hostile plugins, hostile
//! inputs and hostile file systems. Each test names the promise it checks;
//! the README's guarantee table points here.
//!
//! Randomness comes from a tiny seeded PRNG ([`Rng`]); a failing run prints
//! its seed, and `KCC_TORTURE_SEED=<n>` replays it.

#[cfg(unix)]
use std::collections::BTreeSet;
#[cfg(unix)]
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// xorshift64*: enough randomness for choosing moments, no dependency.
#[cfg(unix)]
pub struct Rng(u64);

#[cfg(unix)]
impl Rng {
    /// Seeded from `KCC_TORTURE_SEED`, else from the clock; prints the seed.
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("KCC_TORTURE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
        eprintln!("{test}: KCC_TORTURE_SEED={seed}");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Waits for `child` at most `limit`; kills it and panics when it takes longer.
#[track_caller]
fn wait_within(mut child: Child, limit: Duration, what: &str) -> std::process::Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{what} still ran after {limit:?} (blocked?); stderr: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(unix)]
fn killed_by_sigkill(status: &std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGKILL)
}

/// The cache key `kcc-cache PLUGIN ARG` computes with `KUBE_CREDENTIAL_CACHE_USER=user`
/// and no other key variable set (as in a [`World`]).
#[cfg(unix)]
fn key_of(plugin: &Path, arg: &str, user: &str) -> String {
    let key_env = kcc::config::Config::from_lookup(|_| None).unwrap().key_env;
    let args = [OsString::from(arg)];
    let env = |name: &str| (name == kcc::config::ENV_USER).then(|| OsString::from(user));
    kcc::key::for_call(plugin.as_os_str(), &args, &key_env, env, &kcc::credential::ExecInfo::default()).text
}

const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://127.0.0.1:6443
contexts:
- name: prod
  context:
    cluster: prod
    user: alice
current-context: prod
users:
- name: alice
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: aws
      args:
      - eks
      - get-token
      - --cluster-name
      - prod
      env:
      - name: AWS_PROFILE
        value: prod
- name: bob
  user:
    token: static-token
";

/// What one chaos process was.
#[cfg(unix)]
#[derive(Debug, Clone)]
enum Job {
    /// `kcc-cache plugin ARG` as user `chaos` (clears may remove it).
    Cache(String),
    /// `kcc-cache plugin ARG` as user `keep` (nothing ever clears it).
    Keep(String),
    /// `kcc clear …` that never selects a survivor or a `keep` entry.
    Clear(Vec<String>),
    /// `kcc inject -i` or `kcc inject -i -r`.
    Inject { restore: bool },
}

/// Every promise of the store and the kubeconfig at a quiet moment.
#[cfg(unix)]
fn check_world(w: &World, kubeconfig: &Path, versions: &[Vec<u8>; 2], must_have: &BTreeSet<String>, seed_note: &str) {
    let text = w.store_text();
    let store: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{seed_note}: the store does not parse ({e}):\n{text}"));
    let creds = store["credentials"].as_object().expect("credentials object");
    for key in must_have {
        assert!(creds.contains_key(key), "{seed_note}: live entry lost: {key}\nstore: {text}");
    }
    let index = w.store_file().with_file_name("cache.index.json");
    if let Ok(index_text) = fs::read_to_string(&index) {
        serde_json::from_str::<serde_json::Value>(&index_text)
            .unwrap_or_else(|e| panic!("{seed_note}: the index does not parse ({e}):\n{index_text}"));
    }
    let now = fs::read(kubeconfig).unwrap();
    assert!(
        versions.contains(&now),
        "{seed_note}: the kubeconfig is neither the original nor the injected version:\n{}",
        String::from_utf8_lossy(&now)
    );
    #[allow(deprecated)]
    let parsed: serde_yml::Value = serde_yml::from_slice(&now).expect("kubeconfig parses");
    assert_eq!(parsed["kind"].as_str(), Some("Config"));
}

#[cfg(unix)]
#[test]
fn random_sigkills_of_cache_clear_and_inject_lose_nothing_and_leave_no_blocking_lock() {
    const KILLS: usize = 200;
    const TIME_BUDGET: Duration = Duration::from_secs(45);
    let mut rng = Rng::from_env("sigkill torture");
    let seed_note = format!("(replay with KCC_TORTURE_SEED={})", rng.0);
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_BACKEND", "file");
    // A big credential makes every store write take a while: more moments to be killed in.
    let token = format!("{SECRET}{}", "t".repeat(4000));
    let cred = credential("v1", &token, Some(&in_secs(3600)));
    let out = w.path("plugin.out");
    fs::write(&out, &cred).unwrap();
    let plugin = w.script("plug", &format!("sleep \"${{PLUGIN_DELAY:-0}}\"\ncat '{}'", out.display()));
    let kubeconfig = w.path("kubeconfig");
    fs::write(&kubeconfig, KUBECONFIG).unwrap();

    let run = |job: &Job, delay_ms: u64| -> Child {
        let mut cmd = match job {
            Job::Cache(arg) | Job::Keep(arg) => {
                let user = if matches!(job, Job::Keep(_)) { "keep" } else { "chaos" };
                let mut c = w.cmd("kcc-cache");
                c.arg(&plugin).arg(arg).env("KUBE_CREDENTIAL_CACHE_USER", user);
                c
            }
            Job::Clear(args) => {
                let mut c = w.cmd("kcc");
                c.arg("clear").args(args);
                c
            }
            Job::Inject { restore } => {
                let mut c = w.cmd("kcc");
                c.args(["inject", "-i"]);
                if *restore {
                    c.arg("-r");
                }
                c.arg(&kubeconfig);
                c
            }
        };
        cmd.env("PLUGIN_DELAY", format!("0.{delay_ms:03}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    // The two versions the kubeconfig may ever have: kcc's rendering of it,
    // and that rendering injected.
    for restore in [false, true] {
        ok(&run(&Job::Inject { restore }, 0).wait_with_output().unwrap());
    }
    let original = fs::read(&kubeconfig).unwrap();
    ok(&run(&Job::Inject { restore: false }, 0).wait_with_output().unwrap());
    let injected = fs::read(&kubeconfig).unwrap();
    assert_ne!(original, injected);
    let versions = [original, injected];

    // Survivors: written before the chaos, never selected by any clear.
    let mut must_have = BTreeSet::new();
    for i in 0..5 {
        let arg = format!("survivor-{i}");
        ok(&run(&Job::Keep(arg.clone()), 0).wait_with_output().unwrap());
        must_have.insert(key_of(&plugin, &arg, "keep"));
    }
    check_world(&w, &kubeconfig, &versions, &must_have, &seed_note);

    let started = Instant::now();
    let (mut kills, mut rounds, mut served) = (0, 0, 0);
    while kills < KILLS {
        assert!(
            started.elapsed() < TIME_BUDGET,
            "only {kills} of {KILLS} kills in {TIME_BUDGET:?} ({rounds} rounds) {seed_note}"
        );
        rounds += 1;
        let jobs: Vec<Job> = (0..8)
            .map(|_| match rng.below(10) {
                0..=3 => Job::Cache(format!("chaos-{}", rng.below(12))),
                4..=5 => Job::Keep(format!("keep-{}", rng.below(40))),
                6..=7 => Job::Clear(match rng.below(3) {
                    0 => vec!["--user".into(), "chaos".into()],
                    1 => vec!["--expired".into()],
                    _ => vec!["--key".into(), key_of(&plugin, &format!("chaos-{}", rng.below(12)), "chaos")],
                }),
                _ => Job::Inject { restore: rng.below(2) == 0 },
            })
            .collect();
        let mut children: Vec<(Job, Child)> = jobs.into_iter().map(|j| (j.clone(), run(&j, rng.below(30)))).collect();
        // Kill some at random moments while the rest run on.
        let victims = 3 + rng.below(4) as usize;
        for _ in 0..victims {
            std::thread::sleep(Duration::from_micros(rng.below(15_000)));
            let i = rng.below(children.len() as u64) as usize;
            let _ = children[i].1.kill();
        }
        for (job, child) in children {
            let out = wait_within(child, Duration::from_secs(10), &format!("{job:?}"));
            if killed_by_sigkill(&out.status) {
                kills += 1;
                continue;
            }
            assert!(out.status.success(), "{job:?} failed {seed_note}: {:?}\n{}", out.status, stderr(&out));
            match job {
                Job::Cache(_) | Job::Keep(_) => {
                    assert!(stdout(&out).contains(SECRET), "{job:?} was not served");
                    served += 1;
                    if let Job::Keep(arg) = &job {
                        must_have.insert(key_of(&plugin, arg, "keep"));
                    }
                }
                Job::Clear(_) | Job::Inject { .. } => {}
            }
        }
        check_world(&w, &kubeconfig, &versions, &must_have, &seed_note);
    }
    eprintln!("{kills} SIGKILLs in {rounds} rounds, {served} callers served, {:?}", started.elapsed());

    // No lock left that blocks: a fresh key, an inject and a clear all finish promptly.
    let fresh = wait_within(run(&Job::Cache("after-the-chaos".into()), 0), Duration::from_secs(5), "fresh cache call");
    assert!(stdout(&ok_output(fresh)).contains(SECRET));
    for restore in [false, true] {
        ok_output(wait_within(run(&Job::Inject { restore }, 0), Duration::from_secs(2), "inject after the chaos"));
    }
    check_world(&w, &kubeconfig, &versions, &must_have, &seed_note);
    ok_output(wait_within(run(&Job::Clear(vec!["--all".into()]), 0), Duration::from_secs(5), "clear --all"));
    assert!(w.store_keys().is_empty(), "clear --all removed everything");
    let holding_the_token: Vec<_> = w
        .files()
        .into_iter()
        .filter(|f| f.parent() == w.store_file().parent() && fs::read(f).is_ok_and(|b| contains(&b, SECRET.as_bytes())))
        .collect();
    assert!(
        holding_the_token.is_empty(),
        "after clear --all no file in the store holds a token: {holding_the_token:?}"
    );
    let beside_kubeconfig: Vec<String> = fs::read_dir(w.path(""))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("kubeconfig"))
        .collect();
    eprintln!("beside the kubeconfig: {beside_kubeconfig:?}");
    assert!(!beside_kubeconfig.iter().any(|n| n.ends_with(".tmp")), "no temp file left: {beside_kubeconfig:?}");
    for backup in beside_kubeconfig.iter().filter(|n| n.contains(".kcc-backup")) {
        let content = fs::read(w.path(backup)).unwrap();
        assert!(
            versions.contains(&content),
            "backup {backup} is a whole version: {}",
            String::from_utf8_lossy(&content)
        );
    }
}

#[cfg(unix)]
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[track_caller]
fn ok_output(out: std::process::Output) -> std::process::Output {
    ok(&out);
    out
}

#[test]
fn a_kubeconfig_lock_left_by_a_killed_kcc_is_taken_over_but_a_live_one_is_respected() {
    let w = World::new();
    let kubeconfig = w.path("kubeconfig");
    fs::write(&kubeconfig, KUBECONFIG).unwrap();
    let lock = w.path("kubeconfig.lock");
    let inject = |restore: bool| {
        let mut c = w.cmd("kcc");
        c.args(["inject", "-i"]);
        if restore {
            c.arg("-r");
        }
        c.arg(&kubeconfig).stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    // What a SIGKILLed kcc leaves: its marked lock file, nobody holding it.
    fs::write(&lock, kcc::kubeconfig::KCC_LOCK_MARK).unwrap();
    ok_output(wait_within(inject(false), Duration::from_secs(2), "inject over a stale kcc lock"));
    assert!(fs::read_to_string(&kubeconfig).unwrap().contains("kcc-cache"));
    assert!(!lock.exists(), "the lock is released afterwards");

    // A live kcc holds the advisory lock on its marked file: wait, then fail.
    fs::write(&lock, kcc::kubeconfig::KCC_LOCK_MARK).unwrap();
    let held = kcc::lock::FileLock::try_lock_open_file(fs::File::open(&lock).unwrap(), &lock).unwrap().unwrap();
    let out = wait_within(inject(true), Duration::from_secs(10), "inject against a live lock");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("locked by another program"), "{}", stderr(&out));
    assert!(lock.exists(), "a live lock is never removed");
    drop(held);
    fs::remove_file(&lock).unwrap();
    let leftovers: Vec<_> = fs::read_dir(w.path("")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(!leftovers.iter().any(|n| n.to_string_lossy().contains(".tmp")), "{leftovers:?}");
}

/// Runs `cmd` to the end and returns its output and its peak RSS in KiB
/// (`wait4` on this child alone, so tests running in parallel do not count).
#[cfg(unix)]
fn output_with_max_rss(cmd: &mut std::process::Command) -> (std::process::Output, i64) {
    use std::io::Read;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let mut stderr_bytes = Vec::new();
    err.read_to_end(&mut stderr_bytes).unwrap();
    let stdout_bytes = reader.join().unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: pid is our own unreaped child; status and usage are valid out-pointers.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    use std::os::unix::process::ExitStatusExt;
    let output = std::process::Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: stdout_bytes,
        stderr: stderr_bytes,
    };
    std::mem::forget(child); // already reaped
    (output, usage.ru_maxrss)
}

#[cfg(unix)]
#[test]
fn a_plugin_printing_50_mb_is_stopped_with_bounded_memory_and_nothing_cached() {
    let w = World::new();
    let normal = w.plugin("normal", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let (out, baseline_kib) = output_with_max_rss(w.cmd("kcc-cache").arg(&normal));
    ok(&out);
    let flood = w.script("flood", "exec head -c 52428800 /dev/zero");
    let (out, flood_kib) = output_with_max_rss(w.cmd("kcc-cache").arg(&flood));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(err.contains("'") && err.contains("flood") && err.contains("more than 4 MiB"), "{err}");
    assert!(err.contains("nothing was cached"), "{err}");
    let grown_mib = (flood_kib - baseline_kib) / 1024;
    eprintln!("peak RSS: {baseline_kib} KiB for a normal miss, {flood_kib} KiB against a 50 MB plugin");
    assert!(grown_mib < 16, "kcc grew by {grown_mib} MiB reading a 50 MB plugin output");
    assert_eq!(w.store_keys().len(), 1, "only the normal credential is cached");
}

#[test]
fn a_plugin_that_never_exits_is_stopped_at_the_timeout_with_a_clear_error() {
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_PLUGIN_TIMEOUT", "1s");
    let cred = credential("v1", SECRET, Some(&in_secs(3600)));
    let out_file = w.path("cred.json");
    fs::write(&out_file, &cred).unwrap();
    for (name, body) in [
        ("hangs", "exec sleep 1000".to_string()),
        // Prints a whole credential, closes stdout, but never exits: not done yet.
        ("lingers", format!("cat '{}'\nexec sleep 1000 >&-", out_file.display())),
    ] {
        let plugin = w.script(name, &body);
        let started = Instant::now();
        let child = w.cmd("kcc-cache").arg(&plugin).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let out = wait_within(child, Duration::from_secs(10), name);
        assert!(started.elapsed() < Duration::from_secs(5), "{name}: stopped soon after the 1s timeout");
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{name}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("'{}'", plugin.display()))
                && err.contains("within 1s")
                && err.contains("KUBE_CREDENTIAL_CACHE_PLUGIN_TIMEOUT"),
            "{name}: {err}"
        );
        assert!(err.contains("nothing was cached") && !err.contains(SECRET), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
    }
    assert!(w.store_keys().is_empty());
}

#[test]
fn a_plugin_that_closes_stdout_early_is_judged_by_its_exit_and_its_output() {
    let w = World::new();
    let cred = credential("v1", SECRET, Some(&in_secs(3600)));
    let out_file = w.path("cred.json");
    fs::write(&out_file, &cred).unwrap();
    let cut = &cred[..cred.find(SECRET).unwrap() + 10];
    // A credential cut short, then a clean exit: a clear error, the token never shown.
    let partial = w.script("partial", &format!("printf '%s' '{cut}'\nexec >&-\nsleep 0.2\nexit 0"));
    let out = w.cache(&[partial.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("did not print a usable ExecCredential") && err.contains("nothing was cached"), "{err}");
    assert!(!err.contains(&SECRET[..10]), "a cut-off credential's token is never quoted: {err}");
    // A whole credential, stdout closed, then a failure: kcc waits for the exit, like kubectl.
    let fails_late = w.script("fails-late", &format!("cat '{}'\nexec >&-\nsleep 0.3\nexit 3", out_file.display()));
    let out = w.cache(&[fails_late.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "");
    // The same with a clean exit is served.
    let ok_late = w.script("ok-late", &format!("cat '{}'\nexec >&-\nsleep 0.3", out_file.display()));
    assert!(ok(&w.cache(&[ok_late.to_str().unwrap()])).contains(SECRET));
    assert_eq!(w.store_keys().len(), 1, "only the clean run is cached");
}

#[cfg(unix)]
fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[cfg(unix)]
fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
}

#[cfg(unix)]
fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A uid that is not ours (tests run as root here; as anyone else chown fails).
#[cfg(unix)]
const NOBODY: u32 = 65534;

#[cfg(unix)]
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(unix)]
#[test]
fn a_store_directory_writable_by_others_is_repaired_when_ours() {
    let w = World::new();
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let dir = w.store_file().parent().unwrap().to_path_buf();
    fs::create_dir_all(&dir).unwrap();
    set_mode(&dir, 0o777);
    let first = w.cache(&[plugin.to_str().unwrap()]);
    assert!(stdout(&first).contains(SECRET));
    let err = stderr(&first);
    assert!(err.contains(&dir.display().to_string()) && err.contains("0777") && err.contains("0700"), "{err}");
    assert_eq!(err.lines().count(), 1, "one warning: {err}");
    assert_eq!(mode_of(&dir), 0o700);
    let second = w.cache(&[plugin.to_str().unwrap()]);
    assert_eq!(stderr(&second), "", "repaired once, then quiet");
    assert_eq!(w.runs("plug"), 1, "and cached");
}

#[cfg(unix)]
#[test]
fn a_store_directory_writable_by_others_is_refused_when_not_ours_or_shared() {
    if !running_as_root() {
        skip("needs root to give a directory to another uid");
        return;
    }
    for (what, owner, mode) in [("another user's", NOBODY, 0o777), ("a sticky shared", 0, 0o1777)] {
        let w = World::new();
        let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
        let dir = w.store_file().parent().unwrap().to_path_buf();
        fs::create_dir_all(&dir).unwrap();
        chown(&dir, owner);
        set_mode(&dir, mode);
        for _ in 0..2 {
            let out = w.cache(&[plugin.to_str().unwrap()]);
            assert!(out.status.success() && stdout(&out).contains(SECRET), "{what}: served anyway");
            let err = stderr(&out);
            assert!(err.contains(&dir.display().to_string()) && err.contains("writable by other users"), "{err}");
            assert!(err.contains("KUBE_CREDENTIAL_CACHE_FILE"), "says what to do: {err}");
        }
        assert_eq!(w.runs("plug"), 2, "{what}: nothing cached");
        assert_eq!(mode_of(&dir), mode, "{what}: not kcc's to change");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "{what}: nothing written there");
    }
}

#[cfg(unix)]
#[test]
fn a_store_file_owned_by_someone_else_is_never_served_and_is_replaced() {
    if !running_as_root() {
        skip("needs root to give a file to another uid");
        return;
    }
    let w = World::new();
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    ok(&w.cache(&[plugin.to_str().unwrap()]));
    // Someone else's file with a (planted) credential for the very same key.
    let planted = w.store_text().replace(SECRET, "planted-token");
    fs::write(w.store_file(), &planted).unwrap();
    chown(&w.store_file(), NOBODY);
    let out = w.cache(&[plugin.to_str().unwrap()]);
    assert!(stdout(&out).contains(SECRET) && !stdout(&out).contains("planted-token"));
    assert!(stderr(&out).contains("not by you"), "{}", stderr(&out));
    assert_eq!(w.runs("plug"), 2);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(w.store_file()).unwrap().uid(), 0, "replaced by our own file");
    assert!(!w.store_text().contains("planted-token"));
}

#[cfg(unix)]
#[test]
fn a_store_file_replaced_by_a_symlink_is_neither_followed_nor_written_through() {
    let w = World::new();
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let p = plugin.to_str().unwrap();
    ok(&w.cache(&[p]));
    // The symlink points at a valid store holding a planted credential for this key.
    let elsewhere = w.path("elsewhere.json");
    let planted = w.store_text().replace(SECRET, "planted-token");
    fs::write(&elsewhere, &planted).unwrap();
    fs::remove_file(w.store_file()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, w.store_file()).unwrap();
    for args in [vec![p, "other-key"], vec![p]] {
        let out = w.cache(&args);
        assert!(ok(&out).contains(SECRET), "the planted credential is not served through the link");
        let err = stderr(&out);
        assert!(err.contains("is a symbolic link") && err.contains("not cached"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(w.runs("plug"), 3, "served uncached while the link is there");
    assert_eq!(fs::read_to_string(&elsewhere).unwrap(), planted, "the link's target is never written");
    assert!(w.store_file().is_symlink(), "the link is the user's to fix");
    fs::remove_file(w.store_file()).unwrap();

    // A symlinked lock file is not followed either: the call is served, the target untouched.
    let lock = w.store_file().with_file_name("cache.lock");
    let _ = fs::remove_file(&lock);
    let victim = w.path("victim");
    fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let out = w.cache(&[p, "third-key"]);
    assert!(ok(&out).contains(SECRET));
    assert!(stderr(&out).contains("not cached"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
}

#[cfg(unix)]
#[test]
fn a_symlinked_store_directory_is_used_when_its_target_is_private() {
    let w = World::new();
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let target = w.path("real-cache-dir");
    fs::create_dir(&target).unwrap();
    set_mode(&target, 0o700);
    std::os::unix::fs::symlink(&target, w.store_file().parent().unwrap()).unwrap();
    ok(&w.cache(&[plugin.to_str().unwrap()]));
    ok(&w.cache(&[plugin.to_str().unwrap()]));
    assert_eq!(w.runs("plug"), 1, "a directory link is the user's choice and is followed");
    assert!(target.join("cache.json").is_file());
    // The same link to a directory others can write to and kcc does not own: refused.
    if running_as_root() {
        chown(&target, NOBODY);
        set_mode(&target, 0o777);
        let out = w.cache(&[plugin.to_str().unwrap(), "x"]);
        assert!(stdout(&out).contains(SECRET));
        assert!(stderr(&out).contains("writable by other users"), "{}", stderr(&out));
    }
}

#[test]
fn hostile_user_names_and_64_kb_arguments_get_distinct_keys_and_exact_clears() {
    let w = World::new();
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let huge = "a\"'=\n\\é".repeat(64 * 1024 / 8);
    let users = [
        "o'brien \"the\" admin",
        "line1\nline2",
        "日本語ユーザー 🚀",
        "a=b c",
        "user=\"x\" server=\"y\"",
        "tab\there",
        "plain",
    ];
    let call = |user: &str, arg: &str| {
        w.cmd("kcc-cache")
            .arg(&plugin)
            .arg(arg)
            .arg("")
            .env("KUBE_CREDENTIAL_CACHE_USER", user)
            .env("KUBERNETES_EXEC_INFO", exec_info("v1", Some("https://k\"\n.example")))
            .output()
            .unwrap()
    };
    for user in users {
        assert!(ok(&call(user, &huge)).contains(SECRET), "{user:?}");
        assert!(ok(&call(user, &huge)).contains(SECRET), "{user:?}");
    }
    assert_eq!(w.runs("plug"), users.len(), "each user cached once, then served");
    assert!(ok(&call("plain", "short")).contains(SECRET));
    let keys = w.store_keys();
    assert_eq!(keys.len(), users.len() + 1, "distinct keys");
    assert!(keys.iter().all(|k| !k.contains('\n')), "keys are one line");

    let doctor = w.cmd("kcc").args(["doctor", "--json"]).env("KUBECONFIG", w.path("none")).output().unwrap();
    assert!(!stderr(&doctor).contains("panicked"), "{}", stderr(&doctor));
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).expect("doctor --json is JSON");
    assert!(report.is_object());
    let plain = w.cmd("kcc").arg("doctor").env("KUBECONFIG", w.path("none")).output().unwrap();
    assert!(!stderr(&plain).contains("panicked") && plain.status.code().is_some_and(|c| c < 100));

    for (i, user) in users.iter().enumerate() {
        let out = ok(&w.cmd("kcc").args(["clear", "--user", user]).output().unwrap());
        assert!(!out.contains(SECRET));
        let left = w.store_keys();
        let expected = users.len() - i - if *user == "plain" { 1 } else { 0 };
        assert_eq!(left.len(), expected, "clear --user {user:?} removed exactly its entries: {left:?}");
        w.store_json();
    }
}

/// Runs `cmd` with RLIMIT_FSIZE = `bytes` and SIGXFSZ ignored, so a write past
/// the limit fails with EFBIG the way a full disk fails with ENOSPC.
#[cfg(unix)]
fn with_file_size_limit(cmd: &mut std::process::Command, bytes: u64) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        })
    }
}

#[cfg(unix)]
#[test]
fn a_full_disk_while_rewriting_a_store_keeps_the_old_store_intact() {
    let w = World::new();
    let big = "x".repeat(6000);
    let plugin = w.plugin("plug", &credential("v1", &format!("{SECRET}{big}"), Some(&in_secs(3600))), 0.0);
    let p = plugin.to_str().unwrap();
    ok(&w.cache(&[p, "first"]));
    let before = fs::read(w.store_file()).unwrap();
    // Room for the old store, not for the old store plus a second entry.
    let limit = before.len() as u64 + 1000;
    let out = with_file_size_limit(w.cmd("kcc-cache").args([p, "second"]), limit).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(SECRET), "served anyway");
    assert!(stderr(&out).contains("not cached"), "{}", stderr(&out));
    assert_eq!(fs::read(w.store_file()).unwrap(), before, "the old store is untouched, not truncated");
    let dir: Vec<_> =
        fs::read_dir(w.store_file().parent().unwrap()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(!dir.iter().any(|n| n.to_string_lossy().contains(".tmp")), "no temp file left: {dir:?}");
    assert!(ok(&w.cache(&[p, "first"])).contains(SECRET));
    assert_eq!(w.runs("plug"), 2, "the first entry is still served from the cache");
}

/// `chattr +i` on a directory: nobody, root included, can create, rename or
/// remove anything in it. Undone on drop so the temp dir can be deleted.
struct Immutable(PathBuf);

impl Immutable {
    fn set(dir: &Path) -> Option<Immutable> {
        let done = std::process::Command::new("chattr").arg("+i").arg(dir).output().ok()?;
        done.status.success().then(|| Immutable(dir.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_store_still_serves_hits_and_misses() {
    let w = World::new();
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let p = plugin.to_str().unwrap();
    ok(&w.cache(&[p, "cached"]));
    let before = fs::read(w.store_file()).unwrap();
    // Root ignores permission bits, so the directory is made immutable instead.
    let Some(_guard) = Immutable::set(w.store_file().parent().unwrap()) else {
        skip("chattr +i is not supported on this file system");
        return;
    };
    let miss = w.cache(&[p, "new"]);
    assert!(miss.status.success() && stdout(&miss).contains(SECRET), "{}", stderr(&miss));
    assert!(stderr(&miss).contains("not cached"), "{}", stderr(&miss));
    let hit = w.cache(&[p, "cached"]);
    assert!(ok(&hit).contains(SECRET));
    assert_eq!(stderr(&hit), "", "a hit needs no write");
    assert_eq!(w.runs("plug"), 2);
    assert_eq!(fs::read(w.store_file()).unwrap(), before);
}
