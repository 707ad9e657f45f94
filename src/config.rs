//! `KUBE_CREDENTIAL_CACHE_*` settings: defaults, parsing, validation.
//!
//! The names and defaults are the Go kcc's, so a shell profile written for it
//! keeps working. Every value is validated: a typo must be an error naming the
//! variable, not a silent fallback that makes the cache behave differently
//! than the user thinks. Each setting remembers where it came from, so
//! `kcc doctor` can say "from the environment" or "default".

use std::ffi::OsString;

use jiff::SignedDuration;

use crate::duration::parse_go_duration;

/// Selects the storage backend (`KUBE_CREDENTIAL_CACHE_BACKEND`).
pub const ENV_BACKEND: &str = "KUBE_CREDENTIAL_CACHE_BACKEND";
/// Overrides the file store's path (`KUBE_CREDENTIAL_CACHE_FILE`).
pub const ENV_FILE: &str = "KUBE_CREDENTIAL_CACHE_FILE";
/// Refresh when the credential expires within this margin.
pub const ENV_REFRESH_MARGIN: &str = "KUBE_CREDENTIAL_CACHE_REFRESH_MARGIN";
/// Lifetime given to credentials that report no usable expiry.
pub const ENV_DEFAULT_TTL: &str = "KUBE_CREDENTIAL_CACHE_DEFAULT_TTL";
/// An expiry further than this in the past means "no expiry".
pub const ENV_NO_EXPIRY_THRESHOLD: &str = "KUBE_CREDENTIAL_CACHE_NO_EXPIRY_THRESHOLD";
/// Environment variables whose values are part of the cache key.
pub const ENV_CACHEKEY_ENV_LIST: &str = "KUBE_CREDENTIAL_CACHE_CACHEKEY_ENV_LIST";
/// Falsy → the built-in identity sources are off (see [`crate::identity`]).
pub const ENV_IDENTITY: &str = "KUBE_CREDENTIAL_CACHE_IDENTITY";
/// Further files whose content belongs to the identity (path list).
pub const ENV_IDENTITY_FILES: &str = "KUBE_CREDENTIAL_CACHE_IDENTITY_FILES";
/// Truthy → explain every decision on stderr.
pub const ENV_DEBUG: &str = "KUBE_CREDENTIAL_CACHE_DEBUG";
/// Largest secret stored in one keyring entry; longer ones are split.
pub const ENV_KEYRING_ENTRY_LIMIT: &str = "KUBE_CREDENTIAL_CACHE_KEYRING_ENTRY_LIMIT";
/// Longest a plugin may run before kcc stops it (Go duration; 0 = no limit).
pub const ENV_PLUGIN_TIMEOUT: &str = "KUBE_CREDENTIAL_CACHE_PLUGIN_TIMEOUT";
/// Refresh a credential in the background when it expires within this window.
pub const ENV_REFRESH_AHEAD: &str = "KUBE_CREDENTIAL_CACHE_REFRESH_AHEAD";
/// Longest wait between plugin runs after failures for non-interactive
/// requests (Go duration; 0 or off: no back-off). See [`crate::backoff`].
pub const ENV_FAILURE_BACKOFF: &str = "KUBE_CREDENTIAL_CACHE_FAILURE_BACKOFF";
/// Falsy → never treat a repeated request from one client as a rejection.
pub const ENV_HEAL: &str = "KUBE_CREDENTIAL_CACHE_HEAL";
/// The kubeconfig user name, set by `kcc inject` in the exec env.
pub const ENV_USER: &str = "KUBE_CREDENTIAL_CACHE_USER";

/// One documented setting: the single table `kcc doctor`, the man page's
/// ENVIRONMENT section and the README's configuration table are kept to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingInfo {
    /// The variable.
    pub name: &'static str,
    /// Its default, as text.
    pub default: &'static str,
    /// What it does (one sentence, no trailing period).
    pub meaning: &'static str,
}

