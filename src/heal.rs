//! Healing after a rejected credential (`KUBE_CREDENTIAL_CACHE_HEAL`, on by
//! default).
//!
//! client-go (kubectl, helm, k9s, …) runs the exec plugin **once per process**
//! and keeps the credential in memory; after the server answers 401 it runs
//! the plugin once more. A cache that answers that second run from itself
//! makes recovery impossible: the revoked token is served until it expires.
//!
//! So kcc remembers, per key, which client process it served last and which
//! credential: the parent pid **and** the parent's start time (field 22 of
//! `/proc/<ppid>/stat`, so a reused pid is a different client). When the same
//! process asks again for the credential it was already served, and that
//! credential is still fresh (a credential inside the refresh margin is a miss
//! anyway), kcc treats it as rejected: under the single-flight lock it checks
//! that the entry is still the one served (another process may have replaced
//! it: that one is served without running the plugin), runs the plugin, stores
//! and serves the new credential. The kubectl call that got the 401 still
//! fails (client-go does not retry the request); the next one works.
//!
//! Bounds: at most one forced refresh per key per [`HEAL_INTERVAL`] (whatever
//! the client), so a long-running tool that re-asks legitimately, or a script
//! calling `kcc-cache` in a loop (one parent for many calls), costs at most one
//! plugin run per interval and never turns the cache off.
//!
//! A shell as the parent ([`NOT_CLIENTS`]) is never a client: a user or a
//! script running `kcc-cache` twice asks twice, nothing was rejected.
//!
//! Limits (also in the README): the client must be kcc's direct parent — a
//! wrapper script between kubectl and kcc that does not `exec` makes a new
//! parent for every call, so healing never triggers (and never misfires);
//! only the last served client is remembered, so two clients interleaving on
//! one key can delay a heal by one call; on systems without `/proc` (macOS,
//! Windows) healing is off.
//!
//! Cost on a hit: `getppid`, one read of `/proc/<ppid>/stat`, one read of the
//! per-key record and, when the client changed (every new kubectl process),
//! one `pwrite` of [`RECORD_LEN`] bytes — no lock, no fsync, no index write:
//! the record is a hint, and a lost or torn one only means no heal.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};

use crate::diagnostics::{self, Diag};
use crate::store::Store;

/// At most one forced refresh per key within this interval.
pub const HEAL_INTERVAL: SignedDuration = SignedDuration::from_secs(30);

/// Size of a served-client record on disk.
pub const RECORD_LEN: usize = 64;

/// A client process: its pid and its start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The parent process id.
    pub pid: u32,
    /// Its start time, so a reused pid is a different client.
    pub start: u64,
}

impl Client {
    /// kcc's parent, or None where its start time cannot be known (no
    /// `/proc`), or when kcc was orphaned (parent pid 1 serves everyone).
    pub fn parent() -> Option<Client> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: getppid has no preconditions and cannot fail.
            let pid = u32::try_from(unsafe { libc::getppid() }).ok()?;
            if pid <= 1 {
                return None;
            }
            let mut buf = [0u8; 1024];
            let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
            let n = file.read(&mut buf).ok()?;
            let stat = &buf[..n];
            if is_shell(parse_comm(stat)?) {
                return None;
            }
            Some(Client { pid, start: parse_start_time(stat)? })
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }
}

/// Shells and `env` never retry after a 401: a shell that runs kcc twice is
/// a user or a script asking twice (`for i in 1 2; do kcc-cache …; done`, a
/// wrapper that does not `exec`), not a client whose credential was
/// rejected. With one of them as the parent, healing stays out of the way.
const NOT_CLIENTS: &[&[u8]] =
    &[b"sh", b"bash", b"dash", b"zsh", b"ksh", b"mksh", b"ash", b"busybox", b"fish", b"tcsh", b"csh", b"env"];

/// Whether the parent's command name is a shell (see [`NOT_CLIENTS`]).
pub fn is_shell(comm: &[u8]) -> bool {
    NOT_CLIENTS.contains(&comm)
}

/// Field 2 (`comm`) of a `stat` line: between the first `(` and the last `)`.
pub fn parse_comm(stat: &[u8]) -> Option<&[u8]> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(open + 1..close)
}

