//! `kcc cache` / `kcc-cache`: the caching proxy, and the hot path.
//!
//! key → store → fresh? print : (single flight → re-check → run plugin →
//! validate → store → print). A hit does one file read, one small parse and
//! one write to stdout; everything else happens only on a miss. Two
//! additions hang off a hit, each in its own module: healing
//! ([`crate::heal`]: serve, refresh or first ask the server when the same
//! client asks again; a failed forced refresh serves the cached credential)
//! and refresh ahead ([`crate::refresh`], a background refresh
//! when the credential is about to expire; the refresher is this same mode
//! re-executed, see [`run_refresher`]). The miss path also consults the
//! failure back-off ([`crate::backoff`]) before and after the flight lock:
//! a request without a terminal, or one that waited for a flight that
//! failed, gets the recorded failure instead of another plugin run.

use std::ffi::{OsStr, OsString};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use color_eyre::Result;
use color_eyre::eyre::{WrapErr, eyre};
use jiff::{SignedDuration, Timestamp};

use crate::config::{BackendChoice, Config, ENV_USER};
use crate::credential::{self, ExecInfo, ExpirySource};
use crate::diagnostics::{self, Decision, Diag};
use crate::identity::{self, Verdict};
use crate::key;
use crate::paths::StorePaths;
use crate::plugin::{self, MAX_RECURSION, RECURSION_ENV};
use crate::report::ExitWith;
use crate::store::{self, ForcedRefresh, IndexEntry, Lookup, Store};
use crate::{backoff, heal, refresh};

/// The usage text of the caching personality.
pub fn usage(name: &str) -> String {
    format!(
        "Usage: {name} [--] CMD [ARGS...]\n\n\
         Runs the Kubernetes exec credential plugin CMD with ARGS, caches the\n\
         ExecCredential it prints and serves it from the cache until shortly\n\
         before it expires. Every argument after CMD is the plugin's.\n\n\
         Example (in a kubeconfig's users[].user.exec):\n  \
         command: kcc-cache\n  \
         args: [aws, --region, eu-west-1, eks, get-token, --cluster-name, prod]\n\n\
         Settings: KUBE_CREDENTIAL_CACHE_* environment variables (see `man kcc`);\n\
         KUBE_CREDENTIAL_CACHE_DEBUG=1 explains every decision on stderr.\n"
    )
}

fn is_help(arg: &OsStr) -> bool {
    arg == "-h" || arg == "--help" || arg == "help"
}

