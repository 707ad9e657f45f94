//! `kcc inject` / `kcc-injector`: wrap a kubeconfig's exec users in
//! `kcc-cache`, or restore them.
//!
//! Injecting a user turns
//!
//! ```yaml
//! exec: {command: aws, args: [eks, get-token, …]}
//! ```
//!
//! into `command: kcc-cache`, `args: [aws, eks, get-token, …]`,
//! `provideClusterInfo: true` (kcc keys the cache on the server URL kubectl
//! then passes in `KUBERNETES_EXEC_INFO`) and two env entries:
//! `KUBE_CREDENTIAL_CACHE_USER=<user name>` (part of the cache key) and
//! `KUBE_CREDENTIAL_CACHE_INJECTED=<marker>`.
//!
//! **Why a marker**: restore must give back exactly what was there
//! (`restore(inject(x)) == x`), and inject changes things restore cannot
//! guess — was `provideClusterInfo` absent, `false` or already `true` (GKE's
//! plugin needs it)? was `env` absent or `null`? was a relative command
//! (`./bin/get-token`, resolved by client-go against the kubeconfig's
//! directory, but not once it is an argument) made absolute? The marker
//! records only the answers that differ from "nothing to undo": `v1`, then
//! `;key=value` pairs, values percent-encoded, e.g.
//! `v1;provideClusterInfo=absent;env=absent`. It lives in the exec `env`
//! because everything inject touched is in the exec section: a tool that
//! replaces the section (`aws eks update-kubeconfig`) drops the marker with
//! it, and kubectl treats it as one more environment variable of the plugin
//! (shown by `kubectl config view`, ignored by kcc-cache and the plugin).
//!
//! Users injected by the Go kcc-injector carry no marker; they restore the
//! way the Go tool restored them: command = args\[0\], args = the rest,
//! `provideClusterInfo: false`, `KUBE_CREDENTIAL_CACHE_USER` entries removed.
//!
//! A user already wrapped (command is the `-c` command, `kcc-cache`, or
//! `kcc` / `kubectl-kcc` with a first argument `cache`; exact names only,
//! see [`plugin::self_name`]) is not wrapped again; only its
//! `KUBE_CREDENTIAL_CACHE_USER` entry is corrected, so injecting twice
//! equals injecting once. `-c kcc` (the main binary) injects `kcc cache …`,
//! since `kcc` alone is not a plugin proxy; `-c kubectl-kcc` likewise.
//!
//! Without `-c` the command is `kcc-cache` (what the Go kcc writes), except
//! when kcc runs as the kubectl plugin (`kubectl kcc inject`, argv\[0\]
//! `kubectl-kcc`) and no `kcc-cache` is on PATH: krew installs only
//! `kubectl-kcc`, so that is what kubectl can run ([`default_command`]).
//!
//! Files: the ones given, else those in `$KUBECONFIG` (missing ones skipped,
//! as kubectl does), else `~/.kube/config`. Without `-i` the result goes to
//! stdout; with several files each is a YAML document headed by a
//! `# file: PATH` comment, separated by `---`. With `-i` every file is
//! locked, read and checked before the first one is written, so an error
//! leaves all of them untouched.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use color_eyre::Result;
use color_eyre::eyre::{WrapErr, eyre};
use serde_yml::{Mapping, Value};

use crate::cli::InjectArgs;
use crate::config::ENV_USER;
use crate::kubeconfig::{self, Kubeconfig, KubeconfigLock, merge};
use crate::platform::{self, Os};
use crate::plugin::{self, SelfName};

/// The env entry that records what inject changed.
pub const ENV_INJECTED: &str = "KUBE_CREDENTIAL_CACHE_INJECTED";

/// The command inject writes when `-c` is not given: `kcc-cache`, or
/// `kubectl-kcc` when run as the kubectl plugin and `kcc-cache` cannot be
/// found (a krew install, where `kubectl-kcc` is the only name on PATH).
pub fn default_command(as_kubectl_plugin: bool, kcc_cache_found: bool) -> &'static str {
    if as_kubectl_plugin && !kcc_cache_found { "kubectl-kcc" } else { "kcc-cache" }
}