/// Every setting kcc reads, in the order `kcc doctor` shows them, with its
/// default as text and its meaning (what the README and man page document).
pub const SETTINGS: &[SettingInfo] = &[
    SettingInfo {
        name: ENV_BACKEND,
        default: "auto",
        meaning: "where credentials are stored: file, keyring, kernel (Linux), auto (the keyring when a running, unlocked Secret Service or the Keychain answers, else on Linux the kernel keyring when usable, else the file), or none (no cache: the plugin runs on every call and nothing is stored)",
    },
    SettingInfo {
        name: ENV_FILE,
        default: "<user cache dir>/kube-credential-cache/cache.json",
        meaning: "path of the file store (Linux: $XDG_CACHE_HOME or ~/.cache, macOS: ~/Library/Caches, Windows: %LOCALAPPDATA%); its lock, flight locks and index sit beside it",
    },
    SettingInfo {
        name: ENV_REFRESH_MARGIN,
        default: "30s",
        meaning: "run the plugin again when the cached credential expires within this margin (Go duration)",
    },
    SettingInfo {
        name: ENV_REFRESH_AHEAD,
        default: "0s (off)",
        meaning: "refresh a credential in the background when a hit finds it expiring within this window (Go duration; 5m is a good value)",
    },
    SettingInfo {
        name: ENV_HEAL,
        default: "on",
        meaning: "0, false, no or off: turn healing off (a repeated request from the same client process is never taken for a rejected credential nor checked with the API server)",
    },
    SettingInfo {
        name: ENV_FAILURE_BACKOFF,
        default: "5m",
        meaning: "after the plugin fails for a request without a terminal, answer further such requests for that credential with its last error and exit code instead of running it, for 5s, 10s, 20s, … up to this long (Go duration); requests from a terminal always run it; 0 or off: no back-off",
    },
    SettingInfo {
        name: ENV_DEFAULT_TTL,
        default: "1h",
        meaning: "lifetime given to credentials that report no usable expiry (Go duration)",
    },
    SettingInfo {
        name: ENV_NO_EXPIRY_THRESHOLD,
        default: "24h",
        meaning: "an expiry further than this in the past (Go's zero time) means no expiry; a recently expired credential is just expired",
    },
    SettingInfo {
        name: ENV_CACHEKEY_ENV_LIST,
        default: "KUBE_CREDENTIAL_CACHE_USER,AWS_PROFILE,AWS_REGION,AWS_VAULT",
        meaning: "comma-separated environment variables whose values are part of the cache key",
    },
    SettingInfo {
        name: ENV_IDENTITY,
        default: "on",
        meaning: "0, false, no or off: turn off the built-in identity sources (gcloud configuration, AWS profile and credentials, Azure default subscription, kubelogin and oidc-login token caches) that a hit checks, so an identity switched outside the kubeconfig is never served the previous identity's credential",
    },
    SettingInfo {
        name: ENV_IDENTITY_FILES,
        default: "none",
        meaning: "further files whose content belongs to the identity, as absolute paths separated like PATH (: or ; on Windows); a hit whose files changed runs the plugin again; applies to every plugin, also with the built-in sources off",
    },
    SettingInfo {
        name: ENV_DEBUG,
        default: "off",
        meaning: "1, true, yes or on: explain the key, backend, hit or miss, expiry and refresh on stderr (never a token)",
    },
    SettingInfo {
        name: ENV_KEYRING_ENTRY_LIMIT,
        default: "2560 on Windows, 3000 on macOS, 65536 elsewhere (bytes)",
        meaning: "largest secret stored in one keyring entry; larger credentials are split across entries",
    },
    SettingInfo {
        name: ENV_PLUGIN_TIMEOUT,
        default: "0 (no limit, like kubectl)",
        meaning: "kill a plugin still running after this long (Go duration); kcc exits 1 naming it and caches nothing",
    },
];

/// The default per-entry limit of this platform, in bytes: Windows'
/// `CRED_MAX_CREDENTIAL_BLOB_SIZE` (2,560), about 3,000 on macOS through the
/// usual APIs, and 64 KiB elsewhere (the Secret Service documents no limit;
/// this keeps one D-Bus message small and never splits a real credential).
pub const DEFAULT_KEYRING_ENTRY_LIMIT: usize = if cfg!(windows) {
    2560
} else if cfg!(target_os = "macos") {
    3000
} else {
    65536
};

/// The smallest per-entry limit accepted: the split header must fit.
pub const MIN_KEYRING_ENTRY_LIMIT: usize = 128;

