//! Which identity sources apply to a call: a pure function of the plugin's
//! command line and environment (no I/O), so the hit path can afford it.
//!
//! Each tool is recognised by the base name of the command or of any
//! argument (`aws-vault exec p -- aws eks get-token` is both aws-vault and
//! aws; `kubectl oidc-login get-token` is oidc-login). What each tool reads
//! was taken from the tools themselves (see the README, "Switching
//! identities"): every environment variable that changes which identity the
//! tool uses, or where it finds it, is an input whose value is hashed; the
//! files are found from those values by [`super::observe`].

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::config::{ENV_IDENTITY, ENV_IDENTITY_FILES};

/// What the identity settings say (see [`crate::config::Config`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The built-in sources are on (`KUBE_CREDENTIAL_CACHE_IDENTITY`).
    pub builtins: bool,
    /// Further files whose content belongs to the identity
    /// (`KUBE_CREDENTIAL_CACHE_IDENTITY_FILES`).
    pub files: Vec<PathBuf>,
}

/// One tool whose identity applies, with where it keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tool {
    /// gcloud / gke-gcloud-auth-plugin: the configuration directory and the
    /// configuration named in the environment, if any.
    Gcloud { dir: PathBuf, active: Option<String> },
    /// The AWS CLI / SDK (aws, aws-iam-authenticator, aws-vault): the
    /// profile in use and the two shared files.
    Aws { profile: String, config: PathBuf, credentials: PathBuf, sso_cache: PathBuf, key_id: Option<String> },
    /// Azure kubelogin: the Azure CLI's directory and kubelogin's token cache.
    Azure { config_dir: PathBuf, token_cache: PathBuf },
    /// int128 kubelogin / kubectl oidc-login: its token cache directory.
    Oidc { token_cache: PathBuf },
}

/// Everything a call's identity is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Environment variables whose values are hashed, in a fixed order.
    pub inputs: Vec<(&'static str, Option<OsString>)>,
    /// The tools recognised.
    pub tools: Vec<Tool>,
    /// `KUBE_CREDENTIAL_CACHE_IDENTITY_FILES`.
    pub files: Vec<PathBuf>,
}

impl Plan {
    /// No source applies: nothing is recorded or checked.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.files.is_empty()
    }

    /// The value of input `name`, when set and not empty.
    pub fn input(&self, name: &str) -> Option<String> {
        self.inputs
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| v.to_string_lossy().into_owned())
            .filter(|v| !v.is_empty())
    }
}

const GCLOUD_ENV: &[&str] = &[
    "CLOUDSDK_CONFIG",
    "CLOUDSDK_ACTIVE_CONFIG_NAME",
    "CLOUDSDK_CORE_ACCOUNT",
    "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
    "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT",
    "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
    "GOOGLE_APPLICATION_CREDENTIALS",
];

/// The AWS variables: profile, region, static or assumed-role credentials
/// (`AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` only ever enter the
/// SHA-256, never a record), web identity, the files' locations, aws-vault.
const AWS_ENV: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_VAULT",
];

const AZURE_ENV: &[&str] = &[
    "AZURE_CONFIG_DIR",
    "KUBECACHEDIR",
    "AAD_LOGIN_METHOD",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AAD_SERVICE_PRINCIPAL_CLIENT_ID",
    "AAD_USER_PRINCIPAL_NAME",
];

const OIDC_ENV: &[&str] = &["KUBECACHEDIR"];

/// Whether `word`'s file name, without `.exe`, is one of `names` (ASCII
/// case-insensitive, no allocation: this runs on every hit).
fn is_tool(word: &OsStr, names: &[&str]) -> bool {
    let name = Path::new(word).file_name().unwrap_or(word);
    let Some(name) = name.to_str() else { return false };
    let name = match name.len().checked_sub(4) {
        Some(at) if name.is_char_boundary(at) && name[at..].eq_ignore_ascii_case(".exe") => &name[..at],
        _ => name,
    };
    names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The value of `--flag V` or `--flag=V` among `args`.
fn flag(args: &[OsString], name: &str) -> Option<String> {
    let mut it = args.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = it.next() {
        if arg == name {
            return it.next().map(|v| v.into_owned());
        }
        if let Some(v) = arg.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Some(v.to_string());
        }
    }
    None
}

/// `~/x` → `HOME/x`, as kubelogin's `expandHomedir` does.
fn expand_home(path: &str, home: &Path) -> PathBuf {
    match path.strip_prefix('~') {
        Some(rest) => home.join(rest.trim_start_matches(['/', '\\'])),
        None => PathBuf::from(path),
    }
}

fn set(value: Option<OsString>) -> Option<OsString> {
    value.filter(|v| !v.is_empty())
}

/// The variables any identity source reads, taken from the process
/// environment in one pass: a hit would otherwise call `getenv` (a scan of
/// the whole environment) once per variable, some 20 times.
#[derive(Debug, Default)]
pub struct Environment(Vec<(OsString, OsString)>);

