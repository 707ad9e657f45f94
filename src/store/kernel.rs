//! The kernel keyring backend (keyrings(7), keyctl(2)): a secret store that
//! needs no desktop, no D-Bus and no daemon — what headless Linux (servers,
//! SSH sessions, WSL, CI runners) has instead of a Secret Service.
//!
//! **Which keyring.** Entries live in the user's *persistent* keyring
//! (`KEYCTL_GET_PERSISTENT`), not the user keyring `@u` nor the session
//! keyring: `@u` is destroyed as soon as the uid has no process left (a cron
//! job or a CI step has none between two kubectl calls), a session keyring is
//! per login session (a second SSH session or a `sudo -u` would not see the
//! cache). The persistent keyring belongs to the uid, survives between
//! processes and sessions, and expires only after
//! `/proc/sys/kernel/keys/persistent_keyring_expiry` seconds without use
//! (3 days by default; every kcc call renews it). Each kcc process links it
//! into its own process keyring — that link is what makes the keys
//! *possessed*, so only processes that ask the kernel for this uid's
//! persistent keyring can search and read them (keys are created with the
//! kernel's default permissions: possessor everything, user view only).
//!
//! **One key per cache entry**: type `user`, description
//! `kube-credential-cache:<cache key>` (the Go kcc's entry naming), payload
//! the ExecCredential JSON, and a **timeout at the credential's expiry**, so
//! the kernel itself drops an expired secret. Nothing is split: a `user` key
//! holds up to 32,767 bytes, more than any credential kcc has seen.
//!
//! **A hit is three system calls**: `KEYCTL_GET_PERSISTENT` (the probe, which
//! also renews the keyring's expiry), `KEYCTL_SEARCH`, `KEYCTL_READ`. Every
//! call returns at once (no daemon to wait for), so nothing here needs the
//! worker threads and timeouts of the Secret Service backend.
//!
//! **Quotas** (200 keys and 20,000 bytes per non-root uid by default): a
//! write that the kernel refuses with `EDQUOT` evicts kcc's own entries, the
//! one that expires first first, and tries again; when even that does not
//! make room the write fails and the credential is served uncached — never
//! written to the file (see `Store::put`). A key's quota charge is its
//! description plus its payload (~1.6 KB for an EKS token), so about a dozen
//! EKS credentials fit beside nothing else.
//!
//! Linux only (the module is compiled for Linux alone; elsewhere
//! `KUBE_CREDENTIAL_CACHE_BACKEND=kernel` is an error and `auto` never
//! considers it).

use std::time::Instant;

use jiff::Timestamp;

use super::keyring::{KeyringError, Probe, ProbeOutcome, Written};

/// Every kcc key's description starts with this (the Go kcc's service name).
pub const PREFIX: &str = "kube-credential-cache:";

/// The description of the key holding `key`.
pub fn description(key: &str) -> String {
    format!("{PREFIX}{key}")
}

/// Why the kernel keyring cannot be used, from the `errno` the kernel gave;
/// a pure function so each failure mode is tested without provoking it.
pub fn explain_errno(errno: i32) -> String {
    match errno {
        libc::ENOSYS => "the kernel keyring is not available: keyctl returned ENOSYS (a kernel without keyrings, or a seccomp filter such as Docker's default profile)".into(),
        libc::EPERM => "the kernel keyring is denied: keyctl returned EPERM (a seccomp filter such as Docker's default profile, or a security module)".into(),
        libc::EACCES => "the kernel keyring is denied: keyctl returned EACCES".into(),
        libc::EOPNOTSUPP => "the kernel has no persistent keyrings (CONFIG_PERSISTENT_KEYRINGS is off)".into(),
        libc::EDQUOT => "this user's kernel key quota is used up (see /proc/key-users and /proc/sys/kernel/keys/maxkeys, maxbytes)".into(),
        libc::ENOKEY => "the kernel found no keyring for this user (ENOKEY)".into(),
        libc::ENOMEM => "the kernel is out of memory for keys (ENOMEM)".into(),
        other => format!("keyctl failed: {}", std::io::Error::from_raw_os_error(other)),
    }
}

