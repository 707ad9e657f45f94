//! The keyring backend: the only module that touches the OS secret store.
//!
//! One cached credential is one entry of service `kube-credential-cache`,
//! account = the cache key, secret = the ExecCredential JSON — the Go kcc's
//! naming (attributes `service` and `username` on the Secret Service, with
//! its label `Password for '<key>' on 'kube-credential-cache'`), so users find
//! the entries where the docs say. Platforms: the Secret Service over D-Bus
//! (pure-Rust zbus, no -dev packages) on Linux and the BSDs, the Keychain on
//! macOS, the Credential Manager on Windows, all through the keyring crate.
//!
//! **Every call is bounded.** Neither zbus nor the Secret Service has a call
//! timeout: a service file whose program never registers hangs a call for
//! 120 s, a frozen daemon forever, a locked collection on a desktop waits for
//! a GUI prompt. So each operation runs on a worker thread and the caller
//! waits at most [`CALL_TIMEOUT`]; a call that did not answer marks the
//! keyring dead for the rest of the process, so a frozen daemon costs one
//! timeout per kcc run, not one per call. The abandoned thread dies with the
//! process.
//!
//! **The probe** ([`probe`]) decides whether a Secret Service is usable
//! without starting one: no session bus address (no `DBUS_SESSION_BUS_ADDRESS`
//! and no `$XDG_RUNTIME_DIR/bus` socket) → "no bus" after an environment check
//! and one `stat`, no D-Bus work at all; kcc never autolaunches a bus. With a
//! bus, a minimal D-Bus client ([`dbus`], no threads, socket timeouts) asks the
//! bus daemon whether `org.freedesktop.secrets` has an owner (`NameHasOwner`
//! never activates anything; bounded by [`PROBE_TIMEOUT`]) and, only if it
//! has, reads the default collection's `Locked` property with
//! `NO_AUTO_START` (never prompts; bounded by [`SERVICE_TIMEOUT`]). On macOS
//! and Windows the store is part of the OS: the probe answers "available"
//! without any work.
//!
//! **Large secrets are split.** Windows caps a secret at 2,560 bytes, macOS at
//! about 3,000 through the usual APIs, while EKS tokens with an SSO session
//! reach ~6.3 KB. A secret longer than the per-entry limit
//! (`KUBE_CREDENTIAL_CACHE_KEYRING_ENTRY_LIMIT`) is stored as parts at
//! accounts `<key>#1` … `<key>#n`, and the main entry holds only the
//! self-describing header `kcc-split:v1:<n>:<sha256 of the whole>`. Parts are
//! written before the header, so a reader that races a writer sees a digest
//! mismatch (a miss), never a wrong credential.
//!
//! **Nothing is rewritten unchanged**: each write reads the entry first and
//! skips an identical secret (every keychain write can prompt on macOS).
//!
//! Tested against gnome-keyring on Linux; the macOS and Windows paths are
//! compiled per `cfg` but were not built or run by kcc's CI.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The service every kcc entry is stored under (the Go kcc's).
pub const SERVICE: &str = "kube-credential-cache";

/// How long the bus part of the probe may take: connect, authenticate,
/// `Hello`, `NameHasOwner` — all answered by the bus daemon itself, ~1 ms in a
/// debug build. This is the whole cost on a machine with a session bus but no
/// Secret Service.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(50);

/// How long the Secret Service itself may take to say whether its default
/// collection is locked, once the bus said it runs. Longer than
/// [`PROBE_TIMEOUT`] because gnome-keyring serves clients one at a time and a
/// burst of parallel kubectl calls queues behind each other's encrypted
/// sessions (16 parallel debug-build calls here: up to ~55 ms); a frozen
/// daemon costs this once, then kcc serves without the cache.
pub const SERVICE_TIMEOUT: Duration = Duration::from_millis(500);

/// How long one keyring operation may take (a read or write including its
/// split parts; the first one also connects and opens an encrypted session).
/// Past it kcc serves without the cache, and later operations of the same
/// process fail at once instead of waiting again.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1000);

/// The most entries one secret is split into; a credential that would need
/// more is served but not cached.
pub const MAX_PARTS: usize = 64;

