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
//! server, apiVersion, expiry and where the expiry came from, so `kcc clear`
//! and `kcc doctor` can explain entries without reading secrets.

pub mod file;
pub mod index;

use std::io;
use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use crate::credential::{CredentialHead, is_fresh};
use crate::diagnostics::{Decision, Diag, Miss};
use crate::lock::FileLock;
use crate::paths::StorePaths;

pub use index::IndexEntry;

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
}

/// Which secret store holds the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The 0600 JSON file.
    File,
}

impl Backend {
    /// The backend's name, as in `KUBE_CREDENTIAL_CACHE_BACKEND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::File => "file",
        }
    }
}

/// The opened store.
#[derive(Debug, Clone)]
pub struct Store {
    /// Where its files are.
    pub paths: StorePaths,
    /// Where credentials go.
    pub backend: Backend,
}

/// Judges a stored credential: served (hit) or not, and why.
pub fn decide(lookup: &Lookup, wanted_api: Option<&str>, now: Timestamp, margin: SignedDuration) -> Decision {
    let json = match lookup {
        Lookup::Missing => return Decision::Miss(Miss::NoEntry),
        Lookup::Corrupt(why) => return Decision::Miss(Miss::Corrupt { why: why.clone() }),
        Lookup::Unreadable(why) => return Decision::Miss(Miss::StoreUnreadable { why: why.clone() }),
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
#[derive(Debug, Clone)]
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
}

impl EntryInfo {
    /// The backend holding the secret: the index's word, else `file`.
    pub fn backend(&self) -> &str {
        self.meta.as_ref().map_or("file", |m| m.backend.as_str())
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
            EntryInfo { key: key.clone(), meta, in_file: true, expiry, api_version }
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
            });
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

impl Store {
    /// A store at `paths` using `backend`.
    pub fn new(paths: StorePaths, backend: Backend) -> Store {
        Store { paths, backend }
    }

    /// Looks `key` up. The hot path: one read, no lock, no full parse of a
    /// file kcc wrote.
    pub fn lookup(&self, key: &str) -> Lookup {
        match file::read(&self.paths.file) {
            Ok(None) => Lookup::Missing,
            Ok(Some(bytes)) => match file::find(&bytes, key) {
                Ok(Some(raw)) => Lookup::Found(raw.get().to_string()),
                Ok(None) => Lookup::Missing,
                Err(why) => Lookup::Corrupt(format!("{} is not valid JSON: {why}", self.paths.file.display())),
            },
            Err(e) => Lookup::Unreadable(format!("{}: {e}", self.paths.file.display())),
        }
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

    /// Takes the store lock for a read-modify-write.
    pub fn lock(&self, diag: &Diag) -> io::Result<FileLock> {
        file::ensure_dir(self.paths.dir())?;
        let (lock, _) = FileLock::acquire(&self.paths.store_lock(), |p| {
            diag.debug(|| format!("waiting for the store lock {}", p.display()))
        })?;
        Ok(lock)
    }

    /// Reads every entry under the store lock the caller holds. A corrupt
    /// file yields no entries and a warning message to show.
    pub fn load_locked(&self, _lock: &FileLock) -> io::Result<(file::Entries, Option<String>)> {
        match file::read(&self.paths.file)? {
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
    /// records its metadata in the index.
    pub fn put(
        &self,
        key: &str,
        credential_json: &str,
        meta: IndexEntry,
        now: Timestamp,
        diag: &Diag,
    ) -> io::Result<()> {
        let lock = self.lock(diag)?;
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
        let mut idx = index::Index::load(&self.paths.index());
        idx.entries.retain(|k, _| entries.contains_key(k));
        idx.entries.insert(key.to_string(), meta);
        idx.save(&self.paths.index())
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
        Ok(Listing { entries: entry_infos(&entries, &idx), corrupt })
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
    /// before their index row goes.
    pub fn remove_where(
        &self,
        diag: &Diag,
        dry_run: bool,
        everything: bool,
        now: Timestamp,
        select: impl Fn(&EntryInfo, Timestamp) -> bool,
    ) -> Result<Removal, RemoveError> {
        let lock = self.lock(diag)?;
        let mut idx = index::Index::load(&self.paths.index());
        let (mut entries, reset_corrupt) = match file::read(&self.paths.file)? {
            None => (file::Entries::new(), None),
            Some(bytes) => match file::parse_all(&bytes) {
                Ok(entries) => (entries, None),
                Err(why) if everything => (file::Entries::new(), Some(why)),
                Err(why) => return Err(RemoveError::Corrupt(why)),
            },
        };
        let infos = entry_infos(&entries, &idx);
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

    /// Deletes the secret of an entry that lives outside the file store.
    ///
    /// Hook for the keyring backend: delete the entry's `meta.parts` keyring
    /// items here (bounded like every keyring call; a locked keyring is an
    /// error that keeps the index row, so a later clear can retry). With the
    /// file backend only, such an entry is stale metadata and there is
    /// nothing to delete.
    fn remove_secret(&self, _entry: &EntryInfo) -> io::Result<()> {
        Ok(())
    }
}
