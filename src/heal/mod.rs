//! Healing after a rejected credential (`KUBE_CREDENTIAL_CACHE_HEAL`, on by
//! default), without ever being worse than no cache.
//!
//! client-go (kubectl, helm, k9s, …) runs the exec plugin **once per process**
//! and keeps the credential in memory; after the server answers 401 it runs
//! the plugin once more. A cache that answers that second run from itself
//! makes recovery impossible: the revoked token is served until it expires.
//! The other common clients ask again for other reasons: the Python client
//! runs the plugin on every config load (and on every request near expiry),
//! client-node once per `KubeConfig` object, with no single flight. For them
//! a repeated request proves nothing, and refreshing would re-run plugins,
//! re-prompt for MFA codes, or fail calls when the plugin cannot run again.
//!
//! So kcc remembers, per key, which client process it served last and which
//! credential: the parent pid **and** the parent's start time (field 22 of
//! `/proc/<ppid>/stat`, so a reused pid is a different client), plus what
//! healing last did ([`Record`]). A request from another process or for
//! another credential is a first ask and is served: the hit path. When the
//! same process asks again for the credential it was served (a re-ask),
//! [`decide`] — a pure function of the ask, the stored entry and the record —
//! says what to do, by client [`Family`] (recognised from the exact bytes of
//! `KUBERNETES_EXEC_INFO`):
//!
//! - client-go: the re-ask is a 401: refresh;
//! - any other client: only the server can tell. When kcc knows the cluster
//!   ([`cluster`]: the exec info, or the kubeconfig for client-node), it asks
//!   the server once with the cached credential ([`verify`], bounded to 2 s):
//!   401 → refresh; any other answer, none, or no cluster → serve. The
//!   answer is kept in the record, so a client re-asking in a loop causes at
//!   most one check per key per [`HEAL_INTERVAL`].
//!
//! A refresh runs under the single-flight lock after checking that the
//! entry is still the one served (another process may have replaced it: that
//! one is served without running the plugin). When the forced refresh fails,
//! `cache.rs` serves the cached credential instead of failing the call.
//!
//! Bounds: at most one forced refresh per key per [`HEAL_INTERVAL`] (whatever
//! the client, failed ones included), so a long-running tool that re-asks
//! legitimately costs at most one plugin run per interval and never turns the
//! cache off.
//!
//! A shell as the parent ([`NOT_CLIENTS`]) is never a client: a user or a
//! script running `kcc-cache` twice asks twice, nothing was rejected.
//!
//! Limits (also in the README): the client must be kcc's direct parent — a
//! wrapper script between kubectl and kcc that does not `exec` makes a new
//! parent for every call, so healing never triggers (and never misfires);
//! only the last served client is remembered, so two clients interleaving on
//! one key can delay a heal by one call; on systems without `/proc` (macOS,
//! Windows) healing is off and no TLS code is compiled.
//!
//! Cost on a hit (a first ask): `getppid`, one read of `/proc/<ppid>/stat`,
//! one read of the per-key record, a prefix comparison of the exec info and,
//! when the client changed (every new kubectl process), one `pwrite` of
//! [`RECORD_LEN`] bytes — no lock, no fsync, no index write, no kubeconfig,
//! no network: the record is a hint, and a lost or torn one only means no heal.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};

use crate::diagnostics::{self, Diag};
use crate::store::Store;

pub mod cluster;
#[cfg(target_os = "linux")]
pub mod proxy;
#[cfg(target_os = "linux")]
pub mod verify;
#[cfg(not(target_os = "linux"))]
#[path = "verify_none.rs"]
pub mod verify;
#[cfg(target_os = "linux")]
pub mod x509;

/// At most one forced refresh per key within this interval.
pub const HEAL_INTERVAL: SignedDuration = SignedDuration::from_secs(30);

/// Size of a served-client record on disk.
pub const RECORD_LEN: usize = 96;

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

/// Which kind of client asked, told apart by the exact bytes of
/// `KUBERNETES_EXEC_INFO` (measured; see the README's Freshness section).
///
/// Only client-go asks again for a credential it was served *because* the
/// server rejected it; the others ask again whenever the application builds
/// a new config, so for them a repeated request proves nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// kubectl, helm, k9s, Terraform, …: Go's encoding/json, compact, `kind` first.
    ClientGo,
    /// The official Python client: `json.dumps` with spaces, `apiVersion` first.
    Python,
    /// No `KUBERNETES_EXEC_INFO` at all (`@kubernetes/client-node`, and
    /// clients that do not implement it).
    NoExecInfo,
    /// Exec info in another shape (kube-rs, Ruby, a hand-written client).
    Other,
}

