//! The file backend: one JSON file in the Go kcc's shape,
//! `{"credentials": {KEY: ExecCredential}}`, mode 0600 in a 0700 directory.
//!
//! kcc writes it one entry per line:
//!
//! ```text
//! {"credentials":{
//! "KEY1":{…compact ExecCredential…},
//! "KEY2":{…}
//! }}
//! ```
//!
//! That is ordinary JSON for the Go kcc, and lets a cache hit find its entry
//! by searching for `\n"KEY":` instead of parsing every entry: a raw newline
//! cannot occur inside a JSON string, and kcc re-compacts any entry that
//! contains one, so the pattern only matches at the start of a line. A file
//! in any other layout (written by the Go kcc) is parsed whole.
//!
//! Writes replace the file atomically (temp file in the same directory,
//! fsync, rename), so a reader never sees a torn file and needs no lock.
//! A symlink at the store path is never followed: reads open with
//! `O_NOFOLLOW` and fail with an error that says so, which also stops every
//! read-modify-write before its rename, so neither the link nor its target
//! is ever written (the credential is served uncached until the user replaces
//! the link or points `KUBE_CREDENTIAL_CACHE_FILE` at its target). Reads refuse
//! a file owned by another user ([`ForeignOwner`]): whoever could write it
//! could make kubectl act under their identity. A store directory others can
//! write to is repaired or refused before kcc writes there ([`secure_dir`]).
//!
//! Every file kcc opens in the store — the store, the index, the locks, the
//! per-key records, the refresh log — must be a regular file
//! ([`NotRegular`]): it is opened with `O_NONBLOCK` (a FIFO would otherwise
//! block the open forever, and with it kubectl) and refused after one
//! `fstat` when it is anything else; an atomic replace refuses a target
//! that is not a regular file or a symlink, so a device node named as the
//! store (`KUBE_CREDENTIAL_CACHE_FILE=/dev/null`) is never replaced nor
//! written through.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The first line of a file in kcc's one-entry-per-line layout.
pub const LAYOUT_HEADER: &[u8] = b"{\"credentials\":{\n";

/// Every entry of a store file, raw JSON by key.
pub type Entries = BTreeMap<String, Box<RawValue>>;

/// Reads the whole store file. `Ok(None)` when it does not exist.
pub fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut file = match open_read(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(explain_open_error(e, path)),
    };
    let meta = file.metadata()?;
    refuse_non_regular(&meta, path)?;
    refuse_foreign_owner(&meta, path)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// What a hit-path lookup found in the store file.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// No store file.
    NoFile,
    /// The file has no entry for the key.
    Missing,
    /// The entry's raw JSON.
    Entry(String),
    /// The file (or the entry) is not valid JSON; the text says why.
    Corrupt(String),
}

/// How much of the store file a hit reads at a time. A hit pays for the
/// bytes it copies and the buffer pages it touches, so the buffer stays
/// small and is reused: with 1,000 entries (≈1.5 MB) a hit touches 64 KB of
/// memory instead of a 1.5 MB `Vec`.
const CHUNK: usize = 64 * 1024;