/// Parses field 22 out of a `stat` line. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn parse_start_time(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // After ")" come fields 3, 4, …: field 22 is the 20th.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// Identifies a stored credential without keeping it: 64-bit FNV-1a of its
/// stored JSON. Only equality matters (was this the entry served?); 64 bits
/// of a high-entropy token reveal nothing usable about it.
pub fn entry_id(json: &str) -> u64 {
    json.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Who was served what, last, for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The client served last.
    pub client: Client,
    /// The [`entry_id`] of what it was served.
    pub entry: u64,
    /// When this key was last force-refreshed (unix seconds; 0: never).
    pub forced_at: i64,
}

impl Record {
    /// The fixed-size text form: `k1 PID START ENTRY FORCED`, space padded.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let text = format!("k1 {} {} {:016x} {}", self.client.pid, self.client.start, self.entry, self.forced_at);
        let mut out = [b' '; RECORD_LEN];
        let n = text.len().min(RECORD_LEN - 1);
        out[..n].copy_from_slice(&text.as_bytes()[..n]);
        out[RECORD_LEN - 1] = b'\n';
        out
    }

    /// Parses [`Record::encode`]'s form; anything else (empty, torn, foreign) is None.
    pub fn decode(bytes: &[u8]) -> Option<Record> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut f = text.split_ascii_whitespace();
        if f.next()? != "k1" {
            return None;
        }
        let pid = f.next()?.parse().ok()?;
        let start = f.next()?.parse().ok()?;
        let entry = u64::from_str_radix(f.next()?, 16).ok()?;
        let forced_at = f.next()?.parse().ok()?;
        if f.next().is_some() {
            return None;
        }
        Some(Record { client: Client { pid, start }, entry, forced_at })
    }
}

/// What a repeated request means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing suspicious: serve.
    Serve,
    /// The same client asks again for the credential it was served: treat it as rejected.
    Rejected {
        /// The explanation for debug output.
        why: String,
    },
    /// It looks rejected, but this key was force-refreshed less than
    /// [`HEAL_INTERVAL`] ago: serve.
    Bounded {
        /// The explanation for debug output.
        why: String,
    },
}

/// Judges a request of `client` for the entry `entry` given the `previous` record.
pub fn judge(previous: Option<&Record>, client: Client, entry: u64, now: Timestamp) -> Verdict {
    let Some(prev) = previous else { return Verdict::Serve };
    if prev.client != client || prev.entry != entry {
        return Verdict::Serve;
    }
    let asked = format!(
        "client process {} (started at tick {}) asks again for the credential it was already served",
        client.pid, client.start
    );
    let since = now.as_second() - prev.forced_at;
    if prev.forced_at > 0 && since >= 0 && since < HEAL_INTERVAL.as_secs() {
        return Verdict::Bounded {
            why: format!(
                "{asked}, but this key was force-refreshed {since}s ago (at most one forced refresh per key per {}); serving the cached credential",
                diagnostics::span(HEAL_INTERVAL)
            ),
        };
    }
    Verdict::Rejected {
        why: format!(
            "{asked}: treating it as rejected by the server and running the plugin (client-go asks again only after a 401; set {}=0 to turn this off)",
            crate::config::ENV_HEAL
        ),
    }
}

/// Reads a record; None when missing or unreadable.
pub fn read(path: &Path) -> Option<Record> {
    let mut buf = [0u8; RECORD_LEN];
    let mut file = std::fs::File::open(path).ok()?;
    let n = file.read(&mut buf).ok()?;
    Record::decode(&buf[..n])
}

/// Opens (creating) a record file read-write, 0600, never through a symlink.
fn open_record(path: &Path) -> io::Result<std::fs::File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Reads the record at offset 0 of an open record file.
fn read_from(file: &std::fs::File) -> Option<Record> {
    let mut buf = [0u8; RECORD_LEN];
    #[cfg(unix)]
    let n = {
        use std::os::unix::fs::FileExt;
        file.read_at(&mut buf, 0).ok()?
    };
    #[cfg(not(unix))]
    let n = {
        let mut file = file;
        file.read(&mut buf).ok()?
    };
    Record::decode(&buf[..n])
}

/// Writes a record with one `pwrite` at offset 0 (0600, no fsync, no lock:
/// it is a hint). Creates the directory when it is missing.
pub fn write(path: &Path, record: &Record) -> io::Result<()> {
    let file = match open_record(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                crate::store::file::ensure_dir(dir)?;
            }
            open_record(path)?
        }
        other => other?,
    };
    write_to(&file, record)
}

/// Overwrites the record of an open record file.
fn write_to(file: &std::fs::File, record: &Record) -> io::Result<()> {
    let bytes = record.encode();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.write_all_at(&bytes, 0)
    }
    #[cfg(not(unix))]
    {
        use std::io::Write;
        let mut file = file;
        file.write_all(&bytes)
    }
}

