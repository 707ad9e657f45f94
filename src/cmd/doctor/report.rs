//! What `kcc doctor` found, as data: printed as text, or as JSON with
//! `--json`.
//!
//! # JSON schema (`schemaVersion` 1)
//!
//! Stable: fields are only ever added; a removal or a change of meaning bumps
//! `schemaVersion`. Absent values are `null`, never missing. Times are RFC 3339
//! UTC. No field ever holds a token, certificate, key or exec env value (only
//! `KUBE_CREDENTIAL_CACHE_USER`, which is a user name).
//!
//! ```text
//! {
//!   "schemaVersion": 1,
//!   "version": "kcc 0.1.0 (git …)",
//!   "healthy": bool,                       // no finding of severity "problem"
//!   "settings": [{ "name", "value": str|null (as set), "default", "source": "env"|"default", "valid": bool }],
//!   "platform": { "os", "healing": bool, "healingText", "refreshAheadText" },
//!   "backend": { "setting": "auto"|"file"|"keyring"|"kernel", "chosen": "file"|"keyring"|"kernel"|null, "reason",
//!                "probe": null | { "reachable": bool, "millis": number, "reason" },
//!                "kernel": null | { "usable": bool, "reason", "keyring", "entries": int|null,
//!                                   "quota": null | { "keys", "maxKeys", "bytes", "maxBytes" } } },
//!   "store": { "path", "exists", "symlink", "mode": "0600"|null, "ownerUid": int|null,
//!              "ownedByYou": bool|null, "dir": { "path", "exists", "mode" }, "index",
//!              "entries": int, "corrupt": str|null },
//!   "kubeconfig": {
//!     "files": [{ "path", "source": "flag"|"env"|"default", "status": "loaded"|"missing"|"invalid", "error" }],
//!     "currentContext": str|null, "context": str|null (the one keys are computed for),
//!     "kuberc": null | { "path", "policy", "allowlist": [str] },
//!     "users": [{ "name", "file", "command", "wrapped": bool, "wrapper": "kcc-cache"|"kcc cache"|"kubectl-kcc cache"|null,
//!                 "plugin": str|null, "pluginPath": str|null, "wrapperPath": str|null,
//!                 "apiVersion", "provideClusterInfo": bool, "interactiveMode": str|null,
//!                 "cacheUser": str|null,
//!                 "contexts": [{ "name", "server": str|null, "selected": bool,
//!                                "key": str|null, "next": Decision|null }] }]
//!   },
//!   "entries": [{ "key", "format": "kcc"|"go", "backend", "orphaned": bool, "user", "server", "apiVersion",
//!                 "expiry", "secondsLeft": int|null, "expirySource": "reported"|"default-ttl"|null,
//!                 "next": Decision,
//!                 "background": null | { "at", "result": "started"|"ok"|"skipped"|"failed", "detail",
//!                                        "nextAllowed", "text" },       // refresh ahead
//!                 "forcedRefresh": null | { "at", "clientPid": int, "text" },   // healing
//!                 "healing": null | str,      // the last client served, the server's last answer
//!                 "identity": null | { "recorded", "current": str|null, "matches": bool|null,
//!                                      "sources": [str], "text" } }],   // see crate::identity
//!   "findings": [{ "severity": "problem"|"warning", "code", "subject": str|null, "message", "fix" }]
//! }
//! Decision = { "kind": "hit"|"refresh"|"expired"|"miss"|"corrupt"|"api-mismatch"|"unreadable"|"never-served",
//!              "defaultTtl": bool, "text": "hit: expires … (in …)" }
//! ```
//!
//! Finding codes: `invalid-setting`, `unknown-setting`, `keyring-unavailable`,
//! `store-permissions`, `store-owner`, `store-symlink`, `store-corrupt`,
//! `kubeconfig-invalid`, `kubeconfig-missing`, `context-missing`,
//! `wrapper-not-found`, `plugin-not-found`, `wrapper-without-plugin`,
//! `relative-plugin-path`, `interactive-always`, `shared-key`,
//! `kuberc-invalid`, `kuberc-blocks-kcc`, `default-ttl`, `go-leftovers`,
//! `not-wrapped`, `failure-backoff` (a key whose plugin kcc does not run for
//! non-interactive requests now; see `crate::backoff`).

