//! `kcc clear`: remove cached credentials on purpose.
//!
//! The fix for "You must be logged in to the server" when a stale or wrong
//! credential is cached. Selectors AND-combine; none means everything.
//! Entries are matched on what is known without reading a secret: the key
//! itself (kcc's `user="…" server="…" …` keys and the Go kcc's
//! `user="…" server="…"` keys both name user and server), the non-secret
//! index, and the stored expiry.
//!
//! The removal runs through [`Store::remove_where`]: one pass under the store
//! lock over every backend, so it never races a `kcc cache` that is writing.
//! Only keys are printed, never a credential.
//!
//! A corrupt cache file: with no selector (or `--all`) it is replaced by an
//! empty one — that is what was asked for; with a selector kcc cannot tell
//! what matches, so it stops and says to use `--all`, leaving the file as it
//! is for the user to inspect.

use std::process::ExitCode;

use color_eyre::Result;
use color_eyre::eyre::eyre;
use jiff::Timestamp;

use crate::cli::ClearArgs;
use crate::config::Config;
use crate::diagnostics::Diag;
use crate::key;
use crate::paths::StorePaths;
use crate::report::ExitWith;
use crate::store::{Backend, EntryInfo, RemoveError, Store};

/// Which entries to remove; every given criterion must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Only entries whose expiry has passed (or that have none kcc can read:
    /// they would never be served either).
    pub expired: bool,
    /// Only entries of this kubeconfig user (`KUBE_CREDENTIAL_CACHE_USER`).
    pub user: Option<String>,
    /// Only entries for this API server URL (a trailing `/` is ignored).
    pub server: Option<String>,
    /// Only these exact keys (any of them).
    pub keys: Vec<String>,
    /// Only entries whose recorded identity is not the current one: the
    /// keys of those (see [`identity_changed`]), when the flag is given.
    pub identity_changed: Option<Vec<String>>,
}

impl Selector {
    /// The selector of the command-line flags.
    pub fn from_args(args: &ClearArgs) -> Selector {
        Selector {
            expired: args.expired,
            user: args.user.clone(),
            server: args.server.clone(),
            keys: args.key.clone(),
            identity_changed: args.identity_changed.then(Vec::new),
        }
    }

    /// No criterion: everything.
    pub fn is_everything(&self) -> bool {
        *self == Selector::default()
    }

    /// Whether `entry` is selected at `now`.
    pub fn matches(&self, entry: &EntryInfo, now: Timestamp) -> bool {
        if !self.keys.is_empty() && !self.keys.contains(&entry.key) {
            return false;
        }
        if let Some(changed) = &self.identity_changed
            && !changed.contains(&entry.key)
        {
            return false;
        }
        if self.expired && entry.expiry.is_some_and(|t| t > now) {
            return false;
        }
        if let Some(user) = &self.user
            && entry_user(entry).as_deref() != Some(user.as_str())
        {
            return false;
        }
        if let Some(server) = &self.server
            && entry_server(entry).as_deref().map(trim_slash) != Some(trim_slash(server))
        {
            return false;
        }
        true
    }
}