/// Runs the caching proxy with the words after `kcc-cache` / `kcc cache`.
pub fn run(name: &str, mut args: Vec<OsString>) -> Result<ExitCode> {
    if args.len() == 1 && is_help(&args[0]) {
        print!("{}", usage(name));
        return Ok(ExitCode::SUCCESS);
    }
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    if args.is_empty() {
        eprint!("{name}: missing the plugin command\n\n{}", usage(name));
        return Ok(ExitCode::from(2));
    }

    let config = Config::from_env().map_err(|e| eyre!(e))?;
    let diag = Diag::new(config.debug);

    let depth = recursion_depth()?;
    let args = unwrap_self(args, &diag)?;
    let (command, plugin_args) =
        args.split_first().ok_or_else(|| eyre!("missing the plugin command after kcc-cache"))?;

    let exec_info_raw = std::env::var("KUBERNETES_EXEC_INFO").ok();
    let exec_info = ExecInfo::parse(exec_info_raw.as_deref());
    let key = key::for_call(command, plugin_args, &config.key_env, |name| std::env::var_os(name), &exec_info);
    diag.debug(|| format!("cache key: {key}"));
    let identity = if config.identity.builtins || !config.identity.files.is_empty() {
        // Read only when a source applies: a plugin kcc knows nothing
        // about costs no pass over the environment.
        let env = std::cell::OnceCell::new();
        let lookup = |name: &str| env.get_or_init(identity::plan::Environment::from_process).get(name);
        identity::plan::plan(command, plugin_args, lookup, &config.identity)
    } else {
        identity::Plan::default()
    };

    let mut store = match open_store(&config, &diag) {
        Ok(store) => store,
        Err(e) => {
            if matches!(config.backend, BackendChoice::Keyring | BackendChoice::Kernel) {
                return Err(e);
            }
            diag.warn(&format!("{e:#}; running the plugin without the cache"));
            None
        }
    };

    let call = Invocation {
        config: &config,
        diag: &diag,
        key: &key.text,
        command,
        plugin_args,
        depth,
        exec_info: &exec_info,
        identity: &identity,
    };
    if let Some(seen) = refresh::requested() {
        return run_refresher(&call, store.as_ref(), &seen);
    }

    let mut healer = None;
    // The credential this client was already served and that healing found rejected.
    let mut rejected: Option<String> = None;
    let lookup = store.as_ref().map(|s| s.lookup(&key.text));
    if let Some(Lookup::Refused(why)) = &lookup {
        // A FIFO or a device node at the store's path: touch nothing there.
        diag.warn(&format!("{why}; the credential is served but not cached"));
        store = None;
    }
    if let (Some(store), Some(lookup)) = (&store, lookup) {
        let now = Timestamp::now();
        let decision = judge(&call, &lookup, now);
        if let Some(how) = store.secrets().and_then(|s| s.last_read()) {
            diag.debug(|| format!("keyring: {how}"));
        }
        diag.debug(|| diagnostics::describe(&decision, now));
        if let (Decision::Hit { expiry, .. }, Lookup::Found(json)) = (&decision, &lookup) {
            healer = heal::Healer::new(config.heal, store, &key.text, exec_info_raw.as_deref());
            if healer.as_mut().is_some_and(|h| h.on_hit(json, exec_info_raw.as_deref(), &key.text, now, &diag)) {
                rejected = Some(json.clone());
            } else {
                let code = print_stored(json);
                if let Some(healer) = &healer {
                    healer.served(json, false, now, &diag);
                }
                if !config.refresh_ahead.is_zero() {
                    refresh::after_hit(&config, store, &key.text, *expiry, now, command, plugin_args, &diag);
                }
                return Ok(code);
            }
        }
    }

    // Miss (or a forced refresh): from here on the plugin's cost dominates
    // everything kcc does.
    let healer = healer.or_else(|| {
        store.as_ref().and_then(|s| heal::Healer::new(config.heal, s, &key.text, exec_info_raw.as_deref()))
    });
    // No storms: a request without a terminal may get the last failure
    // back instead of another run (see crate::backoff), and so may one that
    // waited for a flight that failed meanwhile.
    let mut attempt = store.as_ref().map(|s| {
        let interactive = backoff::is_interactive(exec_info.interactive, std::io::stdin().is_terminal());
        backoff::Attempt::new(s, &key.text, command, interactive, config.failure_backoff)
    });
    if let Some(replay) = attempt.as_ref().and_then(|a| a.check(&diag)) {
        return deliver(Ok(Fetched::Replayed(Box::new(replay))), healer.as_ref(), rejected.as_deref(), &diag);
    }
    if let Some(attempt) = &mut attempt {
        attempt.waiting();
    }
    // False when a store file turned out not to be a regular file.
    let mut cache_it = true;
    let _flight = match &store {
        Some(store) => match store.flight(&key.text, depth > 0, &diag) {
            Ok(None) => {
                diag.debug(|| "nested kcc call and the key is being refreshed by an outer one; not waiting".into());
                None
            }
            Ok(Some(lock)) => {
                // Another process may have refreshed while we waited.
                let now = Timestamp::now();
                let lookup = store.lookup(&key.text);
                let decision = judge(&call, &lookup, now);
                if let (Decision::Hit { .. }, Lookup::Found(json)) = (&decision, &lookup)
                    && rejected.as_ref() != Some(json)
                {
                    diag.debug(|| {
                        let what = if rejected.is_some() {
                            "heal: another kcc already replaced the credential this client was served; serving"
                        } else {
                            "served what a concurrent refresh stored:"
                        };
                        format!("{what} {}", diagnostics::describe(&decision, now))
                    });
                    let code = print_stored(json);
                    if let Some(healer) = &healer {
                        healer.served(json, false, now, &diag);
                    }
                    return Ok(code);
                }
                if let Some(replay) = attempt.as_ref().and_then(|a| a.check(&diag)) {
                    drop(lock);
                    return deliver(
                        Ok(Fetched::Replayed(Box::new(replay))),
                        healer.as_ref(),
                        rejected.as_deref(),
                        &diag,
                    );
                }
                Some(lock)
            }
            Err(e) if store::file::NotRegular::of(&e).is_some() => {
                diag.warn(&format!("{e}; the credential is served but not cached"));
                cache_it = false;
                None
            }
            Err(e) => {
                diag.warn(&format!(
                    "cannot take the refresh lock in {} ({e}); running the plugin without single flight",
                    store.paths.flight_dir().display()
                ));
                None
            }
        },
        None => None,
    };

    let forced = healer.as_ref().and_then(|h| h.refresh_reason().map(|why| (h, why))).map(|(h, why)| ForcedRefresh {
        at: diagnostics::when(Timestamp::now()),
        client_pid: h.client().pid,
        why: why.to_string(),
    });
    let fetched = fetch(&call, store.as_ref().filter(|_| cache_it), attempt.as_ref(), |meta| meta.forced = forced);
    deliver(fetched, healer.as_ref(), rejected.as_deref(), &diag)
}