pub use crate::config::{
    DEFAULT_KEYRING_ENTRY_LIMIT as DEFAULT_ENTRY_LIMIT, MIN_KEYRING_ENTRY_LIMIT as MIN_ENTRY_LIMIT,
};

const SPLIT_PREFIX: &str = "kcc-split:v1:";

/// What the availability probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// A secret store answered and its default collection is unlocked.
    Available,
    /// A secret store answered but is locked or has no default collection
    /// (creating one needs a prompt): usable only after the user unlocks it.
    Locked,
    /// No session bus to talk to.
    NoBus,
    /// A session bus, but nothing owns `org.freedesktop.secrets`.
    NoService,
    /// Something is there but did not answer in time or failed.
    Unresponsive,
    /// This store cannot work here at all (the kernel keyring denied by a
    /// seccomp filter, missing, or out of quota): `auto` tries the next one.
    Unsupported,
}

/// The result of [`probe`]: what, how long it took and why, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// What was found.
    pub outcome: ProbeOutcome,
    /// How long the probe took.
    pub took: Duration,
    /// Why, for debug output and `kcc doctor` (never a secret).
    pub reason: String,
}

impl Probe {
    /// The probe's result as one line: `<reason> (probe took 0.4ms)`.
    pub fn describe(&self) -> String {
        format!("{} (probe took {:.2}ms)", self.reason, self.took.as_secs_f64() * 1000.0)
    }
}

/// Finds out, boundedly and without starting anything, whether the OS secret
/// store can be used now. `allow_activation` (used when the keyring backend
/// is forced) lets D-Bus start an activatable Secret Service instead of
/// requiring one that already runs.
pub fn probe(allow_activation: bool) -> Probe {
    let start = Instant::now();
    let (outcome, reason) = platform::probe(allow_activation);
    Probe { outcome, took: start.elapsed(), reason }
}

/// A keyring failure, in words. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringError {
    /// The store refused: locked, or access denied (would need a prompt).
    Denied(String),
    /// The store did not answer within the limit.
    Timeout {
        /// The operation.
        op: &'static str,
        /// The limit.
        limit: Duration,
    },
    /// There is no usable store on this system.
    Unavailable(String),
    /// Anything else the store reported.
    Failed(String),
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyringError::Denied(why) => write!(f, "the keyring refused access (locked or denied: {why})"),
            KeyringError::Timeout { op, limit } => {
                write!(f, "the keyring did not answer a {op} within {}ms", limit.as_millis())
            }
            KeyringError::Unavailable(why) => write!(f, "no usable keyring: {why}"),
            KeyringError::Failed(why) => write!(f, "keyring error: {why}"),
        }
    }
}

impl std::error::Error for KeyringError {}

impl From<KeyringError> for std::io::Error {
    fn from(e: KeyringError) -> std::io::Error {
        std::io::Error::other(e)
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Entries the secret now occupies (1 when not split).
    pub parts: u32,
    /// Whether anything was written (false: the same secret was already there).
    pub changed: bool,
}

/// A handle on the OS keyring whose every operation is bounded.
#[derive(Debug, Clone)]
pub struct Keyring {
    entry_limit: usize,
    timeout: Duration,
    dead: Arc<AtomicBool>,
    /// How the last read was answered (for debug output): 0 none,
    /// [`READ_DIRECT`] or [`READ_CRATE`].
    last_read: Arc<AtomicU8>,
}

const READ_DIRECT: u8 = 1;
/// Why the direct reader gave up on an entry (locked, ambiguous, odd reply).
#[cfg(secret_service)]
const LEFT_TO_THE_CRATE: &str = "left to the keyring crate";
const READ_CRATE: u8 = 2;

impl Keyring {
    /// A handle storing at most `entry_limit` bytes per entry. Does no I/O.
    pub fn new(entry_limit: usize) -> Keyring {
        Keyring {
            entry_limit: entry_limit.max(MIN_ENTRY_LIMIT),
            timeout: CALL_TIMEOUT,
            dead: Arc::default(),
            last_read: Arc::default(),
        }
    }

    /// The same handle with another per-operation limit (for tests).
    pub fn with_timeout(mut self, timeout: Duration) -> Keyring {
        self.timeout = timeout;
        self
    }

