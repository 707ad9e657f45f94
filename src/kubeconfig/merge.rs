//! Which kubeconfig files kubectl reads, and what they say merged: the one
//! loader `kcc doctor` and `kcc inject` share.
//!
//! [`locations`] follows client-go's rules: `--kubeconfig` files (or
//! inject's arguments), else the `$KUBECONFIG` list (`:`-separated, `;` on
//! Windows — [`Os::split_list`]; empty entries and duplicates dropped),
//! else `~/.kube/config` (`%USERPROFILE%\.kube\config` on Windows).
//!
//! [`load`] reads each file through [`super::parse`], the validation the
//! writer uses too (one YAML document, a mapping, kind `Config`, YAML-1.1
//! booleans read as kubectl reads them), then takes a typed, read-only view
//! of what doctor explains (contexts, cluster servers, users' `exec`
//! sections). Merging: the first file that defines a name (user, cluster,
//! context) or `current-context` wins. Nothing here is ever written back;
//! inject edits the lossless [`super::Kubeconfig`] model instead.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::platform::Os;

/// Where a kubeconfig file name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileSource {
    /// `--kubeconfig`.
    Flag,
    /// `$KUBECONFIG`.
    Env,
    /// `~/.kube/config`.
    Default,
}

impl FileSource {
    /// The word doctor shows.
    pub fn as_str(self) -> &'static str {
        match self {
            FileSource::Flag => "flag",
            FileSource::Env => "env",
            FileSource::Default => "default",
        }
    }
}

/// The kubeconfig files kubectl would read on `os`, in merge order.
pub fn locations(
    flag: &[String],
    env_kubeconfig: Option<OsString>,
    home: Option<PathBuf>,
    os: Os,
) -> Vec<(PathBuf, FileSource)> {
    if !flag.is_empty() {
        return flag.iter().map(|f| (PathBuf::from(f), FileSource::Flag)).collect();
    }
    if let Some(list) = env_kubeconfig.filter(|v| !v.is_empty()) {
        let mut out: Vec<(PathBuf, FileSource)> = Vec::new();
        for p in os.split_list(&list.to_string_lossy()).into_iter().filter(|p| !p.is_empty()).map(PathBuf::from) {
            // client-go skips duplicates.
            if !out.iter().any(|(q, _)| *q == p) {
                out.push((p, FileSource::Env));
            }
        }
        return out;
    }
    home.map(|h| vec![(PathBuf::from(os.default_kubeconfig(&h.to_string_lossy())), FileSource::Default)])
        .unwrap_or_default()
}

/// One kubeconfig file as read from disk.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Kubeconfig {
    /// `current-context`.
    #[serde(default)]
    pub current_context: Option<String>,
    /// `clusters`.
    #[serde(default)]
    pub clusters: Option<Vec<Named<Cluster>>>,
    /// `contexts`.
    #[serde(default)]
    pub contexts: Option<Vec<Named<Context>>>,
    /// `users`.
    #[serde(default)]
    pub users: Option<Vec<NamedUser>>,
}

/// A `name` + item list element (`clusters[]`, `contexts[]`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Named<T> {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// `cluster:` / `context:`.
    #[serde(default, alias = "cluster", alias = "context")]
    pub item: Option<T>,
}

/// `users[]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NamedUser {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// `user:`.
    #[serde(default)]
    pub user: Option<User>,
}

/// `clusters[].cluster`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Cluster {
    /// The API server URL.
    #[serde(default)]
    pub server: Option<String>,
}

/// `contexts[].context`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Context {
    /// The cluster's name.
    #[serde(default)]
    pub cluster: Option<String>,
    /// The user's name.
    #[serde(default)]
    pub user: Option<String>,
}

/// `users[].user`; only `exec` matters to kcc.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct User {
    /// The exec credential plugin, if any.
    #[serde(default)]
    pub exec: Option<Exec>,
}

/// `users[].user.exec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exec {
    /// The command kubectl runs.
    #[serde(default)]
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// Extra environment for the plugin.
    #[serde(default)]
    pub env: Option<Vec<EnvVar>>,
    /// The ExecCredential apiVersion kubectl asks for.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Whether kubectl passes the cluster (server URL) to the plugin.
    #[serde(default)]
    pub provide_cluster_info: Option<bool>,
    /// `Never`, `IfAvailable` or `Always`.
    #[serde(default)]
    pub interactive_mode: Option<String>,
}

impl Exec {
    /// The value the exec env gives `name`, if any (the last entry wins, as
    /// it does when client-go appends them to the environment).
    pub fn env_value(&self, name: &str) -> Option<&str> {
        self.env.iter().flatten().rev().find(|e| e.name == name).map(|e| e.value.as_str())
    }
}

/// `exec.env[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EnvVar {
    /// Variable name.
    #[serde(default)]
    pub name: String,
    /// Its value (may be a secret: never shown, except for kcc's own variables).
    #[serde(default)]
    pub value: String,
}

/// What became of one file.
#[derive(Debug, Clone)]
pub enum FileState {
    /// Read and parsed.
    Loaded(Box<Kubeconfig>),
    /// Not there.
    Missing,
    /// Unreadable or not YAML kubectl would accept.
    Invalid(String),
}

