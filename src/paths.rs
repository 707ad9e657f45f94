//! Where kcc keeps things: the only module that decides locations.
//!
//! The file store lives where the Go kcc put it (Go's `os.UserCacheDir()` +
//! `kube-credential-cache/cache.json`), so switching tools keeps the cache:
//! `$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on macOS,
//! `%LOCALAPPDATA%` on Windows (Go's choice; the old README's `%AppData%` was
//! wrong). `KUBE_CREDENTIAL_CACHE_FILE` overrides it. Everything else kcc
//! writes sits next to that file, named after it, so a custom location keeps
//! its locks and index together.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use etcetera::BaseStrategy;

/// Directory name under the user cache dir (the Go kcc's).
pub const APP_DIR: &str = "kube-credential-cache";
/// File name of the JSON store (the Go kcc's).
pub const STORE_FILE: &str = "cache.json";

/// The locations of one store.
#[derive(Debug, Clone)]
pub struct StorePaths {
    /// The JSON file in the Go kcc's shape: `{"credentials": {KEY: ExecCredential}}`.
    pub file: PathBuf,
    /// Whether the store's directory is kcc's own: the default location
    /// (`<user cache dir>/kube-credential-cache`), which kcc creates and so
    /// may repair. A directory named through `KUBE_CREDENTIAL_CACHE_FILE`
    /// belongs to whoever made it; kcc never changes its mode.
    pub own_dir: bool,
}

impl StorePaths {
    /// Resolves the store location from `KUBE_CREDENTIAL_CACHE_FILE` (already
    /// read into `configured`) or the platform's cache directory.
    pub fn resolve(configured: Option<&OsString>) -> Result<StorePaths, String> {
        if let Some(file) = configured {
            return Ok(StorePaths { file: PathBuf::from(file), own_dir: false });
        }
        let base = etcetera::base_strategy::choose_native_strategy().map_err(|e| {
            format!("cannot find the user cache directory ({e}); set HOME or KUBE_CREDENTIAL_CACHE_FILE")
        })?;
        Ok(StorePaths { file: base.cache_dir().join(APP_DIR).join(STORE_FILE), own_dir: true })
    }

    /// The directory holding the store and its companions.
    pub fn dir(&self) -> &Path {
        self.file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
    }

    /// `cache.json` → `cache<suffix>`: companions are named after the store
    /// so two stores configured into one directory never share them.
    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.file.file_stem().map(OsString::from).unwrap_or_else(|| "cache".into());
        name.push(suffix);
        self.dir().join(name)
    }

    /// Exclusive lock taken for every read-modify-write of the store.
    pub fn store_lock(&self) -> PathBuf {
        self.sibling(".lock")
    }

    /// Directory of per-key single-flight locks.
    pub fn flight_dir(&self) -> PathBuf {
        self.sibling(".flight")
    }

    /// Non-secret metadata of every entry (backend, expiry, …), never a credential.
    pub fn index(&self) -> PathBuf {
        self.sibling(".index.json")
    }

    /// The log of background refreshers (their stderr), bounded in size.
    pub fn refresh_log(&self) -> PathBuf {
        self.sibling(".refresh.log")
    }

    /// A fresh temporary file name for an atomic replace of `target`.
    pub fn temp_for(target: &Path) -> PathBuf {
        let mut name = target.file_name().map(OsString::from).unwrap_or_default();
        name.push(format!(".tmp.{}", std::process::id()));
        target.with_file_name(name)
    }
}
