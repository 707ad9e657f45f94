//! Which API server to ask about a re-asked credential, and how to reach
//! it: what client-go itself would use for that request.
//!
//! First choice: the cluster in `KUBERNETES_EXEC_INFO` (`provideClusterInfo:
//! true`, which `kcc inject` sets; client-go and the Python client pass it).
//! `@kubernetes/client-node` passes no exec info at all, so for it (and for
//! any client that leaves the cluster out) kcc looks the user up in the
//! kubeconfig files client-go would read (`$KUBECONFIG`, else
//! `~/.kube/config`) by the name `kcc inject` put in
//! `KUBE_CREDENTIAL_CACHE_USER`: when the contexts using that user all point
//! at one cluster, that cluster is asked; when they point at several (or the
//! user is not found: the application read another file), kcc cannot know
//! which one the client talks to and serves the cached credential.
//!
//! Runs only on a re-ask from a client that is not client-go, never on a
//! first ask: the hit path does not read a kubeconfig.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Family;
use crate::config::{Config, ENV_USER};
use crate::credential::ExecInfo;
use crate::kubeconfig::merge::{self as kubeconfig_read, Exec};
use crate::platform::Os;
use crate::{key, plugin};

/// How to reach one API server (client-go's `rest.Config` subset that
/// matters for one authenticated GET).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    /// `https://host[:port][/prefix]`.
    pub server: String,
    /// PEM certificates to trust (None: the system's roots).
    pub ca_pem: Option<Vec<u8>>,
    /// The name to verify the server certificate against, when not the host.
    pub tls_server_name: Option<String>,
    /// `insecure-skip-tls-verify`.
    pub insecure: bool,
    /// `proxy-url` (else the proxy environment applies).
    pub proxy_url: Option<String>,
}

/// A cluster and where it came from (for debug output).
#[derive(Debug, Clone)]
pub struct Found {
    /// The cluster.
    pub cluster: Cluster,
    /// `KUBERNETES_EXEC_INFO` or the kubeconfig file and context.
    pub source: String,
}

/// A kubeconfig / exec-info cluster as written (kebab-case keys).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawCluster {
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    certificate_authority_data: Option<String>,
    #[serde(default)]
    certificate_authority: Option<String>,
    #[serde(default)]
    tls_server_name: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: Option<bool>,
    #[serde(default)]
    proxy_url: Option<String>,
}

#[derive(Deserialize)]
struct RawExecInfo {
    spec: Option<RawSpec>,
}

#[derive(Deserialize)]
struct RawSpec {
    cluster: Option<RawCluster>,
}

impl RawCluster {
    /// The cluster, with a relative `certificate-authority` resolved against `dir`.
    fn resolve(self, dir: Option<&Path>) -> Result<Cluster, String> {
        let server = self.server.filter(|s| !s.is_empty()).ok_or("the cluster has no server")?;
        let ca_pem = match (self.certificate_authority_data.filter(|d| !d.is_empty()), self.certificate_authority) {
            (Some(data), _) => Some(decode_base64(&data).ok_or("its certificate-authority-data is not base64")?),
            (None, Some(file)) if !file.is_empty() => {
                let path = match dir {
                    Some(dir) => dir.join(&file),
                    None => PathBuf::from(&file),
                };
                Some(
                    read_bounded(&path)
                        .map_err(|e| format!("cannot read its certificate-authority {} ({e})", path.display()))?,
                )
            }
            _ => None,
        };
        Ok(Cluster {
            server,
            ca_pem,
            tls_server_name: self.tls_server_name.filter(|s| !s.is_empty()),
            insecure: self.insecure_skip_tls_verify.unwrap_or(false),
            proxy_url: self.proxy_url.filter(|s| !s.is_empty()),
        })
    }
}

/// The most of a `certificate-authority` file kcc reads: a CA bundle is
/// kilobytes, and a path such as `/dev/zero` (or a FIFO left open) must not
/// hold a cache hit or fill its memory.
const CA_FILE_LIMIT: u64 = 4 << 20;

fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(CA_FILE_LIMIT + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > CA_FILE_LIMIT {
        return Err(std::io::Error::other(format!("larger than {} MiB", CA_FILE_LIMIT >> 20)));
    }
    Ok(bytes)
}