use std::fmt::Write as _;

use serde::Serialize;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Version of this layout.
    pub schema_version: u32,
    /// `kcc --version`.
    pub version: String,
    /// No problem found.
    pub healthy: bool,
    /// Every `KUBE_CREDENTIAL_CACHE_*` setting.
    pub settings: Vec<Setting>,
    /// What this platform does with healing and refresh ahead.
    pub platform: PlatformReport,
    /// The backend `kcc cache` would use.
    pub backend: BackendReport,
    /// The file store.
    pub store: StoreReport,
    /// Kubeconfig files and their exec users.
    pub kubeconfig: KubeconfigReport,
    /// Every cached entry.
    pub entries: Vec<EntryReport>,
    /// Problems and warnings, each with a fix.
    pub findings: Vec<Finding>,
}

/// The features that depend on the operating system.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformReport {
    /// `linux`, `macos`, `windows`, … (Rust's `std::env::consts::OS`).
    pub os: String,
    /// Whether healing after a rejected credential can work here.
    pub healing: bool,
    /// What healing does here, in words.
    pub healing_text: String,
    /// What refresh ahead does here, in words.
    pub refresh_ahead_text: String,
}

/// One setting.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Setting {
    /// The variable.
    pub name: String,
    /// Its value as set (None: unset).
    pub value: Option<String>,
    /// The default, as documented.
    pub default: String,
    /// `env` or `default`.
    pub source: &'static str,
    /// False when kcc rejects the value (the default is used instead).
    pub valid: bool,
}

/// Which backend and why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendReport {
    /// `KUBE_CREDENTIAL_CACHE_BACKEND` in force.
    pub setting: String,
    /// The backend `kcc cache` would use (None: it would fail).
    pub chosen: Option<String>,
    /// Why, in the debug output's words.
    pub reason: String,
    /// The keyring probe (None until the keyring backend exists, or when not probed).
    pub probe: Option<ProbeReport>,
    /// The kernel keyring (Linux, when it was probed).
    pub kernel: Option<KernelReport>,
}

/// The kernel keyring as `kcc doctor` sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelReport {
    /// Whether its probe succeeded.
    pub usable: bool,
    /// The probe's words.
    pub reason: String,
    /// Which keyring holds kcc's keys.
    pub keyring: String,
    /// kcc keys in it (None: cannot be listed).
    pub entries: Option<usize>,
    /// This user's key quota, from `/proc/key-users`.
    pub quota: Option<QuotaReport>,
}

/// Keys and bytes used and allowed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaReport {
    /// Keys held.
    pub keys: u64,
    /// Keys allowed.
    pub max_keys: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Bytes allowed.
    pub max_bytes: u64,
}

/// A bounded keyring probe: filled by the keyring backend.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeReport {
    /// Whether a secret store answered.
    pub reachable: bool,
    /// How long the probe took.
    pub millis: f64,
    /// What it found.
    pub reason: String,
}

/// The file store and its permissions.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreReport {
    /// The cache file.
    pub path: String,
    /// Whether it exists.
    pub exists: bool,
    /// Whether a symlink sits at the path (kcc refuses to follow it).
    pub symlink: bool,
    /// Its permission bits, octal.
    pub mode: Option<String>,
    /// Its owner.
    pub owner_uid: Option<u32>,
    /// Whether that is the user running doctor.
    pub owned_by_you: Option<bool>,
    /// Its directory.
    pub dir: DirReport,
    /// The non-secret index beside it.
    pub index: String,
    /// How many entries it holds (file and index-only).
    pub entries: usize,
    /// Why the file cannot be parsed, if so.
    pub corrupt: Option<String>,
}

/// The store's directory.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirReport {
    /// Its path.
    pub path: String,
    /// Whether it exists.
    pub exists: bool,
    /// Its permission bits, octal.
    pub mode: Option<String>,
}

/// The kubeconfig side.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeconfigReport {
    /// Files in kubectl's load order.
    pub files: Vec<FileReport>,
    /// The merged `current-context`.
    pub current_context: Option<String>,
    /// The context keys are computed for (`--context`, else current).
    pub context: Option<String>,
    /// kubectl's credential plugin policy, when a kuberc exists.
    pub kuberc: Option<KubercReport>,
    /// Every user with an exec section.
    pub users: Vec<UserReport>,
}