/// Healing for one call: the client, where its record lives, and the record
/// as read at the start of the call.
#[derive(Debug, Clone)]
pub struct Healer {
    client: Client,
    path: PathBuf,
    previous: Option<Record>,
    /// The record file, opened read-write once: the read at the start and
    /// the write after serving share one `open` (a hit is ~1 ms; every
    /// syscall shows).
    file: Option<std::sync::Arc<std::fs::File>>,
}

impl Healer {
    /// The healer of this call, or None when healing is off or the client
    /// cannot be identified.
    pub fn new(enabled: bool, store: &Store, key: &str) -> Option<Healer> {
        if !enabled {
            return None;
        }
        let client = Client::parent()?;
        let path = store.served_path(key);
        let file = open_record(&path).ok().map(std::sync::Arc::new);
        let previous = match &file {
            Some(file) => read_from(file),
            None => read(&path),
        };
        Some(Healer { client, path, previous, file })
    }

    /// The client of this call.
    pub fn client(&self) -> Client {
        self.client
    }

    /// Judges a hit on the stored credential `json`.
    pub fn judge(&self, json: &str, now: Timestamp) -> Verdict {
        judge(self.previous.as_ref(), self.client, entry_id(json), now)
    }

    /// Records that this client was served `json`; `forced` when it came from
    /// a forced refresh. Writes only when the record changes; never fails the
    /// call (a lost record only means no heal).
    pub fn served(&self, json: &str, forced: bool, now: Timestamp, diag: &Diag) {
        let forced_at = if forced { now.as_second() } else { self.previous.map_or(0, |p| p.forced_at) };
        let record = Record { client: self.client, entry: entry_id(json), forced_at };
        if self.previous == Some(record) {
            return;
        }
        let written = match &self.file {
            Some(file) => write_to(file, &record),
            None => write(&self.path, &record),
        };
        if let Err(e) = written {
            diag.debug(|| {
                format!("cannot record the served client in {} ({e}); healing skips this call", self.path.display())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_are_not_clients() {
        let stat = b"4242 (bash) S 1 4242 4242 34816 4242 4194304 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0";
        assert_eq!(parse_comm(stat), Some(&b"bash"[..]));
        assert!(is_shell(parse_comm(stat).unwrap()));
        let kubectl = b"4243 (kubectl) S 1 4243 4243 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 9 0 98766 0 0";
        assert!(!is_shell(parse_comm(kubectl).unwrap()));
        assert!(!is_shell(b"k9s") && !is_shell(b"helm") && !is_shell(b"bash2"));
    }

    #[test]
    fn start_time_is_field_22_even_with_parentheses_in_the_name() {
        let stat = b"1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 12345 67";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time(b"garbage"), None);
    }

    #[test]
    fn records_round_trip_and_garbage_is_none() {
        let r = Record { client: Client { pid: 42, start: 1_000_000 }, entry: u64::MAX, forced_at: 1_700_000_000 };
        let bytes = r.encode();
        assert_eq!(bytes.len(), RECORD_LEN);
        assert_eq!(Record::decode(&bytes), Some(r));
        assert_eq!(Record::decode(b""), None);
        assert_eq!(Record::decode(&[0u8; RECORD_LEN]), None);
        assert_eq!(Record::decode(b"k1 1 2 zz 0"), None);
    }

    #[test]
    fn only_the_same_client_with_the_same_entry_is_a_rejection_and_it_is_bounded() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let me = Client { pid: 10, start: 5 };
        let reused_pid = Client { pid: 10, start: 6 };
        let rec = Record { client: me, entry: 7, forced_at: 0 };
        assert_eq!(judge(None, me, 7, now), Verdict::Serve);
        assert_eq!(judge(Some(&rec), reused_pid, 7, now), Verdict::Serve, "a reused pid is another process");
        assert_eq!(judge(Some(&rec), me, 8, now), Verdict::Serve, "a newer entry is simply served");
        assert!(matches!(judge(Some(&rec), me, 7, now), Verdict::Rejected { .. }));
        let recent = Record { forced_at: now.as_second() - 10, ..rec };
        assert!(matches!(judge(Some(&recent), me, 7, now), Verdict::Bounded { .. }));
        let old = Record { forced_at: now.as_second() - 31, ..rec };
        assert!(matches!(judge(Some(&old), me, 7, now), Verdict::Rejected { .. }));
    }
}