/// A handle on this uid's persistent kernel keyring. Creating it does no
/// I/O; [`KernelKeyring::probe`] (or the first operation) finds the keyring.
#[derive(Debug, Default)]
pub struct KernelKeyring {
    /// The persistent keyring's serial, once found.
    ring: std::sync::OnceLock<Result<i32, i32>>,
}

impl KernelKeyring {
    /// A handle; no I/O.
    pub fn new() -> KernelKeyring {
        KernelKeyring::default()
    }

    /// Whether the kernel keyring can be used: one `keyctl` that finds (or
    /// creates) the persistent keyring. Every failure is "unsupported" with
    /// its reason, so `auto` falls to the file.
    pub fn probe(&self) -> Probe {
        let start = Instant::now();
        let (outcome, reason) = match *self.ring.get_or_init(sys::persistent_keyring) {
            Ok(id) => (ProbeOutcome::Available, format!("kernel persistent keyring {id} usable")),
            Err(errno) => (ProbeOutcome::Unsupported, explain_errno(errno)),
        };
        Probe { outcome, took: start.elapsed(), reason }
    }

    fn ring(&self) -> Result<i32, KeyringError> {
        let found = self.ring.get_or_init(sys::persistent_keyring);
        found.map_err(|errno| KeyringError::Unavailable(explain_errno(errno)))
    }

    /// The secret under `key`; `None` when there is none (or it expired).
    pub fn read(&self, key: &str) -> Result<Option<String>, KeyringError> {
        let ring = self.ring()?;
        let Some(id) = sys::search(ring, &description(key)).map_err(failed)? else { return Ok(None) };
        let Some(bytes) = sys::read(id).map_err(failed)? else { return Ok(None) };
        String::from_utf8(bytes).map(Some).map_err(|_| KeyringError::Failed("the stored secret is not UTF-8".into()))
    }

    /// Stores `secret` under `key` until `expiry`. On `EDQUOT`, `evict` is
    /// asked for the next entry to give up (kcc's entry that expires first)
    /// and the write is tried again, until it fits or `evict` has none left.
    pub fn write(
        &self,
        key: &str,
        secret: &str,
        expiry: Timestamp,
        now: Timestamp,
        mut evict: impl FnMut() -> Option<String>,
    ) -> Result<Written, KeyringError> {
        let ring = self.ring()?;
        let seconds = expiry.duration_since(now).as_secs();
        if seconds <= 0 {
            return Err(KeyringError::Failed("the credential has already expired".into()));
        }
        let desc = description(key);
        if let Ok(Some(id)) = sys::search(ring, &desc)
            && sys::read(id).ok().flatten().as_deref() == Some(secret.as_bytes())
        {
            sys::set_timeout(id, seconds as u64).map_err(failed)?;
            return Ok(Written { parts: 1, changed: false });
        }
        // The kernel frees a removed key's quota in its garbage collector, a
        // moment later: after an eviction, up to three short waits (2, 4,
        // 8 ms) come before the next entry is given up.
        let mut waits = 3;
        let id = loop {
            match sys::add(ring, &desc, secret.as_bytes()) {
                Ok(id) => break id,
                Err(libc::EDQUOT) if waits < 3 => {
                    std::thread::sleep(std::time::Duration::from_millis(2 << waits));
                    waits += 1;
                }
                Err(libc::EDQUOT) => {
                    let Some(victim) = evict() else {
                        return Err(KeyringError::Failed(format!(
                            "{} and no older kcc entry is left to evict",
                            explain_errno(libc::EDQUOT)
                        )));
                    };
                    if self.remove(&victim, 1)? > 0 {
                        waits = 0;
                    }
                }
                Err(errno) => return Err(failed(errno)),
            }
        };
        sys::set_timeout(id, seconds as u64).map_err(failed)?;
        Ok(Written { parts: 1, changed: true })
    }