/// Prints what the plugin gave and records who was served it. After a
/// forced refresh (`rejected` is the credential healing refreshed), a
/// failing plugin does not fail the call: the cached credential is served,
/// and the attempt still counts against healing's bound.
fn deliver(
    fetched: Result<Fetched>,
    healer: Option<&heal::Healer>,
    rejected: Option<&str>,
    diag: &Diag,
) -> Result<ExitCode> {
    let now = Timestamp::now();
    match (fetched, rejected) {
        (Ok(Fetched::Credential { stdout, stored }), _) => {
            if let Some(healer) = healer {
                match (&stored, rejected) {
                    (Some(json), _) => healer.served(json, rejected.is_some(), now, diag),
                    (None, Some(old)) => healer.served(old, true, now, diag),
                    (None, None) => {}
                }
            }
            Ok(print_credential(&stdout, false))
        }
        (failed, Some(old)) => {
            if let Some(healer) = healer {
                healer.served(old, true, now, diag);
            }
            let what = match failed {
                Err(e) => format!("{e}"),
                Ok(_) => "the plugin failed".into(),
            };
            diag.debug(|| format!("heal: the forced refresh failed ({what}); serving the cached credential instead"));
            Ok(print_stored(old))
        }
        (Ok(Fetched::PluginFailed(code)), None) => Ok(code),
        (Ok(Fetched::Replayed(replay)), None) => replay.answer(backoff::now()).map_err(|e| eyre!(e)),
        (Err(e), None) => Err(e),
    }
}

/// What running the plugin gave.
enum Fetched {
    /// The plugin failed with this exit code; nothing was cached.
    PluginFailed(ExitCode),
    /// The plugin was not run: its recorded failure answers (see [`backoff`]).
    Replayed(Box<backoff::Replay>),
    /// A valid credential: the plugin's stdout, and the JSON stored (None:
    /// not cached).
    Credential { stdout: Vec<u8>, stored: Option<String> },
}

/// One `kcc cache` call: what the miss path and the refresher both need.
struct Invocation<'a> {
    config: &'a Config,
    diag: &'a Diag,
    key: &'a str,
    command: &'a OsStr,
    plugin_args: &'a [OsString],
    /// How deep inside other kcc calls this one runs.
    depth: u32,
    exec_info: &'a ExecInfo,
    /// The identity sources that apply (see [`crate::identity`]).
    identity: &'a identity::Plan,
}

/// Judges the stored entry for this call: [`store::decide`], then, for a
/// hit, whether the identity the plugin would use now is the recorded one.
fn judge(call: &Invocation<'_>, lookup: &Lookup, now: Timestamp) -> Decision {
    let config = call.config;
    let decision = store::decide(lookup, call.exec_info.api_version.as_deref(), now, config.refresh_margin);
    if let (Decision::Hit { .. }, Lookup::Found(json)) = (&decision, lookup) {
        match identity::check(call.identity, json) {
            Verdict::Same => {}
            Verdict::NotRecorded => call
                .diag
                .debug(|| "identity not recorded (an entry of the Go kcc or of an older kcc): served as before".into()),
            Verdict::Changed { from, to } => return Decision::Miss(diagnostics::Miss::IdentityChanged { from, to }),
        }
    }
    decision
}

