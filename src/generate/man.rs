//! The man page `kcc(1)`: a small roff renderer over the argh definitions
//! (synopses and options come from `ArgsInfo`, so a new flag appears here by
//! itself) plus hand-written sections. The environment table is
//! [`crate::config::SETTINGS`], the same one `kcc doctor` reports.
//!
//! Prose uses one piece of markup: `` `word` `` is set in bold. Everything
//! else is escaped for roff (`\`, `-`, and a leading `.` or `'`).

use std::fmt::Write;

use argh::{ArgsInfo, CommandInfoWithArgs, FlagInfo, FlagInfoKind, Optionality, PositionalInfo};

use crate::cli::{InjectArgs, KccArgs};
use crate::config::{ENV_USER, SETTINGS};
use crate::paths::{APP_DIR, STORE_FILE};
use crate::plugin::{MAX_RECURSION, RECURSION_ENV};

/// Escapes text for roff and turns `` `x` `` into bold.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut bold = false;
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            '`' => {
                out.push_str(if bold { "\\fR" } else { "\\fB" });
                bold = !bold;
            }
            _ => out.push(c),
        }
    }
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

/// A man page under construction.
struct Page(String);

impl Page {
    fn line(&mut self, roff: &str) {
        self.0.push_str(roff);
        self.0.push('\n');
    }
    fn section(&mut self, name: &str) {
        self.line(&format!(".SH {name}"));
    }
    fn subsection(&mut self, roff: &str) {
        self.line(&format!(".SS \"{roff}\""));
    }
    /// A paragraph of prose (markup: `` `bold` ``).
    fn para(&mut self, text: &str) {
        self.line(".PP");
        self.line(&esc(text));
    }
    /// A tagged paragraph: `tag` is roff, `text` prose.
    fn item(&mut self, tag: &str, text: &str) {
        self.line(".TP");
        self.line(tag);
        self.line(&esc(text));
    }
    /// Literal lines (a kubeconfig, a shell session), indented.
    fn literal(&mut self, lines: &str) {
        self.line(".PP");
        self.line(".RS 4");
        self.line(".nf");
        for l in lines.lines() {
            // Every literal line starts with `\&` so spaces and dots survive.
            self.line(&format!("\\&{}", esc(l)));
        }
        self.line(".fi");
        self.line(".RE");
    }
}

fn bold(s: &str) -> String {
    format!("\\fB{}\\fR", esc(s))
}

fn italic(s: &str) -> String {
    format!("\\fI{}\\fR", esc(s))
}

fn visible_flags(info: &CommandInfoWithArgs) -> impl Iterator<Item = &FlagInfo<'static>> {
    info.flags.iter().filter(|f| !f.hidden && f.long != "--help")
}

/// `[-i] [--user user] [--key key]...` for one flag.
fn flag_synopsis(flag: &FlagInfo) -> String {
    let name = match flag.short {
        Some(s) => format!("-{s}"),
        None => flag.long.to_string(),
    };
    let mut s = bold(&name);
    if let FlagInfoKind::Option { arg_name } = flag.kind {
        // A non-breaking space keeps `--user user` on one line.
        s.push_str("\\ ");
        s.push_str(&italic(arg_name));
    }
    match flag.optionality {
        Optionality::Required => s,
        Optionality::Repeating => format!("[{s}]..."),
        _ => format!("[{s}]"),
    }
}

fn positional_synopsis(p: &PositionalInfo) -> String {
    let name = italic(p.name);
    match p.optionality {
        Optionality::Required => name,
        Optionality::Optional => format!("[{name}]"),
        Optionality::Repeating | Optionality::Greedy => format!("[{name}...]"),
    }
}

/// One synopsis line: `prog` in bold, then every flag and positional.
fn synopsis(prog: &str, info: &CommandInfoWithArgs) -> String {
    let mut s = bold(prog);
    for f in visible_flags(info) {
        s.push(' ');
        s.push_str(&flag_synopsis(f));
    }
    for p in info.positionals.iter().filter(|p| !p.hidden) {
        s.push(' ');
        s.push_str(&positional_synopsis(p));
    }
    s
}