    /// Removes `key`'s key; returns how many were removed (0 or 1).
    pub fn remove(&self, key: &str, _known_parts: u32) -> Result<u32, KeyringError> {
        let ring = self.ring()?;
        match sys::search(ring, &description(key)).map_err(failed)? {
            None => Ok(0),
            Some(id) => {
                sys::unlink(id, ring).map_err(failed)?;
                Ok(1)
            }
        }
    }

    /// The cache keys of every kcc key in the keyring.
    pub fn list(&self) -> Result<Vec<String>, KeyringError> {
        let ring = self.ring()?;
        let mut keys = Vec::new();
        for id in sys::members(ring).map_err(failed)? {
            // `type;uid;gid;perm;description`
            if let Ok(Some(text)) = sys::describe(id)
                && let Some(("user", rest)) = text.split_once(';')
                && let Some(desc) = rest.splitn(4, ';').nth(3)
                && let Some(key) = desc.strip_prefix(PREFIX)
            {
                keys.push(key.to_string());
            }
        }
        keys.sort();
        Ok(keys)
    }
}

impl super::SecretStore for KernelKeyring {
    fn backend(&self) -> super::Backend {
        super::Backend::Kernel
    }
    fn probe(&self, _forced: bool) -> Probe {
        KernelKeyring::probe(self)
    }
    fn read(&self, key: &str) -> Result<Option<String>, KeyringError> {
        KernelKeyring::read(self, key)
    }
    fn write(
        &self,
        key: &str,
        secret: &str,
        expiry: Timestamp,
        now: Timestamp,
        evict: &mut dyn FnMut() -> Option<String>,
    ) -> Result<Written, KeyringError> {
        KernelKeyring::write(self, key, secret, expiry, now, evict)
    }
    fn remove(&self, key: &str, known_parts: u32) -> Result<u32, KeyringError> {
        KernelKeyring::remove(self, key, known_parts)
    }
    fn list(&self) -> Option<Result<Vec<String>, KeyringError>> {
        Some(KernelKeyring::list(self))
    }
    fn place(&self) -> &'static str {
        "in the kernel keyring"
    }
}

fn failed(errno: i32) -> KeyringError {
    KeyringError::Failed(explain_errno(errno))
}

/// The raw system calls (`add_key`, `keyctl`), through `libc` — no extra
/// crate for a handful of calls, and each costs exactly one syscall.
mod sys {
    use std::ffi::CString;