impl Family {
    /// Recognises the client from the raw `KUBERNETES_EXEC_INFO`.
    pub fn of(exec_info: Option<&str>) -> Family {
        match exec_info {
            None | Some("") => Family::NoExecInfo,
            Some(raw) if raw.starts_with(r#"{"kind":"ExecCredential","apiVersion":"#) => Family::ClientGo,
            Some(raw) if raw.starts_with(r#"{"apiVersion": ""#) => Family::Python,
            Some(_) => Family::Other,
        }
    }

    /// The name debug output and doctor use.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::ClientGo => "client-go",
            Family::Python => "python",
            Family::NoExecInfo => "no-exec-info",
            Family::Other => "other",
        }
    }

    fn code(self) -> char {
        match self {
            Family::ClientGo => 'g',
            Family::Python => 'p',
            Family::NoExecInfo => 'n',
            Family::Other => 'o',
        }
    }

    fn from_code(code: &str) -> Option<Family> {
        Some(match code {
            "g" => Family::ClientGo,
            "p" => Family::Python,
            "n" => Family::NoExecInfo,
            "o" => Family::Other,
            _ => return None,
        })
    }
}

/// What the API server said when kcc asked it with a cached credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSaid {
    /// An HTTP status.
    Status(u16),
    /// No answer within the bound (timeout, refused, TLS failure, proxy).
    NoAnswer,
}

impl ServerSaid {
    fn encode(self) -> u16 {
        match self {
            ServerSaid::Status(s) => s,
            ServerSaid::NoAnswer => 0,
        }
    }

    fn decode(n: u16) -> ServerSaid {
        if n == 0 { ServerSaid::NoAnswer } else { ServerSaid::Status(n) }
    }
}

impl std::fmt::Display for ServerSaid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerSaid::Status(s) => write!(f, "HTTP {s}"),
            ServerSaid::NoAnswer => f.write_str("no answer"),
        }
    }
}

/// Who was served what, last, for one key, and what healing last did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The client served last.
    pub client: Client,
    /// The [`entry_id`] of what it was served.
    pub entry: u64,
    /// When this key was last force-refreshed (unix seconds; 0: never).
    pub forced_at: i64,
    /// When the served entry was last checked with the server (unix seconds; 0: never).
    pub verified_at: i64,
    /// What the server said then.
    pub verified: ServerSaid,
    /// The family of the client served last.
    pub family: Family,
}

impl Record {
    /// The fixed-size text form: `k2 PID START ENTRY FORCED VERIFIED STATUS FAMILY`,
    /// space padded. (`k1` records, without the last three fields, read as
    /// none: one call without healing after an upgrade.)
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let text = format!(
            "k2 {} {} {:016x} {} {} {} {}",
            self.client.pid,
            self.client.start,
            self.entry,
            self.forced_at,
            self.verified_at,
            self.verified.encode(),
            self.family.code()
        );
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
        if f.next()? != "k2" {
            return None;
        }
        let pid = f.next()?.parse().ok()?;
        let start = f.next()?.parse().ok()?;
        let entry = u64::from_str_radix(f.next()?, 16).ok()?;
        let forced_at = f.next()?.parse().ok()?;
        let verified_at = f.next()?.parse().ok()?;
        let verified = ServerSaid::decode(f.next()?.parse().ok()?);
        let family = Family::from_code(f.next()?)?;
        if f.next().is_some() {
            return None;
        }
        Some(Record { client: Client { pid, start }, entry, forced_at, verified_at, verified, family })
    }
}

/// A request for a stored, fresh credential, as healing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    /// The client process.
    pub client: Client,
    /// Its family.
    pub family: Family,
    /// Whether kcc knows the cluster and could ask the server.
    pub can_verify: bool,
    /// The [`entry_id`] of the stored credential.
    pub entry: u64,
}

/// What to do with a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Serve the cached credential.
    Serve(Why),
    /// Ask the API server with the cached credential, then [`after_verify`].
    Verify,
    /// Run the plugin: the credential was rejected.
    Refresh(Why),
}