/// Runs `kcc inject` / `kcc-injector` / `kubectl kcc inject`.
pub fn run(args: InjectArgs, as_kubectl_plugin: bool) -> Result<ExitCode> {
    let command = match &args.command {
        Some(c) => c.clone(),
        None => default_command(as_kubectl_plugin, as_kubectl_plugin && platform::find_command("kcc-cache").is_some())
            .to_string(),
    };
    let files = resolve_files(&args.files, std::env::var_os("KUBECONFIG"), home_dir())?;
    let cwd = std::env::current_dir().wrap_err("cannot determine the current directory")?;
    let mode = if args.restore { Mode::Restore } else { Mode::Inject };
    let mut stderr = std::io::stderr().lock();
    for skipped in &files.skipped {
        let _ = writeln!(stderr, "kcc: note: skipping '{}' from KUBECONFIG: it does not exist", skipped.display());
    }

    // Lock every file first (in place), then load and rewrite them all in
    // memory: a problem in any file leaves every file untouched.
    let mut locks = Vec::new();
    let mut seen = HashSet::new();
    let mut work = Vec::new();
    for path in &files.paths {
        let identity = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        if !seen.insert(identity) {
            continue;
        }
        if args.in_place {
            if !path.exists() {
                // Report the missing file, not a lock file that cannot be created.
                Kubeconfig::load(path)?;
            }
            locks.push(KubeconfigLock::acquire(path, kubeconfig::LOCK_WAIT)?);
        }
        let mut config = Kubeconfig::load(path)?;
        let dir = Os::CURRENT.absolute_dir(&cwd.to_string_lossy(), &path.to_string_lossy());
        let changes = match mode {
            Mode::Inject => inject(config.root_mut(), &command, &dir, Os::CURRENT),
            Mode::Restore => restore(config.root_mut(), &command),
        }
        .wrap_err_with(|| format!("kubeconfig '{}'", path.display()))?;
        work.push((config, changes));
    }

    for (config, changes) in &work {
        for (user, why) in &changes.skipped {
            let _ = writeln!(stderr, "kcc: warning: '{}': user '{user}' left as it is: {why}", config.path().display());
        }
    }
    if mode == Mode::Inject && work.iter().any(|(_, c)| c.injected + c.already > 0) {
        warn_if_not_on_path(&mut stderr, &command);
    }

    if !args.in_place {
        let mut stdout = std::io::stdout().lock();
        let several = work.len() > 1;
        for (i, (config, changes)) in work.iter().enumerate() {
            if several {
                if i > 0 {
                    writeln!(stdout, "---")?;
                }
                writeln!(stdout, "# file: {}", config.path().display())?;
            }
            if changes.changed() {
                stdout.write_all(config.to_yaml().as_bytes())?;
            } else {
                stdout.write_all(config.original())?;
                if !config.original().is_empty() && !config.original().ends_with(b"\n") {
                    writeln!(stdout)?;
                }
            }
        }
        stdout.flush()?;
        return Ok(ExitCode::SUCCESS);
    }

    for (config, changes) in &work {
        let path = config.path();
        if !changes.changed() {
            let _ = writeln!(stderr, "kcc: '{}': nothing to change", path.display());
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|e| eyre!("cannot read kubeconfig '{}': {e}", path.display()))?;
        let backup = kubeconfig::backup(path, config.original(), kubeconfig::mode_of(&meta))?;
        kubeconfig::write_in_place(path, config.to_yaml().as_bytes())?;
        let _ =
            writeln!(stderr, "kcc: '{}': {} (backup: '{}')", path.display(), changes.summary(mode), backup.display());
    }
    drop(locks);
    Ok(ExitCode::SUCCESS)
}

/// Inject or restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Wrap exec users.
    Inject,
    /// Undo the wrapping.
    Restore,
}

/// What one pass over a kubeconfig did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Users wrapped now.
    pub injected: usize,
    /// Users that were wrapped already.
    pub already: usize,
    /// Wrapped users whose `KUBE_CREDENTIAL_CACHE_USER` entry was corrected.
    pub fixed: usize,
    /// Users unwrapped.
    pub restored: usize,
    /// Exec users left alone, with the reason.
    pub skipped: Vec<(String, String)>,
}

impl Changes {
    /// Whether the document changed.
    pub fn changed(&self) -> bool {
        self.injected + self.fixed + self.restored > 0
    }

