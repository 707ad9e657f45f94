//! The shared store: every mode reads and writes credentials through here.
//!
//! It owns the three promises the rest of kcc relies on:
//! - **no torn reads, no lost writes**: readers take no lock and rely on
//!   atomic replacement ([`file::write_atomic`]); every read-modify-write runs
//!   under the exclusive store lock, so concurrent writers keep each other's
//!   entries;
//! - **single flight**: [`Store::flight`] is a per-key lock held while the
//!   plugin runs, so of many processes that miss the same key at once exactly
//!   one runs the plugin and the rest serve its result;
//! - **a cache that cannot be written never breaks kubectl**: callers get
//!   `io::Result`s and decide to warn and carry on.
//!
//! Beside the credentials sits a non-secret index ([`index`]): key, user,
//! server, apiVersion, expiry, where the expiry came from, the backend and how
//! many keyring entries a secret occupies, so `kcc clear` and `kcc doctor` can
//! list and explain entries without reading (or unlocking) secrets.
//!
//! The secrets are held by the 0600 JSON file ([`file`]) or by a secret
//! store ([`backend::SecretStore`]): the OS keyring ([`keyring`]) or, on
//! Linux, the kernel keyring ([`kernel`]). With a secret store nothing secret
//! is written to disk: `cache.json` is not written, and the first write to a
//! secret store moves the plaintext entries kcc left there into it (see
//! [`Store::put`]); only the index records the entry. [`select`] implements
//! `KUBE_CREDENTIAL_CACHE_BACKEND`.

pub mod backend;
pub mod file;
pub mod index;
#[cfg(target_os = "linux")]
pub mod kernel;
pub mod keyring;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use crate::config::{BackendChoice, ENV_BACKEND};
use crate::credential::{CredentialHead, is_fresh};
use crate::diagnostics::{Decision, Diag, Miss};
use crate::lock::FileLock;
use crate::paths::StorePaths;

pub use backend::SecretStore;
pub use index::{BackgroundAttempt, ForcedRefresh, IdentityMeta, IndexEntry};
pub use keyring::{Keyring, KeyringError, Probe, ProbeOutcome};

/// At most this many expired keyring entries are deleted by one `put`, so
/// pruning never makes a refresh slow; the rest go on later puts.
const PRUNE_PER_PUT: usize = 8;

/// What the store holds under a key.
#[derive(Debug)]
pub enum Lookup {
    /// Nothing.
    Missing,
    /// A credential, as JSON text.
    Found(String),
    /// Something that is not a usable credential (never shown: it may hold a secret).
    Corrupt(String),
    /// The store could not be read.
    Unreadable(String),
    /// The store's path is not a regular file (a FIFO, a device node): the
    /// store must not be used at all in this call (see [`file::NotRegular`]).
    Refused(String),
}

/// Which secret store holds the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The 0600 JSON file.
    File,
    /// The OS secret store (Secret Service, Keychain, Credential Manager).
    Keyring,
    /// The Linux kernel's key retention service (the persistent keyring).
    Kernel,
}

impl Backend {
    /// The backend's name, as in `KUBE_CREDENTIAL_CACHE_BACKEND` and the index.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::File => "file",
            Backend::Keyring => "keyring",
            Backend::Kernel => "kernel",
        }
    }

    /// The backend of an index row's `backend` field.
    pub fn from_name(name: &str) -> Option<Backend> {
        [Backend::File, Backend::Keyring, Backend::Kernel].into_iter().find(|b| b.as_str() == name)
    }
}

/// The opened store.
#[derive(Debug, Clone)]
pub struct Store {
    /// Where its files are.
    pub paths: StorePaths,
    /// The secret store holding the credentials; `None`: the file does.
    secrets: Option<Arc<dyn SecretStore>>,
}

/// What `KUBE_CREDENTIAL_CACHE_BACKEND` comes to on this machine right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Use this backend; the text says why.
    Use(Backend, String),
    /// A secret store is there but cannot be used now (locked, denied,
    /// unresponsive): serve credentials without caching them — never fall
    /// back to plaintext. The text says why and what to do.
    NoCache(String),
    /// The keyring is forced but unreachable: an error that says how to fix it.
    Unreachable(String),
}

/// What [`select`] decided, with the probes that decided it.
#[derive(Debug)]
pub struct Choice {
    /// The decision.
    pub selection: Selection,
    /// Every probe that ran, in order (for debug output and `kcc doctor`).
    pub probes: Vec<(Backend, Probe)>,
    /// The probed secret store, when one was chosen (its probe's work, such
    /// as the kernel keyring's serial, is reused by the reads that follow).
    pub secrets: Option<Arc<dyn SecretStore>>,
}

