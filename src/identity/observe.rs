//! Reading the identity sources a [`Plan`] names: which files, what part
//! of each is hashed, and the words that describe the identity.
//!
//! What is hashed is chosen so that ordinary token refreshes by the same
//! identity do not change it: gcloud's `credentials.db`/`access_tokens.db`
//! and the token files themselves are never read, only the configuration
//! that says which account is used; of the AWS files only the sections of
//! the profile in use (and its `source_profile` chain); of the SSO cache
//! only the file names (a refresh rewrites a file, a logout removes it); of
//! `azureProfile.json` only the default subscription, tenant and user.
//!
//! Every file is recorded with its `(dev, inode, size, mtime ns)`: a hit
//! whose files all stat the same reuses the recorded digests (one `stat`
//! per file, no read, no hash of content). A missing or unreadable file is
//! a stable value ("absent"), never an error.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::plan::{Plan, Tool};

/// One file's part in an identity, as recorded in the cached credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The path.
    pub p: String,
    /// Which part of it counts (see [`Part`]), e.g. `ini:profile prod`.
    pub k: String,
    /// `[dev, inode, size, mtime ns]` when it was read; zeros: absent.
    pub m: [u64; 4],
    /// 128 bits of SHA-256 of the part, hex; `absent` when there is none.
    pub h: String,
}

/// When a source is read on a miss: before the plugin runs (what the plugin
/// will use), or after (caches the plugin itself writes: a first login must
/// not look like a switch on the next call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Sources the plugin only reads.
    Before,
    /// Token caches the plugin writes.
    After,
    /// Both, in that order (a hit that has to look again).
    All,
}

impl Phase {
    fn wants(self, after: bool) -> bool {
        match self {
            Phase::Before => !after,
            Phase::After => after,
            Phase::All => true,
        }
    }
}

/// What one observation found: the records and the words describing them.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Every file read, in a fixed order.
    pub files: Vec<FileRecord>,
    /// One description per tool (no secret, no file content but names).
    pub words: Vec<String>,
}

/// `(dev, inode, size, mtime ns)` of `path`; zeros when it cannot be stat'ed.
pub fn stat(path: &Path) -> [u64; 4] {
    let Ok(m) = std::fs::metadata(path) else { return [0; 4] };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mtime = (m.mtime() as u64).wrapping_mul(1_000_000_000).wrapping_add(m.mtime_nsec() as u64);
        [m.dev(), m.ino(), m.size(), mtime]
    }
    #[cfg(not(unix))]
    {
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        [1, 0, m.len(), mtime]
    }
}

fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Which part of a file counts.
enum Part<'a> {
    /// All of it.
    Whole,
    /// These INI sections, by name (AWS files).
    Sections(&'a [String]),
    /// A gcloud configuration: `[core] account` and the `[auth]` section.
    Gcloud,
    /// `azureProfile.json`: the default subscription, its tenant and user.
    Azure,
    /// A directory's file names (the AWS SSO cache).
    Names,
    /// A directory's entries with their inode, size and mtime (a plugin's
    /// token cache: a logout removes it, a new login writes new files).
    Entries,
}

impl Part<'_> {
    fn tag(&self) -> String {
        match self {
            Part::Whole => "whole".into(),
            Part::Sections(s) => format!("ini:{}", s.join(",")),
            Part::Gcloud => "gcloud".into(),
            Part::Azure => "azure".into(),
            Part::Names => "names".into(),
            Part::Entries => "entries".into(),
        }
    }
}

/// One INI section's `(key, value)` pairs.
type Pairs = Vec<(String, String)>;
/// One section to hash: its name and its pairs, if present.
type Named<'a> = (&'a str, Option<&'a [(String, String)]>);

/// An INI file as `(section, [(key, value)])`, in order; comments and
/// blank lines dropped, keys and values trimmed (botocore's and gcloud's
/// parsers both trim).
pub fn ini(text: &str) -> Vec<(String, Pairs)> {
    let mut out: Vec<(String, Pairs)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push((name.trim().to_string(), Vec::new()));
        } else if let Some(section) = out.last_mut() {
            let (k, v) = line.split_once(['=', ':']).unwrap_or((line, ""));
            section.1.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn section<'a>(ini: &'a [(String, Pairs)], name: &str) -> Option<&'a [(String, String)]> {
    ini.iter().rev().find(|(n, _)| n == name).map(|(_, kv)| kv.as_slice())
}

fn value<'a>(kv: Option<&'a [(String, String)]>, key: &str) -> Option<&'a str> {
    kv?.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

fn canonical(parts: &[Named<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kv) in parts {
        out.extend_from_slice(format!("[{name}]\n").as_bytes());
        for (k, v) in kv.unwrap_or(&[]) {
            out.extend_from_slice(format!("{k}={v}\n").as_bytes());
        }
    }
    out
}

