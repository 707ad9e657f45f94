//! Never the previous identity: a cached credential follows identity
//! switches made outside the kubeconfig (issue 18).
//!
//! `gcloud config configurations activate bob`, `az account set`, `aws
//! configure` rewriting a profile, exported assumed-role credentials in CI,
//! `kubectl oidc-login clean`: none of them changes the kubeconfig, the
//! arguments or the key's environment, yet the plugin would now print a
//! credential of another identity. So every entry records a *fingerprint*
//! of the identity sources that applied when it was stored, and a hit whose
//! current fingerprint differs is a miss ("identity changed: … → …").
//!
//! - [`plan`] decides from the command line and the environment which
//!   sources apply (no I/O);
//! - [`observe`] reads them (files: only the part that names the identity,
//!   so token refreshes by the same identity change nothing);
//! - this module records the result in the stored credential as a last
//!   JSON member `"kccIdentity"` (stripped before a hit is printed; the Go
//!   kcc ignores unknown members, and entries without it — the Go kcc's —
//!   are served as before) and checks it on a hit.
//!
//! The hit path is the product: it stats each recorded file and, when all
//! are unchanged, hashes only the environment inputs with the recorded
//! digests (one SHA-256 over a few hundred bytes). Only a changed stat
//! reads and re-hashes the files, and a touched but identical file is still
//! a hit.

pub mod observe;
pub mod plan;

use std::ffi::OsStr;

use serde::{Deserialize, Serialize};

pub use observe::{FileRecord, Phase};
pub use plan::{Plan, Settings};

/// The JSON member that carries the record, always the credential's last.
pub const MEMBER: &str = "kccIdentity";
const MARK: &str = ",\"kccIdentity\":";

/// What an entry records about its identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// Format version.
    pub v: u32,
    /// The fingerprint (128 bits of SHA-256, hex).
    pub fp: String,
    /// The quick check of the hit path: FNV-1a (64 bits, hex) of the
    /// environment inputs alone (the files are checked by their stat). Not
    /// a secret's stand-in anywhere else: the index carries `fp` only.
    pub q: String,
    /// The identity in words (no secret).
    pub d: String,
    /// The files read, with their stat and digest.
    pub files: Vec<FileRecord>,
}

/// An identity observed now.
#[derive(Debug, Clone)]
pub struct Observation {
    /// What is recorded.
    pub recorded: Recorded,
    /// The sources, in words (names, never values), for the index.
    pub sources: Vec<String>,
}

/// The fingerprint of `inputs` and `files`: a length-prefixed SHA-256.
pub fn fingerprint(plan: &Plan, files: &[FileRecord]) -> String {
    let mut h = crate::key::TaggedDigest::new(b"kcc-identity-v1");
    let mut field = |tag: u8, value: Option<&[u8]>| h.field(tag, value);
    for (name, value) in &plan.inputs {
        field(b'E', Some(name.as_bytes()));
        field(b'e', value.as_deref().map(os_bytes).as_deref());
    }
    for f in files {
        field(b'F', Some(f.p.as_bytes()));
        field(b'K', Some(f.k.as_bytes()));
        field(b'H', Some(f.h.as_bytes()));
    }
    h.id()
}

fn os_bytes(s: &OsStr) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}

/// FNV-1a over the environment inputs (length-prefixed), in hex: what a hit
/// compares instead of a SHA-256 (a few thousand instructions fewer; a
/// mismatch, or any changed file, falls back to the full fingerprint).
pub fn quick(plan: &Plan) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (name, value) in &plan.inputs {
        eat(name.as_bytes());
        match value {
            None => eat(&[0]),
            Some(v) => {
                let v = v.as_encoded_bytes();
                eat(&[1]);
                eat(&(v.len() as u32).to_le_bytes());
                eat(v);
            }
        }
    }
    hex(&h.to_be_bytes())
}

/// Lower-case hex without `format!` per byte.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

fn finish(plan: &Plan, found: observe::Found) -> Observation {
    let fp = fingerprint(plan, &found.files);
    let sources = observe::sources(plan, &found.files);
    let d = if found.words.is_empty() { "no identity source".into() } else { found.words.join("; ") };
    Observation { recorded: Recorded { v: 1, fp, q: quick(plan), d, files: found.files }, sources }
}

/// Everything `plan` names, read now (a hit that has to look again,
/// `kcc doctor`, `kcc clear --identity-changed`).
pub fn observe_now(plan: &Plan) -> Observation {
    finish(plan, observe::observe(plan, Phase::All))
}

/// A miss in two steps: [`Pending::before`] reads what the plugin will use
/// before it runs, [`Pending::after`] the caches it writes.
#[derive(Debug)]
pub struct Pending(observe::Found);

impl Pending {
    /// Reads the sources the plugin only reads.
    pub fn before(plan: &Plan) -> Pending {
        Pending(observe::observe(plan, Phase::Before))
    }

    /// Adds the plugin's own caches, read now that it has run.
    pub fn after(mut self, plan: &Plan) -> Observation {
        let after = observe::observe(plan, Phase::After);
        self.0.files.extend(after.files);
        self.0.words.extend(after.words);
        finish(plan, self.0)
    }
}

/// What a hit's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The identity is the recorded one (or nothing applies).
    Same,
    /// The entry records none (the Go kcc's, or written before kcc
    /// recorded identities): served as before.
    NotRecorded,
    /// Another identity: the entry must not be served.
    Changed {
        /// The recorded identity, in words.
        from: String,
        /// The current one.
        to: String,
    },
}

