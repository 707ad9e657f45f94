//! Advisory file locks (fs4 → `flock(2)` on Unix, `LockFileEx` on Windows).
//!
//! Modelled on cargo's `flock.rs`: [`FileLock`] is the only way kcc locks a
//! file and unlocks on drop; [`FileLock::acquire`] tries first and only on
//! contention says (under debug) what it waits for before blocking.
//!
//! Guarantees: advisory locks die with their holder (a SIGKILLed kcc never
//! leaves a lock that blocks anyone); lock files are opened close-on-exec (std
//! does that on every open), so a plugin child never inherits one; lock files
//! are created 0600 and never hold data, so leaving them behind is harmless;
//! a lock path that is not a regular file (a FIFO, a device) is refused.
//!
//! fs4's trait methods share their names with std's inherent `File::lock`
//! (Rust ≥ 1.89); method syntax would call std's, so they are called as
//! `fs4::FileExt::lock(&file)` on purpose.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// A held exclusive lock; released when dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

/// How acquiring went, for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// Nobody held it.
    Immediately,
    /// Someone held it; we waited.
    AfterWaiting,
}

impl FileLock {
    /// Opens (creating 0600) and exclusively locks `path`, blocking while
    /// another process holds it. `on_wait` is called once before blocking.
    pub fn acquire(path: &Path, on_wait: impl FnOnce(&Path)) -> io::Result<(FileLock, Acquired)> {
        let file = open_lock_file(path)?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => return Ok((FileLock { file, path: path.to_path_buf() }, Acquired::Immediately)),
            Err(fs4::TryLockError::WouldBlock) => {}
            Err(fs4::TryLockError::Error(e)) => return Err(e),
        }
        on_wait(path);
        fs4::FileExt::lock(&file)?;
        Ok((FileLock { file, path: path.to_path_buf() }, Acquired::AfterWaiting))
    }

    /// Takes the lock only if it is free right now.
    pub fn try_acquire(path: &Path) -> io::Result<Option<FileLock>> {
        let file = open_lock_file(path)?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => Ok(Some(FileLock { file, path: path.to_path_buf() })),
            Err(fs4::TryLockError::WouldBlock) => Ok(None),
            Err(fs4::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Locks `file`, already opened (or created) by the caller at `path`,
    /// blocking while another process holds it: for lock files with their
    /// own creation protocol (client-go's kubeconfig lock).
    pub fn lock_open_file(file: File, path: &Path) -> io::Result<FileLock> {
        fs4::FileExt::lock(&file)?;
        Ok(FileLock { file, path: path.to_path_buf() })
    }

    /// Like [`FileLock::lock_open_file`], but only if it is free right now.
    pub fn try_lock_open_file(file: File, path: &Path) -> io::Result<Option<FileLock>> {
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => Ok(Some(FileLock { file, path: path.to_path_buf() })),
            Err(fs4::TryLockError::WouldBlock) => Ok(None),
            Err(fs4::TryLockError::Error(e)) => Err(e),
        }
    }

    /// The locked file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The locked file (to read or write the lock file's own content).
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first makes
        // the release independent of other descriptors of the same file.
        let _ = fs4::FileExt::unlock(&self.file);
    }
}

/// Opens (creating 0600) a lock file: never through a symlink (a lock file
/// replaced by one must not make kcc create or lock a file elsewhere), and
/// only a regular file (a FIFO or device node there is refused, see
/// [`crate::store::file::open_regular`]).
fn open_lock_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    crate::store::file::open_regular(&mut options, path)
}