/// Runs the plugin, validates what it printed and stores it: the miss path,
/// shared by a foreground miss and the background refresher. `history`
/// may add refresh bookkeeping to the new index row. A foreground miss
/// passes its `attempt`, which keeps the plugin's stderr and records a
/// failure; any success ends the key's failure back-off.
fn fetch(
    call: &Invocation<'_>,
    store: Option<&Store>,
    attempt: Option<&backoff::Attempt>,
    history: impl FnOnce(&mut IndexEntry),
) -> Result<Fetched> {
    let Invocation { config, diag, key, command, plugin_args, depth, exec_info, identity: plan } = *call;
    let wanted_api = exec_info.api_version.as_deref();
    let shown = command.to_string_lossy().into_owned();
    diag.debug(|| format!("running '{shown}' with {} argument(s)", plugin_args.len()));
    let capture = attempt.and_then(backoff::Attempt::capture);
    let child_stderr = capture.as_ref().and_then(|c| c.for_child().ok());
    // What the plugin will use, read before it runs (see crate::identity).
    let pending = (!plan.is_empty()).then(|| identity::Pending::before(plan));
    let ran = plugin::run(command, plugin_args, depth, config.plugin_timeout, child_stderr);
    let kept = capture.map(crate::capture::Capture::finish);
    let failed = |code: u8, error: Option<&str>| {
        if let Some(attempt) = attempt {
            attempt.failed(backoff::FailedRun { code, stderr: kept.as_deref(), error }, diag);
        }
    };
    let run = match ran {
        Ok(run) => run,
        Err(e) => {
            failed(e.exit_code(), Some(&e.to_string()));
            return Err(e.into());
        }
    };
    if !run.status.success() {
        let code = plugin::exit_code_of(run.status);
        diag.debug(|| format!("'{shown}' failed ({}); nothing was cached", run.status));
        failed(code, None);
        return Ok(Fetched::PluginFailed(ExitCode::from(code)));
    }
    let credential = match credential::validate(&run.stdout) {
        Ok(credential) => credential,
        Err(e) => {
            let e =
                format!("credential plugin '{shown}' did not print a usable ExecCredential: {e}; nothing was cached");
            failed(1, Some(&e));
            return Err(eyre!(e));
        }
    };
    if let Some(store) = store
        && backoff::forget(store, key)
    {
        diag.debug(|| "failure back-off: ended by this successful run".into());
    }

    let now = Timestamp::now();
    let (expiry, source) =
        credential::effective_expiry(credential.reported_expiry, now, config.no_expiry_threshold, config.default_ttl);
    diag.debug(|| diagnostics::describe_refresh(&shown, run.took, expiry, source, config.default_ttl, now));

    let mut stored = None;
    if let Some(store) = store {
        if let Some(why) = refuse_to_cache(&credential, wanted_api, expiry, now, config) {
            diag.debug(|| format!("not cached: {why}"));
        } else {
            let observed = pending.map(|p| p.after(plan));
            let json = stored_json(credential.value, source, expiry, observed.as_ref().map(|o| &o.recorded));
            if let Some(o) = &observed {
                diag.debug(|| format!("identity: {}", o.recorded.d));
            }
            let mut meta = IndexEntry {
                backend: store.backend().as_str().into(),
                user: std::env::var(ENV_USER).ok(),
                server: exec_info.server.clone(),
                api_version: credential.api_version.clone(),
                expiry: diagnostics::when(expiry),
                expiry_source: match source {
                    ExpirySource::Reported => "reported".into(),
                    ExpirySource::DefaultTtl => "default-ttl".into(),
                },
                stored_at: diagnostics::when(now),
                exec: std::path::Path::new(command).file_name().unwrap_or(command).to_string_lossy().into_owned(),
                size: json.len(),
                parts: 1,
                background: None,
                forced: None,
                identity: observed.map(|o| store::IdentityMeta {
                    fingerprint: o.recorded.fp,
                    description: o.recorded.d,
                    sources: o.sources,
                }),
            };
            history(&mut meta);
            match store.put(key, &json, meta, now, diag) {
                Ok(()) => stored = Some(json),
                Err(e) => {
                    diag.warn(&format!(
                        "cannot write the cache {} ({e}); the credential is served but not cached",
                        store.place()
                    ));
                }
            }
        }
    }
    Ok(Fetched::Credential { stdout: run.stdout, stored })
}