/// The default subscription of `azureProfile.json` (the Azure CLI writes it
/// with a UTF-8 byte-order mark): `(canonical bytes, description)`.
pub fn azure_default(bytes: &[u8]) -> Option<(Vec<u8>, String)> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let profile: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let sub = profile.get("subscriptions")?.as_array()?.iter().find(|s| s.get("isDefault") == Some(&true.into()))?;
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).unwrap_or("").to_string();
    let (id, name, tenant) = (text(sub.get("id")), text(sub.get("name")), text(sub.get("tenantId")));
    let user = sub.get("user");
    let (user_name, user_type) = (text(user.and_then(|u| u.get("name"))), text(user.and_then(|u| u.get("type"))));
    let canon = format!("{id}\n{tenant}\n{user_name}\n{user_type}\n").into_bytes();
    Some((canon, format!("Azure subscription '{name}' ({id}), user {user_name}")))
}

fn listing(dir: &Path, with_meta: bool) -> Option<(Vec<u8>, usize)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if with_meta { format!("{name}\0{:?}", stat(&e.path())) } else { name }
        })
        .collect();
    names.sort();
    let n = names.len();
    Some((names.join("\n").into_bytes(), n))
}

/// Reads `path`'s `part`, records it, and returns what it read (for words).
fn record(files: &mut Vec<FileRecord>, path: &Path, part: Part<'_>) -> Option<Vec<u8>> {
    let m = stat(path);
    let (hashed, raw) = match part {
        Part::Names | Part::Entries => match listing(path, matches!(part, Part::Entries)) {
            Some((bytes, n)) => (Some(bytes), Some(n.to_string().into_bytes())),
            None => (None, None),
        },
        _ => match std::fs::read(path) {
            Err(_) => (None, None),
            Ok(bytes) => {
                let hashed = match &part {
                    Part::Whole => bytes.clone(),
                    Part::Sections(names) => {
                        let parsed = ini(&String::from_utf8_lossy(&bytes));
                        let parts: Vec<Named<'_>> = names.iter().map(|n| (n.as_str(), section(&parsed, n))).collect();
                        canonical(&parts)
                    }
                    Part::Gcloud => {
                        let parsed = ini(&String::from_utf8_lossy(&bytes));
                        let account = value(section(&parsed, "core"), "account").unwrap_or("");
                        let mut out = format!("account={account}\n").into_bytes();
                        out.extend(canonical(&[("auth", section(&parsed, "auth"))]));
                        out
                    }
                    Part::Azure => azure_default(&bytes).map(|(c, _)| c).unwrap_or_default(),
                    Part::Names | Part::Entries => unreachable!("handled above"),
                };
                (Some(hashed), Some(bytes))
            }
        },
    };
    files.push(FileRecord {
        p: path.to_string_lossy().into_owned(),
        k: part.tag(),
        m,
        h: hashed.as_deref().map_or_else(|| "absent".into(), digest),
    });
    raw
}

/// The profile chain of `profile` in the AWS config (`source_profile`,
/// at most 5 deep) and the config sections that go with it.
fn aws_chain(config: &[(String, Pairs)], profile: &str) -> (Vec<String>, Vec<String>, bool) {
    let (mut profiles, mut sections, mut sso) = (Vec::new(), Vec::new(), false);
    let mut next = Some(profile.to_string());
    while let Some(p) = next.take() {
        if profiles.contains(&p) || profiles.len() >= 5 {
            break;
        }
        let name = if p == "default" && section(config, "profile default").is_none() {
            "default".to_string()
        } else {
            format!("profile {p}")
        };
        let kv = section(config, &name);
        sections.push(name);
        if let Some(session) = value(kv, "sso_session") {
            sections.push(format!("sso-session {session}"));
            sso = true;
        }
        sso |= value(kv, "sso_start_url").is_some();
        next = value(kv, "source_profile").map(String::from);
        profiles.push(p);
    }
    (profiles, sections, sso)
}

