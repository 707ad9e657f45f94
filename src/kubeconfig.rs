//! The kubeconfig model and the only way kcc reads and rewrites one.
//!
//! A broken `~/.kube/config` locks its user out of every cluster, so this
//! module is conservative on both ends.
//!
//! **The model** is the parsed YAML itself (serde_yml 0.0.13's [`Value`],
//! whose mappings keep their key order), not typed structs: every field kcc
//! does not know — preferences, extensions, `installHint`, fields of future
//! kubectl versions — survives untouched, in its order. Callers change only
//! what they mean to through [`Kubeconfig::root_mut`]. Comments are not part
//! of the parsed value and are lost on a rewrite; anchors are written out
//! expanded. YAML-1.1 booleans in the four boolean fields of the schema
//! (`provideClusterInfo: yes`) are read the way kubectl reads them.
//!
//! **Loading** fails with one line naming the file for everything kubectl
//! would choke on or kcc could damage: a missing or unreadable file,
//! malformed YAML, several YAML documents (serde_yml would silently keep only
//! the first), a top level that is not a mapping, a `kind` other than
//! `Config`.
//!
//! **Writing** ([`write_in_place`]) goes through YAML that kubectl reads back
//! identically (see [`yaml`]) and
//! - takes client-go's kubeconfig lock first ([`KubeconfigLock`]: `<file>.lock`
//!   created with `O_EXCL`, removed afterwards), waiting up to
//!   [`LOCK_WAIT`] for `kubectl config …` or `aws eks update-kubeconfig`;
//! - keeps a backup of the previous content next to the file
//!   ([`backup`]: `<file>.kcc-backup`, never overwritten);
//! - replaces the file atomically (temp file in the target's directory,
//!   fsync, rename, fsync of the directory) with the old file's mode (and,
//!   when run as root, its owner);
//! - writes through a symlinked file to its target, leaving the link a link.

pub mod aliases;
pub mod merge;
pub mod yaml;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use color_eyre::Result;
use color_eyre::eyre::{WrapErr, eyre};
use serde_yml::{Mapping, Value};

use crate::lock::FileLock;

/// How long kcc waits for another program's kubeconfig lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Suffix of the backup kcc keeps next to a kubeconfig it rewrites.
pub const BACKUP_SUFFIX: &str = ".kcc-backup";

/// A loaded kubeconfig: its path, its bytes as read and the parsed model.
#[derive(Debug, Clone)]
pub struct Kubeconfig {
    path: PathBuf,
    original: Vec<u8>,
    root: Value,
}

impl Kubeconfig {
    /// Reads and parses `path`. Every error names the file.
    pub fn load(path: &Path) -> Result<Kubeconfig> {
        let original = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(eyre!(
                    "kubeconfig '{}' does not exist; pass the file to edit, or set KUBECONFIG",
                    path.display()
                ));
            }
            Err(e) if path.is_dir() || e.raw_os_error() == Some(libc::EISDIR) => {
                return Err(eyre!("kubeconfig '{}' is a directory, not a file", path.display()));
            }
            Err(e) => return Err(eyre!("cannot read kubeconfig '{}': {}", path.display(), io_message(&e))),
        };
        let root = parse(&original).wrap_err_with(|| format!("kubeconfig '{}' cannot be used", path.display()))?;
        Ok(Kubeconfig { path: path.to_path_buf(), original, root })
    }

    /// Parses `text` as if read from `path` (for tests and stdin).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Kubeconfig> {
        let root = parse(&bytes).wrap_err_with(|| format!("kubeconfig '{}' cannot be used", path.display()))?;
        Ok(Kubeconfig { path: path.to_path_buf(), original: bytes, root })
    }

    /// The path it was loaded from, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes as they were read.
    pub fn original(&self) -> &[u8] {
        &self.original
    }

    /// The parsed document (a mapping, or null for an empty file).
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// The parsed document, for changes.
    pub fn root_mut(&mut self) -> &mut Value {
        &mut self.root
    }

    /// The `users` list, if there is one.
    pub fn users_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self.root.get_mut("users") {
            Some(Value::Sequence(users)) => Some(users),
            _ => None,
        }
    }

    /// The model as kubectl-safe YAML text.
    pub fn to_yaml(&self) -> String {
        yaml::to_string(&self.root)
    }
}

