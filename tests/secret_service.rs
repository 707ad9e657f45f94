//! A real Secret Service for tests and benchmarks: a private session bus
//! and an unlocked gnome-keyring inside a [`World`], never the user's.
//!
//! Needs `dbus-daemon`, `gnome-keyring-daemon`, `secret-tool` and `dbus-send`
//! (Debian: `dbus gnome-keyring libsecret-tools`). Without them the fixture
//! skips with a loud message — unless `KCC_REQUIRE_KEYRING=1` (CI sets it),
//! which turns the skip into a failure.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::World;

const SECRETS: &str = "org.freedesktop.secrets";

/// A private session bus, optionally with an unlocked gnome-keyring on it.
/// Both daemons are killed by pid when it is dropped.
pub struct SecretService {
    bus: Child,
    keyring: Option<Child>,
    pub address: String,
    run_dir: PathBuf,
    world_home: PathBuf,
    world_data: PathBuf,
}

impl Drop for SecretService {
    fn drop(&mut self) {
        if let Some(k) = &mut self.keyring {
            let _ = k.kill();
            let _ = k.wait();
        }
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

/// Whether a missing fixture must fail the test instead of skipping it.
fn keyring_required() -> bool {
    std::env::var("KCC_REQUIRE_KEYRING").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Skips (loudly) or fails, depending on `KCC_REQUIRE_KEYRING`.
fn unavailable(why: &str) -> Option<SecretService> {
    if keyring_required() {
        panic!("KCC_REQUIRE_KEYRING is set but the Secret Service fixture cannot start: {why}");
    }
    eprintln!(
        "\n!!!!! SKIPPED: the Secret Service fixture cannot start: {why}\n!!!!! install dbus, gnome-keyring and libsecret-tools; CI sets KCC_REQUIRE_KEYRING=1 to make this a failure\n"
    );
    None
}

impl SecretService {
    /// A bus only (no Secret Service), its address exported into `w`.
    pub fn bus_only(w: &mut World) -> Option<SecretService> {
        let run_dir = w.path("run");
        fs::create_dir_all(&run_dir).unwrap();
        #[cfg(unix)]
        fs::set_permissions(&run_dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let socket = run_dir.join("bus");
        let mut bus = match Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!("--address=unix:path={}", socket.display()))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &w.home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return unavailable(&format!("cannot run dbus-daemon: {e}")),
        };
        let mut line = String::new();
        let stdout = bus.stdout.take().unwrap();
        if BufReader::new(stdout).read_line(&mut line).is_err() || !line.starts_with("unix:") {
            let _ = bus.kill();
            return unavailable("dbus-daemon printed no address");
        }
        let address = line.trim().to_string();
        w.set_env("DBUS_SESSION_BUS_ADDRESS", &address);
        w.set_env("XDG_RUNTIME_DIR", run_dir.to_str().unwrap());
        // The worlds default to the file backend; these tests are about `auto`.
        w.set_env("KUBE_CREDENTIAL_CACHE_BACKEND", "auto");
        Some(SecretService {
            bus,
            keyring: None,
            address,
            run_dir,
            world_home: w.home.clone(),
            world_data: w.path("xdg-data"),
        })
    }

    /// A bus with an unlocked gnome-keyring whose `login` collection is the default.
    pub fn start(w: &mut World) -> Option<SecretService> {
        let mut s = SecretService::bus_only(w)?;
        fs::create_dir_all(&s.world_data).unwrap();
        let child = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &s.world_home)
            .env("XDG_DATA_HOME", &s.world_data)
            .env("XDG_RUNTIME_DIR", &s.run_dir)
            .env("DBUS_SESSION_BUS_ADDRESS", &s.address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return unavailable(&format!("cannot run gnome-keyring-daemon: {e}")),
        };
        // The login password on stdin, then EOF.
        let _ = child.stdin.take().unwrap().write_all(b"kcc-test-password");
        s.keyring = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if s.has_owner() && s.default_locked() == Some(false) {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(s);
        unavailable("gnome-keyring never owned org.freedesktop.secrets with an unlocked default collection")
    }

    pub fn dbus_send(&self, args: &[&str]) -> String {
        let out = Command::new("dbus-send")
            .args(["--session", "--print-reply"])
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .expect("run dbus-send");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn has_owner(&self) -> bool {
        self.dbus_send(&[
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            &format!("string:{SECRETS}"),
        ])
        .contains("boolean true")
    }

    pub fn default_locked(&self) -> Option<bool> {
        let out = self.dbus_send(&[
            &format!("--dest={SECRETS}"),
            "/org/freedesktop/secrets/aliases/default",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.freedesktop.Secret.Collection",
            "string:Locked",
        ]);
        if out.contains("boolean true") {
            Some(true)
        } else if out.contains("boolean false") {
            Some(false)
        } else {
            None
        }
    }

    /// Locks the default collection (`secret-tool lock` segfaults here; the
    /// D-Bus `Lock` call works and needs no prompt).
    pub fn lock(&self) {
        self.dbus_send(&[
            &format!("--dest={SECRETS}"),
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/aliases/default",
        ]);
        assert_eq!(self.default_locked(), Some(true), "the collection did not lock");
    }

    /// `secret-tool search --all service kube-credential-cache` on the private bus.
    pub fn search(&self) -> String {
        let out = Command::new("secret-tool")
            .args(["search", "--all", "--unlock", "service", "kube-credential-cache"])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .stdin(Stdio::null())
            .output()
            .expect("run secret-tool");
        // secret-tool prints attributes on stderr and secrets on stdout.
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}