/// Finds `key`'s entry, reading the file in [`CHUNK`]s and stopping at the
/// entry: the hit path. Files in kcc's layout are searched for the key's
/// line without parsing other entries; any other layout is parsed whole.
pub fn lookup(path: &Path, key: &str) -> io::Result<Found> {
    let mut file = match open_read(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::NoFile),
        Err(e) => return Err(explain_open_error(e, path)),
    };
    let meta = file.metadata()?;
    refuse_non_regular(&meta, path)?;
    refuse_foreign_owner(&meta, path)?;
    // A small store (the usual case) gets a buffer of its own size.
    let mut buf = Vec::with_capacity(CHUNK.min(meta.len() as usize + 1));
    let at_eof = fill(&mut file, &mut buf, CHUNK)?;
    if at_eof || !buf.starts_with(LAYOUT_HEADER) {
        if !at_eof {
            file.read_to_end(&mut buf)?;
        }
        return Ok(match find(&buf, key) {
            Ok(Some(raw)) => Found::Entry(raw.get().to_owned()),
            Ok(None) => Found::Missing,
            Err(why) => Found::Corrupt(why),
        });
    }
    let needle = needle_of(key).map_err(io::Error::other)?;
    // Invariant: a match of `needle` can only start at or after `from`.
    let mut from = LAYOUT_HEADER.len() - 1;
    let mut eof = false;
    loop {
        if let Some(at) = find_bytes(&buf[from..], &needle) {
            let start = from + at + needle.len();
            // The entry ends at the end of its line; make sure it is in `buf`.
            let mut scanned = start;
            while !buf[scanned..].contains(&b'\n') && !eof {
                scanned = buf.len();
                eof = fill(&mut file, &mut buf, CHUNK)?;
            }
            return Ok(match first_value(&buf[start..]) {
                Ok(raw) => Found::Entry(raw),
                Err(why) => Found::Corrupt(why),
            });
        }
        if eof {
            return Ok(Found::Missing);
        }
        // Keep the tail a match could still start in, then read on.
        let keep = needle.len().saturating_sub(1).min(buf.len() - from);
        buf.drain(..buf.len() - keep);
        from = 0;
        eof = fill(&mut file, &mut buf, CHUNK)?;
    }
}

/// Appends up to `want` bytes from `file` to `buf`; `true` at end of file.
/// Reads into the spare capacity (no zero-filling: on a small store that
/// would cost more than the read).
fn fill(file: &mut File, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    let got = Read::by_ref(file).take(want as u64).read_to_end(buf)?;
    Ok(got < want)
}

/// The first JSON value in `bytes` (what follows an entry's key).
fn first_value(bytes: &[u8]) -> Result<String, String> {
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<&RawValue>();
    match values.next() {
        Some(Ok(value)) => Ok(value.get().to_owned()),
        Some(Err(e)) => Err(json_error(&e)),
        None => Err("entry without a value".into()),
    }
}

/// `\n"KEY":`, the start of `key`'s line in kcc's layout.
fn needle_of(key: &str) -> Result<Vec<u8>, String> {
    let mut needle = Vec::with_capacity(key.len() + 8);
    needle.push(b'\n');
    serde_json::to_writer(&mut needle, key).map_err(|e| e.to_string())?;
    needle.push(b':');
    Ok(needle)
}

/// Opens the store file for reading without following a symlink, and
/// without blocking on a FIFO (`O_NONBLOCK`; on a regular file it changes
/// nothing). The caller checks the type with the `fstat` it does anyway.
///
/// Windows: std opens with `FILE_SHARE_DELETE`, so a reader never stops a
/// writer's rename; while a rename replaces the file, an open can fail
/// with "access denied" for an instant: retried ([`windows_retry`]).
fn open_read(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    windows_retry(|| options.open(path))
}

/// Opens `path` in the store with `options` (the caller's access and
/// creation mode), never through a symlink, never blocking on a FIFO, and
/// refuses anything but a regular file ([`NotRegular`]): the one way kcc
/// opens its locks, records and logs.
pub fn open_regular(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| explain_open_error(e, path))?;
    refuse_non_regular(&file.metadata()?, path)?;
    Ok(file)
}

/// Fails with [`NotRegular`] when something other than a regular file or
/// a symlink (which an atomic replace replaces) sits at `path`; a missing
/// file is fine. One `lstat`.
pub fn refuse_non_regular_at(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_file() && !meta.file_type().is_symlink() => Err(NotRegular::error(path, &meta)),
        _ => Ok(()),
    }
}

fn refuse_non_regular(meta: &fs::Metadata, path: &Path) -> io::Result<()> {
    if meta.is_file() { Ok(()) } else { Err(NotRegular::error(path, meta)) }
}