    fn summary(&self, mode: Mode) -> String {
        match mode {
            Mode::Inject if self.fixed > 0 => format!(
                "injected {} exec user(s), corrected the cache user of {} already injected",
                self.injected, self.fixed
            ),
            Mode::Inject => format!("injected {} exec user(s)", self.injected),
            Mode::Restore => format!("restored {} exec user(s)", self.restored),
        }
    }
}

/// The files to work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// Existing (or explicitly named) kubeconfigs, in order.
    pub paths: Vec<PathBuf>,
    /// Entries of `$KUBECONFIG` that do not exist.
    pub skipped: Vec<PathBuf>,
}

/// Picks the files like kubectl ([`merge::locations`], the loader doctor
/// uses too): the arguments, else `$KUBECONFIG` (`:` separated, `;` on
/// Windows; empty entries and duplicates dropped, missing files skipped),
/// else `~/.kube/config`.
pub fn resolve_files(args: &[String], kubeconfig_env: Option<OsString>, home: Option<PathBuf>) -> Result<Files> {
    let from_env = args.is_empty() && kubeconfig_env.as_ref().is_some_and(|v| !v.is_empty());
    let shown = kubeconfig_env.as_ref().map(|v| v.to_string_lossy().into_owned()).unwrap_or_default();
    let no_home = args.is_empty() && !from_env && home.is_none();
    let located = merge::locations(args, kubeconfig_env, home, Os::CURRENT);
    if from_env {
        let (paths, skipped): (Vec<PathBuf>, Vec<PathBuf>) =
            located.into_iter().map(|(p, _)| p).partition(|p| p.exists());
        if paths.is_empty() {
            return Err(eyre!(
                "none of the files in KUBECONFIG exist ('{shown}'); pass the kubeconfig to edit as an argument"
            ));
        }
        return Ok(Files { paths, skipped });
    }
    if no_home {
        return Err(eyre!(
            "cannot find the home directory for ~/.kube/config; set HOME or pass the kubeconfig as an argument"
        ));
    }
    Ok(Files { paths: located.into_iter().map(|(p, _)| p).collect(), skipped: Vec::new() })
}

fn home_dir() -> Option<PathBuf> {
    etcetera::home_dir().ok()
}

/// How many leading words of `command args…` belong to a kcc wrapper, if
/// this exec section is wrapped: 1 for `kcc-cache PLUGIN…` (or the `-c`
/// command), 2 for `kcc cache PLUGIN…` / `kubectl-kcc cache PLUGIN…`, one
/// more when a `--` comes before the plugin. Only kcc's exact names count
/// ([`plugin::self_name`]): `/opt/tools/kcc-cache-token.sh` is a plugin.
fn wrapper_words(command: &str, args: &[Value], injected_command: &str) -> Option<usize> {
    let words = match plugin::self_name(command) {
        Some(SelfName::Multi) => (args.first().and_then(Value::as_str) == Some("cache")).then_some(2)?,
        Some(SelfName::Proxy) => 1,
        None if command == injected_command => 1,
        None => return None,
    };
    Some(if args.get(words - 1).and_then(Value::as_str) == Some("--") { words + 1 } else { words })
}

/// The exec users of a kubeconfig: `(name, exec mapping)`. Users without an
/// exec section are not returned.
fn exec_users(root: &mut Value) -> Result<Vec<(String, &mut Mapping)>> {
    let mut out = Vec::new();
    let Some(users) = root.get_mut("users") else { return Ok(out) };
    let users = match users {
        Value::Null => return Ok(out),
        Value::Sequence(users) => users,
        _ => return Err(eyre!("'users' is not a list")),
    };
    for (i, entry) in users.iter_mut().enumerate() {
        let Value::Mapping(entry) = entry else { return Err(eyre!("users[{i}] is not a mapping")) };
        let name = match entry.get("name") {
            Some(Value::String(n)) => n.clone(),
            _ => return Err(eyre!("users[{i}] has no name")),
        };
        let Some(user) = kubeconfig::mapping_mut(entry, "user") else { continue };
        match user.get_mut("exec") {
            None | Some(Value::Null) => {}
            Some(Value::Mapping(exec)) => out.push((name, exec)),
            Some(_) => return Err(eyre!("user '{name}': 'exec' is not a mapping")),
        }
    }
    Ok(out)
}

/// An `env` entry `{name: NAME, value: VALUE}`.
fn env_entry(name: &str, value: &str) -> Value {
    let mut m = Mapping::new();
    m.insert("name", Value::String(name.into()));
    m.insert("value", Value::String(value.into()));
    Value::Mapping(m)
}