const PREFIXES: &[&str] = &[
    "AWS_",
    "CLOUDSDK_",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_",
    "AAD_",
    "KUBECACHEDIR",
    "HOME",
    "USERPROFILE",
    "APPDATA",
    "KUBE_CREDENTIAL_CACHE_IDENTITY",
];

impl Environment {
    /// The process environment's identity variables.
    ///
    /// On Unix it walks `environ` itself and copies only the matching
    /// entries: `std::env::vars_os` allocates every variable of the
    /// process (measured: 42k instructions of a 280k-instruction hit with
    /// 42 variables, against a few hundred for this walk).
    pub fn from_process() -> Environment {
        #[cfg(unix)]
        {
            unsafe extern "C" {
                static environ: *const *const std::ffi::c_char;
            }
            use std::os::unix::ffi::OsStrExt;
            let mut out = Vec::new();
            // SAFETY: `environ` is the NULL-terminated array of C strings
            // POSIX defines; kcc changes no variable and runs no other
            // thread while it reads it (this runs before the plugin or any
            // refresher is started).
            unsafe {
                let mut at = environ;
                while !at.is_null() && !(*at).is_null() {
                    let entry = std::ffi::CStr::from_ptr(*at).to_bytes();
                    at = at.add(1);
                    if !PREFIXES.iter().any(|p| entry.starts_with(p.as_bytes())) {
                        continue;
                    }
                    if let Some(eq) = entry.iter().position(|&b| b == b'=') {
                        let (k, v) = (&entry[..eq], &entry[eq + 1..]);
                        out.push((OsStr::from_bytes(k).to_os_string(), OsStr::from_bytes(v).to_os_string()));
                    }
                }
            }
            Environment(out)
        }
        #[cfg(not(unix))]
        {
            Environment(
                std::env::vars_os()
                    .filter(|(k, _)| PREFIXES.iter().any(|p| k.as_encoded_bytes().starts_with(p.as_bytes())))
                    .collect(),
            )
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<OsString> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

/// Decides which sources apply to `command args` under `env`.
pub fn plan(command: &OsStr, args: &[OsString], env: impl Fn(&str) -> Option<OsString>, settings: &Settings) -> Plan {
    let mut plan = Plan { files: settings.files.clone(), ..Plan::default() };
    if settings.builtins {
        let words = || std::iter::once(command).chain(args.iter().map(OsString::as_os_str));
        let has = |names: &[&str]| words().any(|w| is_tool(w, names));
        let oidc_flags = args.iter().any(|a| a.as_encoded_bytes().starts_with(b"--oidc-issuer-url"));
        let home = || {
            set(env("HOME"))
                .or_else(|| set(env("USERPROFILE")))
                .map(PathBuf::from)
                .or_else(|| etcetera::home_dir().ok())
                .unwrap_or_default()
        };
        let mut names: Vec<&'static str> = Vec::new();
        let mut add = |list: &[&'static str]| {
            for n in list {
                if !names.contains(n) {
                    names.push(n);
                }
            }
        };
        if has(&["gcloud", "gke-gcloud-auth-plugin"]) {
            add(GCLOUD_ENV);
            add(&["HOME", "APPDATA"]);
            let dir = set(env("CLOUDSDK_CONFIG")).map(PathBuf::from).unwrap_or_else(|| {
                if cfg!(windows) {
                    set(env("APPDATA")).map(PathBuf::from).unwrap_or_else(home).join("gcloud")
                } else {
                    home().join(".config").join("gcloud")
                }
            });
            let active = set(env("CLOUDSDK_ACTIVE_CONFIG_NAME")).map(|v| v.to_string_lossy().into_owned());
            plan.tools.push(Tool::Gcloud { dir, active });
        }
        if has(&["aws", "aws-iam-authenticator", "aws-vault"]) {
            add(AWS_ENV);
            add(&["HOME", "USERPROFILE"]);
            let vault_profile = words()
                .position(|w| is_tool(w, &["aws-vault"]))
                .and_then(|i| args.iter().skip(i).skip_while(|a| *a != "exec").nth(1))
                .map(|p| p.to_string_lossy().into_owned())
                .filter(|p| !p.starts_with('-'));
            let profile = flag(args, "--profile")
                .or(vault_profile)
                .or_else(|| set(env("AWS_PROFILE")).map(|v| v.to_string_lossy().into_owned()))
                .or_else(|| set(env("AWS_DEFAULT_PROFILE")).map(|v| v.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "default".into());
            let aws_dir = home().join(".aws");
            plan.tools.push(Tool::Aws {
                profile,
                config: set(env("AWS_CONFIG_FILE")).map(PathBuf::from).unwrap_or_else(|| aws_dir.join("config")),
                credentials: set(env("AWS_SHARED_CREDENTIALS_FILE"))
                    .map(PathBuf::from)
                    .unwrap_or_else(|| aws_dir.join("credentials")),
                sso_cache: aws_dir.join("sso").join("cache"),
                key_id: set(env("AWS_ACCESS_KEY_ID")).map(|v| v.to_string_lossy().into_owned()),
            });
        }
        let oidc = has(&["kubectl-oidc_login", "oidc-login"]) || (has(&["kubelogin"]) && oidc_flags);
        if has(&["kubelogin"]) && !oidc {
            add(AZURE_ENV);
            add(&["HOME", "USERPROFILE"]);
            let home = home();
            let config_dir = set(env("AZURE_CONFIG_DIR")).map(PathBuf::from).unwrap_or_else(|| home.join(".azure"));
            let token_cache = flag(args, "--token-cache-dir")
                .map(|d| expand_home(&d, &home))
                .unwrap_or_else(|| home.join(".kube").join("cache").join("kubelogin"));
            plan.tools.push(Tool::Azure { config_dir, token_cache });
        }
        if oidc {
            add(OIDC_ENV);
            add(&["HOME", "USERPROFILE"]);
            let home = home();
            let token_cache = flag(args, "--token-cache-dir").map(|d| expand_home(&d, &home)).unwrap_or_else(|| {
                match set(env("KUBECACHEDIR")) {
                    Some(dir) => PathBuf::from(dir).join("oidc-login"),
                    None => home.join(".kube").join("cache").join("oidc-login"),
                }
            });
            plan.tools.push(Tool::Oidc { token_cache });
        }
        plan.inputs = names.into_iter().map(|n| (n, env(n))).collect();
    }
    if !plan.is_empty() {
        // The settings decide what is observed, so they are inputs too.
        plan.inputs.push((ENV_IDENTITY, env(ENV_IDENTITY)));
        plan.inputs.push((ENV_IDENTITY_FILES, env(ENV_IDENTITY_FILES)));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(cmd: &str, args: &[&str], vars: &[(&str, &str)]) -> Plan {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let env = |n: &str| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| OsString::from(v));
        plan(OsStr::new(cmd), &args, env, &Settings { builtins: true, files: vec![] })
    }

    #[test]
    fn tools_are_recognised_by_command_or_argument() {
        let home = [("HOME", "/h")];
        assert!(matches!(plan_of("/usr/bin/gke-gcloud-auth-plugin", &[], &home).tools[..], [Tool::Gcloud { .. }]));
        let aws = plan_of("aws-vault", &["exec", "prod", "--", "aws", "eks", "get-token"], &home);
        assert!(matches!(&aws.tools[..], [Tool::Aws { profile, .. }] if profile == "prod"), "{aws:?}");
        let aws = plan_of("aws", &["--profile=dev", "eks", "get-token"], &[("AWS_PROFILE", "x")]);
        assert!(matches!(&aws.tools[..], [Tool::Aws { profile, .. }] if profile == "dev"));
        let aws = plan_of("aws", &["eks"], &[("AWS_DEFAULT_PROFILE", "legacy"), ("HOME", "/h")]);
        assert!(matches!(&aws.tools[..], [Tool::Aws { profile, credentials, .. }]
            if profile == "legacy" && credentials == Path::new("/h/.aws/credentials")));
        let az = plan_of("kubelogin", &["get-token", "--server-id", "x"], &home);
        assert!(
            matches!(&az.tools[..], [Tool::Azure { token_cache, .. }] if token_cache == Path::new("/h/.kube/cache/kubelogin"))
        );
        let oidc =
            plan_of("kubectl", &["oidc-login", "get-token", "--oidc-issuer-url=https://i"], &[("KUBECACHEDIR", "/k")]);
        assert!(matches!(&oidc.tools[..], [Tool::Oidc { token_cache }] if token_cache == Path::new("/k/oidc-login")));
        let oidc =
            plan_of("kubelogin", &["get-token", "--oidc-issuer-url", "https://i", "--token-cache-dir=~/t"], &home);
        assert!(matches!(&oidc.tools[..], [Tool::Oidc { token_cache }] if token_cache == Path::new("/h/t")));
        assert!(plan_of("./my-plugin.sh", &["prod"], &home).is_empty());
    }

    #[test]
    fn the_environment_walk_finds_what_getenv_finds() {
        let env = Environment::from_process();
        for name in ["HOME", "AWS_PROFILE", "CLOUDSDK_CONFIG", "KUBECACHEDIR"] {
            assert_eq!(env.get(name), std::env::var_os(name), "{name}");
        }
        assert_eq!(env.get("PATH"), None, "only identity variables are kept");
    }

    #[test]
    fn secrets_are_inputs_and_off_turns_builtins_off() {
        let p = plan_of("aws", &["eks"], &[("AWS_SESSION_TOKEN", "s1")]);
        assert!(p.inputs.iter().any(|(n, v)| *n == "AWS_SESSION_TOKEN" && v.as_deref() == Some(OsStr::new("s1"))));
        let off = plan(OsStr::new("aws"), &[], |_| None, &Settings { builtins: false, files: vec![] });
        assert!(off.is_empty());
        let files = plan(OsStr::new("x"), &[], |_| None, &Settings { builtins: false, files: vec!["/f".into()] });
        assert!(!files.is_empty());
    }
}