/// One file of the merged set.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// Its path.
    pub path: PathBuf,
    /// Why it was read.
    pub source: FileSource,
    /// What came of it.
    pub state: FileState,
}

/// A user with an exec section, from the file that defined it first.
#[derive(Debug, Clone)]
pub struct ExecUser {
    /// The user's name.
    pub name: String,
    /// The file it came from (relative commands resolve against its directory).
    pub file: PathBuf,
    /// Its exec section.
    pub exec: Exec,
}

/// All files merged the way kubectl merges them.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    /// Every file in load order.
    pub files: Vec<LoadedFile>,
    /// The first `current-context` set.
    pub current_context: Option<String>,
    /// Cluster name → server, first definition wins.
    pub clusters: Vec<(String, Option<String>)>,
    /// Contexts, first definition wins.
    pub contexts: Vec<(String, Context)>,
    /// Users with exec, first definition wins (a name defined first without
    /// exec hides later ones with it, as in kubectl).
    pub users: Vec<ExecUser>,
}

impl Merged {
    /// The server URL of cluster `name`.
    pub fn server(&self, cluster: &str) -> Option<&str> {
        self.clusters.iter().find(|(n, _)| n == cluster).and_then(|(_, s)| s.as_deref())
    }
}

/// Reads one file, validated as inject validates it before writing.
pub fn read(path: &Path) -> FileState {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return FileState::Missing,
        Err(e) => return FileState::Invalid(e.to_string()),
    };
    let root = match super::parse(&bytes) {
        Ok(serde_yml::Value::Null) => return FileState::Loaded(Box::default()),
        Ok(root) => root,
        Err(e) => return FileState::Invalid(format!("{e:#}")),
    };
    match serde_yml::from_value::<Kubeconfig>(root) {
        Ok(k) => FileState::Loaded(Box::new(k)),
        Err(e) => FileState::Invalid(e.to_string()),
    }
}

/// Loads and merges `files`.
pub fn load(files: Vec<(PathBuf, FileSource)>) -> Merged {
    let mut merged = Merged::default();
    let mut seen_users: Vec<String> = Vec::new();
    for (path, source) in files {
        let state = read(&path);
        if let FileState::Loaded(k) = &state {
            if merged.current_context.is_none() {
                merged.current_context = k.current_context.clone().filter(|c| !c.is_empty());
            }
            for c in k.clusters.iter().flatten() {
                if !merged.clusters.iter().any(|(n, _)| *n == c.name) {
                    merged.clusters.push((c.name.clone(), c.item.as_ref().and_then(|c| c.server.clone())));
                }
            }
            for c in k.contexts.iter().flatten() {
                if !merged.contexts.iter().any(|(n, _)| *n == c.name) {
                    merged.contexts.push((c.name.clone(), c.item.clone().unwrap_or_default()));
                }
            }
            for u in k.users.iter().flatten() {
                if seen_users.contains(&u.name) {
                    continue;
                }
                seen_users.push(u.name.clone());
                if let Some(exec) = u.user.as_ref().and_then(|u| u.exec.clone()) {
                    merged.users.push(ExecUser { name: u.name.clone(), file: path.clone(), exec });
                }
            }
        }
        merged.files.push(LoadedFile { path, source, state });
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_list_is_split_and_deduplicated() {
        let l = locations(&[], Some("/a:/b::/a".into()), Some("/home/u".into()), Os::Linux);
        assert_eq!(l.iter().map(|(p, _)| p.to_str().unwrap()).collect::<Vec<_>>(), ["/a", "/b"]);
        let l = locations(&[], Some(r"C:\a\config;;D:\b;C:\a\config".into()), None, Os::Windows);
        assert_eq!(l.iter().map(|(p, _)| p.to_str().unwrap()).collect::<Vec<_>>(), [r"C:\a\config", r"D:\b"]);
        let l = locations(&[], None, Some("/home/u".into()), Os::Linux);
        assert_eq!(l[0].0, PathBuf::from("/home/u/.kube/config"));
        let l = locations(&[], None, Some(r"C:\Users\u".into()), Os::Windows);
        assert_eq!(l[0].0, PathBuf::from(r"C:\Users\u\.kube\config"));
        assert_eq!(locations(&["x".into()], Some("/a".into()), None, Os::Linux)[0].1, FileSource::Flag);
    }

    #[test]
    fn exec_sections_are_read() {
        let k: Kubeconfig = serde_yml::from_str(
            "current-context: c\nclusters:\n- name: k\n  cluster: {server: 'https://x'}\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nusers:\n- name: u\n  user:\n    exec:\n      command: kcc-cache\n      args: [aws, eks]\n      provideClusterInfo: true\n      interactiveMode: Never\n      env: [{name: A, value: b}]\n",
        )
        .unwrap();
        let exec = k.users.unwrap()[0].user.clone().unwrap().exec.unwrap();
        assert_eq!(exec.command, "kcc-cache");
        assert_eq!(exec.provide_cluster_info, Some(true));
        assert_eq!(exec.env_value("A"), Some("b"));
        assert_eq!(k.clusters.unwrap()[0].item.as_ref().unwrap().server.as_deref(), Some("https://x"));
        assert_eq!(k.contexts.unwrap()[0].item.as_ref().unwrap().user.as_deref(), Some("u"));
    }
}
