//! The test harness: an isolated world per test and a command builder for
//! the real `kcc` binary.
//!
//! Every [`World`] has its own temporary HOME and XDG directories (so the
//! default store location is exercised and the user's real cache is never
//! touched), a `bin/` directory with the `kcc-cache` and `kcc-injector`
//! personalities symlinked to the built binary, and helpers to create fake
//! plugins: shell scripts that count their runs and print what a test wants.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[cfg(target_os = "linux")]
#[path = "private_keyrings.rs"]
pub mod private_keyrings;

/// The built kcc binary.
pub fn kcc_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kcc"))
}

/// A token that tests grep for in places it must never appear.
pub const SECRET: &str = "kcc-test-secret-token-7f3a9c";

/// An isolated HOME/XDG world.
pub struct World {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub bin: PathBuf,
    pub cache_home: PathBuf,
    extra_env: Vec<(String, String)>,
    /// Every command runs under a seccomp filter that fails `add_key`,
    /// `keyctl` and `request_key` with this errno (as Docker's profile does).
    deny_keyctl: Option<i32>,
    /// The user namespace every command enters: kernel keyrings of this
    /// world's own, gone with it (see `tests/private_keyrings.rs`).
    #[cfg(target_os = "linux")]
    keyrings: Option<private_keyrings::PrivateKeyrings>,
}

impl Default for World {
    fn default() -> World {
        World::new()
    }
}

impl World {
    /// A world whose commands run in kernel keyrings of its own (a user
    /// namespace, see `tests/private_keyrings.rs`).
    pub fn new() -> World {
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut w = World::sharing_the_real_keyrings();
        #[cfg(target_os = "linux")]
        {
            w.keyrings = own_keyrings();
        }
        w
    }

    /// A world whose commands see the real keyrings of the uid running the
    /// tests: for the benchmark only, whose timings must not include the
    /// fork and `setns` a private namespace costs each command (~0.1 ms; a
    /// plain spawn is a `posix_spawn`). It must never run `kcc clear --all`
    /// or leave a kernel key behind.
    pub fn sharing_the_real_keyrings() -> World {
        let dir = tempfile::Builder::new().prefix("kcc-test-").tempdir().expect("temp dir");
        let home = dir.path().join("home");
        let bin = dir.path().join("bin");
        let cache_home = dir.path().join("xdg-cache");
        for d in [&home, &bin, &cache_home] {
            fs::create_dir_all(d).unwrap();
        }
        for name in ["kcc", "kcc-cache", "kcc-injector"] {
            // Windows: a hard link named like the personality (symlinks need privileges).
            #[cfg(unix)]
            std::os::unix::fs::symlink(kcc_exe(), bin.join(name)).unwrap();
            #[cfg(not(unix))]
            fs::hard_link(kcc_exe(), bin.join(name).with_extension("exe")).unwrap();
        }
        // `auto` would pick the kernel keyring of the uid running the tests,
        // one keyring shared by every test: tests use the file unless they
        // pick a backend, and `KCC_TEST_BACKEND=kernel` runs the same tests
        // on the kernel keyring (.ci/kernel-keyring does, for clear::,
        // refresh:: and heal::).
        let backend = std::env::var("KCC_TEST_BACKEND").ok().filter(|b| !b.is_empty()).unwrap_or_else(|| "file".into());
        let extra_env = vec![("KUBE_CREDENTIAL_CACHE_BACKEND".to_string(), backend)];
        World {
            dir,
            home,
            bin,
            cache_home,
            extra_env,
            deny_keyctl: None,
            #[cfg(target_os = "linux")]
            keyrings: None,
        }
    }

    /// From now on every command runs where the kernel keyring system calls
    /// fail with `errno` (a seccomp filter, as Docker's default profile).
    /// Elsewhere than on Linux there is no kernel keyring to deny.
    pub fn deny_keyctl(&mut self, errno: i32) {
        self.deny_keyctl = Some(errno);
    }

    /// The backend this world's calls use unless a test sets another.
    pub fn backend(&self) -> &str {
        &self.extra_env[0].1
    }

    /// The index file beside the store.
    pub fn index_file(&self) -> PathBuf {
        self.store_file().with_file_name("cache.index.json")
    }