/// The largest per-entry limit accepted (16 MiB).
pub const MAX_KEYRING_ENTRY_LIMIT: usize = 16 << 20;

const DEFAULT_KEY_ENV: [&str; 4] = [ENV_USER, "AWS_PROFILE", "AWS_REGION", "AWS_VAULT"];

/// Where the storage backend choice came from and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// Keyring when a secret store is reachable, otherwise file.
    Auto,
    /// The 0600 JSON file only.
    File,
    /// The OS secret store only.
    Keyring,
    /// The Linux kernel keyring only.
    Kernel,
    /// No store at all: a pass-through that runs the plugin on every call
    /// (CI jobs, debugging a plugin; kubelogin's "no store" mode).
    None,
}

impl BackendChoice {
    /// The name as written in the environment variable.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::File => "file",
            BackendChoice::Keyring => "keyring",
            BackendChoice::Kernel => "kernel",
            BackendChoice::None => "none",
        }
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Not set (or set to the empty string): the default applies.
    Default,
    /// Read from the environment variable.
    Env,
}

/// The validated settings of one kcc run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Storage backend to use.
    pub backend: BackendChoice,
    /// `KUBE_CREDENTIAL_CACHE_FILE` as given (None → the platform default).
    pub file: Option<OsString>,
    /// Refresh when `expiry - now <= refresh_margin`.
    pub refresh_margin: SignedDuration,
    /// Refresh in the background when `expiry - now < refresh_ahead`
    /// (zero: off). See [`crate::refresh`].
    pub refresh_ahead: SignedDuration,
    /// Heal after a rejected credential (see [`crate::heal`]).
    pub heal: bool,
    /// Longest back-off after failures for non-interactive requests (None:
    /// off). See [`crate::backoff`].
    pub failure_backoff: Option<SignedDuration>,
    /// Lifetime assigned to credentials without a usable expiry.
    pub default_ttl: SignedDuration,
    /// An expiry more than this far in the past means "no expiry".
    pub no_expiry_threshold: SignedDuration,
    /// Names of environment variables that are part of the cache key.
    pub key_env: Vec<String>,
    /// Which identity sources apply (see [`crate::identity`]).
    pub identity: crate::identity::Settings,
    /// Explain decisions on stderr.
    pub debug: bool,
    /// Largest secret, in bytes, stored in one keyring entry.
    pub keyring_entry_limit: usize,
    /// Stop a plugin that runs longer than this (None: wait as long as it
    /// takes, as kubectl does; device-code and MFA logins can take minutes).
    pub plugin_timeout: Option<std::time::Duration>,
    /// Which settings came from the environment (for `kcc doctor`).
    pub sources: Vec<(&'static str, Source)>,
}