fn last4(key_id: &str) -> String {
    let chars: Vec<char> = key_id.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// Reads what `plan` names, for `phase`.
pub fn observe(plan: &Plan, phase: Phase) -> Found {
    let mut found = Found::default();
    let files = &mut found.files;
    for tool in &plan.tools {
        match tool {
            Tool::Gcloud { dir, active } if phase.wants(false) => {
                let name = match active {
                    Some(name) => name.clone(),
                    None => record(files, &dir.join("active_config"), Part::Whole)
                        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| "default".into()),
                };
                let config = record(files, &dir.join("configurations").join(format!("config_{name}")), Part::Gcloud);
                let parsed = config.map(|b| ini(&String::from_utf8_lossy(&b))).unwrap_or_default();
                let account = plan
                    .input("CLOUDSDK_CORE_ACCOUNT")
                    .or_else(|| value(section(&parsed, "core"), "account").map(String::from));
                let mut words = format!("gcloud configuration {name}");
                match account {
                    Some(a) => words.push_str(&format!(" (account {a})")),
                    None => {
                        if let Some(f) = value(section(&parsed, "auth"), "access_token_file") {
                            words.push_str(&format!(" (access token file {f})"));
                        }
                    }
                }
                found.words.push(words);
            }
            Tool::Aws { profile, config, credentials, sso_cache, key_id } if phase.wants(false) => {
                let parsed = std::fs::read(config).map(|b| ini(&String::from_utf8_lossy(&b))).unwrap_or_default();
                let (profiles, sections, sso) = aws_chain(&parsed, profile);
                record(files, config, Part::Sections(&sections));
                record(files, credentials, Part::Sections(&profiles));
                if sso {
                    record(files, sso_cache, Part::Names);
                }
                let mut words = format!("AWS profile {profile}");
                if let Some(id) = key_id {
                    words.push_str(&format!(" (exported access key …{})", last4(id)));
                }
                if let Some(role) = plan.input("AWS_ROLE_ARN") {
                    words.push_str(&format!(" (role {role})"));
                }
                found.words.push(words);
            }
            Tool::Azure { config_dir, .. } if phase.wants(false) => {
                let profile = record(files, &config_dir.join("azureProfile.json"), Part::Azure);
                found.words.push(
                    profile
                        .and_then(|b| azure_default(&b))
                        .map(|(_, words)| words)
                        .unwrap_or_else(|| format!("Azure: no default subscription in {}", config_dir.display())),
                );
            }
            _ => {}
        }
    }
    if phase.wants(false) && !plan.files.is_empty() {
        for path in &plan.files {
            record(files, path, Part::Whole);
        }
        let shown: Vec<String> = plan.files.iter().map(|p| p.display().to_string()).collect();
        found.words.push(format!("identity files {}", shown.join(", ")));
    }
    if phase.wants(true) {
        for tool in &plan.tools {
            let (who, dir) = match tool {
                Tool::Azure { token_cache, .. } => ("kubelogin", token_cache),
                Tool::Oidc { token_cache } => ("oidc-login", token_cache),
                _ => continue,
            };
            let n = record(files, dir, Part::Entries).map(|b| String::from_utf8_lossy(&b).into_owned());
            found.words.push(match n {
                Some(n) => format!("{who} token cache {} ({n} entries)", dir.display()),
                None => format!("{who} token cache {} (none)", dir.display()),
            });
        }
    }
    found
}

/// The sources a plan names, in words for the index and `kcc doctor`
/// (names only, never values).
pub fn sources(plan: &Plan, files: &[FileRecord]) -> Vec<String> {
    let mut out: Vec<String> = plan.inputs.iter().map(|(n, _)| format!("env {n}")).collect();
    out.extend(files.iter().map(|f| format!("file {} ({})", f.p, f.k)));
    out
}

/// Paths of a plan's files, for tests.
pub fn paths(files: &[FileRecord]) -> Vec<PathBuf> {
    files.iter().map(|f| PathBuf::from(&f.p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_sections_follow_source_profile() {
        let cfg = ini(
            "[default]\nregion=x\n[profile prod]\nrole_arn = r\nsource_profile = base\n[profile base]\nsso_session = corp\n[sso-session corp]\nsso_start_url=u\n",
        );
        let (profiles, sections, sso) = aws_chain(&cfg, "prod");
        assert_eq!(profiles, ["prod", "base"]);
        assert_eq!(sections, ["profile prod", "profile base", "sso-session corp"]);
        assert!(sso);
        assert_eq!(aws_chain(&cfg, "default").1, ["default"]);
    }

    #[test]
    fn azure_default_subscription_is_read_through_a_bom() {
        let text = "\u{feff}{\"subscriptions\":[{\"id\":\"1\",\"name\":\"a\",\"isDefault\":false,\"user\":{\"name\":\"u\"}},{\"id\":\"2\",\"name\":\"b\",\"isDefault\":true,\"tenantId\":\"t\",\"user\":{\"name\":\"v@x\",\"type\":\"user\"}}]}";
        let (_, words) = azure_default(text.as_bytes()).unwrap();
        assert_eq!(words, "Azure subscription 'b' (2), user v@x");
    }

    #[test]
    fn a_missing_file_is_a_stable_absent_record() {
        let mut files = Vec::new();
        record(&mut files, Path::new("/nonexistent/kcc/x"), Part::Whole);
        record(&mut files, Path::new("/nonexistent/kcc/x"), Part::Whole);
        assert_eq!(files[0], files[1]);
        assert_eq!(files[0].h, "absent");
        assert_eq!(files[0].m, [0; 4]);
    }
}