/// Applies `KUBE_CREDENTIAL_CACHE_BACKEND`: `file` does no probing at all;
/// `auto` probes each secret store of [`backend::candidates`] in order
/// without starting anything and takes the first usable one — a running,
/// unlocked Secret Service, else the kernel keyring — and the file when there
/// is none. A store that is *present but unusable* (a locked or frozen
/// Secret Service) stops the search: the credential is served uncached, never
/// put in plaintext nor in a store the user did not unlock. `keyring` lets
/// D-Bus activate a Secret Service; `keyring` and `kernel` fail when their
/// store cannot be used.
pub fn select(choice: BackendChoice, entry_limit: usize) -> Choice {
    let forced = match choice {
        BackendChoice::None => {
            let selection = Selection::NoCache(format!(
                "forced by {ENV_BACKEND}=none: no store; the plugin runs on every call and its credential is not cached"
            ));
            return Choice { selection, probes: Vec::new(), secrets: None };
        }
        BackendChoice::File => {
            let selection = Selection::Use(Backend::File, format!("forced by {ENV_BACKEND}=file"));
            return Choice { selection, probes: Vec::new(), secrets: None };
        }
        BackendChoice::Auto => None,
        BackendChoice::Keyring => Some(Backend::Keyring),
        BackendChoice::Kernel => Some(Backend::Kernel),
    };
    let order = forced.map_or_else(|| backend::candidates().to_vec(), |b| vec![b]);
    let mut probes = Vec::new();
    let mut absent = Vec::new();
    for candidate in order {
        let Some(secrets) = backend::open(candidate, entry_limit) else {
            let why = format!("{ENV_BACKEND}={} but this platform has no such store", candidate.as_str());
            return Choice { selection: Selection::Unreachable(why), probes, secrets: None };
        };
        let probe = secrets.probe(forced.is_some());
        let why = probe.describe();
        let outcome = probe.outcome;
        probes.push((candidate, probe));
        let Some(selection) = judge(candidate, outcome, forced, &why, &mut absent) else { continue };
        let secrets = matches!(selection, Selection::Use(..)).then_some(secrets);
        return Choice { selection, probes, secrets };
    }
    let selection = Selection::Use(Backend::File, format!("auto: no secret store reachable: {}", absent.join("; ")));
    Choice { selection, probes, secrets: None }
}

/// One step of [`select`], a pure function of what the probe of `candidate`
/// found: the decision, or `None` to try the next store (this one is absent;
/// its reason joins `absent`, which explains the final choice).
fn judge(
    candidate: Backend,
    outcome: ProbeOutcome,
    forced: Option<Backend>,
    why: &str,
    absent: &mut Vec<String>,
) -> Option<Selection> {
    Some(match (outcome, forced) {
        (ProbeOutcome::Available, None) => {
            absent.push(why.to_string());
            Selection::Use(candidate, format!("auto: {}", absent.join("; ")))
        }
        (ProbeOutcome::Available, Some(b)) => {
            Selection::Use(b, format!("forced by {ENV_BACKEND}={}: {why}", b.as_str()))
        }
        (ProbeOutcome::Locked, _) => Selection::NoCache(format!(
            "{why}; the credential is served but not cached (kcc never falls back to plaintext while a keyring is present; set {ENV_BACKEND}=file to use the file store)"
        )),
        (ProbeOutcome::Unresponsive, None) => Selection::NoCache(format!(
            "a secret store is present but unusable: {why}; the credential is served but not cached (set {ENV_BACKEND}=file to use the file store)"
        )),
        (_, Some(Backend::Kernel)) => Selection::Unreachable(format!(
            "{ENV_BACKEND}=kernel but the kernel keyring cannot be used: {why}; run kcc outside the container or sandbox that blocks keyctl, or set {ENV_BACKEND}=file"
        )),
        (_, Some(_)) => Selection::Unreachable(format!(
            "{ENV_BACKEND}=keyring but no secret store is reachable: {why}; start the Secret Service (e.g. gnome-keyring-daemon) in your session and unlock it, or set {ENV_BACKEND}=file"
        )),
        (ProbeOutcome::NoBus | ProbeOutcome::NoService | ProbeOutcome::Unsupported, None) => {
            absent.push(format!("{}: {why}", candidate.as_str()));
            return None;
        }
    })
}

/// Judges a stored credential: served (hit) or not, and why.
pub fn decide(lookup: &Lookup, wanted_api: Option<&str>, now: Timestamp, margin: SignedDuration) -> Decision {
    let json = match lookup {
        Lookup::Missing => return Decision::Miss(Miss::NoEntry),
        Lookup::Corrupt(why) => return Decision::Miss(Miss::Corrupt { why: why.clone() }),
        Lookup::Unreadable(why) | Lookup::Refused(why) => {
            return Decision::Miss(Miss::StoreUnreadable { why: why.clone() });
        }
        Lookup::Found(json) => json,
    };
    let Some(head) = CredentialHead::parse(json) else {
        return Decision::Miss(Miss::Corrupt { why: "not an ExecCredential".into() });
    };
    if let Some(wanted) = wanted_api
        && head.api_version != wanted
    {
        return Decision::Miss(Miss::DifferentApiVersion { stored: head.api_version, wanted: wanted.to_string() });
    }
    let Some(expiry) = head.expiry() else {
        return Decision::Miss(Miss::Corrupt { why: "no expirationTimestamp".into() });
    };
    decide_expiry(expiry, now, margin)
}