/// One kubeconfig file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    /// Its path.
    pub path: String,
    /// `flag`, `env` or `default`.
    pub source: &'static str,
    /// `loaded`, `missing` or `invalid`.
    pub status: &'static str,
    /// Why it is invalid.
    pub error: Option<String>,
}

/// The kuberc credential plugin policy.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubercReport {
    /// The file.
    pub path: String,
    /// `AllowAll`, `DenyAll` or `Allowlist`.
    pub policy: String,
    /// Allowed plugin names.
    pub allowlist: Vec<String>,
}

/// One exec user.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserReport {
    /// The user's name.
    pub name: String,
    /// The kubeconfig that defines it.
    pub file: String,
    /// `exec.command`.
    pub command: String,
    /// Whether kubectl runs kcc for it.
    pub wrapped: bool,
    /// `kcc-cache`, `kcc cache` or `kubectl-kcc cache` when wrapped.
    pub wrapper: Option<String>,
    /// The real plugin command (never its arguments: they may hold secrets).
    pub plugin: Option<String>,
    /// Where the plugin resolves (None: not found).
    pub plugin_path: Option<String>,
    /// Where the wrapper resolves when wrapped (None: not found or not wrapped).
    pub wrapper_path: Option<String>,
    /// `exec.apiVersion`.
    pub api_version: String,
    /// `exec.provideClusterInfo`.
    pub provide_cluster_info: bool,
    /// `exec.interactiveMode`.
    pub interactive_mode: Option<String>,
    /// `KUBE_CREDENTIAL_CACHE_USER` from the exec env.
    pub cache_user: Option<String>,
    /// Contexts using this user, with the key each would use.
    pub contexts: Vec<UserContext>,
}

/// A context of a user and its cache key.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserContext {
    /// The context.
    pub name: String,
    /// Its cluster's server.
    pub server: Option<String>,
    /// Whether this is the context doctor was asked about.
    pub selected: bool,
    /// The cache key a call in this context uses (None when not wrapped).
    pub key: Option<String>,
    /// What that call would do.
    pub next: Option<DecisionReport>,
}

/// A cache decision in words.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionReport {
    /// `hit`, `refresh`, `expired`, `miss`, `corrupt`, `api-mismatch`, `unreadable`, `never-served`.
    pub kind: &'static str,
    /// The expiry is a default TTL kcc assigned.
    pub default_ttl: bool,
    /// The diagnostics module's words.
    pub text: String,
}

/// One cached entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryReport {
    /// The key.
    pub key: String,
    /// `kcc` or `go` (written by the Go kcc).
    pub format: &'static str,
    /// `file`, `keyring` or `kernel`.
    pub backend: String,
    /// Found by enumerating its secret store, with no index entry (after
    /// the cache directory was deleted): `kcc clear` removes it.
    pub orphaned: bool,
    /// Its kubeconfig user, if known.
    pub user: Option<String>,
    /// Its server, if known.
    pub server: Option<String>,
    /// Its apiVersion.
    pub api_version: Option<String>,
    /// Its expiry.
    pub expiry: Option<String>,
    /// Seconds until then (negative: past).
    pub seconds_left: Option<i64>,
    /// `reported` or `default-ttl` (None: not in the index).
    pub expiry_source: Option<String>,
    /// What the next call for this key would do.
    pub next: DecisionReport,
    /// The last background (refresh-ahead) attempt, if any.
    pub background: Option<BackgroundReport>,
    /// The last forced refresh (healing after a rejected credential), if any.
    pub forced_refresh: Option<ForcedReport>,
    /// Healing's record of the last client served (its family, the
    /// server's last answer), if any.
    pub healing: Option<String>,
    /// The identity the entry was stored for, and whether it is current.
    pub identity: Option<IdentityReport>,
}

/// An entry's identity (see `crate::identity`): never a secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityReport {
    /// The identity it was stored for, in words.
    pub recorded: String,
    /// The identity its kubeconfig user's plugin would use now (None: no
    /// kubeconfig user has this key).
    pub current: Option<String>,
    /// Whether they are the same (None: unknown).
    pub matches: Option<bool>,
    /// The sources (variable names, files), never their values.
    pub sources: Vec<String>,
    /// In words.
    pub text: String,
}