fn entry_name(entry: &Value) -> Option<&str> {
    entry.get("name").and_then(Value::as_str)
}

/// The `args` of an exec section as a list (an error names the user).
fn args_of<'a>(name: &str, exec: &'a Mapping) -> Result<&'a [Value]> {
    match exec.get("args") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Sequence(s)) => Ok(s),
        Some(_) => Err(eyre!("user '{name}': exec 'args' is not a list")),
    }
}

/// Wraps every exec user of `root` in `command`. `dir` is the kubeconfig's
/// absolute directory, against which relative plugin paths are resolved.
/// `os` decides what counts as a relative path and how it is joined (so
/// every platform's rules are tested on any machine).
pub fn inject(root: &mut Value, command: &str, dir: &str, os: Os) -> Result<Changes> {
    let mut changes = Changes::default();
    let main_binary = plugin::self_name(command) == Some(SelfName::Multi);
    for (name, exec) in exec_users(root)? {
        let plugin = match exec.get("command") {
            Some(Value::String(c)) if !c.is_empty() => c.clone(),
            _ => {
                changes.skipped.push((name, "its exec section has no command".into()));
                continue;
            }
        };
        if wrapper_words(&plugin, args_of(&name, exec)?, command).is_some() {
            changes.already += 1;
            if fix_user_entry(exec, &name) {
                changes.fixed += 1;
            }
            continue;
        }
        let mut marker = Marker::default();

        let plugin_word = if os.has_separator(&plugin) && !os.is_absolute(&plugin) {
            let absolute = os.join(dir, &plugin);
            marker.command = Some(plugin);
            absolute
        } else {
            plugin
        };
        let mut prefix: Vec<Value> = Vec::new();
        if main_binary {
            prefix.push(Value::String("cache".into()));
        }
        prefix.push(Value::String(plugin_word));

        match exec.get_mut("args") {
            None => {
                marker.args = Some(Original::Absent);
                exec.insert("args", Value::Sequence(prefix));
            }
            Some(v @ Value::Null) => {
                marker.args = Some(Original::Null);
                *v = Value::Sequence(prefix);
            }
            Some(Value::Sequence(args)) => {
                args.splice(0..0, prefix);
            }
            Some(_) => return Err(eyre!("user '{name}': exec 'args' is not a list")),
        }
        exec.insert("command", Value::String(command.into()));

        match exec.get_mut("provideClusterInfo") {
            Some(Value::Bool(true)) => {}
            None => {
                marker.provide_cluster_info = Some(Original::Absent);
                exec.insert("provideClusterInfo", Value::Bool(true));
            }
            Some(v @ Value::Bool(false)) => {
                marker.provide_cluster_info = Some(Original::False);
                *v = Value::Bool(true);
            }
            Some(v @ Value::Null) => {
                marker.provide_cluster_info = Some(Original::Null);
                *v = Value::Bool(true);
            }
            Some(_) => return Err(eyre!("user '{name}': exec 'provideClusterInfo' is neither true nor false")),
        }

        // Last: the marker must know everything above.
        match exec.get("env") {
            None => marker.env = Some(Original::Absent),
            Some(Value::Null) => marker.env = Some(Original::Null),
            Some(Value::Sequence(_)) => {}
            Some(_) => return Err(eyre!("user '{name}': exec 'env' is not a list")),
        }
        if marker.env.is_some() {
            // Replacing an existing key keeps its place in the mapping.
            exec.insert("env", Value::Sequence(Vec::new()));
        }
        let Some(Value::Sequence(env)) = exec.get_mut("env") else {
            return Err(eyre!("user '{name}': exec 'env' is not a list"));
        };
        let mut index = 0;
        env.retain(|entry| {
            let ours = matches!(entry_name(entry), Some(n) if n == ENV_USER || n == ENV_INJECTED);
            if ours {
                marker.removed_env.push((index, entry.clone()));
            }
            index += 1;
            !ours
        });
        env.push(env_entry(ENV_USER, &name));
        env.push(env_entry(ENV_INJECTED, &marker.encode()));
        changes.injected += 1;
    }
    Ok(changes)
}

