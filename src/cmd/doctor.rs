//! `kcc doctor`: explain the set-up and find what breaks it.
//!
//! Settings, backend, store, the kubeconfigs as kubectl loads them (with the
//! cache key each exec user would get, computed by [`key::for_call`] — the
//! function `kcc cache` uses — so doctor never disagrees with the hot path),
//! and every cached entry with the decision the next call would take, in the
//! [`diagnostics`] module's words. Known pitfalls become findings with a fix;
//! any *problem* makes the exit code 1, *warnings* do not.
//!
//! Doctor keeps going whatever it meets: an invalid setting is reported and
//! its default used, a broken kubeconfig or cache file is a finding. It reads
//! the environment once, in [`run`], and passes it in, so [`collect`] is a
//! pure function of its inputs plus the files it reads.
//!
//! It never prints a secret: entries are judged from the non-secret index
//! and the stored expiry, exec args are not shown (they can hold secrets),
//! and of exec env values only `KUBE_CREDENTIAL_CACHE_USER` is.

pub mod report;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use color_eyre::Result;
use jiff::{SignedDuration, Timestamp};

use crate::cli::DoctorArgs;
use crate::config::{self, Config, SETTINGS};
use crate::credential::ExecInfo;
use crate::diagnostics::{self, Decision, Miss};
use crate::key;
use crate::kubeconfig::merge::{self as kc, FileState};
use crate::kuberc;
use crate::paths::StorePaths;
use crate::platform::{self, Os};
use crate::plugin;
use crate::store::{self, Backend, EntryInfo, Store};

use report::*;

/// The process environment, captured once.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: Vec<(OsString, OsString)>,
}

impl Env {
    /// The current process's environment.
    pub fn from_process() -> Env {
        Env { vars: std::env::vars_os().collect() }
    }