/// Splits a stored credential into what kubectl gets and the record:
/// `{…,"kccIdentity":{…}}` → (`{…`, `{…}`). None: no record.
pub fn split(json: &str) -> Option<(&str, &str)> {
    let end = json.trim_end();
    let inner = end.strip_suffix('}')?;
    let at = inner.rfind(MARK)?;
    Some((&json[..at], &inner[at + MARK.len()..]))
}

/// The bytes a hit prints: the stored credential without the record.
pub fn served(json: &str) -> std::borrow::Cow<'_, str> {
    match split(json) {
        Some((body, _)) => std::borrow::Cow::Owned(format!("{body}}}")),
        None => std::borrow::Cow::Borrowed(json),
    }
}

/// Writes the stored credential's bytes kubectl should get to `out`, with
/// no allocation (the hit path).
pub fn write_served(json: &str, out: &mut impl std::io::Write) -> std::io::Result<()> {
    match split(json) {
        Some((body, _)) => {
            out.write_all(body.as_bytes())?;
            out.write_all(b"}")
        }
        None => out.write_all(json.as_bytes()),
    }
}

/// Appends the record to the credential JSON `json` (an object kcc has
/// just serialised, with no `kccIdentity` member of its own).
pub fn attach(json: &str, recorded: &Recorded) -> String {
    let Some(body) = json.trim_end().strip_suffix('}') else { return json.to_string() };
    let record = serde_json::to_string(recorded).unwrap_or_default();
    let sep = if body.trim_end().ends_with('{') { "" } else { "," };
    // `MARK` begins with the comma; an empty object gets none.
    let mark = if sep.is_empty() { &MARK[1..] } else { MARK };
    format!("{body}{mark}{record}}}")
}

/// What the hit path reads of a record: borrowed, no digest, no words.
#[derive(Deserialize)]
struct Quick<'a> {
    #[serde(borrow)]
    q: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    files: Vec<QuickFile<'a>>,
}

#[derive(Deserialize)]
struct QuickFile<'a> {
    #[serde(borrow)]
    p: std::borrow::Cow<'a, str>,
    m: [u64; 4],
}

/// Checks the stored credential `json` against the current identity: the
/// quick check first (a `stat` per recorded file and an FNV-1a of the
/// environment inputs), the full fingerprint only when that differs.
pub fn check(plan: &Plan, json: &str) -> Verdict {
    let Some((_, raw)) = split(json) else {
        return if plan.is_empty() { Verdict::Same } else { Verdict::NotRecorded };
    };
    if let Ok(rec) = serde_json::from_str::<Quick<'_>>(raw)
        && rec.files.iter().all(|f| observe::stat(std::path::Path::new(f.p.as_ref())) == f.m)
        && rec.q == quick(plan)
    {
        return Verdict::Same;
    }
    let Ok(recorded) = serde_json::from_str::<Recorded>(raw) else {
        return Verdict::Changed { from: "an unreadable identity record".into(), to: observe_now(plan).recorded.d };
    };
    verify(plan, &recorded)
}

/// The full comparison of a record with what the sources hold now.
pub fn verify(plan: &Plan, recorded: &Recorded) -> Verdict {
    let now = observe_now(plan);
    if now.recorded.fp == recorded.fp {
        Verdict::Same
    } else {
        Verdict::Changed { from: recorded.d.clone(), to: now.recorded.d }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Recorded {
        Recorded { v: 1, fp: "00".into(), q: "11".into(), d: "x".into(), files: vec![] }
    }

    #[test]
    fn the_record_is_attached_last_and_stripped_exactly() {
        let json = r#"{"kind":"ExecCredential","status":{"token":"a,\"kccIdentity\":b"}}"#;
        let stored = attach(json, &rec());
        assert!(stored.ends_with(r#","kccIdentity":{"v":1,"fp":"00","q":"11","d":"x","files":[]}}"#), "{stored}");
        assert_eq!(served(&stored), json);
        assert_eq!(served(json), json, "no record: unchanged");
        let (_, raw) = split(&stored).unwrap();
        assert_eq!(serde_json::from_str::<Recorded>(raw).unwrap(), rec());
        let mut out = Vec::new();
        write_served(&stored, &mut out).unwrap();
        assert_eq!(out, json.as_bytes());
    }

    #[test]
    fn an_unchanged_identity_is_the_same_and_a_changed_input_is_not() {
        let env = |v: &'static str| {
            move |n: &str| {
                (n == "AWS_ACCESS_KEY_ID").then(|| v.into()).or_else(|| (n == "HOME").then(|| "/nonexistent".into()))
            }
        };
        let settings = Settings { builtins: true, files: vec![] };
        let a = plan::plan(OsStr::new("aws"), &[], env("AKIAONE"), &settings);
        let b = plan::plan(OsStr::new("aws"), &[], env("AKIATWO"), &settings);
        let stored = attach(r#"{"kind":"ExecCredential"}"#, &observe_now(&a).recorded);
        assert_eq!(check(&a, &stored), Verdict::Same);
        match check(&b, &stored) {
            Verdict::Changed { from, to } => {
                assert!(from.contains("…AONE") && to.contains("…ATWO"), "{from} / {to}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(check(&a, r#"{"kind":"ExecCredential"}"#), Verdict::NotRecorded);
    }
}