/// Standard base64, padding and line breaks tolerated (kubeconfigs hold it
/// as one line; hand-edited ones sometimes do not).
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b'\n' | b'\r' | b' ' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The cluster the client talks to, or why kcc cannot know it. `call_key`
/// is this call's cache key: a kubeconfig user is only taken for this
/// call's when its exec section gives that same key ([`exec_key`]: the same
/// plugin, arguments, key variables and apiVersion), so a user of the same
/// name in another kubeconfig never receives this credential.
pub fn find(exec_info: Option<&str>, family: Family, call_key: &str) -> Result<Found, String> {
    if let Some(cluster) = exec_info
        .and_then(|raw| serde_json::from_str::<RawExecInfo>(raw).ok())
        .and_then(|i| i.spec)
        .and_then(|s| s.cluster)
    {
        let cluster =
            cluster.resolve(None).map_err(|e| format!("the cluster in KUBERNETES_EXEC_INFO is unusable: {e}"))?;
        return Ok(Found { cluster, source: "from KUBERNETES_EXEC_INFO".into() });
    }
    let user = std::env::var(ENV_USER).ok().filter(|u| !u.is_empty()).ok_or_else(|| {
        format!(
            "the {} client passed no cluster and {ENV_USER} (which kcc inject sets) is not set to find it in a kubeconfig",
            family.as_str()
        )
    })?;
    let files = kubeconfig_read::locations(&[], std::env::var_os("KUBECONFIG"), etcetera::home_dir().ok(), Os::CURRENT);
    let info = ExecInfo::parse(exec_info);
    let files: Vec<PathBuf> = files.into_iter().map(|(p, _)| p).collect();
    from_kubeconfigs(&files, &user, call_key, &info, |name| std::env::var_os(name))
        .map_err(|e| format!("the {} client passed no cluster: {e}", family.as_str()))
}

/// Healing's reading of the cluster in `KUBERNETES_EXEC_INFO`, without
/// opening a `certificate-authority` file it may name (for [`crate::fuzz`]).
pub(crate) fn in_exec_info(raw: &str) -> Option<Result<Cluster, String>> {
    let cluster = serde_json::from_str::<RawExecInfo>(raw).ok()?.spec?.cluster?;
    (cluster.certificate_authority.is_none() || cluster.certificate_authority_data.is_some())
        .then(|| cluster.resolve(None))
}

/// Whether healing's typed reading of a kubeconfig accepts `text` (for [`crate::fuzz`]).
pub(crate) fn typed(text: &str) -> bool {
    crate::kubeconfig::aliases::check(text).is_ok() && serde_yml::from_str::<RawKubeconfig>(text).is_ok()
}

#[derive(Deserialize, Default)]
struct RawKubeconfig {
    #[serde(default)]
    clusters: Option<Vec<RawNamedCluster>>,
    #[serde(default)]
    contexts: Option<Vec<kubeconfig_read::Named<kubeconfig_read::Context>>>,
    #[serde(default)]
    users: Option<Vec<kubeconfig_read::NamedUser>>,
}

#[derive(Deserialize)]
struct RawNamedCluster {
    #[serde(default)]
    name: String,
    #[serde(default)]
    cluster: Option<RawCluster>,
}

/// The cache key a call through `exec` computes, seen from a call that got
/// `info` as its `KUBERNETES_EXEC_INFO` and `env` as its environment (the
/// exec env is already in it when the call came through that exec); None
/// when the exec does not run kcc's cache, or its settings are invalid.
///
/// The apiVersion counts only when the call told it (client-node sets no
/// exec info, so its key has none and neither has this one); the server is
/// the call's (None: kcc only looks in kubeconfigs when the exec info
/// carried no cluster).
pub fn exec_key(exec: &Exec, info: &ExecInfo, env: impl Fn(&str) -> Option<OsString>) -> Option<String> {
    let mut argv = vec![OsString::from(&exec.command)];
    argv.extend(exec.args.iter().flatten().map(OsString::from));
    let (rest, levels) = plugin::unwrap_self(&argv);
    if levels == 0 {
        return None;
    }
    let (command, args) = rest.split_first()?;
    let lookup = |name: &str| exec.env_value(name).map(OsString::from).or_else(|| env(name));
    let key_env = Config::from_lookup(lookup).ok()?.key_env;
    let info = ExecInfo {
        api_version: info.api_version.as_ref().and(exec.api_version.clone().filter(|a| !a.is_empty())),
        server: info.server.clone(),
        interactive: None,
    };
    Some(key::for_call(command, args, &key_env, lookup, &info).text)
}