    /// The index parsed as JSON (`{}` when missing).
    pub fn index_json(&self) -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(self.index_file()).unwrap_or_else(|_| "{}".into())).unwrap()
    }

    /// The root of the world (for files a test creates).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The default store file inside this world.
    pub fn store_file(&self) -> PathBuf {
        self.cache_home.join("kube-credential-cache").join("cache.json")
    }

    /// The store file's content ("" when missing).
    pub fn store_text(&self) -> String {
        fs::read_to_string(self.store_file()).unwrap_or_default()
    }

    /// The store parsed as JSON (panics when it is not valid JSON).
    pub fn store_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.store_text()).expect("store is valid JSON")
    }

    /// Keys of the store's credentials: those in the file, and with a
    /// secret-store backend those the index places there.
    pub fn store_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        if self.backend() != "file" {
            let index = self.index_json();
            if let Some(rows) = index["entries"].as_object() {
                keys.extend(rows.iter().filter(|(_, r)| r["backend"] == self.backend()).map(|(k, _)| k.clone()));
            }
        }
        if !self.store_file().exists() {
            return keys;
        }
        let v = self.store_json();
        keys.extend(v["credentials"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default());
        keys
    }

    /// Sets an environment variable for every later command of this world.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.extra_env.push((name.into(), value.into()));
    }

    /// A command for one of the personalities in `bin/` (or any program),
    /// with a clean environment: PATH = bin + system, HOME and XDG inside.
    ///
    /// `kcc` and `kcc-cache` run as the child of a fresh `sh`, so every call
    /// has its own parent process, as every kubectl invocation is — and a
    /// shell parent is never taken for a client (src/heal.rs), so ordinary
    /// tests never heal. [`World::cmd_direct`] runs them as children of the
    /// test process (one non-shell parent for many calls): what the healing
    /// tests use to ask again as the same client.
    pub fn cmd(&self, program: impl AsRef<OsStr>) -> Command {
        let program = program.as_ref();
        let name = Path::new(program).file_name().unwrap_or(program);
        if name == "kcc" || name == "kcc-cache" {
            let mut cmd = self.cmd("/bin/sh");
            // Not `exec`: the shell stays as the parent and passes on the exit code.
            let path =
                if Path::new(program).components().count() == 1 { self.bin.join(program) } else { program.into() };
            cmd.arg("-c").arg("\"$0\" \"$@\"; exit $?").arg(path);
            return cmd;
        }
        self.cmd_direct(program)
    }

    /// Like [`World::cmd`], but a kcc personality runs as a direct child of
    /// the test process.
    pub fn cmd_direct(&self, program: impl AsRef<OsStr>) -> Command {
        let program = program.as_ref();
        let program_path = if Path::new(program).components().count() == 1 && self.bin.join(program).exists() {
            self.bin.join(program).into_os_string()
        } else {
            program.to_os_string()
        };
        let mut cmd = Command::new(program_path);
        cmd.env_clear()
            .env("PATH", format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap_or_default()))
            .env("HOME", &self.home)
            .env("XDG_CACHE_HOME", &self.cache_home)
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg-config"))
            .env("XDG_DATA_HOME", self.dir.path().join("xdg-data"))
            .env("LANG", "C.UTF-8")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = self.keyrings.as_ref().map(|k| k.fd()) {
            use std::os::unix::process::CommandExt;
            // SAFETY: setns is async-signal-safe; the world (and so the
            // descriptor) outlives the command it builds.
            unsafe { cmd.pre_exec(move || private_keyrings::enter(fd)) };
        }
        #[cfg(target_os = "linux")]
        if let Some(errno) = self.deny_keyctl {
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe calls (prctl) between fork and exec.
            unsafe { cmd.pre_exec(move || seccomp_deny_keyctl(errno)) };
        }
        cmd
    }

    /// Runs `kcc-cache ARGS…` and returns its output.
    pub fn cache(&self, args: &[&str]) -> Output {
        self.cmd("kcc-cache").args(args).output().expect("run kcc-cache")
    }

    /// Writes an executable shell script into the world and returns its path.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.bin.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        #[cfg(unix)]
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// A fake plugin that appends a line to `<name>.count` on every run
    /// (plus its arguments to `<name>.args`), sleeps `delay` seconds and
    /// prints `credential` on stdout.
    pub fn plugin(&self, name: &str, credential: &str, delay: f32) -> PathBuf {
        let count = self.path(&format!("{name}.count"));
        let args = self.path(&format!("{name}.args"));
        let out = self.path(&format!("{name}.out"));
        fs::write(&out, credential).unwrap();
        self.script(
            name,
            &format!(
                "echo run >> '{}'\nprintf '%s\\n' \"$*\" >> '{}'\n[ \"{delay}\" = 0 ] || sleep {delay}\ncat '{}'",
                count.display(),
                args.display(),
                out.display()
            ),
        )
    }

    /// Replaces what plugin `name` prints from now on.
    pub fn set_plugin_output(&self, name: &str, credential: &str) {
        fs::write(self.path(&format!("{name}.out")), credential).unwrap();
    }

    /// How often plugin `name` ran.
    pub fn runs(&self, name: &str) -> usize {
        fs::read_to_string(self.path(&format!("{name}.count"))).map(|s| s.lines().count()).unwrap_or(0)
    }

    /// Every file under the world, for "the secret is nowhere" checks.
    pub fn files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(entries) = fs::read_dir(dir) {
                for e in entries.flatten() {
                    let p = e.path();
                    if p.is_dir() && !p.is_symlink() {
                        walk(&p, out);
                    } else {
                        out.push(p);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out
    }
}

/// An ExecCredential with `token` expiring at `expiry` (None: no expiry field).
pub fn credential(api: &str, token: &str, expiry: Option<&str>) -> String {
    match expiry {
        Some(e) => format!(
            r#"{{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/{api}","spec":{{}},"status":{{"token":"{token}","expirationTimestamp":"{e}"}}}}"#
        ),
        None => format!(
            r#"{{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/{api}","spec":{{}},"status":{{"token":"{token}"}}}}"#
        ),
    }
}

/// An RFC 3339 time `secs` seconds from now (negative: in the past).
pub fn in_secs(secs: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs);
    jiff::Timestamp::from_second(t.as_second()).unwrap().to_string()
}