/// A path in the store that is not a regular file (a FIFO, a device node,
/// a socket, a directory): never read, written, locked or replaced. A FIFO
/// would hang every kubectl call; a device node named as the store
/// (`/dev/null`, to "turn caching off") would be replaced by the token.
#[derive(Debug)]
pub struct NotRegular {
    /// The path.
    pub path: std::path::PathBuf,
    /// What it is, in words ("a FIFO (named pipe)").
    pub what: &'static str,
}

impl NotRegular {
    fn error(path: &Path, meta: &fs::Metadata) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, NotRegular { path: path.to_path_buf(), what: kind_of(meta) })
    }

    /// The [`NotRegular`] inside `e`, if that is what `e` is.
    pub fn of(e: &io::Error) -> Option<&NotRegular> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<NotRegular>())
    }
}

impl std::fmt::Display for NotRegular {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A device node is never kcc's to remove (it may be the real /dev/null).
        let remove = if self.what.contains("device") { "" } else { "remove it (kcc recreates its files), " };
        write!(
            f,
            "{} is {}, not a regular file, and kcc never reads, writes or replaces such a thing; {remove}point KUBE_CREDENTIAL_CACHE_FILE at a regular file, or set KUBE_CREDENTIAL_CACHE_BACKEND=none to turn caching off",
            self.path.display(),
            self.what
        )
    }
}

impl std::error::Error for NotRegular {}

/// What a non-regular file is, in words.
fn kind_of(meta: &fs::Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    "not a file"
}

/// Renames `temp` over `target`. On Unix one `rename`. On Windows a
/// rename over a file that another program holds open without
/// `FILE_SHARE_DELETE` (the Go kcc, an editor, a virus scanner) fails with
/// a sharing violation or "access denied" until it lets go: retried
/// ([`windows_retry`]); if it never does, the error stands, the old store
/// stays whole and the caller serves the credential uncached.
fn replace(temp: &Path, target: &Path) -> io::Result<()> {
    windows_retry(|| fs::rename(temp, target))
}

/// Runs `op`, and on Windows runs it again for up to ~2 s while it fails
/// with a sharing violation (32), a lock violation (33) or "access denied"
/// (5: also what a file being replaced answers). Elsewhere: once.
fn windows_retry<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut pause = std::time::Duration::from_millis(1);
    let mut waited = std::time::Duration::ZERO;
    loop {
        match op() {
            Err(e)
                if cfg!(windows)
                    && matches!(e.raw_os_error(), Some(5 | 32 | 33))
                    && waited < std::time::Duration::from_secs(2) =>
            {
                std::thread::sleep(pause);
                waited += pause;
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Turns the bare "too many levels of symbolic links" of an `O_NOFOLLOW`
/// open into a message that names the link and what to do, and the
/// `ENXIO` of a socket (or a FIFO opened for writing with no reader) into
/// [`NotRegular`].
fn explain_open_error(e: io::Error, path: &Path) -> io::Error {
    if e.kind() == io::ErrorKind::NotFound {
        return e;
    }
    let meta = fs::symlink_metadata(path);
    if let Ok(meta) = &meta
        && !meta.is_file()
        && !meta.file_type().is_symlink()
    {
        return NotRegular::error(path, meta);
    }
    if meta.is_ok_and(|m| m.file_type().is_symlink()) {
        return io::Error::new(
            e.kind(),
            format!(
                "{} is a symbolic link, which kcc never follows (someone could point it anywhere); replace it with a file or set KUBE_CREDENTIAL_CACHE_FILE to its target",
                path.display()
            ),
        );
    }
    e
}

/// A store file owned by another user: never trusted, never served. The
/// `io::Error` carrying it has kind `PermissionDenied`.
#[derive(Debug)]
pub struct ForeignOwner {
    /// The file.
    pub path: std::path::PathBuf,
    /// Its owner.
    pub uid: u32,
}

impl std::fmt::Display for ForeignOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is owned by uid {}, not by you; it is not trusted", self.path.display(), self.uid)
    }
}

impl std::error::Error for ForeignOwner {}

impl ForeignOwner {
    /// The [`ForeignOwner`] inside `e`, if that is what `e` is.
    pub fn of(e: &io::Error) -> Option<&ForeignOwner> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<ForeignOwner>())
    }
}