    /// An environment of the given variables (for tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env { vars: pairs.iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<OsString> {
        self.vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

/// Runs `kcc doctor`.
pub fn run(args: DoctorArgs) -> Result<ExitCode> {
    let report = collect(&args, &Env::from_process(), Timestamp::now());
    if args.json {
        // Serialising plain structs of strings and numbers cannot fail.
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.healthy { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Collects findings as they are made.
#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, severity: Severity, code: &'static str, subject: Option<&str>, message: String, fix: String) {
        self.0.push(Finding { severity, code, subject: subject.map(String::from), message, fix });
    }
    fn problem(&mut self, code: &'static str, subject: Option<&str>, message: String, fix: String) {
        self.add(Severity::Problem, code, subject, message, fix);
    }
    fn warning(&mut self, code: &'static str, subject: Option<&str>, message: String, fix: String) {
        self.add(Severity::Warning, code, subject, message, fix);
    }
}

/// Builds the whole report.
pub fn collect(args: &DoctorArgs, env: &Env, now: Timestamp) -> Report {
    let mut findings = Findings::default();
    let (config, settings) = settings(env, &mut findings);
    let backend = backend(&config, &mut findings);

    let store = StorePaths::resolve(config.file.as_ref()).ok().map(|p| Store::new(p, Backend::File));
    let listing = match &store {
        // A store path that is not a regular file is its own finding (store_report).
        Some(s) => s.list().unwrap_or_else(|e| match store::file::NotRegular::of(&e) {
            Some(_) => store::Listing::default(),
            None => store::Listing { corrupt: Some(e.to_string()), ..Default::default() },
        }),
        None => store::Listing::default(),
    };
    let store_report = store_report(store.as_ref(), &listing, &mut findings);
    let recorded = |key: &str| {
        listing.entries.iter().any(|e| e.key == key && e.meta.as_ref().is_some_and(|m| m.identity.is_some()))
    };
    let identities = current_identities(&args.kubeconfig, env, &config, recorded);
    let kubeconfig = kubeconfig(args, env, &config, &listing, &identities, now, &mut findings);
    let mut entries = entries(&listing, &config, now, &mut findings);
    for e in &mut entries {
        e.healing = store.as_ref().and_then(|s| crate::heal::describe_record(&s.served_path(&e.key), now));
        let meta = listing.entries.iter().find(|l| l.key == e.key).and_then(|l| l.meta.as_ref());
        e.identity = identity_report(meta.and_then(|m| m.identity.as_ref()), identities.get(&e.key));
        if let Some(id) = e.identity.as_ref().filter(|id| id.matches == Some(false)) {
            findings.warning(
                "identity-changed",
                Some(&e.key),
                format!(
                    "the entry was stored for {} but the plugin would now use {}: the next call runs the plugin again",
                    id.recorded,
                    id.current.as_deref().unwrap_or("another identity")
                ),
                "nothing to do (the next call replaces it); 'kcc clear --identity-changed' removes such entries now"
                    .into(),
            );
        }
    }

    if let Some(store) = &store {
        for (_, failure) in crate::backoff::list(&store.paths.flight_dir()) {
            if let Some((message, fix)) = crate::backoff::describe(&failure, config.failure_backoff, now) {
                findings.warning("failure-backoff", Some(&failure.key), message, fix);
            }
        }
    }
    let healthy = !findings.0.iter().any(|f| f.severity == Severity::Problem);
    Report {
        schema_version: 1,
        version: crate::cli::version_line(),
        healthy,
        platform: platform_report(cfg!(target_os = "linux"), std::env::consts::OS, &config),
        settings,
        backend,
        store: store_report,
        kubeconfig,
        entries,
        findings: findings.0,
    }
}

/// Reads the settings like `kcc cache`, but reports every invalid one (each
/// a problem naming the variable) and carries on with its default.
fn settings(env: &Env, findings: &mut Findings) -> (Config, Vec<Setting>) {
    let mut rejected: Vec<&'static str> = Vec::new();
    let config = loop {
        match Config::from_lookup(|name| if rejected.contains(&name) { None } else { env.get(name) }) {
            Ok(c) => break c,
            Err(e) if !rejected.contains(&e.variable) => {
                findings.problem(
                    "invalid-setting",
                    Some(e.variable),
                    format!("{e}; kcc cache refuses to run with it (doctor used the default)"),
                    format!("fix or unset {}", e.variable),
                );
                rejected.push(e.variable);
            }
            // Cannot happen (a rejected variable is no longer looked up); stop
            // rather than loop.
            Err(_) => break default_config(),
        }
    };
    let settings = SETTINGS
        .iter()
        .map(|&config::SettingInfo { name, default, .. }| {
            let value = env.get(name).filter(|v| !v.is_empty()).map(|v| v.to_string_lossy().into_owned());
            Setting {
                name: name.to_string(),
                source: if value.is_some() { "env" } else { "default" },
                value,
                default: default.to_string(),
                valid: !rejected.contains(&name),
            }
        })
        .collect();
    let known: Vec<&str> = SETTINGS
        .iter()
        .map(|s| s.name)
        .chain([config::ENV_USER, plugin::RECURSION_ENV, crate::refresh::REFRESHER_ENV])
        .collect();
    for (name, _) in &env.vars {
        let name = name.to_string_lossy();
        if name.starts_with("KUBE_CREDENTIAL_CACHE_") && !known.contains(&name.as_ref()) {
            findings.warning(
                "unknown-setting",
                Some(&name),
                format!("{name} is set but is not a kcc setting (a typo?); kcc ignores it"),
                format!(
                    "rename or unset it; the settings are {}",
                    SETTINGS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
    (config, settings)
}

/// What healing and refresh ahead do on this platform. Healing needs to
/// recognise the client that asks again after a rejected credential (its
/// pid and start time, from `/proc`): without `/proc` (macOS, Windows, the
/// BSDs) it is off. Refresh ahead only starts a detached kcc, which works
/// everywhere.
fn platform_report(has_proc: bool, os: &str, config: &Config) -> PlatformReport {
    let healing_text = match (has_proc, config.heal) {
        (true, true) => "on: a client (kubectl) that asks again right after its credential was rejected gets a fresh one (the client is recognised through /proc)".to_string(),
        (true, false) => format!("off ({}=false)", config::ENV_HEAL),
        (false, _) => format!(
            "not available on {os}: without /proc kcc cannot recognise a client asking again after a rejected credential, so a revoked credential is served until it expires; run 'kcc clear' after revoking one ({} has no effect here)",
            config::ENV_HEAL
        ),
    };
    let refresh_ahead_text = if config.refresh_ahead.is_zero() {
        format!("off ({} unset or 0)", config::ENV_REFRESH_AHEAD)
    } else {
        format!(
            "on: a hit within {} of the expiry starts a detached kcc that refreshes the credential in the background (needs no /proc; works on {os})",
            crate::duration::format_go_duration(config.refresh_ahead)
        )
    };
    PlatformReport { os: os.to_string(), healing: has_proc, healing_text, refresh_ahead_text }
}

fn default_config() -> Config {
    // With no variable set every setting is its default, which is valid.
    Config::from_lookup(|_| None).unwrap_or_else(|_| unreachable!("the defaults are valid"))
}

/// The backend `kcc cache` would pick, and why: the same bounded probe and
/// the same words as `kcc cache`'s debug output ([`store::select`]).
fn backend(config: &Config, findings: &mut Findings) -> BackendReport {
    let choice = store::select(config.backend, config.keyring_entry_limit);
    let probe = choice.probes.iter().find(|(b, _)| *b == Backend::Keyring).map(|(_, p)| ProbeReport {
        reachable: p.outcome == store::ProbeOutcome::Available,
        millis: p.took.as_secs_f64() * 1000.0,
        reason: p.reason.clone(),
    });
    let kernel =
        choice.probes.iter().find(|(b, _)| *b == Backend::Kernel).map(|(_, p)| kernel_report(p, &choice, findings));
    let (chosen, reason) = match choice.selection {
        store::Selection::Use(backend, why) => (Some(backend.as_str()), why),
        store::Selection::NoCache(why) if config.backend == config::BackendChoice::None => (None, why),
        store::Selection::NoCache(why) => {
            findings.problem(
                "keyring-unusable",
                Some(config::ENV_BACKEND),
                format!("credentials are served but not cached: {why}"),
                format!("unlock the keyring (log in to the desktop session), or set {}=file", config::ENV_BACKEND),
            );
            (None, why)
        }
        store::Selection::Unreachable(why) => {
            findings.problem(
                "keyring-unavailable",
                Some(config::ENV_BACKEND),
                format!("every kcc-cache call fails: {why}"),
                format!("start and unlock the Secret Service, or set {}=file", config::ENV_BACKEND),
            );
            (None, why)
        }
    };
    BackendReport {
        setting: config.backend.as_str().to_string(),
        chosen: chosen.map(String::from),
        reason,
        probe,
        kernel,
    }
}

/// Entries of a secret store that no index row names (see
/// `Store::orphans`): still served to the calls whose key they carry, but
/// invisible to everything that reads the index, so doctor counts them per
/// store and says how to remove them.
fn orphans(listing: &store::Listing, findings: &mut Findings) {
    for backend in [Backend::Kernel, Backend::Keyring] {
        // The Go kcc's own entries (it keeps no index) are its, and have
        // their own warning (`go-leftovers`).
        let n = listing.entries.iter().filter(|e| e.orphan_in == Some(backend) && !key::is_go_key(&e.key)).count();
        if n == 0 {
            continue;
        }
        let place = match backend {
            Backend::Kernel => "the kernel keyring",
            _ => "the keyring",
        };
        findings.warning(
            "orphaned-entries",
            Some(backend.as_str()),
            format!(
                "{n} kcc {} in {place} without an index entry (the cache directory was deleted, or another {} wrote {}): calls with {} key{} are still served from {} until {} expire{}",
                if n == 1 { "entry" } else { "entries" },
                config::ENV_FILE,
                if n == 1 { "it" } else { "them" },
                if n == 1 { "its" } else { "their" },
                if n == 1 { "" } else { "s" },
                if n == 1 { "it" } else { "them" },
                if n == 1 { "it" } else { "they" },
                if n == 1 { "s" } else { "" },
            ),
            "'kcc clear --all' removes them ('--dry-run' lists them first; '--expired', '--user NAME' and '--server URL' select among them)".into(),
        );
    }
}

/// Below this many free bytes of kernel key quota, doctor warns: about one
/// EKS credential with its description.
const KERNEL_ROOM: u64 = 2048;

/// The kernel keyring's state: the probe's words, kcc's keys in it and the
/// quota left (`/proc/key-users`), so a full quota is visible before it bites.
fn kernel_report(probe: &store::Probe, choice: &store::Choice, findings: &mut Findings) -> KernelReport {
    let usable = probe.outcome == store::ProbeOutcome::Available;
    let entries = match &choice.secrets {
        Some(s) if s.backend() == Backend::Kernel => s.list().and_then(Result::ok).map(|keys| keys.len()),
        _ => None,
    };
    let (keyring, quota) =
        store::backend::Quota::current().unwrap_or_else(|| ("no kernel keyring on this platform".into(), None));
    let quota =
        quota.map(|q| QuotaReport { keys: q.keys, max_keys: q.max_keys, bytes: q.bytes, max_bytes: q.max_bytes });
    if let Some(q) = &quota
        && usable
        && q.max_bytes.saturating_sub(q.bytes) < KERNEL_ROOM
    {
        findings.warning(
            "kernel-quota",
            Some(config::ENV_BACKEND),
            format!(
                "the kernel key quota has {} of {} bytes left: new credentials evict the ones that expire first, and one that does not fit is served uncached",
                q.max_bytes.saturating_sub(q.bytes),
                q.max_bytes
            ),
            "raise /proc/sys/kernel/keys/maxbytes (and maxkeys) as root, or run 'kcc clear --expired'".into(),
        );
    }
    KernelReport { usable, reason: probe.describe(), keyring, entries, quota }
}

#[cfg(unix)]
fn octal(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

fn store_report(store: Option<&Store>, listing: &store::Listing, findings: &mut Findings) -> StoreReport {
    let Some(store) = store else {
        findings.problem(
            "store-missing",
            None,
            "cannot find the user cache directory, so kcc cannot cache anything".into(),
            format!("set HOME, or {} to a file path", config::ENV_FILE),
        );
        let dash = || "-".to_string();
        return StoreReport {
            path: dash(),
            exists: false,
            symlink: false,
            mode: None,
            owner_uid: None,
            owned_by_you: None,
            dir: DirReport { path: dash(), exists: false, mode: None },
            index: dash(),
            entries: 0,
            corrupt: None,
        };
    };
    let file = &store.paths.file;
    let shown = file.display().to_string();
    let meta = std::fs::symlink_metadata(file).ok();
    let dir = store.paths.dir();
    let dir_meta = std::fs::metadata(dir).ok();
    let symlink = meta.as_ref().is_some_and(|m| m.file_type().is_symlink());
    let mut report = StoreReport {
        path: shown.clone(),
        exists: meta.is_some(),
        symlink,
        mode: None,
        owner_uid: None,
        owned_by_you: None,
        dir: DirReport { path: dir.display().to_string(), exists: dir_meta.is_some(), mode: None },
        index: store.paths.index().display().to_string(),
        entries: listing.entries.len(),
        corrupt: listing.corrupt.clone(),
    };
    if symlink {
        findings.problem(
            "store-symlink",
            Some(&shown),
            format!("the cache file '{shown}' is a symlink; kcc refuses to follow it, so every call misses"),
            format!("remove the link ('rm {shown}') or point {} at the real file", config::ENV_FILE),
        );
    }
    // A FIFO would hang a reader, a device node would be replaced by a writer:
    // kcc refuses both (and serves uncached); say which file and what to do.
    for path in [file.clone(), store.paths.index(), store.paths.store_lock(), store.paths.refresh_log()] {
        if let Err(e) = store::file::refuse_non_regular_at(&path) {
            let shown = path.display().to_string();
            let device = store::file::NotRegular::of(&e).is_some_and(|n| n.what.contains("device"));
            let remove = if device { String::new() } else { format!(" (or remove it: rm '{shown}')") };
            findings.problem(
                "store-not-regular",
                Some(&shown),
                format!("{e}; until then every kcc-cache call runs the plugin and caches nothing"),
                format!(
                    "point {} at a regular file, or set {}=none to turn caching off{remove}",
                    config::ENV_FILE,
                    config::ENV_BACKEND
                ),
            );
        }
    }
    let not_regular = meta.as_ref().is_some_and(|m| !m.is_file() && !symlink);
    permissions(&mut report, meta.as_ref().filter(|_| !symlink && !not_regular), dir_meta.as_ref(), dir, findings);
    if let Some(why) = &listing.corrupt {
        findings.problem(
            "store-corrupt",
            Some(&shown),
            format!("the cache file '{shown}' is not valid JSON ({why}); nothing in it is served"),
            "run 'kcc clear --all' to start a new cache (the next kcc-cache write also replaces it)".into(),
        );
    }
    report
}

/// Mode and owner of the store and its directory (Unix: other users must
/// not read the credentials nor replace the file).
#[cfg(unix)]
fn permissions(
    report: &mut StoreReport,
    meta: Option<&std::fs::Metadata>,
    dir_meta: Option<&std::fs::Metadata>,
    dir: &Path,
    findings: &mut Findings,
) {
    use std::os::unix::fs::MetadataExt;
    let shown = report.path.clone();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if let Some(m) = meta {
        report.mode = Some(octal(m.mode()));
        report.owner_uid = Some(m.uid());
        report.owned_by_you = Some(m.uid() == me);
        if m.mode() & 0o066 != 0 {
            findings.problem(
                "store-permissions",
                Some(&shown),
                format!(
                    "the cache file '{shown}' (mode {}) is readable or writable by other users: it holds credentials",
                    octal(m.mode())
                ),
                format!("chmod 600 '{shown}'"),
            );
        }
        if m.uid() != me {
            findings.problem(
                "store-owner",
                Some(&shown),
                format!("the cache file '{shown}' belongs to uid {}, not to you (uid {me})", m.uid()),
                format!("remove it ('kcc clear --all' as its owner, or 'rm {shown}'); kcc creates a new one"),
            );
        }
    }
    if let Some(m) = dir_meta {
        report.dir.mode = Some(octal(m.mode()));
        if m.mode() & 0o022 != 0 {
            let d = dir.display();
            findings.problem(
                "store-permissions",
                Some(&d.to_string()),
                format!(
                    "the cache directory '{d}' (mode {}) is writable by other users: they can replace the cache file",
                    octal(m.mode())
                ),
                format!(
                    "chmod 700 '{d}' if it is yours alone; if others share it on purpose, set {} to a file in a directory only you can write to (kcc serves uncached until then)",
                    config::ENV_FILE
                ),
            );
        }
    }
}

/// On Windows the store sits in the user's profile (`%LOCALAPPDATA%`),
/// private by the profile's ACL; there are no modes or uids to check.
#[cfg(not(unix))]
fn permissions(
    _report: &mut StoreReport,
    _meta: Option<&std::fs::Metadata>,
    _dir_meta: Option<&std::fs::Metadata>,
    _dir: &Path,
    _findings: &mut Findings,
) {
}

/// Resolves a command as client-go does ([`Os::look_path`]): a path with a
/// separator is taken as is (relative ones against the kubeconfig's
/// directory when `base` is given), a bare name is looked up on `path_env`
/// (with `PATHEXT` on Windows). Not canonicalised: `kcc-cache` stays
/// `kcc-cache` even when it links to `kcc`.
fn resolve(command: &str, base: Option<&Path>, path_env: Option<&OsStr>) -> Option<PathBuf> {
    let os = Os::CURRENT;
    let command = match base {
        Some(b) if os.has_separator(command) && !os.is_absolute(command) => os.join(&b.to_string_lossy(), command),
        _ => command.to_string(),
    };
    let path = path_env.map(|p| p.to_string_lossy().into_owned());
    let pathext = std::env::var("PATHEXT").ok();
    os.look_path(&command, path.as_deref(), pathext.as_deref(), |c| platform::is_executable(Path::new(c)))
        .map(PathBuf::from)
}

/// The decision the next call for a key would take, judged from what the
/// listing knows (stored expiry and apiVersion), never from the secret.
fn next_decision(
    entry: Option<&EntryInfo>,
    wanted_api: Option<&str>,
    margin: SignedDuration,
    now: Timestamp,
) -> DecisionReport {
    let Some(entry) = entry else {
        return decision_report(&Decision::Miss(Miss::NoEntry), now);
    };
    if key::is_go_key(&entry.key) {
        return DecisionReport {
            kind: "never-served",
            default_ttl: false,
            text: "never served: written by the Go kcc, whose keys ignore args and apiVersion".into(),
        };
    }
    let default_ttl = entry.meta.as_ref().is_some_and(|m| m.expiry_source == "default-ttl");
    let decision = match (wanted_api, entry.api_version.as_deref(), entry.expiry) {
        (Some(wanted), Some(stored), _) if wanted != stored => {
            Decision::Miss(Miss::DifferentApiVersion { stored: stored.into(), wanted: wanted.into() })
        }
        (_, _, None) => Decision::Miss(Miss::Corrupt { why: "no expirationTimestamp".into() }),
        (_, _, Some(expiry)) => match store::decide_expiry(expiry, now, margin) {
            Decision::Hit { expiry, .. } => Decision::Hit { expiry, default_ttl },
            other => other,
        },
    };
    let mut report = decision_report(&decision, now);
    report.default_ttl = default_ttl;
    report
}

fn decision_report(decision: &Decision, now: Timestamp) -> DecisionReport {
    let kind = match decision {
        Decision::Hit { .. } => "hit",
        Decision::Miss(Miss::WithinMargin { .. }) => "refresh",
        Decision::Miss(Miss::Expired { .. }) => "expired",
        Decision::Miss(Miss::NoEntry) => "miss",
        Decision::Miss(Miss::Corrupt { .. }) => "corrupt",
        Decision::Miss(Miss::DifferentApiVersion { .. }) => "api-mismatch",
        Decision::Miss(Miss::StoreUnreadable { .. }) => "unreadable",
        Decision::Miss(Miss::IdentityChanged { .. }) => "identity-changed",
    };
    let default_ttl = matches!(decision, Decision::Hit { default_ttl: true, .. });
    DecisionReport { kind, default_ttl, text: diagnostics::describe(decision, now) }
}

fn entries(listing: &store::Listing, config: &Config, now: Timestamp, findings: &mut Findings) -> Vec<EntryReport> {
    let mut go_keys = Vec::new();
    let out: Vec<EntryReport> = listing
        .entries
        .iter()
        .map(|e| {
            let go = key::is_go_key(&e.key);
            if go {
                go_keys.push(e.key.clone());
            }
            let next = next_decision(Some(e), None, config.refresh_margin, now);
            let meta = e.meta.as_ref();
            if meta.is_some_and(|m| m.expiry_source == "default-ttl") {
                let exec = meta.map(|m| m.exec.as_str()).unwrap_or("the plugin");
                findings.warning(
                    "default-ttl",
                    Some(&e.key),
                    format!(
                        "'{exec}' reported no expiry, so kcc serves its credential for the default TTL ({}={})",
                        config::ENV_DEFAULT_TTL,
                        crate::duration::format_go_duration(config.default_ttl)
                    ),
                    format!(
                        "if the server rejects it sooner, lower {} or run 'kcc clear --key' with the key above",
                        config::ENV_DEFAULT_TTL
                    ),
                );
            }
            if e.backend() == "keyring"
                && let Some(m) = meta
            {
                keyring_size(&e.key, m.size, m.parts, config.keyring_entry_limit, findings);
            }
            EntryReport {
                key: e.key.clone(),
                format: if go { "go" } else { "kcc" },
                backend: e.backend().to_string(),
                orphaned: e.orphan_in.is_some(),
                user: super::clear::entry_user(e),
                server: super::clear::entry_server(e),
                api_version: e.api_version.clone(),
                expiry: e.expiry.map(diagnostics::when),
                seconds_left: e.expiry.map(|t| t.duration_since(now).as_secs()),
                expiry_source: meta.map(|m| m.expiry_source.clone()),
                next,
                background: meta.and_then(|m| m.background.as_ref()).map(|bg| BackgroundReport {
                    at: bg.at.clone(),
                    result: bg.result.clone(),
                    detail: bg.detail.clone(),
                    next_allowed: bg.next_allowed.clone(),
                    text: crate::refresh::describe(bg),
                }),
                forced_refresh: meta.and_then(|m| m.forced.as_ref()).map(|f| ForcedReport {
                    at: f.at.clone(),
                    client_pid: f.client_pid,
                    text: format!("last forced refresh (healing) at {}: client pid {}: {}", f.at, f.client_pid, f.why),
                }),
                healing: None,
                identity: None,
            }
        })
        .collect();
    orphans(listing, findings);
    if !go_keys.is_empty() {
        findings.warning(
            "go-leftovers",
            None,
            format!(
                "{} entr{} written by the Go kcc: this kcc never serves them (their keys ignore args and apiVersion)",
                go_keys.len(),
                if go_keys.len() == 1 { "y was" } else { "ies were" }
            ),
            "they are pruned once expired; to remove them now run 'kcc clear --key KEY' with each key marked \"written by the Go kcc\" (or 'kcc clear --user NAME')".into(),
        );
    }
    out
}

/// The smallest per-secret cap of a platform kcc runs on: Windows'
/// Credential Manager (2,560 bytes). A credential above it is split there.
const PORTABLE_SECRET_LIMIT: usize = 2560;

/// Keyring entries near a size limit: an entry stored whole at more than
/// 80% of this platform's per-entry limit (the next, slightly longer
/// credential will be split), or above the Windows cap (the same kubeconfig
/// on Windows splits it; the Go kcc fails there with "data passed to Set
/// was too big").
fn keyring_size(key: &str, size: usize, parts: u32, limit: usize, findings: &mut Findings) {
    if parts > 1 {
        return; // already split: kcc handles it, nothing to fix
    }
    let near_limit = size * 5 > limit * 4;
    if near_limit || size > PORTABLE_SECRET_LIMIT {
        findings.warning(
            "keyring-size",
            Some(key),
            format!(
                "this keyring entry is {size} bytes, {} the per-entry limit of {limit} bytes ({}); Windows' Credential Manager caps a secret at {PORTABLE_SECRET_LIMIT} bytes and macOS at about 3,000, where the Go kcc fails",
                if near_limit { "close to" } else { "within" },
                config::ENV_KEYRING_ENTRY_LIMIT
            ),
            format!(
                "nothing breaks: kcc splits a larger credential across several entries of the same service; to keep entries small everywhere set {}={PORTABLE_SECRET_LIMIT}",
                config::ENV_KEYRING_ENTRY_LIMIT
            ),
        );
    }
}

/// The exec-user part: files, kuberc, every exec user and its keys.
/// The identity each cached entry's kubeconfig user would use now.
#[derive(Debug, Clone)]
pub struct IdentityNow {
    /// The current identity, in words.
    pub description: String,
    /// Its fingerprint.
    pub fingerprint: String,
}

/// For every wrapped exec user (and context) of the kubeconfig(s) kubectl
/// loads (`files` as `--kubeconfig`, else `$KUBECONFIG`, else the default),
/// the cache key it would use and the identity its plugin would use now —
/// read from the same sources `kcc cache` checks, with the environment
/// kubectl would give the plugin. Shared by `kcc doctor` and `kcc clear
/// --identity-changed`; only keys that `wanted` accepts are observed (each
/// observation reads files).
pub fn current_identities(
    files: &[String],
    env: &Env,
    config: &Config,
    wanted: impl Fn(&str) -> bool,
) -> BTreeMap<String, IdentityNow> {
    let home = etcetera::home_dir().ok();
    let merged = kc::load(kc::locations(files, env.get("KUBECONFIG"), home, Os::CURRENT));
    let mut out = BTreeMap::new();
    for u in &merged.users {
        let exec = &u.exec;
        let mut argv: Vec<OsString> = vec![OsString::from(&exec.command)];
        argv.extend(exec.args.iter().flatten().map(OsString::from));
        let (rest, levels) = plugin::unwrap_self(&argv);
        let Some((command, plugin_args)) = rest.split_first().filter(|_| levels > 0) else { continue };
        let lookup = |name: &str| exec.env_value(name).map(OsString::from).or_else(|| env.get(name));
        let exec_config = Config::from_lookup(lookup).unwrap_or_else(|_| config.clone());
        let provide = exec.provide_cluster_info.unwrap_or(false);
        for (_, ctx) in merged.contexts.iter().filter(|(_, c)| c.user.as_deref() == Some(u.name.as_str())) {
            let server = ctx.cluster.as_deref().and_then(|c| merged.server(c)).map(String::from);
            let info = ExecInfo {
                api_version: exec.api_version.clone().filter(|a| !a.is_empty()),
                server: if provide { server } else { None },
                interactive: None,
            };
            let k = key::for_call(command, plugin_args, &exec_config.key_env, lookup, &info).text;
            if out.contains_key(&k) || !wanted(&k) {
                continue;
            }
            let plan = crate::identity::plan::plan(command, plugin_args, lookup, &exec_config.identity);
            let now = crate::identity::observe_now(&plan);
            let description = if plan.is_empty() { "no identity source applies".into() } else { now.recorded.d };
            out.insert(k, IdentityNow { description, fingerprint: now.recorded.fp });
        }
    }
    out
}

/// How an entry's recorded identity compares with the current one.
fn identity_report(meta: Option<&store::IdentityMeta>, now: Option<&IdentityNow>) -> Option<IdentityReport> {
    let meta = meta?;
    let matches = now.map(|n| n.fingerprint == meta.fingerprint);
    let text = match (now, matches) {
        (Some(_), Some(true)) => format!("identity: {} (current)", meta.description),
        (Some(n), _) => format!(
            "identity: {}; now: {} — the next call runs the plugin again ('kcc clear --identity-changed' removes such entries)",
            meta.description, n.description
        ),
        (None, _) => format!(
            "identity: {} (no kubeconfig user has this key, so kcc cannot tell whether it is current)",
            meta.description
        ),
    };
    Some(IdentityReport {
        recorded: meta.description.clone(),
        current: now.map(|n| n.description.clone()),
        matches,
        sources: meta.sources.clone(),
        text,
    })
}

fn kubeconfig(
    args: &DoctorArgs,
    env: &Env,
    config: &Config,
    listing: &store::Listing,
    identities: &BTreeMap<String, IdentityNow>,
    now: Timestamp,
    findings: &mut Findings,
) -> KubeconfigReport {
    let home = etcetera::home_dir().ok();
    let merged = kc::load(kc::locations(&args.kubeconfig, env.get("KUBECONFIG"), home.clone(), Os::CURRENT));
    let files = merged
        .files
        .iter()
        .map(|f| {
            let shown = f.path.display().to_string();
            let (status, error) = match &f.state {
                FileState::Loaded(_) => ("loaded", None),
                FileState::Missing => ("missing", None),
                FileState::Invalid(e) => ("invalid", Some(e.clone())),
            };
            match &f.state {
                FileState::Invalid(e) => findings.problem(
                    "kubeconfig-invalid",
                    Some(&shown),
                    format!("kubeconfig '{shown}' cannot be read: {e}"),
                    "fix the file (kubectl cannot use it either); 'kubectl config view' shows what kubectl makes of it"
                        .into(),
                ),
                FileState::Missing if f.source == kc::FileSource::Flag => findings.problem(
                    "kubeconfig-missing",
                    Some(&shown),
                    format!("kubeconfig '{shown}' does not exist"),
                    "check the path given to --kubeconfig".into(),
                ),
                _ => {}
            }
            FileReport { path: shown, source: f.source.as_str(), status, error }
        })
        .collect();

    let selected = args.context.clone().or_else(|| merged.current_context.clone());
    if let Some(name) = &selected
        && !merged.contexts.iter().any(|(n, _)| n == name)
        && (args.context.is_some() || !merged.contexts.is_empty())
    {
        findings.problem(
            "context-missing",
            Some(name),
            format!("context '{name}' is not defined in the kubeconfig"),
            format!(
                "pick one of: {}",
                merged.contexts.iter().map(|(n, _)| format!("'{n}'")).collect::<Vec<_>>().join(", ")
            ),
        );
    }

    let kuberc_path = kuberc::location(env.get("KUBERC"), home);
    let kuberc = match kuberc_path.as_deref().map(|p| (p, kuberc::read(p))) {
        Some((p, Ok(Some(rc)))) => Some((p.to_path_buf(), rc)),
        Some((p, Err(e))) => {
            let shown = p.display().to_string();
            findings.problem(
                "kuberc-invalid",
                Some(&shown),
                format!("kuberc '{shown}' cannot be read: {e}"),
                "fix it: kubectl 1.34+ reads it on every call".into(),
            );
            None
        }
        _ => None,
    };

    let path_env = env.get("PATH");
    let mut users = Vec::new();
    // key → users that would use it, to find two identities sharing one key.
    let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    // (kuberc, blocked command) → (users it blocks, their real plugins it allows).
    let mut blocked: BTreeMap<(String, String), (Vec<String>, Vec<String>)> = BTreeMap::new();
    for (i, u) in merged.users.iter().enumerate() {
        let exec = &u.exec;
        // kubectl reads a relative kubeconfig path against its working
        // directory, and resolves relative commands against that file's directory.
        let file_abs = std::path::absolute(&u.file).unwrap_or_else(|_| u.file.clone());
        let base = file_abs.parent();
        let mut argv: Vec<OsString> = vec![OsString::from(&exec.command)];
        argv.extend(exec.args.iter().flatten().map(OsString::from));
        let (rest, levels) = plugin::unwrap_self(&argv);
        let wrapped = levels > 0;
        let wrapper = wrapped.then(|| match plugin::self_name(&exec.command) {
            Some(plugin::SelfName::Multi)
                if Path::new(&exec.command).file_stem().is_some_and(|s| !s.eq_ignore_ascii_case("kcc")) =>
            {
                "kubectl-kcc cache".to_string()
            }
            Some(plugin::SelfName::Multi) => "kcc cache".to_string(),
            _ => "kcc-cache".to_string(),
        });
        // The plugin's environment: kubectl's own plus the exec env on top.
        let lookup = |name: &str| exec.env_value(name).map(OsString::from).or_else(|| env.get(name));
        let plugin_path_env = lookup("PATH");
        let plugin = rest.first().map(|p| p.to_string_lossy().into_owned());
        let plugin_path = match (&plugin, wrapped) {
            // kcc-cache runs the plugin itself: PATH, and kubectl's working
            // directory for relative paths (nothing resolves them against the kubeconfig).
            (Some(p), true) => resolve(p, None, plugin_path_env.as_deref()),
            (Some(p), false) => resolve(p, base, path_env.as_deref()),
            (None, _) => None,
        };
        let wrapper_path = if wrapped { resolve(&exec.command, base, path_env.as_deref()) } else { None };
        let cache_user = exec.env_value(config::ENV_USER).map(String::from);
        let api_version = exec.api_version.clone().unwrap_or_default();
        let provide = exec.provide_cluster_info.unwrap_or(false);
        let subject = Some(u.name.as_str());

        if wrapped {
            let cmd = &exec.command;
            if wrapper_path.is_none() {
                let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "kcc".into());
                findings.problem(
                    "wrapper-not-found",
                    subject,
                    format!("user '{}' runs '{cmd}', which kubectl cannot find on PATH", u.name),
                    // Named as the kubeconfig names it: `kubectl-kcc` after a krew-only inject.
                    format!(
                        "create the link next to kcc: ln -s '{exe}' \"$(dirname '{exe}')/{}\" (that directory must be on PATH)",
                        Path::new(cmd)
                            .file_name()
                            .filter(|_| plugin::self_name(cmd).is_some())
                            .map_or("kcc-cache".into(), |n| n.to_string_lossy())
                    ),
                );
            }
            match &plugin {
                None => findings.problem(
                    "wrapper-without-plugin",
                    subject,
                    format!("user '{}' runs '{cmd}' without a plugin command after it", u.name),
                    "put the real plugin command first in exec.args, or run 'kcc inject -r' to unwrap".into(),
                ),
                Some(p) if Path::new(p).is_relative() && Path::new(p).components().count() > 1 => findings.problem(
                    "relative-plugin-path",
                    subject,
                    format!(
                        "user '{}' runs plugin '{p}', a relative path in exec.args: kubectl resolves a relative exec.command against the kubeconfig's directory, but kcc-cache sees it relative to wherever kubectl runs",
                        u.name
                    ),
                    format!(
                        "write the plugin's absolute path in exec.args (e.g. '{}')",
                        base.map(|b| {
                            let rel: PathBuf = Path::new(p)
                                .components()
                                .filter(|c| !matches!(c, std::path::Component::CurDir))
                                .collect();
                            b.join(rel).display().to_string()
                        })
                        .unwrap_or_else(|| p.clone())
                    ),
                ),
                Some(p) if plugin_path.is_none() => findings.problem(
                    "plugin-not-found",
                    subject,
                    format!("user '{}' is wrapped but its plugin '{p}' is not found on PATH", u.name),
                    format!("install '{p}' or fix the first word of exec.args"),
                ),
                _ => {}
            }
            if exec.interactive_mode.as_deref() == Some("Always") {
                findings.warning(
                    "interactive-always",
                    subject,
                    format!(
                        "user '{}' has interactiveMode: Always: kubectl refuses to run kcc-cache without a terminal (k9s, helm, CI), even when the credential is cached",
                        u.name
                    ),
                    format!("set interactiveMode: IfAvailable for user '{}'", u.name),
                );
            }
            if let Some((path, rc)) = &kuberc {
                let resolver = |c: &str| resolve(c, base, path_env.as_deref());
                if !rc.allows(cmd, resolver) {
                    let (who, allowed) = blocked.entry((path.display().to_string(), cmd.clone())).or_default();
                    who.push(u.name.clone());
                    if let Some(p) = plugin.as_deref().filter(|p| rc.allows(p, resolver))
                        && !allowed.iter().any(|a| a == p)
                    {
                        allowed.push(p.to_string());
                    }
                }
            }
        }

        let mut contexts = Vec::new();
        for (name, ctx) in merged.contexts.iter().filter(|(_, c)| c.user.as_deref() == Some(u.name.as_str())) {
            let server = ctx.cluster.as_deref().and_then(|c| merged.server(c)).map(String::from);
            let is_selected = selected.as_deref() == Some(name.as_str());
            let (key, next) = match (wrapped, rest.split_first()) {
                (true, Some((command, plugin_args))) => {
                    let info = ExecInfo {
                        api_version: exec.api_version.clone().filter(|a| !a.is_empty()),
                        server: if provide { server.clone() } else { None },
                        interactive: None,
                    };
                    // The exec env may change the key env list itself.
                    let key_env =
                        Config::from_lookup(lookup).map(|c| c.key_env).unwrap_or_else(|_| config.key_env.clone());
                    let k = key::for_call(command, plugin_args, &key_env, lookup, &info).text;
                    let entry = listing.entries.iter().find(|e| e.key == k);
                    let mut next = next_decision(entry, info.api_version.as_deref(), config.refresh_margin, now);
                    let recorded = entry.and_then(|e| e.meta.as_ref()).and_then(|m| m.identity.as_ref());
                    if let (Some(rec), Some(current), "hit") = (recorded, identities.get(&k), next.kind)
                        && rec.fingerprint != current.fingerprint
                    {
                        let changed =
                            Miss::IdentityChanged { from: rec.description.clone(), to: current.description.clone() };
                        next = decision_report(&Decision::Miss(changed), now);
                    }
                    let users_of_key = by_key.entry(k.clone()).or_default();
                    if !users_of_key.contains(&i) {
                        users_of_key.push(i);
                    }
                    (Some(k), Some(next))
                }
                _ => (None, None),
            };
            contexts.push(UserContext { name: name.clone(), server, selected: is_selected, key, next });
        }

        users.push(UserReport {
            name: u.name.clone(),
            file: u.file.display().to_string(),
            command: exec.command.clone(),
            wrapped,
            wrapper,
            plugin,
            plugin_path: plugin_path.map(|p| p.display().to_string()),
            wrapper_path: wrapper_path.map(|p| p.display().to_string()),
            api_version,
            provide_cluster_info: provide,
            interactive_mode: exec.interactive_mode.clone(),
            cache_user,
            contexts,
        });
    }

    for (k, who) in by_key.iter().filter(|(_, who)| who.len() > 1) {
        let names: Vec<String> = who.iter().map(|&i| format!("'{}'", merged.users[i].name)).collect();
        let envs: Vec<Vec<kc::EnvVar>> = who
            .iter()
            .map(|&i| {
                let mut e = merged.users[i].exec.env.clone().unwrap_or_default();
                e.sort_by(|a, b| a.name.cmp(&b.name));
                e
            })
            .collect();
        let differing: Vec<String> = {
            let mut names: Vec<String> = envs
                .iter()
                .flatten()
                .map(|e| e.name.clone())
                .filter(|n| {
                    let first = merged.users[who[0]].exec.env_value(n);
                    who.iter().any(|&i| merged.users[i].exec.env_value(n) != first)
                })
                .collect();
            names.sort();
            names.dedup();
            names
        };
        let message = format!("users {} would share the cache key {k}", names.join(" and "));
        let fix = format!(
            "give each user its own {} in exec.env ('kcc inject' does) and provideClusterInfo: true",
            config::ENV_USER
        );
        if differing.is_empty() {
            findings.warning(
                "shared-key",
                Some(k),
                format!("{message}; harmless while their exec sections are identical"),
                fix,
            );
        } else {
            findings.problem(
                "shared-key",
                Some(k),
                format!(
                    "{message}, although their exec env differs in {}: one user's credential would be served to the other",
                    differing.join(", ")
                ),
                format!("{fix}, or add {} to {}", differing.join(","), config::ENV_CACHEKEY_ENV_LIST),
            );
        }
    }

    for ((path, cmd), (who, allowed)) in &blocked {
        let why = if allowed.is_empty() {
            format!("does not allow '{cmd}'")
        } else {
            format!(
                "allows {} but not '{cmd}'",
                allowed.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ")
            )
        };
        let resolved = resolve(cmd, None, path_env.as_deref()).map(|p| p.display().to_string());
        findings.problem(
            "kuberc-blocks-kcc",
            Some(path.as_str()),
            format!(
                "kuberc '{path}' credential plugin policy {why}: kubectl refuses to run it for user(s) {}",
                who.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(", ")
            ),
            format!(
                "add '- name: {}' to credentialPluginAllowlist in '{path}' (kcc-cache runs the real plugin itself)",
                resolved.as_deref().unwrap_or(cmd)
            ),
        );
    }

    // Exec users kcc does not wrap run their plugin on every kubectl call:
    // not broken, but not cached either. Name them with the command that fixes it.
    let mut unwrapped: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (u, report) in merged.users.iter().zip(&users) {
        if report.wrapper.is_none() {
            unwrapped.entry(u.file.display().to_string()).or_default().push(&u.name);
        }
    }
    for (file, names) in &unwrapped {
        findings.warning(
            "not-wrapped",
            Some(file.as_str()),
            format!(
                "kubeconfig '{file}': exec user(s) {} run their plugin on every call, not cached by kcc",
                names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
            ),
            format!("kcc inject -i '{file}'"),
        );
    }

    KubeconfigReport {
        files,
        current_context: merged.current_context.clone(),
        context: selected,
        kuberc: kuberc.map(|(p, rc)| KubercReport {
            path: p.display().to_string(),
            policy: rc.policy().to_string(),
            allowlist: rc.allowlist().map(String::from).collect(),
        }),
        users,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healing_is_explained_per_platform() {
        let config = default_config();
        let linux = platform_report(true, "linux", &config);
        assert!(linux.healing && linux.healing_text.starts_with("on:"), "{}", linux.healing_text);
        for os in ["macos", "windows"] {
            let p = platform_report(false, os, &config);
            assert!(!p.healing);
            assert!(p.healing_text.contains(&format!("not available on {os}: without /proc")), "{}", p.healing_text);
            assert!(p.healing_text.contains("kcc clear"), "{}", p.healing_text);
        }
        assert!(linux.refresh_ahead_text.starts_with("off"), "{}", linux.refresh_ahead_text);
    }
}