/// `KUBERNETES_EXEC_INFO` as kubectl sets it.
pub fn exec_info(api: &str, server: Option<&str>) -> String {
    match server {
        Some(s) => format!(
            r#"{{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/{api}","spec":{{"cluster":{{"server":"{s}","certificate-authority-data":"LS0t"}},"interactive":false}}}}"#
        ),
        None => format!(
            r#"{{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/{api}","spec":{{"interactive":false}}}}"#
        ),
    }
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(o.status.success(), "expected success, got {:?}\nstdout: {}\nstderr: {}", o.status, stdout(o), stderr(o));
    stdout(o)
}

/// Skips a test that cannot run on this machine, loudly; under
/// `KCC_NO_SKIP=1` (set by `.ci/run`) a skip is a failure instead, so CI
/// never reports a skipped check as passing.
pub fn skip(why: &str) {
    if std::env::var("KCC_NO_SKIP").is_ok_and(|v| !v.is_empty() && v != "0") {
        panic!("KCC_NO_SKIP is set but this test cannot run here: {why}");
    }
    eprintln!("\n!!!!! SKIPPED: {why}\n");
}

/// A world's own kernel keyrings. Without them the world's commands share
/// the real keyrings of the uid running the tests (and a `kcc clear --all`
/// there would remove the keys of every other test, and the user's own):
/// a failure under `KCC_NO_SKIP=1`, a loud warning otherwise.
#[cfg(target_os = "linux")]
fn own_keyrings() -> Option<private_keyrings::PrivateKeyrings> {
    match private_keyrings::PrivateKeyrings::new() {
        Ok(keyrings) => Some(keyrings),
        Err(why) => {
            let why = format!(
                "no private kernel keyrings ({why}): test worlds use the real keyrings of the uid running the tests"
            );
            // A failure in every world under KCC_NO_SKIP; otherwise said once
            // per test run (every world would say the same).
            static SAID: std::sync::Once = std::sync::Once::new();
            if std::env::var("KCC_NO_SKIP").is_ok_and(|v| !v.is_empty() && v != "0") {
                skip(&why);
            }
            SAID.call_once(|| skip(&why));
            None
        }
    }
}

#[cfg(target_os = "linux")]
/// Installs a seccomp filter failing `add_key`, `keyctl` and `request_key`
/// with `errno` for this process and its children (x86_64 and aarch64 only,
/// the architectures kcc's CI runs on).
fn seccomp_deny_keyctl(errno: i32) -> std::io::Result<()> {
    #[repr(C)]
    struct Filter {
        code: u16,
        jt: u8,
        jf: u8,
        k: u32,
    }
    #[repr(C)]
    struct Program {
        len: u16,
        filter: *const Filter,
    }
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let calls = [libc::SYS_add_key as u32, libc::SYS_keyctl as u32, libc::SYS_request_key as u32];
    let filter = [
        Filter { code: LD_W_ABS, jt: 0, jf: 0, k: 0 }, // seccomp_data.nr
        Filter { code: JEQ_K, jt: 3, jf: 0, k: calls[0] },
        Filter { code: JEQ_K, jt: 2, jf: 0, k: calls[1] },
        Filter { code: JEQ_K, jt: 1, jf: 0, k: calls[2] },
        Filter { code: RET_K, jt: 0, jf: 0, k: RET_ALLOW },
        Filter { code: RET_K, jt: 0, jf: 0, k: RET_ERRNO | (errno as u32 & 0xffff) },
    ];
    let program = Program { len: filter.len() as u16, filter: filter.as_ptr() };
    // SAFETY: the program outlives the calls; prctl copies it.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(libc::PR_SET_SECCOMP, 2 /* SECCOMP_MODE_FILTER */, &program as *const Program) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