/// Why healing decided what it did; `Display` gives the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// A first ask: another client or another entry than last time (the
    /// hit path; nothing is said).
    FirstAsk,
    /// A re-ask, but the key was force-refreshed less than [`HEAL_INTERVAL`] ago.
    Bounded { family: Family, secs_ago: i64 },
    /// client-go asks again only after a 401.
    ClientGoReAsk,
    /// A re-ask from a client that asks again without a 401, and the server
    /// was asked less than [`HEAL_INTERVAL`] ago.
    RecentlyVerified { family: Family, said: ServerSaid, secs_ago: i64 },
    /// A re-ask from a client that asks again without a 401, and kcc does
    /// not know the cluster: only the server could tell.
    NoCluster { family: Family },
    /// The server answered 401 to the cached credential.
    ServerRejected { family: Family },
    /// The server answered something else (or nothing) to the cached credential.
    ServerDidNotReject { family: Family, said: ServerSaid },
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let again = |family: &Family| format!("{} client asks again for the credential it was served", family.as_str());
        match self {
            Why::FirstAsk => f.write_str("first ask of this client for this credential: serving"),
            Why::Bounded { family, secs_ago } => write!(
                f,
                "{}, but this key was force-refreshed {secs_ago}s ago (at most one forced refresh per key per {}); serving the cached credential",
                again(family),
                diagnostics::span(HEAL_INTERVAL)
            ),
            Why::ClientGoReAsk => write!(
                f,
                "{}: client-go asks again only after a 401, so treating it as rejected by the server and running the plugin (set {}=0 to turn this off)",
                again(&Family::ClientGo),
                crate::config::ENV_HEAL
            ),
            Why::RecentlyVerified { family, said, secs_ago } => write!(
                f,
                "{} (it does so without a 401); the server was asked {secs_ago}s ago and said {said}: serving the cached credential",
                again(family)
            ),
            Why::NoCluster { family } => write!(
                f,
                "{} (it does so without a 401); the cluster is unknown, so the server cannot be asked: serving the cached credential",
                again(family)
            ),
            Why::ServerRejected { family } => write!(
                f,
                "{}; the server answered HTTP 401 to the cached credential: running the plugin",
                again(family)
            ),
            Why::ServerDidNotReject { family, said } => write!(
                f,
                "{}; the server answered {said} to the cached credential (not 401): serving it",
                again(family)
            ),
        }
    }
}

/// The decision for a hit: serve, refresh or verify first. A pure function
/// of what was asked, what is stored (`ask.entry`) and the served record.
///
/// A first ask (no record, another client, another entry) is always served:
/// the hit path never changes. A re-ask is bounded first (one forced refresh
/// per key per [`HEAL_INTERVAL`]), then client-go's re-ask means a 401; any
/// other client is asked about only through the server, at most once per
/// [`HEAL_INTERVAL`], and served when kcc cannot ask.
pub fn decide(ask: &Ask, previous: Option<&Record>, now: Timestamp) -> Action {
    let Some(prev) = previous else { return Action::Serve(Why::FirstAsk) };
    if prev.client != ask.client || prev.entry != ask.entry {
        return Action::Serve(Why::FirstAsk);
    }
    let family = ask.family;
    let within = |at: i64| {
        let since = now.as_second() - at;
        (at > 0 && (0..HEAL_INTERVAL.as_secs()).contains(&since)).then_some(since)
    };
    if let Some(secs_ago) = within(prev.forced_at) {
        return Action::Serve(Why::Bounded { family, secs_ago });
    }
    if family == Family::ClientGo {
        return Action::Refresh(Why::ClientGoReAsk);
    }
    if let Some(secs_ago) = within(prev.verified_at) {
        return Action::Serve(Why::RecentlyVerified { family, said: prev.verified, secs_ago });
    }
    if ask.can_verify { Action::Verify } else { Action::Serve(Why::NoCluster { family }) }
}

/// The decision once the server was asked: only a 401 is a rejection; any
/// other answer, or none, serves the cached credential (never worse than no cache).
pub fn after_verify(family: Family, said: ServerSaid) -> Action {
    match said {
        ServerSaid::Status(401) => Action::Refresh(Why::ServerRejected { family }),
        said => Action::Serve(Why::ServerDidNotReject { family, said }),
    }
}

/// Reads a record; None when missing or unreadable.
pub fn read(path: &Path) -> Option<Record> {
    let mut buf = [0u8; RECORD_LEN];
    let mut file = crate::store::file::open_regular(OpenOptions::new().read(true), path).ok()?;
    let n = file.read(&mut buf).ok()?;
    Record::decode(&buf[..n])
}