/// Makes sure a wrapped user has exactly one `KUBE_CREDENTIAL_CACHE_USER`
/// entry naming it. Returns whether anything changed.
fn fix_user_entry(exec: &mut Mapping, name: &str) -> bool {
    let wanted = Value::String(name.into());
    match exec.get_mut("env") {
        Some(Value::Sequence(env)) => {
            let ours: Vec<usize> =
                env.iter().enumerate().filter(|(_, e)| entry_name(e) == Some(ENV_USER)).map(|(i, _)| i).collect();
            match ours.as_slice() {
                [] => {
                    let at = env.iter().position(|e| entry_name(e) == Some(ENV_INJECTED)).unwrap_or(env.len());
                    env.insert(at, env_entry(ENV_USER, name));
                    true
                }
                [only] if env[*only].get("value") == Some(&wanted) => false,
                [first, rest @ ..] => {
                    if let Value::Mapping(entry) = &mut env[*first] {
                        entry.insert("value", wanted);
                    }
                    for i in rest.iter().rev() {
                        env.remove(*i);
                    }
                    true
                }
            }
        }
        Some(v @ Value::Null) => {
            *v = Value::Sequence(vec![env_entry(ENV_USER, name)]);
            true
        }
        None => {
            exec.insert("env", Value::Sequence(vec![env_entry(ENV_USER, name)]));
            true
        }
        // A non-list env is something kubectl refuses; leave it to the user.
        Some(_) => false,
    }
}

/// Unwraps every exec user of `root` that kcc (or the Go kcc) wrapped.
pub fn restore(root: &mut Value, command: &str) -> Result<Changes> {
    let mut changes = Changes::default();
    for (name, exec) in exec_users(root)? {
        let Some(Value::String(current)) = exec.get("command") else { continue };
        let current = current.clone();
        let Some(words) = wrapper_words(&current, args_of(&name, exec)?, command) else { continue };
        let args = args_of(&name, exec)?;
        let Some(Value::String(plugin)) = args.get(words - 1) else {
            changes.skipped.push((name, format!("'{current}' wraps no plugin command")));
            continue;
        };
        let plugin = plugin.clone();
        let marker = match exec.get("env") {
            Some(Value::Sequence(env)) => env
                .iter()
                .find(|e| entry_name(e) == Some(ENV_INJECTED))
                .map(|e| match e.get("value").and_then(Value::as_str) {
                    Some(text) => Marker::decode(text),
                    None => Err(eyre!("its {ENV_INJECTED} entry has no value")),
                })
                .transpose()
                .wrap_err_with(|| format!("user '{name}'"))?,
            _ => None,
        };

        exec.insert("command", Value::String(marker.as_ref().and_then(|m| m.command.clone()).unwrap_or(plugin)));
        if let Some(Value::Sequence(args)) = exec.get_mut("args") {
            args.drain(0..words);
            if args.is_empty() {
                match marker.as_ref().and_then(|m| m.args) {
                    Some(Original::Absent) => {
                        exec.remove("args");
                    }
                    Some(_) => {
                        exec.insert("args", Value::Null);
                    }
                    None => {}
                }
            }
        }

        match marker.as_ref().map(|m| m.provide_cluster_info) {
            Some(None) => {}
            Some(Some(Original::Absent)) => {
                exec.remove("provideClusterInfo");
            }
            Some(Some(Original::Null)) => {
                exec.insert("provideClusterInfo", Value::Null);
            }
            // Marked `false`, or no marker: the Go tool turned it off again.
            Some(Some(Original::False)) | None => {
                exec.insert("provideClusterInfo", Value::Bool(false));
            }
        }

        if let Some(Value::Sequence(env)) = exec.get_mut("env") {
            env.retain(|e| !matches!(entry_name(e), Some(n) if n == ENV_USER || n == ENV_INJECTED));
            if let Some(marker) = &marker {
                for (index, entry) in &marker.removed_env {
                    env.insert((*index).min(env.len()), entry.clone());
                }
            }
            if env.is_empty() {
                match marker.as_ref().map(|m| m.env) {
                    Some(Some(Original::Absent)) => {
                        exec.remove("env");
                    }
                    Some(None) => {}
                    // `null` as recorded, or the Go tool's `env: null`.
                    Some(Some(_)) | None => {
                        exec.insert("env", Value::Null);
                    }
                }
            }
        }
        changes.restored += 1;
    }
    Ok(changes)
}