/// Parses and validates a kubeconfig's bytes.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value> {
    let text = std::str::from_utf8(bytes).map_err(|e| eyre!("it is not UTF-8 text ({e})"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if has_several_documents(text) {
        return Err(eyre!(
            "it holds several YAML documents ('---'); kubectl reads only the first: split the file or remove the extra documents"
        ));
    }
    aliases::check(text).map_err(|e| eyre!("{e}"))?;
    #[allow(deprecated)] // serde_yml 0.0.13 marks itself deprecated; see the README for why it is used
    let mut root: Value = serde_yml::from_str(text).map_err(|e| eyre!("it is not valid YAML: {e}"))?;
    match &root {
        Value::Null => {}
        Value::Mapping(m) => match m.get("kind") {
            None | Some(Value::Null) => {}
            Some(Value::String(kind)) if kind == "Config" => {}
            Some(Value::String(kind)) => {
                return Err(eyre!("it is not a kubeconfig: its kind is '{kind}', expected 'Config'"));
            }
            Some(other) => return Err(eyre!("it is not a kubeconfig: its kind is {other:?}, expected 'Config'")),
        },
        _ => return Err(eyre!("it is not a kubeconfig: the top level is not a mapping of fields")),
    }
    normalize_booleans(&mut root);
    Ok(root)
}

/// Whether a document marker follows content. Block scalar content is
/// indented and a quoted scalar may not contain a marker, so a line starting
/// with `---` or `...` at column 0 after content always ends a document.
fn has_several_documents(text: &str) -> bool {
    let mut seen_content = false;
    for line in text.lines() {
        let is_marker = |m: &str| line == m || line.strip_prefix(m).is_some_and(|r| r.starts_with([' ', '\t']));
        if is_marker("---") || is_marker("...") {
            if seen_content {
                return true;
            }
            continue;
        }
        let trimmed = line.trim_start();
        if !trimmed.is_empty() && !trimmed.starts_with('#') && !line.starts_with('%') {
            seen_content = true;
        }
    }
    false
}

/// YAML 1.1 reads `yes`/`on`/`y`… as booleans; kubectl does, serde_yml
/// (YAML 1.2) reads strings. In the schema's boolean fields only the boolean
/// reading is valid for kubectl, so kcc takes it: writing them back quoted
/// would make kubectl refuse the file.
fn normalize_booleans(root: &mut Value) {
    fn fix(map: Option<&mut Value>, key: &str) {
        let Some(Value::Mapping(map)) = map else { return };
        if let Some(v) = map.get_mut(key)
            && let Value::String(s) = v
            && let Some(b) = yaml11_bool(s)
        {
            *v = Value::Bool(b);
        }
    }
    fix(root.get_mut("preferences"), "colors");
    if let Some(Value::Sequence(clusters)) = root.get_mut("clusters") {
        for c in clusters {
            fix(c.get_mut("cluster"), "insecure-skip-tls-verify");
            fix(c.get_mut("cluster"), "disable-compression");
        }
    }
    if let Some(Value::Sequence(users)) = root.get_mut("users") {
        for u in users {
            fix(u.get_mut("user").and_then(|u| u.get_mut("exec")), "provideClusterInfo");
        }
    }
}

/// The boolean a YAML 1.1 resolver (go-yaml v2, hence kubectl) reads.
fn yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// An io error without Rust's " (os error N)" suffix, lowercase.
fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// A mapping's key as a `&mut Mapping`, when it is one.
pub fn mapping_mut<'a>(map: &'a mut Mapping, key: &str) -> Option<&'a mut Mapping> {
    match map.get_mut(key) {
        Some(Value::Mapping(m)) => Some(m),
        _ => None,
    }
}