/// Judges an entry by its expiry alone (what [`decide`] does once the entry
/// is read); `kcc doctor` uses it for entries known from the index only,
/// without reading their secret.
pub fn decide_expiry(expiry: Timestamp, now: Timestamp, margin: SignedDuration) -> Decision {
    if is_fresh(expiry, now, margin) {
        Decision::Hit { expiry, default_ttl: false }
    } else if expiry > now {
        Decision::Miss(Miss::WithinMargin { at: expiry, margin })
    } else {
        Decision::Miss(Miss::Expired { at: expiry })
    }
}

/// One cached entry as `kcc clear` and `kcc doctor` see it: its key and what
/// is known about it, never its secret.
#[derive(Debug, Clone, Default)]
pub struct EntryInfo {
    /// The cache key.
    pub key: String,
    /// Its index metadata, if the index has it (entries the Go kcc wrote have none).
    pub meta: Option<IndexEntry>,
    /// Whether the credential sits in the file store (false: index only, e.g. a keyring entry).
    pub in_file: bool,
    /// Its expiry: from the stored credential, else from the index. None when
    /// neither gives one that parses.
    pub expiry: Option<Timestamp>,
    /// The stored credential's apiVersion, else the index's.
    pub api_version: Option<String>,
    /// Set for an *orphan*: an entry of this secret store that neither the
    /// index nor the file names (the cache directory was deleted, or another
    /// `KUBE_CREDENTIAL_CACHE_FILE` wrote it), found by enumerating the
    /// store. Its key (the description after `kube-credential-cache:`) is
    /// the whole readable cache key, so user and server selectors still
    /// match it; its expiry and apiVersion come from the stored credential.
    pub orphan_in: Option<Backend>,
}

impl EntryInfo {
    /// The backend holding the secret: the store an orphan was found in, the
    /// index's word, else `file`.
    pub fn backend(&self) -> &str {
        match (self.orphan_in, &self.meta) {
            (Some(store), _) => store.as_str(),
            (None, Some(meta)) => meta.backend.as_str(),
            (None, None) => "file",
        }
    }
}

/// Every entry of a store, read without the lock (a snapshot).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The entries, file entries and index-only entries merged, by key.
    pub entries: Vec<EntryInfo>,
    /// Why the file store could not be parsed, if it could not.
    pub corrupt: Option<String>,
}

/// What [`Store::remove_where`] removed (or, on a dry run, would remove).
#[derive(Debug, Clone, Default)]
pub struct Removal {
    /// The matching entries.
    pub removed: Vec<EntryInfo>,
    /// How many entries the store held before.
    pub total: usize,
    /// The file store was corrupt and was (or would be) replaced by an empty one.
    pub reset_corrupt: Option<String>,
}

/// Why [`Store::remove_where`] refused to touch the store.
#[derive(Debug)]
pub enum RemoveError {
    /// The file store is not valid JSON and the selection was not "everything":
    /// kcc cannot tell which entries match, so it keeps the file for the user.
    Corrupt(String),
    /// Reading, locking or writing failed.
    Io(io::Error),
}

impl From<io::Error> for RemoveError {
    fn from(e: io::Error) -> RemoveError {
        RemoveError::Io(e)
    }
}