    /// The per-entry limit in bytes.
    pub fn entry_limit(&self) -> usize {
        self.entry_limit
    }

    /// The secret stored under `key` (joined from its parts when split);
    /// `Ok(None)` when there is none or its parts do not add up.
    pub fn get(&self, key: &str) -> Result<Option<String>, KeyringError> {
        #[cfg(secret_service)]
        if let Some(decided) = self.get_direct(key) {
            self.last_read.store(READ_DIRECT, Ordering::Relaxed);
            return decided;
        }
        self.last_read.store(READ_CRATE, Ordering::Relaxed);
        let key = key.to_string();
        self.bounded("read", move || read_joined(&key))
    }

    /// How the last [`Keyring::get`] was answered, in words for debug output.
    pub fn last_read(&self) -> &'static str {
        match self.last_read.load(Ordering::Relaxed) {
            READ_DIRECT => "read directly over D-Bus (plain session on the private bus)",
            READ_CRATE => "read through the keyring crate",
            _ => "no read yet",
        }
    }

    /// The hit path's read over the minimal D-Bus client ([`direct`]):
    /// `None` leaves the decision to the keyring crate (split entries,
    /// locked or ambiguous matches, unexpected replies).
    #[cfg(secret_service)]
    fn get_direct(&self, key: &str) -> Option<Result<Option<String>, KeyringError>> {
        if self.dead.load(Ordering::Relaxed) {
            return Some(Err(KeyringError::Timeout { op: "read", limit: self.timeout }));
        }
        let address = secret_service::session_bus().ok()?;
        let deadline = Instant::now() + self.timeout;
        let reader = match secret_service::probed_bus() {
            Some(bus) => Ok(direct::Reader::over(bus, deadline)),
            None => direct::Reader::connect(&address, deadline),
        };
        let result = reader.and_then(|mut reader| {
            join_parts(key, |account| match reader.read(SERVICE, account)? {
                direct::Direct::Found(secret) => Ok(Some(secret)),
                direct::Direct::Missing => Ok(None),
                direct::Direct::Fallback => Err(std::io::Error::other(LEFT_TO_THE_CRATE)),
            })
        });
        match result {
            Ok(found) => Some(Ok(found)),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                self.dead.store(true, Ordering::Relaxed);
                Some(Err(KeyringError::Timeout { op: "read", limit: self.timeout }))
            }
            // Everything else (an unexpected reply, a refused connection)
            // gets a second opinion from the keyring crate.
            Err(_) => None,
        }
    }

    /// Stores `secret` under `key`, split when it exceeds the entry limit;
    /// entries that already hold the same bytes are not rewritten, surplus
    /// parts of a former longer secret are deleted.
    pub fn set(&self, key: &str, secret: &str) -> Result<Written, KeyringError> {
        let parts = secret.len().div_ceil(self.entry_limit).max(1);
        if parts > MAX_PARTS {
            return Err(KeyringError::Failed(format!(
                "the credential is {} bytes, more than {MAX_PARTS} entries of {} bytes; raise {}",
                secret.len(),
                self.entry_limit,
                crate::config::ENV_KEYRING_ENTRY_LIMIT
            )));
        }
        let key = key.to_string();
        let secret = secret.to_string();
        let limit = self.entry_limit;
        self.bounded("write", move || write_split(&key, &secret, limit))
    }

    /// Deletes the entry of `key` and all its parts (at least `known_parts`,
    /// e.g. from the index, in case the header is already gone). Returns how
    /// many entries were deleted.
    pub fn remove(&self, key: &str, known_parts: u32) -> Result<u32, KeyringError> {
        let key = key.to_string();
        self.bounded("delete", move || remove_all(&key, known_parts as usize))
    }

    /// The cache keys of every kcc entry in the Secret Service (split parts
    /// `KEY#n` folded into their `KEY`), for `kcc clear` and `kcc doctor` to
    /// find entries no index names. Bounded like every call; only where the
    /// Secret Service is the store (the Keychain and the Credential Manager
    /// are not searched: unverified there).
    #[cfg(secret_service)]
    pub fn list(&self) -> Result<Vec<String>, KeyringError> {
        let accounts = self.bounded("search", platform::accounts)?;
        Ok(fold_parts(accounts))
    }

    /// Runs `op` on a worker thread and waits at most the limit for it.
    fn bounded<T: Send + 'static>(
        &self,
        what: &'static str,
        op: impl FnOnce() -> Result<T, KeyringError> + Send + 'static,
    ) -> Result<T, KeyringError> {
        let timeout = Err(KeyringError::Timeout { op: what, limit: self.timeout });
        if self.dead.load(Ordering::Relaxed) {
            return timeout;
        }
        match run_bounded(self.timeout, move || {
            platform::ensure_store()?;
            op()
        }) {
            Some(result) => result,
            None => {
                self.dead.store(true, Ordering::Relaxed);
                timeout
            }
        }
    }
}

