//! `kcc cache` / `kcc-cache`: the caching proxy, and the hot path.
//!
//! key → store → fresh? print : (single flight → re-check → run plugin →
//! validate → store → print). A hit does one file read, one small parse and
//! one write to stdout; everything else happens only on a miss.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::process::ExitCode;

use color_eyre::Result;
use color_eyre::eyre::{WrapErr, eyre};
use jiff::Timestamp;

use crate::config::{BackendChoice, Config, ENV_USER};
use crate::credential::{self, ExecInfo, ExpirySource};
use crate::diagnostics::{self, Decision, Diag};
use crate::key;
use crate::paths::StorePaths;
use crate::plugin::{self, MAX_RECURSION, RECURSION_ENV};
use crate::report::ExitWith;
use crate::store::{self, Backend, IndexEntry, Lookup, Store};

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

    let store = match open_store(&config, &diag) {
        Ok(store) => store,
        Err(e) => {
            if config.backend == BackendChoice::Keyring {
                return Err(e);
            }
            diag.warn(&format!("{e:#}; running the plugin without the cache"));
            None
        }
    };

    let wanted_api = exec_info.api_version.as_deref();
    if let Some(store) = &store {
        let now = Timestamp::now();
        let lookup = store.lookup(&key.text);
        let decision = store::decide(&lookup, wanted_api, now, config.refresh_margin);
        if let Some(keyring) = &store.keyring {
            diag.debug(|| format!("keyring: {}", keyring.last_read()));
        }
        if let (Decision::Hit { .. }, Lookup::Found(json)) = (&decision, &lookup) {
            diag.debug(|| diagnostics::describe(&decision, now));
            return Ok(print_credential(json.as_bytes(), true));
        }
        diag.debug(|| diagnostics::describe(&decision, now));
    }

    // Miss: from here on the plugin's cost dominates everything kcc does.
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
                let decision = store::decide(&lookup, wanted_api, now, config.refresh_margin);
                if let (Decision::Hit { .. }, Lookup::Found(json)) = (&decision, &lookup) {
                    diag.debug(|| {
                        format!("served what a concurrent refresh stored: {}", diagnostics::describe(&decision, now))
                    });
                    return Ok(print_credential(json.as_bytes(), true));
                }
                Some(lock)
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

    let shown = command.to_string_lossy().into_owned();
    diag.debug(|| format!("running '{shown}' with {} argument(s)", plugin_args.len()));
    let run = plugin::run(command, plugin_args, depth, config.plugin_timeout)?;
    if !run.status.success() {
        let code = plugin::exit_code_of(run.status);
        diag.debug(|| format!("'{shown}' failed ({}); nothing was cached", run.status));
        return Ok(ExitCode::from(code));
    }
    let credential = credential::validate(&run.stdout).map_err(|e| {
        eyre!("credential plugin '{shown}' did not print a usable ExecCredential: {e}; nothing was cached")
    })?;

    let now = Timestamp::now();
    let (expiry, source) =
        credential::effective_expiry(credential.reported_expiry, now, config.no_expiry_threshold, config.default_ttl);
    diag.debug(|| diagnostics::describe_refresh(&shown, run.took, expiry, source, config.default_ttl, now));

    if let Some(store) = &store {
        if let Some(why) = refuse_to_cache(&credential, wanted_api, expiry, now, &config) {
            diag.debug(|| format!("not cached: {why}"));
        } else {
            let json = stored_json(credential.value, source, expiry);
            let meta = IndexEntry {
                backend: store.backend.as_str().into(),
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
            };
            if let Err(e) = store.put(&key.text, &json, meta, now, &diag) {
                let place = match store.backend {
                    Backend::File => store.paths.file.display().to_string(),
                    Backend::Keyring => "in the keyring".into(),
                };
                diag.warn(&format!("cannot write the cache {place} ({e}); the credential is served but not cached"));
            }
        }
    }
    Ok(print_credential(&run.stdout, false))
}

/// Picks the store for this call: `Ok(None)` when a secret store is present
/// but unusable (locked, denied), so the credential is served uncached; an
/// error when the keyring is forced and unreachable. With the file backend
/// forced no keyring code runs; with `auto` and no session bus the probe is an
/// environment check and one `stat`.
fn open_store(config: &Config, diag: &Diag) -> Result<Option<Store>> {
    let (selection, _probe) = store::select(config.backend);
    let backend = match selection {
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
    Ok(Some(match backend {
        Backend::File => Store::new(paths, backend),
        Backend::Keyring => Store::with_keyring(paths, store::Keyring::new(config.keyring_entry_limit)),
    }))
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
fn stored_json(mut value: serde_json::Value, source: ExpirySource, expiry: Timestamp) -> String {
    if source == ExpirySource::DefaultTtl
        && let Some(status) = value.get_mut("status").and_then(|s| s.as_object_mut())
    {
        status.insert("expirationTimestamp".into(), serde_json::Value::String(diagnostics::when(expiry)));
    }
    value.to_string()
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