/// A setting that could not be used; names the variable and shows an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable at fault.
    pub variable: &'static str,
    /// Its value, as given.
    pub value: String,
    /// What is wrong and what would be right.
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid {}='{}': {}", self.variable, self.value, self.problem)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var_os(name))
    }

    /// Reads the settings through `lookup`, so tests and `kcc doctor` can
    /// feed any environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Config, ConfigError> {
        let mut sources = Vec::with_capacity(SETTINGS.len());
        // The file path stays an OsString so non-UTF-8 paths work.
        let file = lookup(ENV_FILE).filter(|v| !v.is_empty());
        sources.push((ENV_FILE, if file.is_some() { Source::Env } else { Source::Default }));
        let mut get = |name: &'static str| -> Result<Option<String>, ConfigError> {
            let value = lookup(name).filter(|v| !v.is_empty());
            sources.push((name, if value.is_some() { Source::Env } else { Source::Default }));
            match value {
                None => Ok(None),
                Some(v) => v.into_string().map(Some).map_err(|v| ConfigError {
                    variable: name,
                    value: v.to_string_lossy().into_owned(),
                    problem: "not valid UTF-8".into(),
                }),
            }
        };

        let backend = match get(ENV_BACKEND)? {
            None => BackendChoice::Auto,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "auto" => BackendChoice::Auto,
                "file" => BackendChoice::File,
                "keyring" => BackendChoice::Keyring,
                "kernel" => BackendChoice::Kernel,
                "none" => BackendChoice::None,
                _ => {
                    return Err(ConfigError {
                        variable: ENV_BACKEND,
                        value: v,
                        problem: "expected one of 'auto', 'file', 'keyring', 'kernel', 'none' (e.g. KUBE_CREDENTIAL_CACHE_BACKEND=file)"
                            .into(),
                    });
                }
            },
        };
        let duration = |name: &'static str, value: Option<String>, default: SignedDuration, example: &str| {
            let Some(v) = value else { return Ok(default) };
            let d = parse_go_duration(v.trim()).map_err(|e| ConfigError {
                variable: name,
                value: v.clone(),
                problem: format!("{e}; use Go duration syntax, e.g. {name}={example}"),
            })?;
            if d.is_negative() {
                return Err(ConfigError {
                    variable: name,
                    value: v,
                    problem: format!("must not be negative, e.g. {name}={example}"),
                });
            }
            Ok(d)
        };
        let refresh_margin =
            duration(ENV_REFRESH_MARGIN, get(ENV_REFRESH_MARGIN)?, SignedDuration::from_secs(30), "30s")?;
        let refresh_ahead = duration(ENV_REFRESH_AHEAD, get(ENV_REFRESH_AHEAD)?, SignedDuration::ZERO, "5m")?;
        let heal = match get(ENV_HEAL)? {
            None => true,
            Some(v) => parse_bool(&v).ok_or_else(|| ConfigError {
                variable: ENV_HEAL,
                value: v.clone(),
                problem: "expected 1/true/yes/on or 0/false/no/off".into(),
            })?,
        };
        let failure_backoff = match get(ENV_FAILURE_BACKOFF)? {
            Some(v) if parse_bool(&v) == Some(false) => None,
            v => Some(duration(ENV_FAILURE_BACKOFF, v, crate::backoff::DEFAULT_MAX, "5m")?).filter(|d| !d.is_zero()),
        };
        let default_ttl = duration(ENV_DEFAULT_TTL, get(ENV_DEFAULT_TTL)?, SignedDuration::from_hours(1), "1h")?;
        let no_expiry_threshold =
            duration(ENV_NO_EXPIRY_THRESHOLD, get(ENV_NO_EXPIRY_THRESHOLD)?, SignedDuration::from_hours(24), "24h")?;

        let key_env = match get(ENV_CACHEKEY_ENV_LIST)? {
            None => DEFAULT_KEY_ENV.iter().map(|s| s.to_string()).collect(),
            Some(v) => {
                let names: Vec<String> =
                    v.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect();
                if let Some(bad) = names.iter().find(|n| n.contains('=') || n.contains('\0') || n.contains(' ')) {
                    return Err(ConfigError {
                        variable: ENV_CACHEKEY_ENV_LIST,
                        value: v.clone(),
                        problem: format!(
                            "'{bad}' is not an environment variable name; use a comma-separated list, e.g. {ENV_CACHEKEY_ENV_LIST}=AWS_PROFILE,AWS_REGION"
                        ),
                    });
                }
                names
            }
        };

        let builtins = match get(ENV_IDENTITY)? {
            None => true,
            Some(v) => parse_bool(&v).ok_or_else(|| ConfigError {
                variable: ENV_IDENTITY,
                value: v.clone(),
                problem: "expected on (the default) or off: 1/true/yes/on or 0/false/no/off".into(),
            })?,
        };
        let identity_files = match get(ENV_IDENTITY_FILES)? {
            None => Vec::new(),
            Some(v) => {
                let mut files = Vec::new();
                for part in crate::platform::Os::CURRENT.split_list(&v) {
                    let part = part.trim();
                    if part.is_empty() {
                        continue;
                    }
                    if !std::path::Path::new(part).is_absolute() {
                        return Err(ConfigError {
                            variable: ENV_IDENTITY_FILES,
                            value: v.clone(),
                            problem: format!(
                                "'{part}' is not an absolute path; list absolute paths separated like PATH, e.g. {ENV_IDENTITY_FILES}=$HOME/.config/my-idp/current-user"
                            ),
                        });
                    }
                    files.push(std::path::PathBuf::from(part));
                }
                files
            }
        };
        let identity = crate::identity::Settings { builtins, files: identity_files };

        let debug = match get(ENV_DEBUG)? {
            None => false,
            Some(v) => parse_bool(&v).ok_or_else(|| ConfigError {
                variable: ENV_DEBUG,
                value: v.clone(),
                problem: "expected 1/true/yes/on or 0/false/no/off".into(),
            })?,
        };

        let keyring_entry_limit = match get(ENV_KEYRING_ENTRY_LIMIT)? {
            None => DEFAULT_KEYRING_ENTRY_LIMIT,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (MIN_KEYRING_ENTRY_LIMIT..=MAX_KEYRING_ENTRY_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ConfigError {
                        variable: ENV_KEYRING_ENTRY_LIMIT,
                        value: v,
                        problem: format!(
                            "expected a number of bytes from {MIN_KEYRING_ENTRY_LIMIT} to {MAX_KEYRING_ENTRY_LIMIT}, e.g. {ENV_KEYRING_ENTRY_LIMIT}=2560"
                        ),
                    });
                }
            },
        };

        let plugin_timeout = duration(ENV_PLUGIN_TIMEOUT, get(ENV_PLUGIN_TIMEOUT)?, SignedDuration::ZERO, "10m")?;
        let plugin_timeout =
            (!plugin_timeout.is_zero()).then(|| std::time::Duration::try_from(plugin_timeout).unwrap_or_default());

        Ok(Config {
            backend,
            file,
            refresh_margin,
            refresh_ahead,
            heal,
            failure_backoff,
            default_ttl,
            no_expiry_threshold,
            key_env,
            identity,
            debug,
            keyring_entry_limit,
            plugin_timeout,
            sources,
        })
    }

    /// Where `variable` came from.
    pub fn source(&self, variable: &str) -> Source {
        self.sources.iter().find(|(n, _)| *n == variable).map_or(Source::Default, |(_, s)| *s)
    }
}