/// Fails with [`ForeignOwner`] when the opened file is not ours. One `fstat`
/// that the read does anyway, so the hit path pays nothing extra.
fn refuse_foreign_owner(meta: &fs::Metadata, path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                ForeignOwner { path: path.to_path_buf(), uid: meta.uid() },
            ));
        }
    }
    let _ = (meta, path);
    Ok(())
}

/// Finds the raw JSON stored under `key`. `Err` describes a corrupt file.
pub fn find<'a>(bytes: &'a [u8], key: &str) -> Result<Option<&'a RawValue>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !bytes.starts_with(LAYOUT_HEADER) {
        let parsed: BorrowedFile<'a> = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
        return Ok(parsed.credentials.and_then(|mut c| c.remove(key)));
    }
    let needle = needle_of(key)?;
    let Some(at) = find_bytes(&bytes[LAYOUT_HEADER.len() - 1..], &needle) else {
        return Ok(None);
    };
    let start = LAYOUT_HEADER.len() - 1 + at + needle.len();
    let mut values = serde_json::Deserializer::from_slice(&bytes[start..]).into_iter::<&RawValue>();
    match values.next() {
        Some(Ok(value)) => Ok(Some(value)),
        Some(Err(e)) => Err(json_error(&e)),
        None => Err("entry without a value".into()),
    }
}

/// Substring search; the standard library has none for bytes. glibc's
/// `memmem` (two-way, vectorised) where there is one.
#[cfg(all(unix, target_env = "gnu"))]
fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    // SAFETY: both pointers and lengths come from live slices; memmem only
    // reads within them and returns null or a pointer into `haystack`.
    let found = unsafe { libc::memmem(haystack.as_ptr().cast(), haystack.len(), needle.as_ptr().cast(), needle.len()) };
    (!found.is_null()).then(|| found as usize - haystack.as_ptr() as usize)
}

/// Substring search; the standard library has none for bytes.
#[cfg(not(all(unix, target_env = "gnu")))]
fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let last_start = haystack.len().checked_sub(needle.len())?;
    let mut from = 0;
    while from <= last_start {
        let offset = haystack[from..=last_start].iter().position(|&b| b == first)?;
        let at = from + offset;
        if &haystack[at..at + needle.len()] == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[derive(Deserialize)]
struct BorrowedFile<'a> {
    #[serde(borrow, default)]
    credentials: Option<BTreeMap<String, &'a RawValue>>,
}

#[derive(Deserialize)]
struct OwnedFile {
    #[serde(default)]
    credentials: Option<Entries>,
}

/// Parses every entry (for writes, `clear` and `doctor`).
pub fn parse_all(bytes: &[u8]) -> Result<Entries, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Entries::new());
    }
    let parsed: OwnedFile = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
    Ok(parsed.credentials.unwrap_or_default())
}

/// Why store content did not parse, without quoting it: serde's syntax
/// errors name a position only, but its type errors quote the value
/// (`invalid type: string "<the token>", expected a map`), and a store can
/// hold anything — a credential pasted in the wrong place included.
pub fn json_error(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data => {
            format!("not the shape of a credential store at line {} column {}", e.line(), e.column())
        }
        _ => e.to_string(),
    }
}

/// Serialises entries in the one-entry-per-line layout.
pub fn render(entries: &Entries) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + entries.iter().map(|(k, v)| k.len() + v.get().len() + 8).sum::<usize>());
    out.extend_from_slice(LAYOUT_HEADER);
    let mut first = true;
    for (key, value) in entries {
        if !first {
            out.extend_from_slice(b",\n");
        }
        first = false;
        // Writing a String and a compact value cannot fail.
        let _ = serde_json::to_writer(&mut out, key);
        out.push(b':');
        let raw = value.get();
        if raw.contains('\n') || raw.contains('\r') {
            match serde_json::from_str::<serde_json::Value>(raw) {
                Ok(v) => {
                    let _ = serde_json::to_writer(&mut out, &v);
                }
                Err(_) => out.extend_from_slice(b"null"),
            }
        } else {
            out.extend_from_slice(raw.as_bytes());
        }
    }
    out.extend_from_slice(b"\n}}\n");
    out
}

