//! Secret stores as one abstraction: what [`super::Store`] needs from a place
//! that keeps credentials off the disk.
//!
//! The file store is the base every [`super::Store`] has (its directory holds
//! the index and the locks, and `cache.json` is the plaintext fallback); a
//! secret store sits beside it and, when chosen, holds every secret instead.
//! Adding one is a module implementing [`SecretStore`], a [`Backend`] variant
//! and a line in [`open`] and [`candidates`]: selection (`auto`'s order,
//! "present but unusable" vs "absent"), the index, `kcc clear` and
//! `kcc doctor` work through the trait.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;

use super::Backend;
use super::keyring::{Keyring, KeyringError, Probe, Written};

/// A store that keeps secrets off the disk.
pub trait SecretStore: fmt::Debug + Send + Sync {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// Whether it can be used now, bounded and without starting anything
    /// unless `forced` (the user named this backend) allows it.
    fn probe(&self, forced: bool) -> Probe;

    /// The secret of `key`; `Ok(None)` when there is none.
    fn read(&self, key: &str) -> Result<Option<String>, KeyringError>;

    /// Stores `secret` under `key`, valid until `expiry`. When the store is
    /// full, `evict` names the next of kcc's own entries it may give up.
    fn write(
        &self,
        key: &str,
        secret: &str,
        expiry: Timestamp,
        now: Timestamp,
        evict: &mut dyn FnMut() -> Option<String>,
    ) -> Result<Written, KeyringError>;

    /// Removes `key` (all `known_parts` of it); returns how many entries went.
    fn remove(&self, key: &str, known_parts: u32) -> Result<u32, KeyringError>;

    /// The cache keys it holds, when it can enumerate them; `None` when only
    /// the index knows (the Keychain and the Credential Manager). Callers
    /// probe first: a store that is not running and unlocked is not asked.
    fn list(&self) -> Option<Result<Vec<String>, KeyringError>> {
        None
    }

    /// Where a secret goes, for messages ("in the keyring").
    fn place(&self) -> &'static str;

    /// How the last read was answered, for debug output.
    fn last_read(&self) -> Option<&'static str> {
        None
    }

    /// The per-entry limit above which secrets are split, if it splits.
    fn entry_limit(&self) -> Option<usize> {
        None
    }
}

impl SecretStore for Keyring {
    fn backend(&self) -> Backend {
        Backend::Keyring
    }
    fn probe(&self, forced: bool) -> Probe {
        super::keyring::probe(forced)
    }
    fn read(&self, key: &str) -> Result<Option<String>, KeyringError> {
        self.get(key)
    }
    fn write(
        &self,
        key: &str,
        secret: &str,
        _expiry: Timestamp,
        _now: Timestamp,
        _evict: &mut dyn FnMut() -> Option<String>,
    ) -> Result<Written, KeyringError> {
        self.set(key, secret)
    }
    fn remove(&self, key: &str, known_parts: u32) -> Result<u32, KeyringError> {
        Keyring::remove(self, key, known_parts)
    }
    #[cfg(secret_service)]
    fn list(&self) -> Option<Result<Vec<String>, KeyringError>> {
        Some(Keyring::list(self))
    }
    fn place(&self) -> &'static str {
        "in the keyring"
    }
    fn last_read(&self) -> Option<&'static str> {
        Some(Keyring::last_read(self))
    }
    fn entry_limit(&self) -> Option<usize> {
        Some(Keyring::entry_limit(self))
    }
}

/// A handle on `backend` (no I/O); `None` for the file, which is not a
/// secret store, and for a store this platform does not have.
pub fn open(backend: Backend, entry_limit: usize) -> Option<Arc<dyn SecretStore>> {
    match backend {
        Backend::File => None,
        Backend::Keyring => Some(Arc::new(Keyring::new(entry_limit))),
        Backend::Kernel => kernel_keyring::open(),
    }
}

/// One uid's line of `/proc/key-users`: keys and bytes used and allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Keys this uid holds.
    pub keys: u64,
    /// Keys it may hold.
    pub max_keys: u64,
    /// Bytes its keys take (descriptions and payloads).
    pub bytes: u64,
    /// Bytes it may take.
    pub max_bytes: u64,
}

impl Quota {
    /// Parses `/proc/key-users` (`  uid:  usage  nkeys/ninstantiated
    /// qnkeys/maxkeys qnbytes/maxbytes`) for `uid`.
    pub fn parse(text: &str, uid: u32) -> Option<Quota> {
        text.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            let owner: u32 = words.next()?.strip_suffix(':')?.parse().ok()?;
            if owner != uid {
                return None;
            }
            let pair = |w: Option<&str>| -> Option<(u64, u64)> {
                let (a, b) = w?.split_once('/')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            };
            let _usage = words.next()?;
            let _instantiated = pair(words.next())?;
            let (keys, max_keys) = pair(words.next())?;
            let (bytes, max_bytes) = pair(words.next())?;
            Some(Quota { keys, max_keys, bytes, max_bytes })
        })
    }

    /// This process's uid's kernel keyring and quota, for `kcc doctor`:
    /// which keyring holds kcc's keys, and keys and bytes used and allowed.
    /// `None` where there is no kernel keyring.
    pub fn current() -> Option<(String, Option<Quota>)> {
        kernel_keyring::status()
    }
}

/// The secret stores `auto` tries, in order: the OS secret store (a running,
/// unlocked Secret Service on Linux), then on Linux the kernel keyring.
pub fn candidates() -> &'static [Backend] {
    if kernel_keyring::EXISTS { &[Backend::Keyring, Backend::Kernel] } else { &[Backend::Keyring] }
}

/// The kernel keyring where the platform has one (Linux): the one place
/// that knows.
#[cfg(target_os = "linux")]
mod kernel_keyring {
    use std::sync::Arc;

    use super::{Quota, SecretStore};
    use crate::store::kernel;

    pub const EXISTS: bool = true;

    pub fn open() -> Option<Arc<dyn SecretStore>> {
        Some(Arc::new(kernel::KernelKeyring::new()))
    }

    pub fn status() -> Option<(String, Option<Quota>)> {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let quota = std::fs::read_to_string("/proc/key-users").ok().and_then(|text| Quota::parse(&text, uid));
        Some((format!("keys go to the persistent keyring of uid {uid}"), quota))
    }
}

/// No kernel keyring on this platform.
#[cfg(not(target_os = "linux"))]
mod kernel_keyring {
    use std::sync::Arc;

    use super::{Quota, SecretStore};

    pub const EXISTS: bool = false;

    pub fn open() -> Option<Arc<dyn SecretStore>> {
        None
    }

    pub fn status() -> Option<(String, Option<Quota>)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_users_lines_parse() {
        let text = "    0:    36 35/35 24/1000000 492/25000000\n 1000:     5 5/5 5/200 1634/20000\n";
        assert_eq!(Quota::parse(text, 1000), Some(Quota { keys: 5, max_keys: 200, bytes: 1634, max_bytes: 20000 }));
        assert_eq!(Quota::parse(text, 0).unwrap().max_keys, 1_000_000);
        assert_eq!(Quota::parse(text, 7), None);
    }
}