/// The last background refresh of an entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundReport {
    /// When it started.
    pub at: String,
    /// `started`, `ok`, `skipped` or `failed`.
    pub result: String,
    /// Details (the plugin's failure, why it was skipped).
    pub detail: String,
    /// No background refresh starts before this.
    pub next_allowed: String,
    /// All of it in words.
    pub text: String,
}

/// The last forced refresh of an entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForcedReport {
    /// When.
    pub at: String,
    /// The client process that asked again.
    pub client_pid: u32,
    /// In words.
    pub text: String,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something fails or is unsafe; doctor exits 1.
    Problem,
    /// Worth knowing; doctor still exits 0.
    Warning,
}

/// A problem or warning and what to do about it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Problem or warning.
    pub severity: Severity,
    /// A stable identifier (see the module docs).
    pub code: &'static str,
    /// The variable, user, file or key concerned.
    pub subject: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub fix: String,
}

fn or_dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

impl Report {
    /// The human-readable layout.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "{}", self.version);

        let _ = writeln!(o, "\nsettings");
        let width = self.settings.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &self.settings {
            let (value, note) = match (&s.value, s.valid) {
                (Some(v), true) => (v.clone(), "from the environment".to_string()),
                (Some(v), false) => (v.clone(), format!("INVALID, default {} used", s.default)),
                (None, _) => (s.default.clone(), "default".to_string()),
            };
            let _ = writeln!(o, "  {:width$}  {value}  ({note})", s.name);
        }

        let _ = writeln!(o, "\nplatform ({})", self.platform.os);
        let _ = writeln!(o, "  healing: {}", self.platform.healing_text);
        let _ = writeln!(o, "  refresh ahead: {}", self.platform.refresh_ahead_text);

        let _ = writeln!(o, "\nbackend");
        let _ = writeln!(o, "  {} ({})", self.backend.chosen.as_deref().unwrap_or("none"), self.backend.reason);
        if let Some(p) = &self.backend.probe {
            let _ = writeln!(
                o,
                "  keyring probe: {} in {:.1} ms ({})",
                if p.reachable { "reachable" } else { "unreachable" },
                p.millis,
                p.reason
            );
        }
        if let Some(k) = &self.backend.kernel {
            let _ = writeln!(
                o,
                "  kernel keyring: {} ({}); {}",
                if k.usable { "usable" } else { "unusable" },
                k.reason,
                k.keyring
            );
            if let Some(n) = k.entries {
                let _ = writeln!(o, "  kernel keyring entries: {n}");
            }
            if let Some(q) = &k.quota {
                let _ = writeln!(
                    o,
                    "  kernel key quota: {} of {} keys, {} of {} bytes used ({} keys, {} bytes left)",
                    q.keys,
                    q.max_keys,
                    q.bytes,
                    q.max_bytes,
                    q.max_keys.saturating_sub(q.keys),
                    q.max_bytes.saturating_sub(q.bytes)
                );
            }
        }

        let st = &self.store;
        let _ = writeln!(o, "\nstore");
        if st.exists {
            let owner = match (st.owner_uid, st.owned_by_you) {
                (Some(uid), Some(true)) => format!("owner uid {uid} (you)"),
                (Some(uid), _) => format!("owner uid {uid} (NOT you)"),
                _ => "owner unknown".into(),
            };
            let _ = writeln!(
                o,
                "  file   {}  mode {}, {owner}, {} entr{}",
                st.path,
                or_dash(&st.mode),
                st.entries,
                if st.entries == 1 { "y" } else { "ies" }
            );
        } else {
            let _ = writeln!(o, "  file   {}  (not created yet)", st.path);
        }
        let _ = writeln!(
            o,
            "  dir    {}  {}",
            st.dir.path,
            if st.dir.exists { format!("mode {}", or_dash(&st.dir.mode)) } else { "(not created yet)".into() }
        );
        let _ = writeln!(o, "  index  {}", st.index);