/// `.TP` entries for the flags and positionals of one command.
fn options(page: &mut Page, info: &CommandInfoWithArgs) {
    for f in visible_flags(info) {
        let mut tag = String::new();
        if let Some(short) = f.short {
            tag.push_str(&bold(&format!("-{short}")));
            tag.push_str(", ");
        }
        tag.push_str(&bold(f.long));
        if let FlagInfoKind::Option { arg_name } = f.kind {
            let _ = write!(tag, " {}", italic(arg_name));
        }
        let repeat = if f.optionality == Optionality::Repeating && !f.description.contains("repeatable") {
            " (repeatable)"
        } else {
            ""
        };
        page.item(&tag, &format!("{}{repeat}", sentence(f.description)));
    }
    for p in info.positionals.iter().filter(|p| !p.hidden) {
        page.item(&italic(p.name), &sentence(p.description));
    }
}

/// argh descriptions are lowercase fragments; the man page wants sentences.
fn sentence(description: &str) -> String {
    let mut chars = description.trim().chars();
    let mut s: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !s.ends_with('.') && !s.is_empty() {
        s.push('.');
    }
    s
}

const CACHE_SYNOPSIS: &str = "[--] CMD [ARGS...]";

/// The whole page.
pub fn render() -> String {
    let kcc = KccArgs::get_args_info();
    let inject = InjectArgs::get_args_info();
    let version = env!("CARGO_PKG_VERSION");
    let mut page = Page(String::new());
    page.line(&format!(
        ".\\\" Generated by `kcc generate man` (src/generate/man.rs); do not edit: run {}.",
        super::REGENERATE
    ));
    page.line(&format!(".TH KCC 1 \"\" \"kcc {version}\" \"User Commands\""));
    // Variable names are long: no hyphenation, ragged right.
    page.line(".nh");
    page.line(".ad l");

    page.section("NAME");
    page.line("kcc, kcc\\-cache, kcc\\-injector \\- cache the credentials of Kubernetes exec plugins");

    page.section("SYNOPSIS");
    let cache_words = CACHE_SYNOPSIS.split(' ').map(|w| match w {
        "[--]" => format!("[{}]", bold("--")),
        "CMD" => italic("CMD"),
        "[ARGS...]" => format!("[{}...]", italic("ARGS")),
        other => esc(other),
    });
    let cache_args = cache_words.collect::<Vec<_>>().join(" ");
    let mut lines = vec![format!("{} {cache_args}", bold("kcc-cache")), synopsis("kcc-injector", &inject)];
    lines.push(format!("{} [{}] [{}]", bold("kcc"), bold("-V"), bold("--help")));
    for sub in &kcc.commands {
        if sub.name == "cache" {
            lines.push(format!("{} {cache_args}", bold("kcc cache")));
        } else {
            lines.push(synopsis(&format!("kcc {}", sub.name), &sub.command));
        }
    }
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            page.line(".br");
        }
        page.line(l);
    }

    page.section("DESCRIPTION");
    page.para(
        "kubectl, helm and k9s run a kubeconfig's exec credential plugin (`aws eks get-token`, \
         `gke-gcloud-auth-plugin`, `kubelogin`, `kubectl oidc-login`, ...) on every invocation, and each \
         run costs 0.3 to 1 second. kcc runs the plugin once, keeps the ExecCredential it printed in a \
         private store (the OS secret store, or a 0600 file) and serves it until shortly before it \
         expires. It is a rewrite of the Go kube-credential-cache and keeps its environment \
         variables, cache file, keyring naming and injected kubeconfigs.",
    );
    page.para(
        "kcc is one executable with several names, picked from the name it is called by: \
         `kcc-cache` is the caching proxy a kubeconfig's exec `command` names, `kcc-injector` \
         rewrites kubeconfigs (the Go tool's name), and `kcc` offers both as subcommands next to \
         `clear`, `doctor` and `install-links`. `kcc install-links` creates the two personalities \
         next to the binary.",
    );
    page.para(
        "The cache key is the plugin command, every argument, the values of the variables in \
         KUBE_CREDENTIAL_CACHE_CACHEKEY_ENV_LIST, the apiVersion kubectl asks for, the cluster's \
         server (with `provideClusterInfo: true`) and KUBE_CREDENTIAL_CACHE_USER, so calls that \
         differ in any of them never share a credential. Concurrent callers of one key run the \
         plugin once; the others wait and are served what it printed.",
    );

    page.section("OPTIONS");
    options(&mut page, &kcc);
    for sub in &kcc.commands {
        if sub.name == "cache" {
            page.subsection(&format!("kcc cache {}, kcc\\-cache {}", esc(CACHE_SYNOPSIS), esc(CACHE_SYNOPSIS)));
            page.para(
                "Runs the plugin CMD with ARGS through the cache and prints the ExecCredential. Every \
                 word after CMD is the plugin's, passed on untouched (`-h` and `--help` too); only a \
                 lone `-h`, `--help` or `help` prints the usage. A leading `--` is dropped. The \
                 plugin gets kcc's stdin and stderr, so interactive logins work.",
            );
            continue;
        }
        let personality = if sub.name == "inject" { ", kcc\\-injector" } else { "" };
        page.subsection(&format!("kcc {}{personality}", esc(sub.name)));
        page.para(&sentence(sub.command.description));
        if sub.name == "inject" {
            page.para(
                "With no file: the files in $KUBECONFIG (colon-separated), else ~/.kube/config. \
                 Every exec user's `command` becomes kcc-cache (or the `-c` command), the old command \
                 moves to the front of `args`, and KUBE_CREDENTIAL_CACHE_USER plus a marker \
                 variable are added so `-r` restores exactly. Injecting twice equals injecting once. \
                 `-i` keeps a backup FILE.kcc-backup before the first change.",
            );
        }
        options(&mut page, &sub.command);
    }

    page.section("ENVIRONMENT");
    for s in SETTINGS {
        page.item(&bold(s.name), &format!("{}. Default: {}.", sentence(s.meaning).trim_end_matches('.'), s.default));
    }
    page.item(
        &bold(ENV_USER),
        "The kubeconfig user name; `kcc inject` sets it in each exec user's env. Part of the cache key, and what `kcc clear --user` matches.",
    );
    page.item(
        &bold(RECURSION_ENV),
        &format!(
            "Set by kcc for the plugin it runs: a plugin that leads back to kcc fails after {MAX_RECURSION} levels instead of looping. Not a setting."
        ),
    );
    page.item(
        &bold("KUBERNETES_EXEC_INFO"),
        "Set by kubectl: the apiVersion it expects and, with `provideClusterInfo: true`, the cluster's server. Both are part of the cache key.",
    );
    page.item(&bold("KUBECONFIG"), "The kubeconfig files `kcc inject` and `kcc doctor` read when given none.");
    page.item(&bold("NO_COLOR"), "Set and not empty: no colour in error reports.");
    page.para(
        "Durations use Go's syntax (30s, 1h30m, 1.5h, 300ms, 0); negative ones are refused. An invalid \
         value is an error naming the variable, exit status 1, and the plugin is not run.",
    );

    page.section("FILES");
    let store = format!("~/.cache/{APP_DIR}/{STORE_FILE}");
    page.item(
        &italic(&store),
        "The file store on Linux ($XDG_CACHE_HOME when set); ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows. \
         0600, in a 0700 directory, in the Go kcc's JSON shape.",
    );
    page.item(
        &italic("cache.lock, cache.flight/, cache.index.json"),
        "Beside the store: the store lock, per-key refresh locks, and the index of keyring entries (keys, users, servers and expiries; never a secret).",
    );
    page.item(&italic("~/.kube/config"), "The default kubeconfig of `kcc inject` and `kcc doctor`.");
    page.item(
        &italic("FILE.kcc-backup"),
        "The copy `kcc inject -i` keeps before changing FILE the first time; an existing different backup is never overwritten.",
    );

    page.section("EXIT STATUS");
    page.item(&bold("0"), "Success; a credential was printed (cache), or nothing went wrong.");
    page.item(
        &italic("plugin's status"),
        "The plugin failed: kcc exits with its status (128 + signal number when it was killed) and caches nothing.",
    );
    page.item(&bold("1"), "An error: invalid setting, unusable plugin output, unreadable kubeconfig, a file in the way of install-links; `kcc doctor` found a problem.");
    page.item(&bold("2"), "Usage error: unknown flag or subcommand, missing plugin command.");
    page.item(&bold("126"), "The plugin command is not executable.");
    page.item(&bold("127"), "The plugin command was not found.");

    page.section("EXAMPLES");
    page.para("Install from source and create the personalities, then wrap every exec user of a kubeconfig:");
    page.literal(
        "cargo install --path .\n\
         kcc install-links\n\
         kcc inject -i ~/.kube/config\n\
         kcc inject -i -r ~/.kube/config   # undo",
    );
    page.para("EKS (`aws eks update-kubeconfig`), after `kcc inject -i`:");
    page.literal(
        "users:\n\
         - name: arn:aws:eks:eu-west-1:111122223333:cluster/prod\n  \
         user:\n    \
         exec:\n      \
         apiVersion: client.authentication.k8s.io/v1beta1\n      \
         command: kcc-cache\n      \
         args: [aws, --region, eu-west-1, eks, get-token,\n             \
         --cluster-name, prod]\n      \
         env:\n      \
         - {name: AWS_PROFILE, value: prod}\n      \
         - {name: KUBE_CREDENTIAL_CACHE_USER,\n         \
         value: arn:aws:eks:eu-west-1:111122223333:cluster/prod}\n      \
         provideClusterInfo: true",
    );
    page.para("GKE:");
    page.literal(
        "    exec:\n      \
         apiVersion: client.authentication.k8s.io/v1beta1\n      \
         command: kcc-cache\n      \
         args: [gke-gcloud-auth-plugin]\n      \
         provideClusterInfo: true",
    );
    page.para("AKS with kubelogin:");
    page.literal(
        "    exec:\n      \
         apiVersion: client.authentication.k8s.io/v1beta1\n      \
         command: kcc-cache\n      \
         args: [kubelogin, get-token, --login, azurecli,\n             \
         --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]",
    );
    page.para("OIDC with kubelogin's oidc-login plugin:");
    page.literal(
        "    exec:\n      \
         apiVersion: client.authentication.k8s.io/v1beta1\n      \
         command: kcc-cache\n      \
         args: [kubectl, oidc-login, get-token,\n             \
         --oidc-issuer-url=https://issuer.example.com,\n             \
         --oidc-client-id=kubernetes]",
    );
    page.para("See what kcc decides, then purge one user's credentials:");
    page.literal(
        "KUBE_CREDENTIAL_CACHE_DEBUG=1 kubectl get ns\n\
         kcc doctor --context prod\n\
         kcc clear --user=alice --dry-run",
    );

    page.section("TROUBLESHOOTING");
    page.item(
        &bold("You must be logged in to the server"),
        "A stale credential is cached (after a role change, say): `kcc clear --user NAME`, or `kcc clear`.",
    );
    page.item(
        &bold("kubectl keeps running the plugin"),
        "`kcc doctor` shows whether the user is wrapped, its cache key and why the next call misses; KUBE_CREDENTIAL_CACHE_DEBUG=1 explains each call on stderr.",
    );
    page.item(
        &bold("executable kcc-cache not found"),
        "The personality is missing or not on PATH: run `kcc install-links` (or `kcc install-links --dir DIR` for a directory on PATH).",
    );
    page.item(
        &bold("already exists and is a file, not this kcc"),
        "`kcc install-links` never replaces a file that is not kcc (an old Go kcc-cache, say): remove it and run the command again.",
    );
    page.para(
        "Errors reach kubectl as one plain line starting with kcc:; KUBE_CREDENTIAL_CACHE_DEBUG=1 shows the full report.",
    );

    page.section("SEE ALSO");
    page.line(".BR kubectl (1),");
    page.line(".BR aws (1),");
    page.line(".BR gcloud (1)");
    page.para("The Kubernetes documentation on client-go credential plugins (the exec section of a kubeconfig).");
    page.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_roff_control_characters_literal() {
        assert_eq!(esc(".hidden"), "\\&.hidden");
        assert_eq!(esc("a-b \\ `c`"), "a\\-b \\e \\fBc\\fR");
    }

    #[test]
    fn every_setting_and_subcommand_is_documented() {
        let page = render();
        for s in SETTINGS {
            assert!(page.contains(&esc(s.name)), "{} missing", s.name);
        }
        for sub in KccArgs::get_args_info().commands {
            assert!(page.contains(&format!("kcc {}", esc(sub.name))), "{} missing", sub.name);
        }
    }
}