/// Opens (creating) a record file read-write, 0600, never through a
/// symlink, and only a regular file: a `pwrite` into a device node placed
/// there would write into the device (one `fstat`, see
/// [`crate::store::file::open_regular`]).
fn open_record(path: &Path) -> io::Result<std::fs::File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    crate::store::file::open_regular(&mut options, path)
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
    family: Family,
    path: PathBuf,
    previous: Option<Record>,
    /// The record file, opened read-write once: the read at the start and
    /// the write after serving share one `open` (a hit is ~1 ms; every
    /// syscall shows).
    file: Option<std::sync::Arc<std::fs::File>>,
    /// What the server said in this call, if kcc asked it (unix seconds).
    verified: Option<(i64, ServerSaid)>,
    /// Why this call forces a refresh, if it does.
    refresh: Option<Why>,
}

impl Healer {
    /// The healer of this call, or None when healing is off or the client
    /// cannot be identified. `exec_info` is the raw `KUBERNETES_EXEC_INFO`.
    pub fn new(enabled: bool, store: &Store, key: &str, exec_info: Option<&str>) -> Option<Healer> {
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
        Some(Healer { client, family: Family::of(exec_info), path, previous, file, verified: None, refresh: None })
    }

    /// The client of this call.
    pub fn client(&self) -> Client {
        self.client
    }

    /// Why this call forces a refresh (set by [`Healer::on_hit`]), if it does.
    pub fn refresh_reason(&self) -> Option<Why> {
        self.refresh
    }

    /// Decides a hit on the stored credential `json` ([`decide`]), asking
    /// the API server first when the decision says so: true when the
    /// credential must be refreshed. Every decision on a re-ask is explained
    /// on the debug output; a first ask costs nothing beyond the record read.
    /// `call_key` is this call's cache key (to recognise its user in a
    /// kubeconfig: only a user whose exec gives the same key is this call's).
    pub fn on_hit(&mut self, json: &str, exec_info: Option<&str>, call_key: &str, now: Timestamp, diag: &Diag) -> bool {
        let mut ask = Ask { client: self.client, family: self.family, can_verify: true, entry: entry_id(json) };
        let mut action = decide(&ask, self.previous.as_ref(), now);
        let mut unknown_cluster = None;
        if action == Action::Verify {
            match cluster::find(exec_info, self.family, call_key) {
                Ok(found) => {
                    diag.debug(|| {
                        format!(
                            "heal: asking the API server {} whether it still accepts the cached credential ({})",
                            found.cluster.server, found.source
                        )
                    });
                    let said = verify::probe(&found.cluster, json, verify::BOUND);
                    if let verify::Probe { said, detail: Some(detail) } = &said {
                        diag.debug(|| format!("heal: the server gave {said}: {detail}"));
                    }
                    self.verified = Some((now.as_second(), said.said));
                    action = after_verify(self.family, said.said);
                }
                Err(detail) => {
                    ask.can_verify = false;
                    action = decide(&ask, self.previous.as_ref(), now);
                    unknown_cluster = Some(detail);
                }
            }
        }
        match action {
            Action::Serve(Why::FirstAsk) => false,
            Action::Serve(why) => {
                diag.debug(|| match &unknown_cluster {
                    Some(detail) => format!("heal: {why} ({detail})"),
                    None => format!("heal: {why}"),
                });
                false
            }
            Action::Refresh(why) => {
                diag.debug(|| format!("heal: {why}"));
                self.refresh = Some(why);
                true
            }
            // decide() returns Verify only with can_verify, which is resolved above.
            Action::Verify => false,
        }
    }

