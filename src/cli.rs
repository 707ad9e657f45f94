//! Command-line definitions (argh). No I/O here: these types are parsed in
//! [`crate::dispatch`] and handed to the mode modules under `cmd/`.
//!
//! `kcc cache` / `kcc-cache` take their arguments raw (every word after the
//! command is the plugin's); [`CacheArgs`] exists for help text only.
//! argh has no `--flag=value` syntax; [`split_equals`] turns it into
//! `--flag value` before parsing.

use argh::{ArgsInfo, FromArgs};

/// The version line: `kcc 0.1.0 (git abc1234)` when built from a checkout.
/// Here, beside the flags, so `--version` (dispatch) and `kcc doctor` share
/// it without the doctor module depending on dispatch.
pub fn version_line() -> String {
    match option_env!("KCC_GIT_REVISION") {
        Some(rev) if !rev.is_empty() => format!("kcc {} (git {rev})", env!("CARGO_PKG_VERSION")),
        _ => format!("kcc {}", env!("CARGO_PKG_VERSION")),
    }
}

/// kcc (kube-credential-cache): caches the credentials of Kubernetes exec
/// plugins (aws eks get-token, gke-gcloud-auth-plugin, kubelogin, oidc-login)
/// so kubectl, helm and k9s stop waiting for them on every call.
#[derive(FromArgs, ArgsInfo, Debug, PartialEq)]
#[argh(help_triggers("-h", "--help", "help"))]
pub struct KccArgs {
    /// print the version and exit
    #[argh(switch, short = 'V')]
    pub version: bool,
    #[argh(subcommand)]
    pub command: Option<Command>,
}

/// The modes.
#[derive(FromArgs, ArgsInfo, Debug, PartialEq)]
#[argh(subcommand)]
pub enum Command {
    /// caching proxy
    Cache(CacheArgs),
    /// kubeconfig rewriter
    Inject(InjectArgs),
    /// cache purge
    Clear(ClearArgs),
    /// diagnostics
    Doctor(DoctorArgs),
    /// personality links
    InstallLinks(InstallLinksArgs),
}

/// run a credential plugin through the cache: every argument after CMD is the
/// plugin's, passed on untouched (configured by KUBE_CREDENTIAL_CACHE_*
/// variables; see `man kcc`)
#[derive(FromArgs, ArgsInfo, Debug, PartialEq)]
#[argh(subcommand, name = "cache")]
pub struct CacheArgs {
    /// the plugin command and its arguments, e.g. aws eks get-token --cluster-name c
    #[argh(positional, greedy)]
    pub command: Vec<String>,
}

/// rewrite kubeconfig exec users to go through kcc-cache (or restore them)
#[derive(FromArgs, ArgsInfo, Debug, PartialEq)]
#[argh(subcommand, name = "inject", help_triggers("-h", "--help", "help"))]
pub struct InjectArgs {
    /// edit the files in place instead of printing the result
    #[argh(switch, short = 'i')]
    pub in_place: bool,
    /// restore: undo what inject changed
    #[argh(switch, short = 'r')]
    pub restore: bool,
    /// the command to inject (default: kcc-cache; kubectl-kcc when run as kubectl kcc and no kcc-cache is on PATH)
    #[argh(option, short = 'c')]
    pub command: Option<String>,
    /// kubeconfig files (default: $KUBECONFIG, else ~/.kube/config)
    #[argh(positional)]
    pub files: Vec<String>,
}

/// remove cached credentials from every backend
#[derive(FromArgs, ArgsInfo, Debug, PartialEq)]
#[argh(subcommand, name = "clear")]
pub struct ClearArgs {
    /// remove everything kcc cached (the default when no selector is given)
    #[argh(switch)]
    pub all: bool,
    /// remove only entries that have expired
    #[argh(switch)]
    pub expired: bool,
    /// remove only entries of this kubeconfig user (KUBE_CREDENTIAL_CACHE_USER)
    #[argh(option)]
    pub user: Option<String>,
    /// remove only entries for this API server URL
    #[argh(option)]
    pub server: Option<String>,
    /// remove only this exact cache key (repeatable)
    #[argh(option)]
    pub key: Vec<String>,
    /// remove only entries stored for an identity that is no longer current (a switched gcloud configuration, AWS profile, Azure subscription, …) for their kubeconfig user
    #[argh(switch)]
    pub identity_changed: bool,
    /// list what would be removed, change nothing
    #[argh(switch)]
    pub dry_run: bool,
}