fn trim_slash(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// The kubeconfig user an entry belongs to: from the index, else from the
/// key (kcc's or the Go kcc's format).
pub fn entry_user(entry: &EntryInfo) -> Option<String> {
    entry.meta.as_ref().and_then(|m| m.user.clone()).or_else(|| key_field(&entry.key, "user")).filter(|u| !u.is_empty())
}

/// The API server an entry was cached for: from the index, else from the key.
pub fn entry_server(entry: &EntryInfo) -> Option<String> {
    entry
        .meta
        .as_ref()
        .and_then(|m| m.server.clone())
        .or_else(|| key_field(&entry.key, "server"))
        .filter(|s| !s.is_empty())
}

fn key_field(key_text: &str, name: &str) -> Option<String> {
    if let Some(fields) = key::parse_fields(key_text) {
        return fields.into_iter().find(|(n, _)| n == name).map(|(_, v)| v);
    }
    let (user, server) = key::parse_go_fields(key_text)?;
    match name {
        "user" => Some(user),
        "server" => Some(server),
        _ => None,
    }
}

/// The keys of entries whose recorded identity differs from the one their
/// kubeconfig user's plugin would use now (the kubeconfigs kubectl loads,
/// with the exec env, as `kcc doctor` computes them). Entries that no
/// kubeconfig user has are kept: kcc cannot tell.
pub fn identity_changed(store: &Store, config: &Config) -> Vec<String> {
    let recorded: Vec<(String, String)> =
        store.list_index().into_iter().filter_map(|(k, m)| m.identity.map(|id| (k, id.fingerprint))).collect();
    let env = super::doctor::Env::from_process();
    let now = super::doctor::current_identities(&[], &env, config, |k| recorded.iter().any(|(r, _)| r == k));
    recorded.into_iter().filter(|(k, fp)| now.get(k).is_some_and(|n| &n.fingerprint != fp)).map(|(k, _)| k).collect()
}

/// Runs `kcc clear`.
pub fn run(args: ClearArgs) -> Result<ExitCode> {
    let mut selector = Selector::from_args(&args);
    if args.all && !selector.is_everything() {
        return Err(eyre!(ExitWith {
            code: 2,
            message: "'--all' cannot be combined with '--expired', '--user', '--server', '--key' or '--identity-changed'; drop '--all' to remove only what those select".into(),
        }));
    }
    let config = Config::from_env().map_err(|e| eyre!(e))?;
    let diag = Diag::new(config.debug);
    let paths = StorePaths::resolve(config.file.as_ref()).map_err(|e| eyre!(e))?;
    // Entries in a secret store are removed through the store their index
    // row names (see `Store::remove_where`), opened only for those entries.
    let store = Store::new(paths, Backend::File);
    let shown = store.paths.file.display().to_string();
    if selector.identity_changed.is_some() {
        selector.identity_changed = Some(identity_changed(&store, &config));
    }

    let now = Timestamp::now();
    let removal = match store
        .remove_where(&diag, args.dry_run, selector.is_everything(), now, |e, now| selector.matches(e, now))
    {
        Ok(removal) => removal,
        Err(RemoveError::Corrupt(why)) => {
            return Err(eyre!(
                "the cache file '{shown}' is not valid JSON ({why}), so kcc cannot tell which entries match; run 'kcc clear --all' to replace it with an empty cache"
            ));
        }
        Err(RemoveError::Io(e)) if crate::store::file::NotRegular::of(&e).is_some() => {
            return Err(eyre!("cannot clear the cache '{shown}': {e}"));
        }
        Err(RemoveError::Io(e)) => return Err(eyre!("cannot clear the cache '{shown}': {e}; check its permissions")),
    };

    // A key's failure back-off goes with it (`--expired` selects credentials
    // by expiry, which a failure record has none of: it keeps them).
    let failures = if selector.expired {
        Vec::new()
    } else {
        crate::backoff::remove_where(&store.paths.flight_dir(), args.dry_run, |key| {
            let entry = EntryInfo { key: key.into(), ..Default::default() };
            selector.matches(&entry, now)
        })
    };

    let verb = if args.dry_run { "would remove" } else { "removed" };
    for key in &failures {
        println!("{verb} the failure back-off of: {key}");
    }
    if let Some(why) = &removal.reset_corrupt {
        println!(
            "{verb} the corrupt cache file '{shown}' ({why}): it {} an empty cache",
            if args.dry_run { "would become" } else { "is now" }
        );
    }
    for entry in &removal.removed {
        match entry.orphan_in {
            Some(store) => println!("{verb}: {} (no index entry: found in the {} store)", entry.key, store.as_str()),
            None => println!("{verb}: {}", entry.key),
        }
    }
    let n = removal.removed.len();
    let entries = |n: usize| if n == 1 { "entry" } else { "entries" };
    if !failures.is_empty() && removal.removed.is_empty() && removal.reset_corrupt.is_none() {
        println!(
            "{verb} the failure back-off of {} key{}; no cached credential {}",
            failures.len(),
            if failures.len() == 1 { "" } else { "s" },
            if removal.total == 0 { "was there" } else { "matched" }
        );
    } else if removal.total == 0 && removal.reset_corrupt.is_none() {
        println!("the cache '{shown}' is empty; nothing to remove");
    } else if n == 0 && removal.reset_corrupt.is_none() {
        println!("no cached entry matched; nothing removed ({} {} kept)", removal.total, entries(removal.total));
    } else if args.dry_run {
        println!(
            "dry run: would remove {n} of {} cached {}; nothing was changed",
            removal.total,
            entries(removal.total)
        );
    } else {
        println!(
            "removed {n} of {} cached {} ({})",
            removal.total,
            entries(removal.total),
            places(&removal.removed, &shown)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the removed entries were: the file store by its path, secret
/// stores by name (`keyring`, `kernel`), so the summary never names
/// `cache.json` for secrets that never were in it.
fn places(removed: &[EntryInfo], file: &str) -> String {
    let mut names: Vec<String> = Vec::new();
    for entry in removed {
        let name = match entry.backend() {
            "file" => format!("the file '{file}'"),
            other => format!("the {other} store"),
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        names.push(format!("the file '{file}'"));
    }
    format!("from {}", names.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::IndexEntry;

    fn entry(key: &str, user: Option<&str>, expiry: &str) -> EntryInfo {
        EntryInfo {
            key: key.into(),
            meta: user.map(|u| IndexEntry { user: Some(u.into()), backend: "file".into(), ..Default::default() }),
            in_file: true,
            expiry: expiry.parse().ok(),
            ..Default::default()
        }
    }

    #[test]
    fn selectors_and_combine_and_read_both_key_formats() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let go = entry(r#"user="alice" server="https://a/""#, None, "2025-01-01T00:00:00Z");
        let kcc = entry(
            r#"user="bob" server="https://b" exec="aws" api="v1" id=0123456789abcdef0123456789abcdef"#,
            None,
            "2027-01-01T00:00:00Z",
        );
        let indexed = entry("opaque", Some("carol"), "2027-01-01T00:00:00Z");
        let sel = |s: Selector| [&go, &kcc, &indexed].iter().filter(|e| s.matches(e, now)).count();
        assert_eq!(sel(Selector::default()), 3);
        assert_eq!(sel(Selector { user: Some("alice".into()), ..Default::default() }), 1);
        assert_eq!(sel(Selector { server: Some("https://a".into()), ..Default::default() }), 1);
        assert_eq!(
            sel(Selector { user: Some("bob".into()), server: Some("https://a".into()), ..Default::default() }),
            0
        );
        assert_eq!(sel(Selector { user: Some("carol".into()), ..Default::default() }), 1);
        assert_eq!(sel(Selector { expired: true, ..Default::default() }), 1);
        assert_eq!(sel(Selector { keys: vec!["opaque".into()], ..Default::default() }), 1);
    }
}