        let k = &self.kubeconfig;
        let _ = writeln!(o, "\nkubeconfig");
        if k.files.is_empty() {
            let _ = writeln!(o, "  (no kubeconfig: HOME is not set)");
        }
        for f in &k.files {
            let _ = writeln!(
                o,
                "  {} ({}): {}{}",
                f.path,
                f.source,
                f.status,
                f.error.as_deref().map(|e| format!(" — {e}")).unwrap_or_default()
            );
        }
        let _ = writeln!(o, "  current context: {}", or_dash(&k.current_context));
        if k.context != k.current_context {
            let _ = writeln!(o, "  keys computed for context: {}", or_dash(&k.context));
        }
        if let Some(rc) = &k.kuberc {
            let _ = writeln!(
                o,
                "  kuberc {}: credentialPluginPolicy {}{}",
                rc.path,
                rc.policy,
                if rc.allowlist.is_empty() {
                    String::new()
                } else {
                    format!(", allowlist [{}]", rc.allowlist.join(", "))
                }
            );
        }
        if k.users.is_empty() {
            let _ = writeln!(o, "  no user with an exec credential plugin");
        }
        for u in &k.users {
            let _ = writeln!(o, "\n  user '{}'  ({})", u.name, u.file);
            match &u.wrapper {
                Some(w) => {
                    let _ = writeln!(
                        o,
                        "    wrapped by {w} → {}",
                        u.wrapper_path.as_deref().unwrap_or("NOT FOUND on PATH")
                    );
                }
                None => {
                    let _ = writeln!(o, "    not wrapped: kubectl runs '{}' itself on every call", u.command);
                }
            }
            if let Some(p) = &u.plugin {
                let _ = writeln!(o, "    plugin {p} → {}", u.plugin_path.as_deref().unwrap_or("NOT FOUND"));
            }
            let _ = writeln!(
                o,
                "    apiVersion {}, provideClusterInfo {}, interactiveMode {}, KUBE_CREDENTIAL_CACHE_USER {}",
                u.api_version,
                u.provide_cluster_info,
                or_dash(&u.interactive_mode),
                or_dash(&u.cache_user)
            );
            for c in &u.contexts {
                let mark = if c.selected { " (selected)" } else { "" };
                let _ = writeln!(o, "    context '{}'{mark}  server {}", c.name, or_dash(&c.server));
                if let Some(key) = &c.key {
                    let _ = writeln!(o, "      key  {key}");
                }
                if let Some(next) = &c.next {
                    let _ = writeln!(o, "      next call: {}", next.text);
                }
            }
        }

        let _ = writeln!(o, "\ncached entries");
        if self.entries.is_empty() {
            let _ = writeln!(o, "  none");
        }
        for e in &self.entries {
            let go = if e.format == "go" { "  (written by the Go kcc)" } else { "" };
            let orphaned = if e.orphaned { "  (not in the index: an orphan, see warnings)" } else { "" };
            let _ = writeln!(o, "  {}{go}{orphaned}", e.key);
            let _ = writeln!(
                o,
                "    {} {}, {}",
                e.backend,
                e.api_version.as_deref().unwrap_or("unknown apiVersion"),
                e.next.text
            );
            if let Some(bg) = &e.background {
                let _ = writeln!(o, "    {}", bg.text);
            }
            if let Some(f) = &e.forced_refresh {
                let _ = writeln!(o, "    {}", f.text);
            }
            if let Some(h) = &e.healing {
                let _ = writeln!(o, "    healing: {h}");
            }
            if let Some(id) = &e.identity {
                let _ = writeln!(o, "    {}", id.text);
            }
        }

        let problems = self.findings.iter().filter(|f| f.severity == Severity::Problem).count();
        let warnings = self.findings.len() - problems;
        for (title, severity) in [("problems", Severity::Problem), ("warnings", Severity::Warning)] {
            let list: Vec<&Finding> = self.findings.iter().filter(|f| f.severity == severity).collect();
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(o, "\n{title}");
            for (i, f) in list.iter().enumerate() {
                let _ = writeln!(o, "  {}. {}", i + 1, f.message);
                let _ = writeln!(o, "     fix: {}", f.fix);
            }
        }
        let _ = writeln!(
            o,
            "\n{}",
            match (problems, warnings) {
                (0, 0) => "healthy: no problems found".to_string(),
                (0, w) => format!("healthy: no problems, {w} warning(s)"),
                (p, w) => format!("{p} problem(s), {w} warning(s)"),
            }
        );
        o
    }
}