/// Runs `op` on its own thread; `None` when it did not finish within `limit`
/// (the thread is abandoned and dies with the process).
fn run_bounded<T: Send + 'static>(limit: Duration, op: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new().name("kcc-keyring".into()).spawn(move || {
        let _ = tx.send(op());
    });
    if spawned.is_err() {
        return None;
    }
    rx.recv_timeout(limit).ok()
}

/// The header the main entry holds when a secret is split.
pub(crate) fn split_header(parts: usize, whole: &[u8]) -> String {
    let digest: String = Sha256::digest(whole).iter().map(|b| format!("{b:02x}")).collect();
    format!("{SPLIT_PREFIX}{parts}:{digest}")
}

/// Parses a split header: (parts, hex digest).
pub(crate) fn parse_header(main: &[u8]) -> Option<(usize, &str)> {
    let text = std::str::from_utf8(main).ok()?;
    let rest = text.strip_prefix(SPLIT_PREFIX)?;
    let (n, digest) = rest.split_once(':')?;
    let n: usize = n.parse().ok()?;
    (1..=MAX_PARTS).contains(&n).then_some((n, digest))
}

/// The keys of `accounts`, without the part accounts (`KEY#n`) of a `KEY`
/// that is itself there: removing `KEY` removes its parts. A part whose
/// main entry is gone stays, so it can be removed too.
#[cfg_attr(not(secret_service), allow(dead_code))]
fn fold_parts(mut accounts: Vec<String>) -> Vec<String> {
    accounts.sort();
    accounts.dedup();
    let is_part_of_a_listed_key = |account: &str| {
        account.rsplit_once('#').is_some_and(|(key, n)| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && accounts.binary_search_by(|a| a.as_str().cmp(key)).is_ok()
        })
    };
    let keep: Vec<bool> = accounts.iter().map(|a| !is_part_of_a_listed_key(a)).collect();
    accounts.into_iter().zip(keep).filter(|(_, k)| *k).map(|(a, _)| a).collect()
}

/// The account of part `i` (1-based) of `key`.
fn part_account(key: &str, i: usize) -> String {
    format!("{key}#{i}")
}

fn read_joined(key: &str) -> Result<Option<String>, KeyringError> {
    join_parts(key, platform::get)
}

/// Reads `key`'s secret with `get`, joining its parts when it is split;
/// `Ok(None)` when it is missing or its parts do not add up to the digest.
pub(crate) fn join_parts<E>(
    key: &str,
    mut get: impl FnMut(&str) -> Result<Option<Vec<u8>>, E>,
) -> Result<Option<String>, E>
where
    E: From<NotUtf8>,
{
    let Some(main) = get(key)? else { return Ok(None) };
    let Some((n, digest)) = parse_header(&main) else {
        return String::from_utf8(main).map(Some).map_err(|_| E::from(NotUtf8));
    };
    let mut whole = Vec::new();
    for i in 1..=n {
        match get(&part_account(key, i))? {
            Some(part) => whole.extend_from_slice(&part),
            None => return Ok(None),
        }
    }
    if split_header(n, &whole) != format!("{SPLIT_PREFIX}{n}:{digest}") {
        return Ok(None);
    }
    Ok(String::from_utf8(whole).ok())
}

/// A stored secret that is not UTF-8 (an ExecCredential always is).
pub(crate) struct NotUtf8;

