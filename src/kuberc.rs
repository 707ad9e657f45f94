//! kubectl's credential-plugin policy (kuberc, kubectl 1.35+), read-only.
//!
//! `~/.kube/kuberc` (or `$KUBERC`; `KUBERC=off` disables it) may restrict
//! which exec plugins kubectl runs:
//!
//! ```yaml
//! apiVersion: kubectl.config.k8s.io/v1beta1
//! kind: Preference
//! credentialPluginPolicy: Allowlist       # AllowAll (default) | DenyAll | Allowlist
//! credentialPluginAllowlist:
//!   - name: /usr/local/bin/kcc-cache      # a full path, or
//!   - name: aws                           # a basename, looked up on PATH
//! ```
//!
//! A kubeconfig wrapped by kcc makes kubectl run `kcc-cache`, not the real
//! plugin; kcc-cache then runs the plugin itself, outside kubectl's policy.
//! An allowlist written for the real plugin therefore blocks every wrapped
//! user — the pitfall `kcc doctor` reports.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The parts of a kuberc kcc looks at.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kuberc {
    /// `AllowAll`, `DenyAll` or `Allowlist`.
    #[serde(default)]
    pub credential_plugin_policy: Option<String>,
    /// Allowed plugins.
    #[serde(default)]
    pub credential_plugin_allowlist: Option<Vec<AllowlistEntry>>,
}

/// One allowlist entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AllowlistEntry {
    /// A full path or a basename.
    #[serde(default)]
    pub name: String,
}

/// The kuberc kubectl would read: `$KUBERC`, else `~/.kube/kuberc`; None when
/// disabled (`KUBERC=off`).
pub fn location(env_kuberc: Option<OsString>, home: Option<PathBuf>) -> Option<PathBuf> {
    match env_kuberc.filter(|v| !v.is_empty()) {
        Some(v) if v == "off" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => home.map(|h| h.join(".kube").join("kuberc")),
    }
}

/// Reads a kuberc: Ok(None) when it does not exist, Err when it does not parse.
pub fn read(path: &Path) -> Result<Option<Kuberc>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(Some(Kuberc::default())),
        Ok(text) => {
            crate::kubeconfig::aliases::check(&text)?;
            serde_yml::from_str(&text).map(Some).map_err(|e| e.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

impl Kuberc {
    /// The policy in force, as kubectl names it.
    pub fn policy(&self) -> &str {
        match self.credential_plugin_policy.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => p,
            None if self.allowlist().next().is_some() => "Allowlist",
            None => "AllowAll",
        }
    }

    /// The allowlist's names.
    pub fn allowlist(&self) -> impl Iterator<Item = &str> {
        self.credential_plugin_allowlist.iter().flatten().map(|e| e.name.as_str()).filter(|n| !n.is_empty())
    }

    /// Whether kubectl would run `command` (as written in the kubeconfig).
    /// `resolve` turns a command or allowlist name into the path kubectl
    /// would run (PATH lookup for basenames); entries match when they resolve
    /// to the same path or are written identically.
    pub fn allows(&self, command: &str, resolve: impl Fn(&str) -> Option<PathBuf>) -> bool {
        match self.policy() {
            "AllowAll" => true,
            "DenyAll" => false,
            _ => {
                let resolved = resolve(command);
                self.allowlist().any(|name| name == command || (resolved.is_some() && resolve(name) == resolved))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(yaml: &str) -> Kuberc {
        serde_yml::from_str(yaml).unwrap()
    }

    #[test]
    fn policies_decide() {
        let none = |_: &str| None;
        assert!(rc("kind: Preference").allows("kcc-cache", none));
        assert!(!rc("credentialPluginPolicy: DenyAll").allows("aws", none));
        let list = rc("credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n- name: aws\n");
        assert!(list.allows("aws", none));
        assert!(!list.allows("kcc-cache", none));
        let by_path = |n: &str| Some(PathBuf::from(format!("/usr/bin/{}", n.rsplit('/').next().unwrap())));
        let full = rc("credentialPluginAllowlist:\n- name: /usr/bin/kcc-cache\n");
        assert_eq!(full.policy(), "Allowlist");
        assert!(full.allows("kcc-cache", by_path));
    }
}