/// The background refresher (see [`crate::refresh`]): started by a hit inside
/// the refresh-ahead window, detached, with its output going to the refresh
/// log. `seen` is the expiry of the entry it was started to replace.
fn run_refresher(call: &Invocation<'_>, store: Option<&Store>, seen: &str) -> Result<ExitCode> {
    let Invocation { config, diag, key, depth, .. } = *call;
    let started = Timestamp::now();
    let say = |what: &str| eprintln!("kcc: refresh ahead {}: {what} ({key})", diagnostics::when(Timestamp::now()));
    let Some(store) = store else {
        say("no usable store; nothing to refresh");
        return Ok(ExitCode::SUCCESS);
    };
    // Held for our whole life: no second refresher of this key starts meanwhile.
    let ahead = store.ahead_lock_path(key);
    // A hit holds it briefly while it decides whether to start a refresher;
    // waiting for that is short. A live refresher holding it means the hit
    // that started us raced it, and the re-check below finds its result.
    let _ahead = match crate::lock::FileLock::acquire(&ahead, |_| ()) {
        Ok((lock, _)) => lock,
        Err(e) => {
            say(&format!("cannot take {} ({e}); exiting", ahead.display()));
            return Ok(ExitCode::from(1));
        }
    };
    let _flight = store.flight(key, depth > 0, diag).ok().flatten();
    let now = Timestamp::now();
    let lookup = store.lookup(key);
    let decision = judge(call, &lookup, now);
    if let Decision::Hit { expiry, .. } = decision
        && diagnostics::when(expiry) != seen
    {
        let detail = format!("another call already replaced the entry (now expires {})", diagnostics::when(expiry));
        say(&format!("skipped: {detail}"));
        refresh::record(store, key, diag, started, "skipped", &detail, config.refresh_ahead, Some(expiry));
        return Ok(ExitCode::SUCCESS);
    }
    let mut ok_expiry = None;
    let fetched = fetch(call, Some(store), None, |meta| {
        ok_expiry = meta.expiry.parse::<Timestamp>().ok();
        let spacing = ok_expiry.map_or(SignedDuration::ZERO, |t| refresh::success_spacing(t, Timestamp::now()));
        meta.background = Some(store::BackgroundAttempt {
            at: diagnostics::when(started),
            result: "ok".into(),
            detail: format!("new credential expires {}", meta.expiry),
            next_allowed: diagnostics::when(Timestamp::now() + spacing),
        });
    });
    let (result, detail, code) = match fetched {
        Ok(Fetched::Credential { stored: Some(_), .. }) => {
            say(&format!("ok: the new credential expires {}", ok_expiry.map(diagnostics::when).unwrap_or_default()));
            return Ok(ExitCode::SUCCESS);
        }
        Ok(Fetched::Credential { stored: None, .. }) => {
            ("failed", "the plugin's credential could not be cached".to_string(), ExitCode::from(1))
        }
        Ok(Fetched::PluginFailed(code)) => ("failed", "the plugin failed (its stderr is in this log)".into(), code),
        // Only a foreground miss consults the failure back-off.
        Ok(Fetched::Replayed(_)) => ("failed", "the plugin was not run".into(), ExitCode::from(1)),
        Err(e) => ("failed", format!("{e}"), ExitCode::from(1)),
    };
    say(&format!("{result}: {detail}"));
    refresh::record(store, key, diag, started, result, &detail, config.refresh_ahead, None);
    Ok(code)
}