    /// Records that this client was served `json`; `forced` when it came from
    /// a forced refresh (or a failed one: it still counts against the bound).
    /// Writes only when the record changes; never fails the call (a lost
    /// record only means no heal).
    pub fn served(&self, json: &str, forced: bool, now: Timestamp, diag: &Diag) {
        let entry = entry_id(json);
        let forced_at = if forced { now.as_second() } else { self.previous.map_or(0, |p| p.forced_at) };
        // A verification speaks for the entry it checked only.
        let (verified_at, verified) = match (self.verified, self.previous) {
            (Some(v), _) if self.refresh.is_none() => v,
            (None, Some(p)) if p.entry == entry => (p.verified_at, p.verified),
            _ => (0, ServerSaid::NoAnswer),
        };
        let record = Record { client: self.client, entry, forced_at, verified_at, verified, family: self.family };
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

/// One line for `kcc doctor` about the last client served from `path`.
pub fn describe_record(path: &Path, now: Timestamp) -> Option<String> {
    let r = read(path)?;
    let mut text = format!("last served to a {} client (pid {})", r.family.as_str(), r.client.pid);
    if r.verified_at > 0 {
        text.push_str(&format!(
            "; the server was last asked {}s ago and said {}",
            now.as_second() - r.verified_at,
            r.verified
        ));
    }
    if r.forced_at > 0 {
        text.push_str(&format!("; last forced refresh {}s ago", now.as_second() - r.forced_at));
    }
    Some(text)
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
        let r = Record {
            client: Client { pid: u32::MAX, start: u64::MAX },
            entry: u64::MAX,
            forced_at: 1_700_000_000,
            verified_at: 1_700_000_001,
            verified: ServerSaid::Status(401),
            family: Family::Python,
        };
        let bytes = r.encode();
        assert_eq!(bytes.len(), RECORD_LEN);
        assert_eq!(Record::decode(&bytes), Some(r), "the widest record fits");
        let r = Record { verified: ServerSaid::NoAnswer, family: Family::NoExecInfo, ..r };
        assert_eq!(Record::decode(&r.encode()), Some(r));
        assert_eq!(Record::decode(b""), None);
        assert_eq!(Record::decode(&[0u8; RECORD_LEN]), None);
        assert_eq!(Record::decode(b"k1 1 2 0000000000000007 0"), None, "an old record is none: no heal for one call");
        assert_eq!(Record::decode(b"k2 1 2 zz 0 0 0 g"), None);
        assert_eq!(Record::decode(b"k2 1 2 07 0 0 0 x"), None);
    }

    #[test]
    fn families_are_told_apart_by_the_exact_bytes() {
        // As measured: kubectl 1.33, python kubernetes 37, client-node 1.4.
        let go =
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#;
        let py = r#"{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "spec": {"interactive": false}}"#;
        assert_eq!(Family::of(Some(go)), Family::ClientGo);
        assert_eq!(Family::of(Some(py)), Family::Python);
        assert_eq!(Family::of(None), Family::NoExecInfo);
        assert_eq!(Family::of(Some("")), Family::NoExecInfo);
        assert_eq!(
            Family::of(Some(r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential"}"#)),
            Family::Other
        );
        assert_eq!(
            Family::of(Some(r#"{ "kind":"ExecCredential","apiVersion":"x"}"#)),
            Family::Other,
            "not Go's encoder"
        );
        for f in [Family::ClientGo, Family::Python, Family::NoExecInfo, Family::Other] {
            assert_eq!(Family::from_code(&f.code().to_string()), Some(f));
        }
    }

    const FAMILIES: [Family; 4] = [Family::ClientGo, Family::Python, Family::NoExecInfo, Family::Other];

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn record(client: Client, entry: u64, forced_ago: Option<i64>, verified_ago: Option<(i64, ServerSaid)>) -> Record {
        let t = now().as_second();
        Record {
            client,
            entry,
            forced_at: forced_ago.map_or(0, |a| t - a),
            verified_at: verified_ago.map_or(0, |(a, _)| t - a),
            verified: verified_ago.map_or(ServerSaid::NoAnswer, |(_, s)| s),
            family: Family::ClientGo,
        }
    }

    #[test]
    fn a_first_ask_is_always_served_whatever_the_client_and_the_record() {
        let me = Client { pid: 10, start: 5 };
        let reused_pid = Client { pid: 10, start: 6 };
        let other = Client { pid: 11, start: 5 };
        for family in FAMILIES {
            for can_verify in [false, true] {
                let ask = Ask { client: me, family, can_verify, entry: 7 };
                assert_eq!(decide(&ask, None, now()), Action::Serve(Why::FirstAsk));
                for forced in [None, Some(1), Some(100)] {
                    for verified in [None, Some((1, ServerSaid::Status(200))), Some((100, ServerSaid::Status(401)))] {
                        for (client, entry) in [(reused_pid, 7), (other, 7), (me, 8)] {
                            let rec = record(client, entry, forced, verified);
                            assert_eq!(
                                decide(&ask, Some(&rec), now()),
                                Action::Serve(Why::FirstAsk),
                                "{family:?} {rec:?}: a reused pid, another client or a newer entry is a first ask"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_re_ask_is_bounded_to_one_forced_refresh_per_interval_for_every_client() {
        let me = Client { pid: 10, start: 5 };
        for family in FAMILIES {
            for can_verify in [false, true] {
                let ask = Ask { client: me, family, can_verify, entry: 7 };
                for ago in [0, 10, HEAL_INTERVAL.as_secs() - 1] {
                    let rec = record(me, 7, Some(ago), None);
                    assert_eq!(decide(&ask, Some(&rec), now()), Action::Serve(Why::Bounded { family, secs_ago: ago }));
                }
                // A clock that went back is not "recent".
                let future = record(me, 7, Some(-5), None);
                assert_ne!(decide(&ask, Some(&future), now()), Action::Serve(Why::Bounded { family, secs_ago: -5 }));
            }
        }
    }

    #[test]
    fn client_go_asking_again_is_a_rejection_without_asking_the_server() {
        let me = Client { pid: 10, start: 5 };
        for can_verify in [false, true] {
            let ask = Ask { client: me, family: Family::ClientGo, can_verify, entry: 7 };
            for verified in [None, Some((1, ServerSaid::Status(200)))] {
                for forced in [None, Some(HEAL_INTERVAL.as_secs()), Some(3600)] {
                    let rec = record(me, 7, forced, verified);
                    assert_eq!(decide(&ask, Some(&rec), now()), Action::Refresh(Why::ClientGoReAsk));
                }
            }
        }
    }

    #[test]
    fn other_clients_asking_again_are_verified_at_most_once_per_interval_and_served_when_kcc_cannot_ask() {
        let me = Client { pid: 10, start: 5 };
        for family in [Family::Python, Family::NoExecInfo, Family::Other] {
            let verify = Ask { client: me, family, can_verify: true, entry: 7 };
            let blind = Ask { can_verify: false, ..verify };
            for forced in [None, Some(HEAL_INTERVAL.as_secs()), Some(3600)] {
                let rec = record(me, 7, forced, None);
                assert_eq!(decide(&verify, Some(&rec), now()), Action::Verify);
                assert_eq!(decide(&blind, Some(&rec), now()), Action::Serve(Why::NoCluster { family }));
                for said in [ServerSaid::Status(200), ServerSaid::Status(403), ServerSaid::NoAnswer] {
                    let checked = record(me, 7, forced, Some((5, said)));
                    let served = Action::Serve(Why::RecentlyVerified { family, said, secs_ago: 5 });
                    assert_eq!(decide(&verify, Some(&checked), now()), served, "no probe on every call");
                    assert_eq!(decide(&blind, Some(&checked), now()), served);
                    let stale = record(me, 7, forced, Some((HEAL_INTERVAL.as_secs(), said)));
                    assert_eq!(decide(&verify, Some(&stale), now()), Action::Verify);
                }
            }
        }
    }

    #[test]
    fn only_a_401_from_the_server_is_a_rejection() {
        for family in FAMILIES {
            assert_eq!(after_verify(family, ServerSaid::Status(401)), Action::Refresh(Why::ServerRejected { family }));
            for said in [200, 403, 404, 500, 503].map(ServerSaid::Status).into_iter().chain([ServerSaid::NoAnswer]) {
                assert_eq!(after_verify(family, said), Action::Serve(Why::ServerDidNotReject { family, said }));
            }
        }
    }

    #[test]
    fn every_explanation_names_the_client_and_never_a_secret() {
        let whys = [
            Why::Bounded { family: Family::Python, secs_ago: 3 },
            Why::ClientGoReAsk,
            Why::RecentlyVerified { family: Family::NoExecInfo, said: ServerSaid::Status(200), secs_ago: 4 },
            Why::NoCluster { family: Family::Other },
            Why::ServerRejected { family: Family::Python },
            Why::ServerDidNotReject { family: Family::Python, said: ServerSaid::NoAnswer },
        ];
        for why in whys {
            let text = why.to_string();
            assert!(["client-go", "python", "no-exec-info", "other"].iter().any(|f| text.contains(f)), "{text}");
            assert!(text.contains("serving") || text.contains("running the plugin"), "{text}");
        }
        assert!(Why::ServerRejected { family: Family::Python }.to_string().contains("HTTP 401"));
    }
}