const NOT_UTF8: &str = "the stored secret is not valid UTF-8";

impl From<NotUtf8> for KeyringError {
    fn from(_: NotUtf8) -> KeyringError {
        KeyringError::Failed(NOT_UTF8.into())
    }
}

impl From<NotUtf8> for std::io::Error {
    fn from(_: NotUtf8) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, NOT_UTF8)
    }
}

fn write_split(key: &str, secret: &str, limit: usize) -> Result<Written, KeyringError> {
    let bytes = secret.as_bytes();
    let old_main = platform::get(key)?;
    let old_parts = old_main.as_deref().and_then(parse_header).map_or(0, |(n, _)| n);
    let mut changed = false;
    let parts = if bytes.len() <= limit {
        if old_main.as_deref() != Some(bytes) {
            platform::set(key, bytes)?;
            changed = true;
        }
        1
    } else {
        let chunks: Vec<&[u8]> = bytes.chunks(limit).collect();
        let header = split_header(chunks.len(), bytes);
        if old_main.as_deref() != Some(header.as_bytes()) {
            // Parts first, header last: a reader never joins a mixture.
            for (i, chunk) in chunks.iter().enumerate() {
                let account = part_account(key, i + 1);
                if platform::get(&account)?.as_deref() != Some(*chunk) {
                    platform::set(&account, chunk)?;
                }
            }
            platform::set(key, header.as_bytes())?;
            changed = true;
        }
        chunks.len()
    };
    let kept = if parts == 1 { 0 } else { parts };
    for i in kept + 1..=old_parts {
        platform::delete(&part_account(key, i))?;
    }
    Ok(Written { parts: parts as u32, changed })
}