fn entry_infos(entries: &file::Entries, idx: &index::Index) -> Vec<EntryInfo> {
    let mut out: Vec<EntryInfo> = entries
        .iter()
        .map(|(key, raw)| {
            let head = CredentialHead::parse(raw.get());
            let meta = idx.entries.get(key).cloned();
            let expiry = head
                .as_ref()
                .and_then(CredentialHead::expiry)
                .or_else(|| meta.as_ref().and_then(|m| m.expiry.parse().ok()));
            let api_version = head
                .map(|h| h.api_version)
                .filter(|a| !a.is_empty())
                .or_else(|| meta.as_ref().map(|m| m.api_version.clone()));
            EntryInfo { key: key.clone(), meta, in_file: true, expiry, api_version, orphan_in: None }
        })
        .collect();
    for (key, meta) in &idx.entries {
        // An index row without a file entry is a secret kept elsewhere (the
        // keyring); a `file` row without one is stale metadata (a Go kcc
        // rewrote the file) and is listed so clear can drop it.
        if !entries.contains_key(key) {
            out.push(EntryInfo {
                key: key.clone(),
                meta: Some(meta.clone()),
                in_file: false,
                expiry: meta.expiry.parse().ok(),
                api_version: Some(meta.api_version.clone()),
                orphan_in: None,
            });
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

impl Store {
    /// A file-backed store at `paths`.
    pub fn new(paths: StorePaths, backend: Backend) -> Store {
        debug_assert_eq!(backend, Backend::File, "use Store::with_secrets");
        Store { paths, secrets: None }
    }

    /// A keyring-backed store whose index and locks live at `paths`.
    pub fn with_keyring(paths: StorePaths, keyring: Keyring) -> Store {
        Store::with_secrets(paths, Arc::new(keyring))
    }

    /// A store whose secrets `secrets` holds; index and locks live at `paths`.
    pub fn with_secrets(paths: StorePaths, secrets: Arc<dyn SecretStore>) -> Store {
        Store { paths, secrets: Some(secrets) }
    }

    /// Where credentials go.
    pub fn backend(&self) -> Backend {
        self.secrets.as_ref().map_or(Backend::File, |s| s.backend())
    }

    /// The secret store, when one holds the secrets.
    pub fn secrets(&self) -> Option<&dyn SecretStore> {
        self.secrets.as_deref()
    }

    /// Where a secret is written, for messages: the file's path or the store.
    pub fn place(&self) -> String {
        self.secrets.as_ref().map_or_else(|| self.paths.file.display().to_string(), |s| s.place().into())
    }

    /// Looks `key` up. The hot path: one read, no lock, no full parse of a
    /// file kcc wrote; with a secret store one bounded read there.
    pub fn lookup(&self, key: &str) -> Lookup {
        if let Some(secrets) = &self.secrets {
            return match secrets.read(key) {
                Ok(Some(json)) => Lookup::Found(json),
                Ok(None) => Lookup::Missing,
                Err(e) => Lookup::Unreadable(e.to_string()),
            };
        }
        match file::lookup(&self.paths.file, key) {
            Ok(file::Found::NoFile | file::Found::Missing) => Lookup::Missing,
            Ok(file::Found::Entry(json)) => Lookup::Found(json),
            Ok(file::Found::Corrupt(why)) => {
                Lookup::Corrupt(format!("{} is not valid JSON: {why}", self.paths.file.display()))
            }
            Err(e) if file::NotRegular::of(&e).is_some() => Lookup::Refused(e.to_string()),
            Err(e) => Lookup::Unreadable(format!("{}: {e}", self.paths.file.display())),
        }
    }

    /// Fails with [`file::NotRegular`] when the store's path holds something
    /// other than a regular file (or a symlink, refused on read): before
    /// kcc creates its companions beside a device node or a FIFO.
    pub fn refuse_non_regular(&self) -> io::Result<()> {
        file::refuse_non_regular_at(&self.paths.file)
    }

    /// The single-flight lock file of `key`.
    pub fn flight_path(&self, key: &str) -> PathBuf {
        let digest = Sha256::digest(key.as_bytes());
        let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.paths.flight_dir().join(format!("{name}.lock"))
    }

    /// Takes the per-key single-flight lock, waiting while another process
    /// refreshes the same key.
    ///
    /// `nested` (kcc running inside a plugin that kcc started) never waits:
    /// the outer kcc may hold this very lock while it waits for us, and
    /// waiting would deadlock instead of letting the recursion guard stop a
    /// loop. It returns `Ok(None)` when the lock is taken.
    pub fn flight(&self, key: &str, nested: bool, diag: &Diag) -> io::Result<Option<FileLock>> {
        self.prepare_dir(diag)?;
        let dir = self.paths.flight_dir();
        file::ensure_dir(&dir)?;
        let path = self.flight_path(key);
        if nested {
            return FileLock::try_acquire(&path);
        }
        let (lock, _) = FileLock::acquire(&path, |p| {
            diag.debug(|| format!("another kcc is refreshing this key; waiting for {}", p.display()))
        })?;
        Ok(Some(lock))
    }

    /// Creates the store directory (0700), or checks that an existing one is
    /// private before anything is written there (see [`file::secure_dir`]).
    fn prepare_dir(&self, diag: &Diag) -> io::Result<()> {
        let dir = self.paths.dir();
        file::ensure_dir(dir)?;
        if let Some(repaired) = file::secure_dir(dir, self.paths.own_dir)? {
            diag.warn(&repaired);
        }
        Ok(())
    }

    /// Takes the store lock for a read-modify-write.
    pub fn lock(&self, diag: &Diag) -> io::Result<FileLock> {
        self.refuse_non_regular()?;
        self.prepare_dir(diag)?;
        let (lock, _) = FileLock::acquire(&self.paths.store_lock(), |p| {
            diag.debug(|| format!("waiting for the store lock {}", p.display()))
        })?;
        // Every writer of these files holds this lock: temp files found now
        // are those of writers that were killed.
        file::remove_leftover_temps(&self.paths.file);
        file::remove_leftover_temps(&self.paths.index());
        Ok(lock)
    }

    /// Reads every entry under the store lock the caller holds. A corrupt
    /// file yields no entries and a warning message to show.
    pub fn load_locked(&self, _lock: &FileLock) -> io::Result<(file::Entries, Option<String>)> {
        let read = match file::read(&self.paths.file) {
            // Another user's file in our (private, checked) directory: its
            // entries are not trusted; the write replaces it with our own.
            Err(e) if file::ForeignOwner::of(&e).is_some() => {
                return Ok((file::Entries::new(), Some(format!("{e}; starting a new one"))));
            }
            read => read?,
        };
        match read {
            None => Ok((file::Entries::new(), None)),
            Some(bytes) => match file::parse_all(&bytes) {
                Ok(entries) => Ok((entries, None)),
                Err(why) => Ok((
                    file::Entries::new(),
                    Some(format!(
                        "the cache file {} was corrupt ({why}); starting a new one",
                        self.paths.file.display()
                    )),
                )),
            },
        }
    }

    /// Writes every entry under the store lock the caller holds.
    pub fn save_locked(&self, _lock: &FileLock, entries: &file::Entries) -> io::Result<()> {
        file::write_atomic(&self.paths.file, &file::render(entries))
    }

    /// Stores `credential_json` under `key`, pruning expired entries, and
    /// records its metadata (with the backend and the number of keyring
    /// entries) in the index.
    pub fn put(
        &self,
        key: &str,
        credential_json: &str,
        mut meta: IndexEntry,
        now: Timestamp,
        diag: &Diag,
    ) -> io::Result<()> {
        let lock = self.lock(diag)?;
        let mut idx = index::Index::load_for_update(&self.paths.index())?;
        meta.backend = self.backend().as_str().into();
        if let Some(secrets) = &self.secrets {
            let expiry = meta.expiry.parse::<Timestamp>().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let written = self.write_secret(secrets.as_ref(), &mut idx, key, credential_json, expiry, now, diag);
            let written = match written {
                Ok(written) => written,
                Err(e) => {
                    // Rows of evicted entries are gone either way.
                    idx.save(&self.paths.index())?;
                    return Err(e.into());
                }
            };
            meta.parts = written.parts;
            let place = secrets.place();
            diag.debug(|| match (written.changed, written.parts, secrets.entry_limit()) {
                (false, _, _) => format!("{place} already holds this credential; not rewritten"),
                (true, n, Some(limit)) if n > 1 => {
                    format!("stored {place}, split across {n} entries (limit {limit} bytes)")
                }
                (true, ..) => format!("stored {place}"),
            });
            self.prune_secrets(secrets.as_ref(), &mut idx, now, diag);
            // No plaintext copy (of this key or any other kcc wrote) outlives this.
            self.move_plaintext(&lock, secrets.as_ref(), &mut idx, key, now, diag)?;
        } else {
            let (mut entries, corrupt) = self.load_locked(&lock)?;
            if let Some(message) = corrupt {
                diag.warn(&message);
            }
            let before = entries.len();
            entries.retain(|_, raw| CredentialHead::parse(raw.get()).and_then(|h| h.expiry()).is_some_and(|t| t > now));
            let pruned = before - entries.len();
            if pruned > 0 {
                diag.debug(|| {
                    format!("pruned {pruned} expired entr{} from the store", if pruned == 1 { "y" } else { "ies" })
                });
            }
            let raw = serde_json::value::RawValue::from_string(credential_json.to_string())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            entries.insert(key.to_string(), raw);
            self.save_locked(&lock, &entries)?;
            meta.parts = 1;
            // Secret-store entries are not in the file; they stay until a run
            // with their store prunes them or `kcc clear` removes them.
            idx.entries.retain(|k, e| e.backend != Backend::File.as_str() || entries.contains_key(k));
        }
        idx.carry_history(key, &mut meta);
        idx.entries.insert(key.to_string(), meta);
        idx.save(&self.paths.index())
    }

    /// The index row of `key`, if any (one read of the index, no lock).
    pub fn meta(&self, key: &str) -> Option<IndexEntry> {
        index::Index::load(&self.paths.index()).entries.remove(key)
    }

    /// Changes the index row of `key` under the store lock (for refresh
    /// bookkeeping that is not a new credential). Returns false when the
    /// index has no row for `key` and `update` was not called.
    pub fn update_meta(&self, key: &str, diag: &Diag, update: impl FnOnce(&mut IndexEntry)) -> io::Result<bool> {
        let _lock = self.lock(diag)?;
        let mut idx = index::Index::load_for_update(&self.paths.index())?;
        let Some(entry) = idx.entries.get_mut(key) else { return Ok(false) };
        update(entry);
        idx.save(&self.paths.index())?;
        Ok(true)
    }

    /// The file recording which client was last served `key` (see
    /// [`crate::heal`]): a hint beside the flight lock, never a secret.
    pub fn served_path(&self, key: &str) -> PathBuf {
        self.flight_path(key).with_extension("served")
    }

    /// The lock a background refresher of `key` holds while it lives.
    pub fn ahead_lock_path(&self, key: &str) -> PathBuf {
        self.flight_path(key).with_extension("ahead")
    }

    /// Every entry with what the index knows about it, read without the lock
    /// (atomic replacement means the snapshot is consistent per file).
    pub fn list(&self) -> io::Result<Listing> {
        let idx = index::Index::load(&self.paths.index());
        let (entries, corrupt) = match file::read(&self.paths.file)? {
            None => (file::Entries::new(), None),
            Some(bytes) => match file::parse_all(&bytes) {
                Ok(entries) => (entries, None),
                Err(why) => (file::Entries::new(), Some(why)),
            },
        };
        let mut infos = entry_infos(&entries, &idx);
        infos.extend(self.orphans(&idx, &mut |_| {}));
        Ok(Listing { entries: infos, corrupt })
    }

    /// The entries of every secret store that can enumerate what it holds
    /// (the kernel keyring: `KEYCTL_READ` of the keyring, `KEYCTL_DESCRIBE`
    /// of each key, kcc's description prefix; the Secret Service: a search
    /// for kcc's service attribute) that neither the index (with
    /// that store as backend) nor the file names. Their payload is read once
    /// for its expiry and apiVersion, never shown; a key that expired meanwhile
    /// is skipped (the kernel no longer serves it and collects it itself). A
    /// store that cannot be enumerated is skipped with a `note`.
    fn orphans(&self, idx: &index::Index, note: &mut dyn FnMut(String)) -> Vec<EntryInfo> {
        let mut out = Vec::new();
        for &store_backend in backend::candidates() {
            let store = match &self.secrets {
                Some(s) if s.backend() == store_backend => Arc::clone(s),
                _ => match backend::open(store_backend, keyring::DEFAULT_ENTRY_LIMIT) {
                    Some(s) => s,
                    None => continue,
                },
            };
            // Only a store that answers, unlocked, without being started
            // (the probe `auto` uses): a search must never prompt or launch.
            let probe = store.probe(false);
            if probe.outcome != ProbeOutcome::Available {
                note(format!("not looking for entries the index does not know {}: {}", store.place(), probe.reason));
                continue;
            }
            let keys = match store.list() {
                None => continue,
                Some(Ok(keys)) => keys,
                Some(Err(e)) => {
                    note(format!("cannot look for entries the index does not know {}: {e}", store.place()));
                    continue;
                }
            };
            let name = store_backend.as_str();
            for key in keys {
                let indexed = idx.entries.get(&key).is_some_and(|row| row.backend == name);
                if indexed {
                    continue;
                }
                let head = match store.read(&key) {
                    Ok(Some(json)) => CredentialHead::parse(&json),
                    Ok(None) => continue,
                    Err(e) => {
                        note(format!("cannot read the orphaned entry {key} {}: {e}", store.place()));
                        None
                    }
                };
                out.push(EntryInfo {
                    expiry: head.as_ref().and_then(CredentialHead::expiry),
                    api_version: head.map(|h| h.api_version).filter(|a| !a.is_empty()),
                    key,
                    meta: None,
                    in_file: false,
                    orphan_in: Some(store_backend),
                });
            }
        }
        out
    }

    /// Removes every entry `select` picks, from every backend, in one pass
    /// under the store lock (so it never races a `kcc cache` writing the same
    /// file), and drops their index rows. `dry_run` computes the same answer
    /// and changes nothing.
    ///
    /// A corrupt file store is replaced by an empty one only when `everything`
    /// is set (the user asked for all of it anyway); otherwise kcc cannot tell
    /// which entries match and returns [`RemoveError::Corrupt`].
    ///
    /// Backends: file entries are dropped from the file in bulk. Entries that
    /// are in the index only (`in_file == false`) have their secret in another
    /// backend; the keyring backend deletes them in [`Store::remove_secret`]
    /// before their index row goes. Orphans (entries of an enumerable secret
    /// store that no index row names, see [`Store::orphans`]) are selected
    /// and removed like any other entry, so a deleted cache directory does
    /// not leave secrets in the kernel that `kcc clear` cannot reach.
    pub fn remove_where(
        &self,
        diag: &Diag,
        dry_run: bool,
        everything: bool,
        now: Timestamp,
        select: impl Fn(&EntryInfo, Timestamp) -> bool,
    ) -> Result<Removal, RemoveError> {
        let lock = self.lock(diag)?;
        let mut idx = index::Index::load_for_update(&self.paths.index())?;
        let (mut entries, reset_corrupt) = match file::read(&self.paths.file)? {
            None => (file::Entries::new(), None),
            Some(bytes) => match file::parse_all(&bytes) {
                Ok(entries) => (entries, None),
                Err(why) if everything => (file::Entries::new(), Some(why)),
                Err(why) => return Err(RemoveError::Corrupt(why)),
            },
        };
        let mut infos = entry_infos(&entries, &idx);
        infos.extend(self.orphans(&idx, &mut |why| diag.debug(|| why)));
        let total = infos.len();
        let removed: Vec<EntryInfo> = infos.into_iter().filter(|e| select(e, now)).collect();
        if dry_run {
            return Ok(Removal { removed, total, reset_corrupt });
        }
        for entry in &removed {
            if !entry.in_file {
                self.remove_secret(entry)?;
            }
        }
        let before = entries.len();
        entries.retain(|key, _| !removed.iter().any(|e| &e.key == key));
        if entries.len() != before || reset_corrupt.is_some() {
            self.save_locked(&lock, &entries)?;
        }
        let rows = idx.entries.len();
        idx.entries.retain(|key, _| !removed.iter().any(|e| &e.key == key));
        if idx.entries.len() != rows {
            idx.save(&self.paths.index())?;
        }
        Ok(Removal { removed, total, reset_corrupt })
    }

    /// Deletes the secret of an entry that lives outside the file store,
    /// through the secret store its index row names (this store's own handle
    /// when it is that one; bounded like every call there; a failure keeps
    /// the index row, so a later clear can retry). A `file` row without a
    /// file entry is stale metadata: nothing to delete.
    fn remove_secret(&self, entry: &EntryInfo) -> io::Result<()> {
        let Some(backend) = entry.orphan_in.or_else(|| Backend::from_name(entry.backend())) else { return Ok(()) };
        let opened;
        let secrets = match &self.secrets {
            Some(s) if s.backend() == backend => s.as_ref(),
            _ => match backend::open(backend, keyring::DEFAULT_ENTRY_LIMIT) {
                Some(s) => {
                    opened = s;
                    opened.as_ref()
                }
                None => return Ok(()),
            },
        };
        let parts = entry.meta.as_ref().map_or(1, |m| m.parts);
        secrets.remove(&entry.key, parts)?;
        Ok(())
    }

    /// Writes `json` to `secrets`; when the store is full, gives up kcc's own
    /// entries there, the one that expires first first, and drops their
    /// index rows.
    #[allow(clippy::too_many_arguments)]
    fn write_secret(
        &self,
        secrets: &dyn SecretStore,
        idx: &mut index::Index,
        key: &str,
        json: &str,
        expiry: Timestamp,
        now: Timestamp,
        diag: &Diag,
    ) -> Result<keyring::Written, KeyringError> {
        let name = secrets.backend().as_str();
        let mut victims: Vec<(Timestamp, String)> = idx
            .entries
            .iter()
            .filter(|(k, e)| e.backend == name && k.as_str() != key)
            .map(|(k, e)| (e.expiry.parse().unwrap_or(Timestamp::MIN), k.clone()))
            .collect();
        victims.sort();
        let mut victims = victims.into_iter().map(|(_, k)| k);
        let mut evicted = Vec::new();
        let written = secrets.write(key, json, expiry, now, &mut || {
            let victim = victims.next()?;
            evicted.push(victim.clone());
            Some(victim)
        });
        for victim in evicted {
            diag.debug(|| format!("{} is full: evicted the entry that expires first ({victim})", secrets.place()));
            idx.entries.remove(&victim);
        }
        written
    }

    /// Deletes the secrets of entries of `secrets` the index says have
    /// expired: best effort, at most [`PRUNE_PER_PUT`] per call, each bounded.
    fn prune_secrets(&self, secrets: &dyn SecretStore, idx: &mut index::Index, now: Timestamp, diag: &Diag) {
        let name = secrets.backend().as_str();
        let expired: Vec<(String, u32)> = idx
            .entries
            .iter()
            .filter(|(_, e)| e.backend == name)
            .filter(|(_, e)| e.expiry.parse::<Timestamp>().is_ok_and(|t| t <= now))
            .map(|(k, e)| (k.clone(), e.parts))
            .take(PRUNE_PER_PUT)
            .collect();
        for (key, parts) in expired {
            match secrets.remove(&key, parts) {
                Ok(_) => {
                    idx.entries.remove(&key);
                    diag.debug(|| format!("pruned an expired entry {} ({key})", secrets.place()));
                }
                Err(e) => {
                    diag.debug(|| format!("cannot prune the expired entry {key} {}: {e}", secrets.place()));
                    break;
                }
            }
        }
    }

    /// Empties `cache.json` of what kcc wrote there once a secret store is in
    /// use: the entry of `key` is dropped (its new secret is in the store),
    /// every other fresh kcc entry is moved into the store (without
    /// evicting anything), expired ones and any the store refuses (full) are
    /// dropped — they are fetched again when
    /// asked for. Entries with the Go kcc's keys stay: they are that tool's,
    /// kcc never serves them, and the Go kcc would write them again.
    fn move_plaintext(
        &self,
        lock: &FileLock,
        secrets: &dyn SecretStore,
        idx: &mut index::Index,
        key: &str,
        now: Timestamp,
        diag: &Diag,
    ) -> io::Result<()> {
        let Some(bytes) = file::read(&self.paths.file)? else { return Ok(()) };
        let Ok(entries) = file::parse_all(&bytes) else {
            // Corrupt: at least the entry of this key must not survive.
            self.remove_from_file(lock, key, diag)?;
            return Ok(());
        };
        let movable = |k: &str| !crate::key::is_go_key(k);
        if !entries.keys().any(|k| movable(k)) {
            return Ok(());
        }
        let mut kept = file::Entries::new();
        for (k, raw) in entries {
            if !movable(&k) {
                kept.insert(k, raw);
                continue;
            }
            if k == key {
                diag.debug(|| format!("removed the plaintext copy of this key from {}", self.paths.file.display()));
                continue;
            }
            let expiry = CredentialHead::parse(raw.get()).and_then(|h| h.expiry()).filter(|t| *t > now);
            let moved = match expiry {
                None => false,
                // Best effort: a moved entry never evicts a live one.
                Some(expiry) => secrets.write(&k, raw.get(), expiry, now, &mut || None).is_ok(),
            };
            if moved {
                if let Some(row) = idx.entries.get_mut(&k) {
                    row.backend = secrets.backend().as_str().into();
                    row.parts = 1;
                }
            } else {
                idx.entries.remove(&k);
            }
            diag.debug(|| {
                let what = if moved { format!("moved {}", secrets.place()) } else { "dropped".into() };
                format!("plaintext entry {k} from {}: {what}", self.paths.file.display())
            });
        }
        self.save_locked(lock, &kept)
    }

    /// Removes `key` from `cache.json` if it is there (under the store lock).
    fn remove_from_file(&self, lock: &FileLock, key: &str, diag: &Diag) -> io::Result<bool> {
        let Some(bytes) = file::read(&self.paths.file)? else { return Ok(false) };
        if !matches!(file::find(&bytes, key), Ok(Some(_))) {
            return Ok(false);
        }
        let (mut entries, _) = self.load_locked(lock)?;
        if entries.remove(key).is_none() {
            return Ok(false);
        }
        self.save_locked(lock, &entries)?;
        diag.debug(|| format!("removed the plaintext copy of this key from {}", self.paths.file.display()));
        Ok(true)
    }

    /// Every entry the index knows, with its metadata (no secret is read).
    pub fn list_index(&self) -> Vec<(String, IndexEntry)> {
        index::Index::load(&self.paths.index()).entries.into_iter().collect()
    }

    /// Removes `key` everywhere this store can reach: its secret-store
    /// entries (all split parts) when that store is open, the file entry, the
    /// index entry. Returns whether anything was removed.
    pub fn remove(&self, key: &str, diag: &Diag) -> io::Result<bool> {
        let lock = self.lock(diag)?;
        let mut idx = index::Index::load_for_update(&self.paths.index())?;
        let known = idx.entries.get(key).cloned();
        let mut removed = self.remove_from_file(&lock, key, diag)?;
        let elsewhere =
            known.as_ref().filter(|e| e.backend != Backend::File.as_str() && e.backend != self.backend().as_str());
        if let Some(secrets) = &self.secrets {
            let parts = known.as_ref().map_or(1, |e| e.parts);
            removed |= secrets.remove(key, parts)? > 0;
        }
        if let Some(row) = elsewhere {
            // Its secret stays in a store this run did not open; keep the
            // index entry so a run with that store can still remove it.
            diag.debug(|| {
                format!("{key} lives in the {} store, which is not open; its index entry is kept", row.backend)
            });
            return Ok(removed);
        }
        if idx.entries.remove(key).is_some() {
            idx.save(&self.paths.index())?;
            removed = true;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `auto`'s order as the probes would drive it: each outcome in turn.
    fn auto(outcomes: &[(Backend, ProbeOutcome)]) -> Selection {
        let mut absent = Vec::new();
        for &(candidate, outcome) in outcomes {
            if let Some(selection) = judge(candidate, outcome, None, "why", &mut absent) {
                return selection;
            }
        }
        Selection::Use(Backend::File, absent.join("; "))
    }

    #[test]
    fn auto_takes_an_unlocked_secret_service_then_the_kernel_keyring_then_the_file() {
        use ProbeOutcome::*;
        let pick = |s: Selection| match s {
            Selection::Use(b, _) => Some(b),
            _ => None,
        };
        assert_eq!(pick(auto(&[(Backend::Keyring, Available)])), Some(Backend::Keyring));
        for absent in [NoBus, NoService] {
            assert_eq!(pick(auto(&[(Backend::Keyring, absent), (Backend::Kernel, Available)])), Some(Backend::Kernel));
            let file = auto(&[(Backend::Keyring, absent), (Backend::Kernel, Unsupported)]);
            assert!(matches!(&file, Selection::Use(Backend::File, why) if why.contains("kernel: why")), "{file:?}");
        }
        // A locked or frozen Secret Service stops the search: never the kernel, never plaintext.
        for present in [Locked, Unresponsive] {
            let s = auto(&[(Backend::Keyring, present), (Backend::Kernel, Available)]);
            assert!(matches!(s, Selection::NoCache(_)), "{s:?}");
        }
    }

    #[test]
    fn a_forced_store_that_cannot_be_used_is_an_error_naming_it() {
        let mut absent = Vec::new();
        let s = judge(Backend::Kernel, ProbeOutcome::Unsupported, Some(Backend::Kernel), "EPERM", &mut absent);
        assert!(matches!(&s, Some(Selection::Unreachable(w)) if w.contains("=kernel") && w.contains("EPERM")), "{s:?}");
        let s = judge(Backend::Keyring, ProbeOutcome::NoBus, Some(Backend::Keyring), "no bus", &mut absent);
        assert!(matches!(&s, Some(Selection::Unreachable(w)) if w.contains("=keyring")), "{s:?}");
    }
}