/// A field's value before inject changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Original {
    Absent,
    Null,
    False,
}

impl Original {
    fn as_str(self) -> &'static str {
        match self {
            Original::Absent => "absent",
            Original::Null => "null",
            Original::False => "false",
        }
    }

    fn parse(s: &str) -> Option<Original> {
        match s {
            "absent" => Some(Original::Absent),
            "null" => Some(Original::Null),
            "false" => Some(Original::False),
            _ => None,
        }
    }
}

/// What inject changed in one exec section; `None` fields were left as
/// they were (a list, `true`, a command without a relative path).
#[derive(Debug, Default, Clone, PartialEq)]
struct Marker {
    provide_cluster_info: Option<Original>,
    args: Option<Original>,
    env: Option<Original>,
    command: Option<String>,
    /// Env entries inject removed (stale `KUBE_CREDENTIAL_CACHE_USER` or
    /// marker entries), with their original index.
    removed_env: Vec<(usize, Value)>,
}

impl Marker {
    fn encode(&self) -> String {
        let mut out = String::from("v1");
        for (key, original) in
            [("provideClusterInfo", self.provide_cluster_info), ("args", self.args), ("env", self.env)]
        {
            if let Some(o) = original {
                out.push_str(&format!(";{key}={}", o.as_str()));
            }
        }
        if let Some(command) = &self.command {
            out.push_str(&format!(";command={}", percent_encode(command)));
        }
        for (index, entry) in &self.removed_env {
            // Serialising a parsed YAML value to JSON cannot fail: its keys
            // are strings and its numbers finite or mapped by serde_json.
            let json = serde_json::to_string(entry).unwrap_or_else(|_| "null".into());
            out.push_str(&format!(";removedEnv={index}:{}", percent_encode(&json)));
        }
        out
    }

    fn decode(text: &str) -> Result<Marker> {
        let mut parts = text.split(';');
        if parts.next() != Some("v1") {
            return Err(eyre!(
                "its {ENV_INJECTED} marker '{text}' is not one this kcc understands; restore with the kcc version that injected it"
            ));
        }
        let mut marker = Marker::default();
        for part in parts {
            let bad = || eyre!("its {ENV_INJECTED} marker has an unreadable part '{part}'");
            let (key, value) = part.split_once('=').ok_or_else(bad)?;
            match key {
                "provideClusterInfo" => marker.provide_cluster_info = Some(Original::parse(value).ok_or_else(bad)?),
                "args" => marker.args = Some(Original::parse(value).ok_or_else(bad)?),
                "env" => marker.env = Some(Original::parse(value).ok_or_else(bad)?),
                "command" => marker.command = Some(percent_decode(value).ok_or_else(bad)?),
                "removedEnv" => {
                    let (index, json) = value.split_once(':').ok_or_else(bad)?;
                    let index = index.parse().map_err(|_| bad())?;
                    let json = percent_decode(json).ok_or_else(bad)?;
                    let entry: Value = serde_json::from_str(&json).map_err(|_| bad())?;
                    marker.removed_env.push((index, entry));
                }
                _ => return Err(bad()),
            }
        }
        Ok(marker)
    }
}

/// Percent-encodes everything but a small safe set (`;` and `=` included,
/// so the marker's own separators never appear in a value).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_./:@+,~ ".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// kubectl runs the exec command itself; if it is not on PATH every kubectl
/// call fails with "executable kcc-cache not found". Say so now, with the fix.
fn warn_if_not_on_path(stderr: &mut impl Write, command: &str) {
    if platform::find_command(command).is_some() {
        return;
    }
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "$(command -v kcc)".into());
    let name = Path::new(command).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let fix = if name == "kcc-cache" {
        "run 'kcc install-links' (or 'kcc install-links --dir DIR' for a directory on PATH)".to_string()
    } else {
        format!("create it as a link to kcc in a directory on PATH, e.g. ln -s '{exe}' ~/.local/bin/{name}")
    };
    let _ = writeln!(
        stderr,
        "kcc: warning: '{command}' is not on PATH, so kubectl will fail with \"executable {command} not found\"; {fix}"
    );
}

#[cfg(test)]
mod tests {
    #![allow(deprecated)]
    use super::*;

    fn parse(text: &str) -> Value {
        serde_yml::from_str(text).unwrap()
    }