fn remove_all(key: &str, known_parts: usize) -> Result<u32, KeyringError> {
    let main = platform::get(key)?;
    let header_parts = main.as_deref().and_then(parse_header).map_or(0, |(n, _)| n);
    let mut removed = 0;
    // The main entry first: from then on readers miss instead of finding a
    // header whose parts are going away.
    if main.is_some() && platform::delete(key)? {
        removed += 1;
    }
    let n = header_parts.max(known_parts).min(MAX_PARTS);
    for i in 1..=n {
        if platform::delete(&part_account(key, i))? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Maps a keyring error to words; never shows secret bytes some variants carry.
fn classify(e: keyring_core::Error) -> KeyringError {
    use keyring_core::Error as E;
    match e {
        E::NoStorageAccess(inner) => KeyringError::Denied(inner.to_string()),
        E::PlatformFailure(inner) => KeyringError::Failed(inner.to_string()),
        E::NoDefaultStore => KeyringError::Unavailable("no default credential store".into()),
        E::BadEncoding(_) | E::BadDataFormat(..) => KeyringError::Failed("the stored secret is not readable".into()),
        E::BadStoreFormat(why) => KeyringError::Failed(why),
        E::TooLong(what, max) => KeyringError::Failed(format!("{what} is longer than {max}")),
        E::Invalid(what, why) => KeyringError::Failed(format!("invalid {what}: {why}")),
        E::Ambiguous(entries) => {
            KeyringError::Failed(format!("{} entries match one account; delete the duplicates", entries.len()))
        }
        E::NotSupportedByStore(why) => KeyringError::Failed(why),
        E::NoEntry => KeyringError::Failed("no such entry".into()),
        other => KeyringError::Failed(other.to_string()),
    }
}

/// The per-platform part: store set-up, the probe, and single-entry calls
/// through keyring-core (`Ok(None)` / `Ok(false)` for a missing entry).
mod platform {
    #[cfg(not(secret_service))]
    use super::ProbeOutcome;
    use super::{KeyringError, SERVICE, classify};

    /// Initialises the platform store once (the keyring crate's default store).
    pub fn ensure_store() -> Result<(), KeyringError> {
        match keyring::Entry::store_status() {
            Ok(()) => Ok(()),
            Err(e) => Err(KeyringError::Unavailable(match e {
                keyring_core::Error::NoStorageAccess(inner) | keyring_core::Error::PlatformFailure(inner) => {
                    inner.to_string()
                }
                other => other.to_string(),
            })),
        }
    }

    fn entry(account: &str) -> Result<keyring_core::Entry, KeyringError> {
        #[cfg(secret_service)]
        {
            // The Go kcc's label, so both tools' entries look alike in Seahorse.
            let label = format!("Password for '{account}' on '{SERVICE}'");
            let modifiers = std::collections::HashMap::from([("label", label.as_str())]);
            keyring_core::Entry::new_with_modifiers(SERVICE, account, &modifiers).map_err(classify)
        }
        #[cfg(windows)]
        {
            // go-keyring's target name, `service:user`.
            let target = format!("{SERVICE}:{account}");
            let modifiers = std::collections::HashMap::from([("target", target.as_str())]);
            keyring_core::Entry::new_with_modifiers(SERVICE, account, &modifiers).map_err(classify)
        }
        #[cfg(not(any(windows, secret_service)))]
        {
            keyring_core::Entry::new(SERVICE, account).map_err(classify)
        }
    }

    /// The secret of `account`, `None` when there is none.
    pub fn get(account: &str) -> Result<Option<Vec<u8>>, KeyringError> {
        match entry(account)?.get_secret() {
            Ok(bytes) => Ok(Some(bytes)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    /// Stores `secret` as the secret of `account`.
    pub fn set(account: &str, secret: &[u8]) -> Result<(), KeyringError> {
        entry(account)?.set_secret(secret).map_err(classify)
    }

    /// Deletes `account`; `false` when it did not exist.
    pub fn delete(account: &str) -> Result<bool, KeyringError> {
        match entry(account)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(classify(e)),
        }
    }

    /// The accounts of every entry with kcc's service, found by the Secret
    /// Service's own attribute search (`SearchItems`, then each item's
    /// attributes). Callers check first that the store is running and
    /// unlocked: the keyring crate would ask to unlock locked items.
    #[cfg(secret_service)]
    pub fn accounts() -> Result<Vec<String>, KeyringError> {
        let spec = std::collections::HashMap::from([("service", SERVICE)]);
        let found = keyring_core::Entry::search(&spec).map_err(classify)?;
        Ok(found.iter().filter_map(|entry| entry.get_specifiers()).map(|(_, account)| account).collect())
    }

    /// macOS Keychain and Windows Credential Manager are part of the OS.
    #[cfg(any(target_os = "macos", windows))]
    pub fn probe(_allow_activation: bool) -> (ProbeOutcome, String) {
        let name = if cfg!(windows) { "Windows Credential Manager" } else { "macOS Keychain" };
        (ProbeOutcome::Available, format!("{name} (part of the OS, not probed)"))
    }

    #[cfg(not(any(target_os = "macos", windows, secret_service)))]
    pub fn probe(_allow_activation: bool) -> (ProbeOutcome, String) {
        (ProbeOutcome::NoService, "no supported secret store on this platform".into())
    }

    #[cfg(secret_service)]
    pub use super::secret_service::probe;
}

#[cfg(secret_service)]
pub(crate) mod dbus;

#[cfg(secret_service)]
mod direct;

/// The Secret Service probe (Linux and the BSDs).
#[cfg(secret_service)]
mod secret_service {
    use std::path::Path;
    use std::time::Instant;

    use super::dbus::{self, Bus, BusAddress, Reply, parse_address, u32_at};
    use super::{PROBE_TIMEOUT, ProbeOutcome, SERVICE_TIMEOUT, run_bounded};

    const SECRETS: &str = "org.freedesktop.secrets";
    const DEFAULT_COLLECTION: &str = "/org/freedesktop/secrets/aliases/default";

    /// The session bus kcc may talk to, decided from the environment and at
    /// most one `stat`, so a machine without a session bus pays nothing.
    /// Mirrors zbus (used by the keyring store): `DBUS_SESSION_BUS_ADDRESS`,
    /// else `$XDG_RUNTIME_DIR/bus`, else `/run/user/<uid>/bus`.
    pub fn session_bus() -> Result<BusAddress, String> {
        match std::env::var("DBUS_SESSION_BUS_ADDRESS") {
            Ok(list) if !list.trim().is_empty() => {
                let address = parse_address(&list)?;
                if let BusAddress::Path(p) = &address
                    && !is_socket(p)
                {
                    return Err(format!("DBUS_SESSION_BUS_ADDRESS names {}, which is not a socket", p.display()));
                }
                Ok(address)
            }
            _ => {
                let dir = std::env::var("XDG_RUNTIME_DIR").ok().filter(|d| !d.is_empty()).unwrap_or_else(|| {
                    // SAFETY: getuid has no preconditions and cannot fail.
                    format!("/run/user/{}", unsafe { libc::getuid() })
                });
                let path = Path::new(&dir).join("bus");
                if is_socket(&path) {
                    Ok(BusAddress::Path(path))
                } else {
                    Err(format!(
                        "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset and no socket {})",
                        path.display()
                    ))
                }
            }
        }
    }

    fn is_socket(path: &Path) -> bool {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
    }

    /// See [`super::probe`].
    pub fn probe(allow_activation: bool) -> (ProbeOutcome, String) {
        let address = match session_bus() {
            Ok(a) => a,
            Err(why) => return (ProbeOutcome::NoBus, why),
        };
        // The socket timeouts bound every read and write; a blocking
        // `connect` to a frozen bus with a full backlog is not, so the whole
        // conversation also runs on a worker thread as a backstop.
        let backstop = PROBE_TIMEOUT + SERVICE_TIMEOUT.max(super::CALL_TIMEOUT);
        run_bounded(backstop, move || converse(&address, allow_activation)).unwrap_or_else(|| {
            (ProbeOutcome::Unresponsive, format!("the session bus did not answer within {}ms", backstop.as_millis()))
        })
    }

    fn converse(address: &BusAddress, allow_activation: bool) -> (ProbeOutcome, String) {
        let limit = if allow_activation { super::CALL_TIMEOUT } else { PROBE_TIMEOUT };
        let deadline = Instant::now() + limit;
        let timed_out =
            |e: &std::io::Error| matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock);
        let mut bus = match Bus::connect(address, deadline) {
            Ok(bus) => bus,
            Err(e) if timed_out(&e) => {
                return (
                    ProbeOutcome::Unresponsive,
                    format!("the session bus did not answer within {}ms", limit.as_millis()),
                );
            }
            Err(e) => return (ProbeOutcome::NoBus, format!("cannot use the session bus: {e}")),
        };
        // Both questions go out at once (one round trip instead of two): the
        // `Locked` query carries NO_AUTO_START unless activation is allowed,
        // so it cannot start a service even before `NameHasOwner` answers.
        let mut body = Vec::new();
        dbus::put_string(&mut body, "org.freedesktop.Secret.Collection");
        dbus::put_string(&mut body, "Locked");
        let locked_call = dbus::Call {
            path: DEFAULT_COLLECTION,
            interface: "org.freedesktop.DBus.Properties",
            member: "Get",
            destination: SECRETS,
            signature: "ss",
            no_auto_start: !allow_activation,
        };
        let sent = if allow_activation {
            bus.send(&locked_call, &body).map(|locked| (None, locked))
        } else {
            let mut owner_body = Vec::new();
            dbus::put_string(&mut owner_body, SECRETS);
            let owner_call = dbus::Call {
                path: "/org/freedesktop/DBus",
                interface: "org.freedesktop.DBus",
                member: "NameHasOwner",
                destination: "org.freedesktop.DBus",
                signature: "s",
                no_auto_start: false,
            };
            bus.send(&owner_call, &owner_body).and_then(|owner| Ok((Some(owner), bus.send(&locked_call, &body)?)))
        };
        let (owner_serial, locked_serial) = match sent {
            Ok(serials) => serials,
            Err(e) if timed_out(&e) => {
                return (
                    ProbeOutcome::Unresponsive,
                    format!("the session bus did not answer within {}ms", limit.as_millis()),
                );
            }
            Err(e) => return (ProbeOutcome::NoBus, format!("cannot use the session bus: {e}")),
        };
        if let Some(owner_serial) = owner_serial {
            match bus.wait(owner_serial) {
                Ok(Reply::Return(body, le)) if u32_at(&body, 0, le) == 1 => {}
                Ok(Reply::Return(..)) => {
                    return (
                        ProbeOutcome::NoService,
                        format!("a session bus, but no Secret Service ({SECRETS} has no owner)"),
                    );
                }
                Ok(Reply::Error(name)) => {
                    return (ProbeOutcome::Unresponsive, format!("the session bus answered {name}"));
                }
                Err(e) if timed_out(&e) => {
                    return (
                        ProbeOutcome::Unresponsive,
                        format!("the session bus did not answer within {}ms", limit.as_millis()),
                    );
                }
                Err(e) => return (ProbeOutcome::Unresponsive, format!("the session bus failed: {e}")),
            }
        }
        let limit = if allow_activation { limit } else { SERVICE_TIMEOUT };
        bus.set_deadline(Instant::now() + limit);
        let locked = bus.wait(locked_serial);
        let outcome = match locked {
            // A variant: signature length 1, 'b', NUL, padding, then the boolean.
            Ok(Reply::Return(body, le)) if body.get(1) == Some(&b'b') => match u32_at(&body, 4, le) {
                0 => (ProbeOutcome::Available, "Secret Service running, default collection unlocked".into()),
                _ => (
                    ProbeOutcome::Locked,
                    "the Secret Service's default collection is locked; unlock it (log in to the desktop, or open Seahorse)".into(),
                ),
            },
            Ok(Reply::Return(..)) => {
                (ProbeOutcome::Unresponsive, "the Secret Service answered nonsense about locking".into())
            }
            Ok(Reply::Error(name)) if name.contains("UnknownObject") || name.contains("NoSuchObject") => (
                ProbeOutcome::Locked,
                "the Secret Service has no default collection; creating one needs a password prompt (log in to the desktop once)".into(),
            ),
            Ok(Reply::Error(name)) if name.contains("ServiceUnknown") || name.contains("NameHasNoOwner") => (
                ProbeOutcome::NoService,
                format!("a session bus, but no Secret Service could be started ({name})"),
            ),
            Ok(Reply::Error(name)) => (ProbeOutcome::Unresponsive, format!("the Secret Service answered {name}")),
            Err(e) if timed_out(&e) => (
                ProbeOutcome::Unresponsive,
                format!("the Secret Service did not answer within {}ms", limit.as_millis()),
            ),
            Err(e) => (ProbeOutcome::Unresponsive, format!("the Secret Service failed: {e}")),
        };
        if outcome.0 == ProbeOutcome::Available {
            keep_for_reads(bus);
        }
        outcome
    }

    /// The probe's connection, kept for the read that follows it (a hit):
    /// connecting, authenticating and `Hello` again would cost three more
    /// round trips on every keyring hit.
    static PROBED_BUS: std::sync::Mutex<Option<Bus>> = std::sync::Mutex::new(None);

    fn keep_for_reads(bus: Bus) {
        if let Ok(mut kept) = PROBED_BUS.lock() {
            *kept = Some(bus);
        }
    }

    /// The connection the probe left behind, if any (taken: one user at a time).
    pub fn probed_bus() -> Option<Bus> {
        PROBED_BUS.lock().ok()?.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_parts_fold_into_their_key_and_lone_parts_stay() {
        let accounts = ["b#1", "a", "a#1", "a#2", "c#1", "a#x", "a"].map(String::from).to_vec();
        assert_eq!(fold_parts(accounts), ["a", "a#x", "b#1", "c#1"]);
    }

    #[test]
    fn split_headers_round_trip_and_reject_junk() {
        let h = split_header(3, b"abc");
        let (n, digest) = parse_header(h.as_bytes()).unwrap();
        assert_eq!(n, 3);
        assert_eq!(digest.len(), 64);
        assert!(parse_header(b"{\"kind\":\"ExecCredential\"}").is_none());
        assert!(parse_header(b"kcc-split:v1:0:ab").is_none());
        assert!(parse_header(b"kcc-split:v1:999:ab").is_none());
    }

    #[test]
    fn a_stuck_operation_is_abandoned_in_time() {
        let start = Instant::now();
        let r = run_bounded(Duration::from_millis(20), || std::thread::sleep(Duration::from_secs(5)));
        assert!(r.is_none());
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
