//! Real kubectl and kubeconfigs for end-to-end tests.
//!
//! [`kubectl`] finds a plain, versioned kubectl: the `kubectl` on PATH here is
//! the Google Cloud SDK's version dispatcher, which may contact the server
//! before handing over (an extra request, and an extra plugin run, that the
//! tests would count). [`write_kubeconfig`] writes a kubeconfig for an
//! [`ApiServer`] whose user runs an [`ExecUser`]; it is written as JSON, which
//! kubectl reads as YAML, so no value can be misread as a YAML 1.1 boolean.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use crate::apiserver::ApiServer;
use crate::util::World;

/// Overrides the kubectl the e2e tests run (a plain kubectl binary).
pub const KUBECTL_ENV: &str = "KCC_TEST_KUBECTL";

/// The kubectl the e2e tests run: `$KCC_TEST_KUBECTL`, else the highest
/// `kubectl.1.NN` beside the real path of the `kubectl` on PATH. Panics with
/// what to install when there is none: an e2e test must fail, not skip.
pub fn kubectl() -> &'static Path {
    static KUBECTL: OnceLock<PathBuf> = OnceLock::new();
    KUBECTL.get_or_init(|| {
        if let Some(path) = std::env::var_os(KUBECTL_ENV) {
            let path = PathBuf::from(path);
            assert!(path.is_file(), "{KUBECTL_ENV}={} is not a file", path.display());
            return path;
        }
        let on_path = find_on_path("kubectl").unwrap_or_else(|| {
            panic!(
                "kubectl is not on PATH; the e2e tests need the Google Cloud SDK's versioned kubectl binaries \
                 (apt-get install kubectl from the google-cloud-sdk repository) or {KUBECTL_ENV}=/path/to/plain/kubectl"
            )
        });
        let real = on_path.canonicalize().unwrap_or(on_path.clone());
        let dir = real.parent().expect("kubectl has a directory");
        highest_versioned_kubectl(dir).unwrap_or_else(|| {
            panic!(
                "no versioned kubectl (kubectl.1.NN) beside {} (real path of {}); the kubectl on PATH may be a \
                 version dispatcher that contacts the server first, so the e2e tests do not use it. Install the \
                 google-cloud-sdk kubectl package or set {KUBECTL_ENV}=/path/to/plain/kubectl",
                real.display(),
                on_path.display()
            )
        })
    })
}

/// The `kubectl.1.NN` in `dir` with the highest NN.
fn highest_versioned_kubectl(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let minor = name.strip_prefix("kubectl.1.")?.parse::<u32>().ok()?;
            Some((minor, e.path()))
        })
        .filter(|(_, path)| path.is_file())
        .max_by_key(|(minor, _)| *minor)
        .map(|(_, path)| path)
}

/// The first `name` on the test process's PATH (with PATHEXT on Windows).
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    kcc::platform::find_command(name)
}

/// The `users[].user.exec` section of a kubeconfig.
#[derive(Debug, Clone)]
pub struct ExecUser {
    /// `client.authentication.k8s.io/v1` or `…/v1beta1`.
    pub api_version: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl ExecUser {
    /// `command` with no arguments, `client.authentication.k8s.io/v1`.
    pub fn new(command: impl Into<String>) -> ExecUser {
        ExecUser {
            api_version: "client.authentication.k8s.io/v1".into(),
            command: command.into(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Sets the exec apiVersion from its short form (`v1`, `v1beta1`).
    pub fn api(mut self, version: &str) -> ExecUser {
        self.api_version = format!("client.authentication.k8s.io/{version}");
        self
    }

    /// Appends arguments.
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> ExecUser {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Adds an `env` entry.
    pub fn env(mut self, name: &str, value: impl AsRef<str>) -> ExecUser {
        self.env.push((name.into(), value.as_ref().to_owned()));
        self
    }
}

/// Writes a kubeconfig with one cluster (the server, trusted through
/// `certificate-authority-data`), one user running `user`
/// (`provideClusterInfo: true`, `interactiveMode: Never`) and a current
/// context joining them.
pub fn write_kubeconfig(path: &Path, server: &ApiServer, user: &ExecUser) {
    let env: Vec<serde_json::Value> =
        user.env.iter().map(|(name, value)| serde_json::json!({"name": name, "value": value})).collect();
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "kcc-test",
            "cluster": {"server": server.url, "certificate-authority-data": server.ca_data_base64},
        }],
        "users": [{
            "name": "kcc-test-user",
            "user": {"exec": {
                "apiVersion": user.api_version,
                "command": user.command,
                "args": user.args,
                "env": env,
                "provideClusterInfo": true,
                "interactiveMode": "Never",
            }},
        }],
        "contexts": [{"name": "kcc-test", "context": {"cluster": "kcc-test", "user": "kcc-test-user"}}],
        "current-context": "kcc-test",
    });
    std::fs::write(path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

/// Runs `kubectl get --raw /version --kubeconfig KUBECONFIG` in the world
/// (its PATH, HOME and environment).
pub fn get_version(world: &World, kubeconfig: &Path) -> Output {
    world
        .cmd(kubectl())
        .args(["get", "--raw", "/version", "--request-timeout=20s", "--kubeconfig"])
        .arg(kubeconfig)
        .output()
        .expect("run kubectl")
}