    fn yaml(v: &Value) -> String {
        kubeconfig::yaml::to_string(v)
    }

    const DIR: &str = "/home/u/.kube";

    #[test]
    fn inject_then_restore_is_the_identity_for_every_shape() {
        for exec in [
            "{command: aws, args: [eks, get-token], env: [{name: AWS_PROFILE, value: p}]}",
            "{command: aws}",
            "{command: aws, args: null, env: null, provideClusterInfo: null}",
            "{command: aws, args: [], env: [], provideClusterInfo: false}",
            "{command: gke-gcloud-auth-plugin, provideClusterInfo: true, installHint: \"a\\nb\\n\"}",
            "{command: ./bin/get-token, args: [x]}",
            "{command: ../tools/t}",
            "{command: aws, env: [{name: KUBE_CREDENTIAL_CACHE_USER, value: stale}, {name: A, value: b}, {name: KUBE_CREDENTIAL_CACHE_USER, value: x}]}",
            "{command: aws, env: [{name: KUBE_CREDENTIAL_CACHE_INJECTED, value: \"v9;x\"}]}",
        ] {
            let original = parse(&format!("kind: Config\nusers:\n- name: \"on\"\n  user:\n    exec: {exec}\n"));
            for command in ["kcc-cache", "kcc", "/opt/bin/kcc-cache"] {
                let mut v = original.clone();
                let c = inject(&mut v, command, DIR, Os::Linux).unwrap();
                assert_eq!(c.injected, 1, "{exec}");
                let once = yaml(&v);
                assert!(!inject(&mut v, command, DIR, Os::Linux).unwrap().changed(), "idempotent: {exec}");
                assert_eq!(yaml(&v), once);
                let r = restore(&mut v, command).unwrap();
                assert_eq!(r.restored, 1);
                assert_eq!(yaml(&v), yaml(&original), "{exec} with -c {command}\ninjected:\n{once}");
            }
        }
    }

    #[test]
    fn inject_wraps_as_documented() {
        let mut v = parse("users:\n- name: u\n  user:\n    exec:\n      command: ./bin/tok\n      args: [a]\n");
        inject(&mut v, "kcc-cache", DIR, Os::Linux).unwrap();
        assert_eq!(
            yaml(&v["users"][0]["user"]["exec"]),
            "command: kcc-cache\nargs:\n- /home/u/.kube/bin/tok\n- a\nprovideClusterInfo: true\nenv:\n- name: KUBE_CREDENTIAL_CACHE_USER\n  value: u\n- name: KUBE_CREDENTIAL_CACHE_INJECTED\n  value: v1;provideClusterInfo=absent;env=absent;command=./bin/tok\n"
        );
    }

    #[test]
    fn go_injected_users_are_kept_and_restored_like_the_go_tool() {
        let go = "users:\n- name: new-name\n  user:\n    exec:\n      command: kcc-cache\n      args: [aws, eks]\n      env:\n      - name: KUBE_CREDENTIAL_CACHE_USER\n        value: old-name\n      provideClusterInfo: true\n";
        let mut v = parse(go);
        let c = inject(&mut v, "kcc-cache", DIR, Os::Linux).unwrap();
        assert_eq!((c.injected, c.already, c.fixed), (0, 1, 1));
        assert_eq!(v["users"][0]["user"]["exec"]["env"][0]["value"], Value::String("new-name".into()));
        restore(&mut v, "kcc-cache").unwrap();
        assert_eq!(
            yaml(&v["users"][0]["user"]["exec"]),
            "command: aws\nargs:\n- eks\nenv: null\nprovideClusterInfo: false\n"
        );
    }

    #[test]
    fn marker_round_trips_awkward_values() {
        let m = Marker {
            provide_cluster_info: Some(Original::False),
            args: Some(Original::Null),
            env: None,
            command: Some("./a;b=c%d é".into()),
            removed_env: vec![(2, parse("{name: KUBE_CREDENTIAL_CACHE_USER, value: \"x;y\"}"))],
        };
        assert_eq!(Marker::decode(&m.encode()).unwrap(), m);
        assert!(Marker::decode("v2").is_err());
        assert!(Marker::decode("v1;what=1").is_err());
    }