/// client-go's kubeconfig lock: `<file>.lock` created exclusively, removed
/// when dropped. `kubectl config set-…`, `aws eks update-kubeconfig` and
/// `gcloud … get-credentials` (through client-go) take the same lock, so kcc
/// never interleaves its write with theirs.
///
/// A process killed while holding such a lock leaves the file behind, and
/// client-go has no way to tell it from a live one. kcc marks its own lock
/// files ([`KCC_LOCK_MARK`]) and holds an advisory lock on them while it
/// owns them; advisory locks die with their holder, so a marked file nobody
/// holds was left by a killed kcc and is removed ([`remove_if_stale`]).
/// Lock files of other programs are never touched.
#[derive(Debug)]
pub struct KubeconfigLock {
    path: PathBuf,
    /// The advisory lock that says "a live kcc owns this file".
    _held: FileLock,
}

/// What kcc writes into its kubeconfig lock files (client-go's are empty).
pub const KCC_LOCK_MARK: &[u8] = b"kcc\n";

impl KubeconfigLock {
    /// The lock file of `kubeconfig` (the path as given, like client-go).
    pub fn path_for(kubeconfig: &Path) -> PathBuf {
        let mut name = kubeconfig.as_os_str().to_os_string();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Creates the lock file, retrying for up to `wait` while it exists; a
    /// lock file left by a killed kcc is removed first.
    pub fn acquire(kubeconfig: &Path, wait: Duration) -> Result<KubeconfigLock> {
        let path = Self::path_for(kubeconfig);
        let deadline = Instant::now() + wait;
        loop {
            match create_marked(&path) {
                Ok(held) => {
                    remove_dead_lock_temps(&path);
                    return Ok(KubeconfigLock { path, _held: held });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && remove_if_stale(&path) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(eyre!(
                        "kubeconfig '{}' is locked by another program: '{}' still exists after {}s; wait for kubectl or the other tool to finish, or remove the lock file if none is running",
                        kubeconfig.display(),
                        path.display(),
                        wait.as_secs()
                    ));
                }
                Err(e) => {
                    return Err(eyre!(
                        "cannot create the lock file '{}' for kubeconfig '{}': {}",
                        path.display(),
                        kubeconfig.display(),
                        io_message(&e)
                    ));
                }
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for KubeconfigLock {
    fn drop(&mut self) {
        // Removed while the advisory lock is still held (the field drops
        // after this), so nobody can mistake the file for a stale one.
        let _ = fs::remove_file(&self.path);
    }
}

/// Creates the lock file at `path` already marked as kcc's and advisory-locked.
///
/// The mark and the advisory lock go on a private temporary file first, which
/// is then hard-linked to `path` (the link fails if `path` exists, as
/// `O_EXCL` would): the lock file never exists, not even for an instant,
/// without both — a kcc killed at any moment leaves either nothing or a lock
/// file that [`remove_if_stale`] recognises. Where hard links are not
/// supported it falls back to create-then-mark.
fn create_marked(path: &Path) -> io::Result<FileLock> {
    let mut temp = path.as_os_str().to_os_string();
    temp.push(format!(".kcc-{}.tmp", std::process::id()));
    let temp = PathBuf::from(temp);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let held = FileLock::lock_open_file(options.open(&temp)?, path)?;
    let linked = held.file().write_all(KCC_LOCK_MARK).and_then(|()| fs::hard_link(&temp, path));
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(held),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            drop(held);
            create_then_mark(path)
        }
    }
}

/// Removes the temporary files of [`create_marked`] (`<lock>.kcc-<pid>.tmp`)
/// whose process is gone: a kcc killed in the instant between creating and
/// linking one. Files of live processes are left alone (they may be linking).
fn remove_dead_lock_temps(lock: &Path) {
    let (Some(dir), Some(name)) = (lock.parent(), lock.file_name().and_then(|n| n.to_str())) else { return };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!("{name}.kcc-");
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)?.strip_suffix(".tmp")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok_and(|pid| !process_exists(pid)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether a process with this id exists (signal 0 checks without sending).
fn process_exists(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        // SAFETY: signal 0 only checks that the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        !gone
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// [`create_marked`] without hard links: `O_EXCL` create, advisory lock, mark.
/// A kill between the create and the mark leaves an unmarked lock file that
/// only a person can judge (as with client-go's own lock files).
fn create_then_mark(path: &Path) -> io::Result<FileLock> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    let marked = FileLock::lock_open_file(file, path).and_then(|held| {
        held.file().write_all(KCC_LOCK_MARK)?;
        Ok(held)
    });
    if marked.is_err() {
        let _ = fs::remove_file(path);
    }
    marked
}

/// Removes the kubeconfig lock file at `path` if a killed kcc left it:
/// it carries kcc's mark and nobody holds its advisory lock. Returns whether
/// it was removed.
///
/// The advisory lock is taken on the file as opened, and the file is removed
/// only if `path` still names that same file, so a lock that another kcc
/// has just created in its place is never removed.
fn remove_if_stale(path: &Path) -> bool {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let Ok(file) = options.open(path) else { return false };
    let Ok(Some(held)) = FileLock::try_lock_open_file(file, path) else { return false };
    let mut mark = Vec::new();
    if io::Read::read_to_end(&mut io::Read::take(held.file(), 64), &mut mark).is_err() || mark != KCC_LOCK_MARK {
        return false;
    }
    if !same_file(held.file(), path) {
        return false;
    }
    fs::remove_file(path).is_ok()
}

/// Whether `path` names the open `file` (same device and inode).
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        false
    }
}

/// Keeps a copy of `content` (the kubeconfig's current bytes) next to
/// `kubeconfig` and returns its path.
///
/// The first backup is `<file>.kcc-backup`. An existing backup is never
/// overwritten: if it holds the same bytes it is reused, otherwise the copy
/// goes to `<file>.kcc-backup.<UTC time>` (`…-2`, `-3` if even that exists).
/// The backup is created exclusively with the kubeconfig's mode (it holds
/// the same secrets) and synced before the kubeconfig is replaced.
pub fn backup(kubeconfig: &Path, content: &[u8], mode: u32) -> Result<PathBuf> {
    let base = {
        let mut name = kubeconfig.as_os_str().to_os_string();
        name.push(BACKUP_SUFFIX);
        PathBuf::from(name)
    };
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let candidates = std::iter::once(base.clone())
        .chain(std::iter::once(PathBuf::from(format!("{}.{stamp}", base.display()))))
        .chain((2..100).map(|n| PathBuf::from(format!("{}.{stamp}-{n}", base.display()))));
    for candidate in candidates {
        if fs::symlink_metadata(&candidate).is_ok() {
            if fs::read(&candidate).is_ok_and(|existing| existing == content) {
                return Ok(candidate);
            }
            continue;
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode & 0o777);
        }
        let written = options.open(&candidate).and_then(|mut file| {
            set_mode(&file, mode)?;
            file.write_all(content)?;
            file.sync_all()
        });
        return match written {
            Ok(()) => Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                let _ = fs::remove_file(&candidate);
                Err(eyre!(
                    "cannot write the backup '{}' of kubeconfig '{}': {}; nothing was changed",
                    candidate.display(),
                    kubeconfig.display(),
                    io_message(&e)
                ))
            }
        };
    }
    Err(eyre!("too many backups of kubeconfig '{}'; remove old '{}*' files", kubeconfig.display(), base.display()))
}