/// explain the set-up: settings, backend, store, kubeconfig users, cached entries
#[derive(FromArgs, ArgsInfo, Debug, PartialEq)]
#[argh(subcommand, name = "doctor")]
pub struct DoctorArgs {
    /// kubeconfig file to inspect (default: $KUBECONFIG, else ~/.kube/config)
    #[argh(option)]
    pub kubeconfig: Vec<String>,
    /// context to compute cache keys for (default: current-context)
    #[argh(option)]
    pub context: Option<String>,
    /// print the report as JSON
    #[argh(switch)]
    pub json: bool,
}

/// create the kcc-cache and kcc-injector personalities (symlinks to this kcc)
/// next to the kcc binary, or in DIR; existing correct links are kept, any
/// other file of that name is refused
#[derive(FromArgs, ArgsInfo, Debug, PartialEq)]
#[argh(subcommand, name = "install-links")]
pub struct InstallLinksArgs {
    /// directory to create the links in (default: the directory of the running kcc)
    #[argh(option)]
    pub dir: Option<String>,
}

/// The artefacts `kcc generate` writes (hidden: dispatched before argh parses,
/// so it stays out of `kcc --help`; see `completions/` and `man/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artefact {
    /// The roff man page `man/kcc.1`.
    Man,
    /// `completions/kcc.bash`.
    Bash,
    /// `completions/_kcc`.
    Zsh,
    /// `completions/kcc.fish`.
    Fish,
}

impl Artefact {
    /// Every artefact, in the order the README lists them.
    pub const ALL: [Artefact; 4] = [Artefact::Man, Artefact::Bash, Artefact::Zsh, Artefact::Fish];

    /// The word on the command line (`kcc generate man`).
    pub fn name(self) -> &'static str {
        match self {
            Artefact::Man => "man",
            Artefact::Bash => "bash",
            Artefact::Zsh => "zsh",
            Artefact::Fish => "fish",
        }
    }

    /// Where the committed copy lives, relative to the repository root.
    pub fn committed_path(self) -> &'static str {
        match self {
            Artefact::Man => "man/kcc.1",
            Artefact::Bash => "completions/kcc.bash",
            Artefact::Zsh => "completions/_kcc",
            Artefact::Fish => "completions/kcc.fish",
        }
    }
}

fn parse_artefact(value: &str) -> Result<Artefact, String> {
    Artefact::ALL.into_iter().find(|a| a.name() == value).ok_or_else(|| {
        let names: Vec<&str> = Artefact::ALL.iter().map(|a| a.name()).collect();
        format!("unknown artefact '{value}'; valid ones are {}", names.join(", "))
    })
}

/// print a generated file (man page or shell completion) on stdout; the
/// committed copies under man/ and completions/ are this command's output
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand, name = "generate")]
pub struct GenerateArgs {
    /// what to generate: man, bash, zsh or fish
    #[argh(positional, from_str_fn(parse_artefact))]
    pub artefact: Artefact,
}

/// `--flag=value` → `--flag`, `value` (argh knows only the split form).
/// Only long options before a `--` are split; values are never touched.
pub fn split_equals(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut passthrough = false;
    for arg in args {
        if passthrough || arg == "--" {
            passthrough = true;
            out.push(arg.clone());
            continue;
        }
        match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") && flag.len() > 2 => {
                out.push(flag.to_string());
                out.push(value.to_string());
            }
            _ => out.push(arg.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_form_is_split() {
        let args: Vec<String> = ["doctor", "--kubeconfig=/a=b", "--json", "--", "--x=y"].map(String::from).into();
        assert_eq!(split_equals(&args), ["doctor", "--kubeconfig", "/a=b", "--json", "--", "--x=y"]);
    }

    #[test]
    fn inject_flags_parse() {
        let a = KccArgs::from_args(&["kcc"], &["inject", "-i", "-r", "-c", "kcc", "a.yaml"]).unwrap();
        let Some(Command::Inject(i)) = a.command else { panic!() };
        assert!(i.in_place && i.restore);
        assert_eq!(i.command.as_deref(), Some("kcc"));
        assert_eq!(i.files, ["a.yaml"]);
    }
}
