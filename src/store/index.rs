//! The non-secret index beside the store: what each entry is, never what it
//! contains.
//!
//! `kcc doctor` and `kcc clear` read it to show user, server, apiVersion,
//! expiry and whether the expiry is a default TTL without touching a secret;
//! the keyring backend relies on it to enumerate its entries. It is a
//! separate file on purpose: the Go kcc reading `cache.json` must never find
//! an entry there without its secret. Losing it loses no credential.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Metadata of one cached credential.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    /// `file` or `keyring`.
    pub backend: String,
    /// `KUBE_CREDENTIAL_CACHE_USER` of the call, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The server URL from `KUBERNETES_EXEC_INFO`, if provided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The credential's apiVersion.
    pub api_version: String,
    /// The expiry kcc serves it until (RFC 3339).
    pub expiry: String,
    /// `reported` or `default-ttl`.
    pub expiry_source: String,
    /// When kcc stored it (RFC 3339).
    pub stored_at: String,
    /// The plugin command (file name only; never its arguments, which may hold secrets).
    pub exec: String,
    /// Size of the stored credential in bytes.
    pub size: usize,
    /// Keyring entries the secret is split across (1 when not split).
    #[serde(default = "one")]
    pub parts: u32,
    /// The last background (refresh-ahead) attempt for this key, kept across
    /// refreshes so its back-off survives a new credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<BackgroundAttempt>,
    /// The last forced refresh (healing after a rejected credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<ForcedRefresh>,
    /// The identity the credential was stored for (see `crate::identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityMeta>,
}

/// The identity an entry belongs to, for `kcc doctor` and `kcc clear`:
/// its fingerprint, words and the names of its sources, never a value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityMeta {
    /// The fingerprint (128 bits of SHA-256, hex).
    pub fingerprint: String,
    /// The identity in words.
    pub description: String,
    /// The sources: `env NAME`, `file PATH (part)`.
    pub sources: Vec<String>,
}

/// What the last background refresh of a key did (see `crate::refresh`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundAttempt {
    /// When it was started (RFC 3339).
    pub at: String,
    /// `started`, `ok`, `skipped` or `failed`.
    pub result: String,
    /// Details in words (never a secret): the plugin's exit, why it was skipped.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// No new background refresh starts before this (RFC 3339).
    pub next_allowed: String,
}

/// The last time kcc treated a repeated request as a rejected credential.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForcedRefresh {
    /// When (RFC 3339).
    pub at: String,
    /// The client process that asked again.
    pub client_pid: u32,
    /// Why, in words.
    pub why: String,
}

fn one() -> u32 {
    1
}

/// The whole index file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Index {
    /// Format version.
    #[serde(default)]
    pub version: u32,
    /// Metadata by cache key.
    #[serde(default)]
    pub entries: BTreeMap<String, IndexEntry>,
}

impl Index {
    /// Carries the refresh history of `key` (background attempts, forced
    /// refreshes) over to its new metadata `meta`, unless `meta` sets its own.
    pub fn carry_history(&self, key: &str, meta: &mut IndexEntry) {
        if let Some(old) = self.entries.get(key) {
            if meta.background.is_none() {
                meta.background = old.background.clone();
            }
            if meta.forced.is_none() {
                meta.forced = old.forced.clone();
            }
        }
    }

    /// Reads the index; a missing or unreadable one is empty (it is only metadata).
    pub fn load(path: &Path) -> Index {
        super::file::read(path).ok().flatten().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
    }

    /// Reads the index for a read-modify-write: like [`Index::load`], but a
    /// path that is not a regular file is an error (the write would fail
    /// anyway; failing first keeps the store and the index in step).
    pub fn load_for_update(path: &Path) -> io::Result<Index> {
        match super::file::read(path) {
            Err(e) if super::file::NotRegular::of(&e).is_some() => Err(e),
            read => Ok(read.ok().flatten().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()),
        }
    }

    /// Writes the index atomically, 0600.
    pub fn save(&mut self, path: &Path) -> io::Result<()> {
        self.version = 1;
        let bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        super::file::write_atomic(path, &bytes)
    }
}