/// Picks the store for this call: `Ok(None)` when a secret store is present
/// but unusable (locked, denied), so the credential is served uncached; an
/// error when the keyring is forced and unreachable. With the file backend
/// forced no keyring code runs; with `auto` and no session bus the probe is an
/// environment check and one `stat`, then on Linux one `keyctl` for the
/// kernel keyring.
fn open_store(config: &Config, diag: &Diag) -> Result<Option<Store>> {
    let choice = store::select(config.backend, config.keyring_entry_limit);
    let backend = match choice.selection {
        store::Selection::Use(backend, why) => {
            diag.debug(|| format!("backend: {} ({why})", backend.as_str()));
            backend
        }
        store::Selection::NoCache(why) => {
            diag.debug(|| format!("backend: none, not caching: {why}"));
            return Ok(None);
        }
        store::Selection::Unreachable(why) => {
            return Err(eyre!(ExitWith { code: 1, message: why }));
        }
    };
    let paths = StorePaths::resolve(config.file.as_ref()).map_err(|e| eyre!(e))?;
    let store = match choice.secrets {
        Some(secrets) => Store::with_secrets(paths, secrets),
        None => Store::new(paths, backend),
    };
    // The file backend's first read checks its path (no extra syscall on a
    // hit); a secret store never reads it, so its companions are guarded here.
    if store.secrets().is_some()
        && let Err(e) = store.refuse_non_regular()
    {
        diag.warn(&format!("{e}; the credential is served but not cached"));
        return Ok(None);
    }
    Ok(Some(store))
}

/// Why a valid credential should still not be cached, if it should not.
fn refuse_to_cache(
    credential: &credential::ValidCredential,
    wanted_api: Option<&str>,
    expiry: Timestamp,
    now: Timestamp,
    config: &Config,
) -> Option<String> {
    if let Some(wanted) = wanted_api
        && credential.api_version != wanted
    {
        return Some(format!("the plugin returned {} but kubectl asked for {wanted}", credential.api_version));
    }
    if !credential::is_fresh(expiry, now, config.refresh_margin) {
        return Some(format!(
            "it expires at {}, within the refresh margin; it would never be served",
            diagnostics::when(expiry)
        ));
    }
    None
}

/// The JSON kcc stores: the credential as printed, with the default-TTL
/// expiry written in when the plugin gave none (as the Go kcc did, so both
/// tools agree on when the entry expires).
///
/// With an identity, its record is appended as the last member (see
/// [`identity::attach`]); a member of that name the plugin printed itself
/// is dropped first, so the record kcc finds is always its own.
fn stored_json(
    mut value: serde_json::Value,
    source: ExpirySource,
    expiry: Timestamp,
    recorded: Option<&identity::Recorded>,
) -> String {
    if source == ExpirySource::DefaultTtl
        && let Some(status) = value.get_mut("status").and_then(|s| s.as_object_mut())
    {
        status.insert("expirationTimestamp".into(), serde_json::Value::String(diagnostics::when(expiry)));
    }
    if let Some(obj) = value.as_object_mut() {
        obj.shift_remove(identity::MEMBER);
    }
    match recorded {
        Some(recorded) => identity::attach(&value.to_string(), recorded),
        None => value.to_string(),
    }
}

/// Writes a stored credential to stdout as kubectl gets it: without kcc's
/// identity record, newline-terminated.
fn print_stored(json: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = identity::write_served(json, &mut out);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    ExitCode::SUCCESS
}

/// Writes the credential to stdout; a reader that went away is not an error.
fn print_credential(bytes: &[u8], add_newline: bool) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    if add_newline {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}

fn recursion_depth() -> Result<u32> {
    let depth = match std::env::var(RECURSION_ENV) {
        Ok(v) => v
            .trim()
            .parse::<u32>()
            .wrap_err_with(|| format!("invalid {RECURSION_ENV}='{v}' (set by kcc itself; unset it)"))?,
        Err(_) => 0,
    };
    if depth >= MAX_RECURSION {
        return Err(eyre!(
            "kcc-cache is calling itself ({depth} levels deep): the plugin command leads back to kcc-cache; check the exec command in your kubeconfig (run 'kcc inject -r' to unwrap it)"
        ));
    }
    Ok(depth)
}

/// Drops leading `kcc-cache` / `kcc cache` words: a kubeconfig wrapped twice
/// caches once.
fn unwrap_self(args: Vec<OsString>, diag: &Diag) -> Result<Vec<OsString>> {
    let (rest, levels) = plugin::unwrap_self(&args);
    if levels > 0 {
        diag.debug(|| format!("'{}' wraps kcc-cache again; unwrapping it", args[0].to_string_lossy()));
    }
    if rest.is_empty() {
        return Err(eyre!("kcc-cache wraps kcc-cache with no plugin command; fix the exec args in your kubeconfig"));
    }
    Ok(rest.to_vec())
}