    const KEY_SPEC_PROCESS_KEYRING: libc::c_long = -2;
    const KEYCTL_DESCRIBE: libc::c_long = 6;
    const KEYCTL_UNLINK: libc::c_long = 9;
    const KEYCTL_SEARCH: libc::c_long = 10;
    const KEYCTL_READ: libc::c_long = 11;
    const KEYCTL_SET_TIMEOUT: libc::c_long = 15;
    const KEYCTL_GET_PERSISTENT: libc::c_long = 22;

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
    }

    fn keyctl(
        op: libc::c_long,
        a: libc::c_long,
        b: libc::c_long,
        c: libc::c_long,
        d: libc::c_long,
    ) -> Result<i64, i32> {
        // SAFETY: keyctl reads or writes only the buffers passed as a..d,
        // which every caller sizes and keeps alive for the call.
        let r = unsafe { libc::syscall(libc::SYS_keyctl, op, a, b, c, d) };
        if r < 0 { Err(errno()) } else { Ok(r as i64) }
    }

    fn cstring(text: &str) -> Result<CString, i32> {
        CString::new(text).map_err(|_| libc::EINVAL)
    }

    /// This uid's persistent keyring, linked into the process keyring.
    pub fn persistent_keyring() -> Result<i32, i32> {
        keyctl(KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_PROCESS_KEYRING, 0, 0).map(|id| id as i32)
    }

    /// The `user` key `desc` in `ring`; `None` when missing or expired.
    pub fn search(ring: i32, desc: &str) -> Result<Option<i32>, i32> {
        let desc = cstring(desc)?;
        match keyctl(KEYCTL_SEARCH, ring as _, c"user".as_ptr() as _, desc.as_ptr() as _, 0) {
            Ok(id) => Ok(Some(id as i32)),
            Err(libc::ENOKEY | libc::EKEYEXPIRED | libc::EKEYREVOKED) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A key's payload; `None` when it went away meanwhile.
    pub fn read(id: i32) -> Result<Option<Vec<u8>>, i32> {
        let mut buf = vec![0u8; 4096];
        loop {
            match keyctl(KEYCTL_READ, id as _, buf.as_mut_ptr() as _, buf.len() as _, 0) {
                Ok(n) if (n as usize) <= buf.len() => {
                    buf.truncate(n as usize);
                    return Ok(Some(buf));
                }
                Ok(n) => buf.resize(n as usize, 0),
                Err(libc::ENOKEY | libc::EKEYEXPIRED | libc::EKEYREVOKED) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Adds (or updates in place) the `user` key `desc` in `ring`.
    pub fn add(ring: i32, desc: &str, payload: &[u8]) -> Result<i32, i32> {
        let desc = cstring(desc)?;
        // SAFETY: the type, description and payload outlive the call; the
        // length is the payload's.
        let r = unsafe {
            libc::syscall(libc::SYS_add_key, c"user".as_ptr(), desc.as_ptr(), payload.as_ptr(), payload.len(), ring)
        };
        if r < 0 { Err(errno()) } else { Ok(r as i32) }
    }

    pub fn set_timeout(id: i32, seconds: u64) -> Result<(), i32> {
        keyctl(KEYCTL_SET_TIMEOUT, id as _, seconds.min(u32::MAX as u64) as _, 0, 0).map(drop)
    }

    pub fn unlink(id: i32, ring: i32) -> Result<(), i32> {
        keyctl(KEYCTL_UNLINK, id as _, ring as _, 0, 0).map(drop)
    }

    /// The serials linked into `ring`.
    pub fn members(ring: i32) -> Result<Vec<i32>, i32> {
        let mut buf = vec![0u8; 4096];
        loop {
            let n = keyctl(KEYCTL_READ, ring as _, buf.as_mut_ptr() as _, buf.len() as _, 0)? as usize;
            if n <= buf.len() {
                buf.truncate(n);
                return Ok(buf.chunks_exact(4).map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect());
            }
            buf.resize(n, 0);
        }
    }

    /// `type;uid;gid;perm;description`; `None` when the key cannot be viewed.
    pub fn describe(id: i32) -> Result<Option<String>, i32> {
        let mut buf = vec![0u8; 512];
        loop {
            match keyctl(KEYCTL_DESCRIBE, id as _, buf.as_mut_ptr() as _, buf.len() as _, 0) {
                Ok(n) if (n as usize) <= buf.len() => {
                    buf.truncate((n as usize).saturating_sub(1)); // the trailing NUL
                    return Ok(String::from_utf8(buf).ok());
                }
                Ok(n) => buf.resize(n as usize, 0),
                Err(libc::ENOKEY | libc::EKEYEXPIRED | libc::EKEYREVOKED | libc::EACCES) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_mode_is_named() {
        assert!(explain_errno(libc::ENOSYS).contains("seccomp"));
        assert!(explain_errno(libc::EPERM).contains("Docker"));
        assert!(explain_errno(libc::EDQUOT).contains("quota"));
        assert!(explain_errno(libc::ENOKEY).contains("ENOKEY"));
        assert!(explain_errno(libc::EOPNOTSUPP).contains("persistent"));
    }
}