    #[test]
    fn files_come_from_args_then_kubeconfig_then_home() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "").unwrap();
        let missing = dir.path().join("missing");
        let list = std::env::join_paths([&a, &missing, &a]).unwrap();
        let f = resolve_files(&[], Some(list), None).unwrap();
        assert_eq!(f.paths, std::slice::from_ref(&a));
        assert_eq!(f.skipped, std::slice::from_ref(&missing));
        let f = resolve_files(&[], None, Some(PathBuf::from("/h"))).unwrap();
        assert_eq!(f.paths, [PathBuf::from("/h/.kube/config")]);
        let f = resolve_files(&["x".into()], Some(OsString::from("/y")), None).unwrap();
        assert_eq!(f.paths, [PathBuf::from("x")]);
        assert!(resolve_files(&[], Some(missing.into_os_string()), None).is_err());
    }

    #[test]
    fn relative_plugins_become_absolute_in_the_platform_form() {
        let text = "users:\n- name: a\n  user:\n    exec:\n      command: C:\\tools\\aws.exe\n- name: t\n  user:\n    exec:\n      command: bin\\token.exe\n- name: p\n  user:\n    exec:\n      command: tok\n";
        let mut v = parse(text);
        let c = inject(&mut v, "kcc-cache", r"C:\Users\u\.kube", Os::Windows).unwrap();
        assert_eq!(c.injected, 3);
        let first = |i: usize| v["users"][i]["user"]["exec"]["args"][0].as_str().unwrap().to_string();
        assert_eq!(first(0), r"C:\tools\aws.exe", "absolute: kept");
        assert_eq!(first(1), r"C:\Users\u\.kube\bin\token.exe", "relative with a separator: made absolute");
        assert_eq!(first(2), "tok", "a bare name stays a PATH lookup");
        restore(&mut v, "kcc-cache").unwrap();
        assert_eq!(yaml(&v), yaml(&parse(text)));
        // On Unix a backslash is part of a name, not a separator.
        let mut v = parse(text);
        inject(&mut v, "kcc-cache", DIR, Os::Linux).unwrap();
        assert_eq!(v["users"][1]["user"]["exec"]["args"][0].as_str().unwrap(), r"bin\token.exe");
    }

    #[test]
    fn the_kubectl_plugin_injects_itself_only_when_kcc_cache_is_missing() {
        assert_eq!(default_command(false, false), "kcc-cache");
        assert_eq!(default_command(false, true), "kcc-cache");
        assert_eq!(default_command(true, true), "kcc-cache");
        assert_eq!(default_command(true, false), "kubectl-kcc");
    }

    #[test]
    fn kubectl_kcc_cache_is_kccs_own_wrapping_with_or_without_dashes() {
        let original = "users:\n- name: u\n  user:\n    exec:\n      command: aws\n      args: [eks, get-token]\n";
        let mut v = parse(original);
        let c = inject(&mut v, "kubectl-kcc", DIR, Os::Linux).unwrap();
        assert_eq!(c.injected, 1);
        assert_eq!(v["users"][0]["user"]["exec"]["args"][0].as_str(), Some("cache"));
        assert_eq!(inject(&mut v, "kcc-cache", DIR, Os::Linux).unwrap().already, 1);
        restore(&mut v, "kcc-cache").unwrap();
        assert_eq!(yaml(&v), yaml(&parse(original)));

        let by_hand =
            "users:\n- name: u\n  user:\n    exec:\n      command: /k/kubectl-kcc\n      args: [cache, --, aws, eks]\n";
        let mut v = parse(by_hand);
        assert_eq!(inject(&mut v, "kcc-cache", DIR, Os::Linux).unwrap().already, 1);
        restore(&mut v, "kcc-cache").unwrap();
        assert_eq!(v["users"][0]["user"]["exec"]["command"].as_str(), Some("aws"));
        assert_eq!(v["users"][0]["user"]["exec"]["args"][0].as_str(), Some("eks"));
    }

    #[test]
    fn a_plugin_named_like_kcc_is_wrapped_not_taken_for_kcc() {
        let original = "users:\n- name: u\n  user:\n    exec:\n      command: /opt/tools/kcc-cache-token.sh\n      args: [--profile, p]\n";
        let mut v = parse(original);
        assert_eq!(inject(&mut v, "kcc-cache", DIR, Os::Linux).unwrap().injected, 1);
        restore(&mut v, "kcc-cache").unwrap();
        assert_eq!(yaml(&v), yaml(&parse(original)));
    }
}