/// Replaces the file at `path` (following symlinks to the real file, which
/// stays where it is) with `content`, atomically, keeping its mode and owner.
/// The caller holds the [`KubeconfigLock`].
pub fn write_in_place(path: &Path, content: &[u8]) -> Result<()> {
    let target = fs::canonicalize(path)
        .map_err(|e| eyre!("cannot resolve kubeconfig '{}': {}", path.display(), io_message(&e)))?;
    let meta =
        fs::metadata(&target).map_err(|e| eyre!("cannot read kubeconfig '{}': {}", path.display(), io_message(&e)))?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    remove_leftover_temps(dir, &name);
    let temp = dir.join(format!(".{name}.kcc-{}.tmp", std::process::id()));
    let result = (|| -> io::Result<()> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file: File = options.open(&temp)?;
        set_mode(&file, mode_of(&meta))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // Only root can give a file away; as anyone else the temp file
            // is already ours, like the file it replaces.
            if meta.uid() != effective_uid() {
                let _ = std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()));
            }
        }
        file.write_all(content)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, &target)?;
        // Make the rename itself durable; not every platform can open a directory.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(eyre!(
            "cannot write kubeconfig '{}': {}; the file was not changed",
            path.display(),
            io_message(&e)
        ));
    }
    Ok(())
}