/// Creates the store directory 0700 (and its parents).
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes sure no other user can write into the store directory `dir`:
/// whoever can write there can replace the store (and kubectl would act with
/// their credential), plant symlinks or hold kcc's lock files.
///
/// Only kcc's own directory (`own`: the default location, which kcc
/// creates 0700) is repaired when it is ours and writable by group or
/// others: to 0700, and the returned message says so (shown once as a
/// warning: afterwards the directory is private). Any other directory
/// others can write to — one named through `KUBE_CREDENTIAL_CACHE_FILE`
/// (a 2775 project directory, the current directory of a relative path),
/// another user's, or one shared on purpose (sticky, like `/tmp`) — is
/// refused with an error naming it and is never changed: its mode is
/// somebody's decision, so the credential is served uncached instead.
pub fn secure_dir(dir: &Path, own: bool) -> io::Result<Option<String>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = fs::metadata(dir)?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 == 0 {
            return Ok(None);
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if !own || meta.uid() != me || mode & 0o1000 != 0 {
            let why = if !own && meta.uid() == me && mode & 0o1000 == 0 {
                ", and kcc changes only the directory it creates itself"
            } else {
                ""
            };
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the cache directory {} is writable by other users (mode {mode:04o}, owner uid {}) and kcc will not keep credentials there{why}; set KUBE_CREDENTIAL_CACHE_FILE to a file in a directory only you can write to (or unset it for the default)",
                    shown_absolute(dir).display(),
                    meta.uid()
                ),
            ));
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        Ok(Some(format!(
            "the cache directory {} was writable by other users (mode {mode:04o}); changed it to 0700",
            dir.display()
        )))
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, own);
        Ok(None)
    }
}

/// `dir` as an absolute path for messages (a relative store path means the
/// current directory, which `.` does not name).
#[cfg(unix)]
fn shown_absolute(dir: &Path) -> std::path::PathBuf {
    if dir.is_absolute() {
        return dir.to_path_buf();
    }
    std::env::current_dir().map_or_else(|_| dir.to_path_buf(), |cwd| cwd.join(dir).components().collect())
}