/// The one cluster the contexts of `user` use, merged as client-go merges
/// (the first file defining a name wins); `user`'s exec must give
/// `call_key` ([`exec_key`] with the call's `info` and `env`).
pub fn from_kubeconfigs(
    files: &[PathBuf],
    user: &str,
    call_key: &str,
    info: &ExecInfo,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Found, String> {
    let mut clusters: Vec<(String, RawCluster, PathBuf)> = Vec::new();
    let mut contexts: Vec<(String, kubeconfig_read::Context)> = Vec::new();
    let mut users: Vec<kubeconfig_read::NamedUser> = Vec::new();
    for path in files {
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        if crate::kubeconfig::aliases::check(&text).is_err() {
            continue;
        }
        let Ok(k) = serde_yml::from_str::<RawKubeconfig>(&text) else { continue };
        for c in k.clusters.into_iter().flatten() {
            if !clusters.iter().any(|(n, _, _)| *n == c.name) {
                clusters.push((c.name, c.cluster.unwrap_or_default(), path.clone()));
            }
        }
        for c in k.contexts.into_iter().flatten() {
            if !contexts.iter().any(|(n, _)| *n == c.name) {
                contexts.push((c.name, c.item.unwrap_or_default()));
            }
        }
        for u in k.users.into_iter().flatten() {
            if !users.iter().any(|v| v.name == u.name) {
                users.push(u);
            }
        }
    }
    let shown: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let exec = users.iter().find(|u| u.name == user).and_then(|u| u.user.as_ref()).and_then(|u| u.exec.as_ref());
    let Some(exec) = exec else {
        return Err(format!("no user '{user}' with an exec section in {}", shown.join(", ")));
    };
    if exec_key(exec, info, env).as_deref() != Some(call_key) {
        return Err(format!(
            "user '{user}' in {} runs another plugin command, arguments or key variables than this call (a same-named user of another kubeconfig)",
            shown.join(", ")
        ));
    }
    let mut used: Vec<&str> = contexts
        .iter()
        .filter(|(_, c)| c.user.as_deref() == Some(user))
        .filter_map(|(_, c)| c.cluster.as_deref())
        .collect();
    used.sort_unstable();
    used.dedup();
    let name = match used.as_slice() {
        [one] => *one,
        [] => return Err(format!("no context uses user '{user}' in {}", shown.join(", "))),
        many => {
            return Err(format!(
                "user '{user}' is used with {} clusters ({}); kcc cannot know which one the client talks to",
                many.len(),
                many.join(", ")
            ));
        }
    };
    let (_, raw, file) = clusters
        .into_iter()
        .find(|(n, _, _)| n == name)
        .ok_or_else(|| format!("cluster '{name}' (of user '{user}') is not defined in {}", shown.join(", ")))?;
    let source = format!("cluster '{name}' of user '{user}' in {}", file.display());
    let cluster = raw.resolve(file.parent()).map_err(|e| format!("{source} is unusable: {e}"))?;
    Ok(Found { cluster, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn base64_decodes_standard_and_wrapped_text() {
        assert_eq!(decode_base64("aGVsbG8gd29ybGQ=").unwrap(), b"hello world");
        assert_eq!(decode_base64("aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("not base64!"), None);
    }

    #[test]
    fn the_cluster_comes_from_exec_info_with_every_tls_setting() {
        let info = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"server":"https://10.0.0.1:6443","certificate-authority-data":"aGk=","tls-server-name":"api.internal","insecure-skip-tls-verify":true,"proxy-url":"http://proxy:3128"},"interactive":false}}"#;
        let found = find(Some(info), Family::ClientGo, "plug").unwrap();
        assert_eq!(
            found.cluster,
            Cluster {
                server: "https://10.0.0.1:6443".into(),
                ca_pem: Some(b"hi".to_vec()),
                tls_server_name: Some("api.internal".into()),
                insecure: true,
                proxy_url: Some("http://proxy:3128".into()),
            }
        );
    }

    fn call_key(cmd: &str, args: &[&str], user: &str, info: &ExecInfo) -> String {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let env = |n: &str| (n == ENV_USER).then(|| OsString::from(user));
        let key_env = Config::from_lookup(env).unwrap().key_env;
        key::for_call(OsStr::new(cmd), &args, &key_env, env, info).text
    }

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    #[test]
    fn the_kubeconfig_gives_the_one_cluster_of_the_user_and_refuses_to_guess() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "clusters:\n- name: c1\n  cluster: {server: 'https://one', certificate-authority: ca.pem}\n- name: c2\n  cluster: {server: 'https://two'}\ncontexts:\n- name: x\n  context: {cluster: c1, user: u}\n- name: y\n  context: {cluster: c2, user: shared}\n- name: z\n  context: {cluster: c1, user: shared}\nusers:\n- name: u\n  user: {exec: {command: kcc-cache, args: [plug, x], env: [{name: KUBE_CREDENTIAL_CACHE_USER, value: u}]}}\n- name: shared\n  user: {exec: {command: kcc-cache, args: [plug], env: [{name: KUBE_CREDENTIAL_CACHE_USER, value: shared}]}}\n- name: bare\n  user: {exec: {command: plug, args: [x]}}\n").unwrap();
        std::fs::write(dir.path().join("ca.pem"), "PEM").unwrap();
        let info = ExecInfo::default();
        let found =
            from_kubeconfigs(std::slice::from_ref(&a), "u", &call_key("plug", &["x"], "u", &info), &info, no_env)
                .unwrap();
        assert_eq!(found.cluster.server, "https://one");
        assert_eq!(found.cluster.ca_pem.as_deref(), Some(&b"PEM"[..]), "relative to the kubeconfig's directory");
        let err = from_kubeconfigs(
            std::slice::from_ref(&a),
            "shared",
            &call_key("plug", &[], "shared", &info),
            &info,
            no_env,
        )
        .unwrap_err();
        assert!(err.contains("2 clusters"), "{err}");
        for (cmd, args) in [("plug", &["y"][..]), ("plug", &[]), ("other", &["x"]), ("x", &[])] {
            let err = from_kubeconfigs(std::slice::from_ref(&a), "u", &call_key(cmd, args, "u", &info), &info, no_env)
                .unwrap_err();
            assert!(err.contains("runs another plugin command"), "a same-named user running {cmd} {args:?}: {err}");
        }
        let err =
            from_kubeconfigs(std::slice::from_ref(&a), "bare", &call_key("plug", &["x"], "bare", &info), &info, no_env)
                .unwrap_err();
        assert!(err.contains("runs another plugin command"), "a user not going through kcc: {err}");
        assert!(from_kubeconfigs(&[a], "nobody", "k", &info, no_env).unwrap_err().contains("no user 'nobody'"));
    }

    #[test]
    fn the_exec_key_is_the_key_a_call_through_that_exec_computes() {
        let exec = |yaml: &str| serde_yml::from_str::<Exec>(yaml).unwrap();
        let v1 = ExecInfo { api_version: Some("client.authentication.k8s.io/v1".into()), ..ExecInfo::default() };
        let none = ExecInfo::default();
        let e = exec(
            "{command: kcc-cache, args: [plug.sh, cluster-a], apiVersion: client.authentication.k8s.io/v1, env: [{name: KUBE_CREDENTIAL_CACHE_USER, value: admin}]}",
        );
        assert_eq!(exec_key(&e, &v1, no_env).unwrap(), call_key("plug.sh", &["cluster-a"], "admin", &v1));
        assert_eq!(
            exec_key(&e, &none, no_env).unwrap(),
            call_key("plug.sh", &["cluster-a"], "admin", &none),
            "client-node tells no apiVersion"
        );
        assert_ne!(
            exec_key(&e, &v1, no_env).unwrap(),
            call_key("plug.sh", &["cluster-b"], "admin", &v1),
            "other arguments"
        );
        let beta = ExecInfo { api_version: Some("client.authentication.k8s.io/v1beta1".into()), ..ExecInfo::default() };
        assert_ne!(
            exec_key(&e, &beta, no_env).unwrap(),
            call_key("plug.sh", &["cluster-a"], "admin", &beta),
            "another apiVersion"
        );
        let wrapped_twice = exec(
            "{command: /usr/bin/kcc, args: [cache, kcc-cache, --, plug.sh, cluster-a], apiVersion: client.authentication.k8s.io/v1, env: [{name: KUBE_CREDENTIAL_CACHE_USER, value: admin}]}",
        );
        assert_eq!(exec_key(&wrapped_twice, &v1, no_env), exec_key(&e, &v1, no_env));
        // The key variables (a list the exec env itself may set) count as in the call.
        let listed = exec(
            "{command: kcc-cache, args: [plug.sh, cluster-a], env: [{name: KUBE_CREDENTIAL_CACHE_USER, value: admin}, {name: KUBE_CREDENTIAL_CACHE_CACHEKEY_ENV_LIST, value: MY_PROFILE}]}",
        );
        let dev = |n: &str| (n == "MY_PROFILE").then(|| OsString::from("dev"));
        let prod = |n: &str| (n == "MY_PROFILE").then(|| OsString::from("prod"));
        assert_ne!(exec_key(&listed, &none, dev), exec_key(&listed, &none, prod));
        assert_ne!(exec_key(&listed, &none, dev), exec_key(&e, &none, dev));
        assert_eq!(exec_key(&exec("{command: plug.sh, args: [cluster-a]}"), &v1, no_env), None, "not through kcc");
        assert_eq!(exec_key(&exec("{command: kcc-cache}"), &v1, no_env), None, "no plugin named");
    }
}