/// Removes `.<name>.kcc-<pid>.tmp` files that a killed kcc left in `dir`:
/// they hold a copy of the kubeconfig (its tokens included), and a later kcc
/// whose pid matches one could not create its own temp file. Only called
/// under the [`KubeconfigLock`], which every kcc writing `name` holds, so none
/// of them belongs to a live writer.
fn remove_leftover_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.kcc-");
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str() else { continue };
        if let Some(pid) = n.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(".tmp"))
            && !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The file's permission bits (0o600 where there are none).
pub fn mode_of(meta: &fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0o600
    }
}

/// Sets the mode explicitly: `open`'s mode is filtered by the umask.
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, mode);
        Ok(())
    }
}

#[cfg(unix)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Kubeconfig> {
        Kubeconfig::from_bytes(Path::new("/k/config"), text.as_bytes().to_vec())
    }

    fn message(r: Result<Kubeconfig>) -> String {
        let e = r.unwrap_err();
        e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ")
    }

    #[test]
    fn bad_inputs_are_refused_with_the_file_named() {
        assert!(
            message(load("kind: Pod\n"))
                .contains("'/k/config' cannot be used: it is not a kubeconfig: its kind is 'Pod'")
        );
        assert!(message(load("users: [\n")).contains("it is not valid YAML"));
        assert!(message(load("- a\n")).contains("top level is not a mapping"));
        assert!(message(load("kind: Config\n---\nkind: Config\n")).contains("several YAML documents"));
    }

    #[test]
    fn empty_and_kindless_files_are_kubeconfigs() {
        assert!(load("").is_ok());
        assert!(load("# just a comment\n").is_ok());
        assert!(load("---\napiVersion: v1\nusers: []\n").is_ok());
    }

    #[test]
    fn yaml11_booleans_in_boolean_fields_are_read_as_kubectl_reads_them() {
        let k = load("users:\n- name: on\n  user:\n    exec:\n      provideClusterInfo: yes\n").unwrap();
        let exec = &k.root()["users"][0]["user"]["exec"];
        assert_eq!(exec["provideClusterInfo"], Value::Bool(true));
        assert_eq!(k.root()["users"][0]["name"], Value::String("on".into()));
    }

    #[test]
    fn backups_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        let first = backup(&file, b"one", 0o600).unwrap();
        assert_eq!(first, dir.path().join("config.kcc-backup"));
        assert_eq!(backup(&file, b"one", 0o600).unwrap(), first, "same content: reused");
        let second = backup(&file, b"two", 0o600).unwrap();
        assert_ne!(second, first);
        assert_eq!(fs::read(&first).unwrap(), b"one");
        assert_eq!(fs::read(&second).unwrap(), b"two");
        let third = backup(&file, b"three", 0o600).unwrap();
        assert!(![&first, &second].contains(&&third));
    }
}