/// Removes temporary files that [`write_atomic`] left for `target` when it
/// was killed between writing and renaming (`<name>.tmp.<pid>`). They hold
/// a whole copy of the store, tokens included, that `kcc clear` would
/// otherwise never reach. Only call this holding the lock every writer of
/// `target` takes: then no such file belongs to a live writer.
pub fn remove_leftover_temps(target: &Path) {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else { return };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let mut prefix = name.to_os_string();
    prefix.push(".tmp.");
    let prefix = prefix.as_encoded_bytes();
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().as_encoded_bytes().starts_with(prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Replaces `target` atomically with `bytes`, mode 0600: temp file in the
/// same directory, fsync, rename. The temp file is removed on failure.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = crate::paths::StorePaths::temp_for(target);
    let result = (|| {
        // Never replace a device node or a FIFO (nor write through a
        // symlink: the rename replaces the link itself).
        refuse_non_regular_at(target)?;
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file: File = open_regular(&mut options, &temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        replace(&temp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn layout_round_trips_and_is_found_without_parsing_everything() {
        let mut entries = Entries::new();
        entries.insert("a \"quoted\" key".into(), raw(r#"{"x":1}"#));
        entries.insert("b".into(), raw("{\n\"y\": \"\\n\\\"b\\\":\"\n}"));
        let bytes = render(&entries);
        assert_eq!(parse_all(&bytes).unwrap().len(), 2);
        assert_eq!(find(&bytes, "a \"quoted\" key").unwrap().unwrap().get(), r#"{"x":1}"#);
        assert_eq!(find(&bytes, "b").unwrap().unwrap().get(), r#"{"y":"\n\"b\":"}"#);
        assert!(find(&bytes, "c").unwrap().is_none());
    }

    #[test]
    fn lookup_streams_through_files_larger_than_a_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        let mut entries = Entries::new();
        let filler = "x".repeat(1500);
        for i in 0..200 {
            entries.insert(format!("key {i:03}"), raw(&format!(r#"{{"n":{i},"t":"{filler}"}}"#)));
        }
        fs::write(&path, render(&entries)).unwrap();
        assert!(fs::metadata(&path).unwrap().len() > 4 * CHUNK as u64);
        for i in [0, 1, 42, 43, 44, 99, 150, 199] {
            let Found::Entry(json) = lookup(&path, &format!("key {i:03}")).unwrap() else { panic!("key {i}") };
            assert_eq!(json, format!(r#"{{"n":{i},"t":"{filler}"}}"#));
        }
        assert_eq!(lookup(&path, "key 200").unwrap(), Found::Missing);
        assert_eq!(lookup(&path, "key").unwrap(), Found::Missing);
        assert_eq!(lookup(&dir.path().join("none"), "k").unwrap(), Found::NoFile);
        // A key whose line straddles every possible chunk boundary.
        for pad in 0..40 {
            let mut e = Entries::new();
            e.insert("p".repeat(CHUNK - 60 + pad), raw(r#"{"a":1}"#));
            e.insert("the key".into(), raw(r#"{"b":2}"#));
            fs::write(&path, render(&e)).unwrap();
            assert_eq!(lookup(&path, "the key").unwrap(), Found::Entry(r#"{"b":2}"#.into()), "pad {pad}");
        }
    }

    #[test]
    fn a_corrupt_store_is_described_without_quoting_it() {
        for bad in [&br#"{"credentials":"the-secret"}"#[..], br#"{"credentials":{"k":"x"}} the-secret"#, b"the-secret"]
        {
            let why = parse_all(bad).unwrap_err();
            assert!(!why.contains("the-secret"), "{why}");
            assert!(find(bad, "k").is_err_and(|why| !why.contains("the-secret")));
        }
    }

    #[test]
    fn go_layout_is_parsed_whole() {
        let go = br#"{"credentials":{"k":{"kind":"ExecCredential"}}}"#;
        assert!(find(go, "k").unwrap().is_some());
        assert!(find(b"{garbage", "k").is_err());
        assert!(find(b"", "k").unwrap().is_none());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn bytes() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..256),
                // kcc's own layout header followed by anything: the fast path.
                prop::collection::vec(any::<u8>(), 0..256).prop_map(|mut tail| {
                    let mut v = LAYOUT_HEADER.to_vec();
                    v.append(&mut tail);
                    v
                }),
                ("\\PC{0,6}", "[\\PC\n]{0,64}").prop_map(|(k, rest)| {
                    format!("{{\"credentials\":{{\n{}:{rest}", serde_json::to_string(&k).unwrap()).into_bytes()
                }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn any_store_content_is_read_without_panicking(content in bytes(), key in "[\\PC\n]{0,8}") {
                let _ = find(&content, &key);
                let _ = parse_all(&content);
            }

            #[test]
            fn rendered_entries_are_found_exactly(
                entries in prop::collection::btree_map("[\\PC\n\"]{0,8}", "[\\PC\n\"]{0,8}", 0..6),
                probe in "[\\PC\n\"]{0,8}",
            ) {
                let entries: Entries = entries
                    .into_iter()
                    .map(|(k, v)| (k, raw(&serde_json::json!({"v": v, "nl": "\n"}).to_string())))
                    .collect();
                let bytes = render(&entries);
                prop_assert_eq!(parse_all(&bytes).unwrap().len(), entries.len());
                for (k, v) in &entries {
                    prop_assert_eq!(find(&bytes, k).unwrap().map(RawValue::get), Some(v.get()));
                }
                prop_assert_eq!(find(&bytes, &probe).unwrap().is_some(), entries.contains_key(&probe));
            }
        }
    }
}