/// The truthy/falsy words the Go kcc and most CLIs understand.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" => Some(true),
        "0" | "false" | "no" | "off" | "n" => Some(false),
        _ => None,
    }
}

/// Whether debug output was asked for, without validating anything else.
/// Used where the full configuration could not be read (to decide how much of
/// an error report to show).
pub fn debug_requested() -> bool {
    std::env::var(ENV_DEBUG).ok().and_then(|v| parse_bool(&v)).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        Config::from_lookup(|n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.into()))
    }

    #[test]
    fn defaults_are_the_go_kccs() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.backend, BackendChoice::Auto);
        assert_eq!(c.refresh_margin, SignedDuration::from_secs(30));
        assert_eq!(c.default_ttl, SignedDuration::from_hours(1));
        assert_eq!(c.no_expiry_threshold, SignedDuration::from_hours(24));
        assert_eq!(c.key_env, DEFAULT_KEY_ENV);
        assert!(!c.debug);
        assert_eq!(c.refresh_ahead, SignedDuration::ZERO, "refresh ahead is off by default");
        assert!(c.heal, "healing is on by default");
        assert_eq!(c.source(ENV_BACKEND), Source::Default);
        assert_eq!(c.failure_backoff, Some(SignedDuration::from_mins(5)), "failures back off by default");
    }

    #[test]
    fn the_failure_backoff_is_a_duration_or_off() {
        for off in ["0", "0s", "off", "false", "no"] {
            assert_eq!(cfg(&[(ENV_FAILURE_BACKOFF, off)]).unwrap().failure_backoff, None, "{off}");
        }
        let one = cfg(&[(ENV_FAILURE_BACKOFF, "1m")]).unwrap().failure_backoff;
        assert_eq!(one, Some(SignedDuration::from_mins(1)));
        for bad in ["5", "-1m", "sometimes"] {
            assert_eq!(cfg(&[(ENV_FAILURE_BACKOFF, bad)]).unwrap_err().variable, ENV_FAILURE_BACKOFF, "{bad}");
        }
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let e = cfg(&[(ENV_REFRESH_MARGIN, "30")]).unwrap_err();
        assert_eq!(e.variable, ENV_REFRESH_MARGIN);
        assert!(e.to_string().contains("30s"), "{e}");
        assert_eq!(cfg(&[(ENV_BACKEND, "disk")]).unwrap_err().variable, ENV_BACKEND);
        assert_eq!(cfg(&[(ENV_DEBUG, "maybe")]).unwrap_err().variable, ENV_DEBUG);
        assert_eq!(cfg(&[(ENV_DEFAULT_TTL, "-1h")]).unwrap_err().variable, ENV_DEFAULT_TTL);
        assert_eq!(cfg(&[(ENV_REFRESH_AHEAD, "5")]).unwrap_err().variable, ENV_REFRESH_AHEAD);
        assert_eq!(cfg(&[(ENV_HEAL, "sometimes")]).unwrap_err().variable, ENV_HEAL);
        for bad in ["12", "lots", "-1", "99999999999"] {
            assert_eq!(cfg(&[(ENV_KEYRING_ENTRY_LIMIT, bad)]).unwrap_err().variable, ENV_KEYRING_ENTRY_LIMIT, "{bad}");
        }
    }

    #[test]
    fn env_values_are_read() {
        let c = cfg(&[(ENV_BACKEND, "file"), (ENV_DEBUG, "yes"), (ENV_CACHEKEY_ENV_LIST, "A, B,,C")]).unwrap();
        assert_eq!(c.backend, BackendChoice::File);
        assert!(c.debug);
        assert_eq!(c.key_env, ["A", "B", "C"]);
        assert_eq!(c.source(ENV_BACKEND), Source::Env);
        assert_eq!(cfg(&[(ENV_KEYRING_ENTRY_LIMIT, " 2560 ")]).unwrap().keyring_entry_limit, 2560);
        assert_eq!(cfg(&[]).unwrap().keyring_entry_limit, DEFAULT_KEYRING_ENTRY_LIMIT);
        let c = cfg(&[(ENV_REFRESH_AHEAD, "5m"), (ENV_HEAL, "0")]).unwrap();
        assert_eq!(c.refresh_ahead, SignedDuration::from_mins(5));
        assert!(!c.heal);
    }

    #[test]
    fn identity_settings_are_validated() {
        let c = cfg(&[]).unwrap();
        assert!(c.identity.builtins && c.identity.files.is_empty());
        assert!(!cfg(&[(ENV_IDENTITY, "off")]).unwrap().identity.builtins);
        assert_eq!(cfg(&[(ENV_IDENTITY, "sometimes")]).unwrap_err().variable, ENV_IDENTITY);
        // Separated like PATH, absolute as the platform reads it.
        #[cfg(unix)]
        let (list, want, bad, culprit) = ("/a/b::/c", ["/a/b", "/c"], "/a:rel/x", "'rel/x'");
        #[cfg(windows)]
        let (list, want, bad, culprit) = (r"C:\a\b;;C:\c", [r"C:\a\b", r"C:\c"], r"C:\a;rel\x", r"'rel\x'");
        let files = cfg(&[(ENV_IDENTITY_FILES, list)]).unwrap().identity.files;
        assert_eq!(files, want.map(std::path::PathBuf::from));
        let e = cfg(&[(ENV_IDENTITY_FILES, bad)]).unwrap_err();
        assert_eq!(e.variable, ENV_IDENTITY_FILES);
        assert!(e.to_string().contains(culprit), "{e}");
    }

    #[test]
    fn the_plugin_timeout_is_off_unless_set() {
        assert_eq!(cfg(&[]).unwrap().plugin_timeout, None);
        assert_eq!(cfg(&[(ENV_PLUGIN_TIMEOUT, "0")]).unwrap().plugin_timeout, None);
        let five = cfg(&[(ENV_PLUGIN_TIMEOUT, "5m")]).unwrap().plugin_timeout;
        assert_eq!(five, Some(std::time::Duration::from_secs(300)));
        assert_eq!(cfg(&[(ENV_PLUGIN_TIMEOUT, "5")]).unwrap_err().variable, ENV_PLUGIN_TIMEOUT);
        assert_eq!(cfg(&[(ENV_PLUGIN_TIMEOUT, "-1s")]).unwrap_err().variable, ENV_PLUGIN_TIMEOUT);
    }
}
