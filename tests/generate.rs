//! The committed man page and completions: identical to what `kcc generate`
//! prints (so they cannot drift from the argh definitions), rendered by the
//! real `man` without warnings, and really completing in bash, zsh and fish.
//! `man`, `zsh` and `fish` are required (`.ci/run` installs them).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::*;

const REGENERATE: &str = "scripts/regenerate";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Runs a required tool, failing loudly with the package to install.
fn tool(program: &str, package: &str) -> Command {
    let found =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()));
    assert!(found, "'{program}' is not on PATH: these tests need it (apt-get install {package}; .ci/run installs it)");
    let mut cmd = Command::new(program);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).env("LANG", "C.UTF-8");
    cmd
}

#[test]
fn committed_man_page_and_completions_match_kcc_generate() {
    let w = World::new();
    let mut stale = Vec::new();
    for (artefact, path) in [
        ("man", "man/kcc.1"),
        ("bash", "completions/kcc.bash"),
        ("zsh", "completions/_kcc"),
        ("fish", "completions/kcc.fish"),
    ] {
        let generated = ok(&w.cmd("kcc").args(["generate", artefact]).output().unwrap());
        let committed = fs::read_to_string(repo(path)).unwrap_or_default();
        if generated != committed {
            stale.push(path);
        }
    }
    for page in ["man/kcc-cache.1", "man/kcc-injector.1"] {
        if fs::read_to_string(repo(page)).unwrap_or_default() != ".so man1/kcc.1\n" {
            stale.push(page);
        }
    }
    assert!(stale.is_empty(), "{stale:?} differ from `kcc generate …`: run {REGENERATE} and commit the result");
}

#[test]
fn generate_is_hidden_and_checks_its_argument() {
    let w = World::new();
    let help = ok(&w.cmd("kcc").arg("--help").output().unwrap());
    assert!(!help.contains("generate"), "{help}");
    let out = w.cmd("kcc").args(["generate", "powershell"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("valid ones are man, bash, zsh, fish"), "{}", stderr(&out));
}

#[test]
fn the_man_page_renders_without_warnings() {
    for page in ["man/kcc.1"] {
        let out = tool("man", "man-db").args(["--warnings", "-l", page]).env("MANWIDTH", "80").output().unwrap();
        assert!(out.status.success(), "man -l {page} failed: {}", stderr(&out));
        assert!(out.stderr.is_empty(), "man --warnings -l {page}:\n{}", stderr(&out));
        let text = stdout(&out);
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "ENVIRONMENT",
            "FILES",
            "EXIT STATUS",
            "EXAMPLES",
            "TROUBLESHOOTING",
            "SEE ALSO",
        ] {
            assert!(text.lines().any(|l| l == section), "section {section} missing");
        }
        for needle in
            ["kcc-cache [--] CMD", "kcc-injector [-i]", "kcc install-links", "KUBE_CREDENTIAL_CACHE_REFRESH_MARGIN"]
        {
            assert!(text.contains(needle), "{needle} missing from the rendered page");
        }
    }
}

/// What bash's completion for `words` (the last one being completed) offers,
/// through the function `complete -p` registered for the command.
fn bash_complete(words: &[&str]) -> Vec<String> {
    let script = r#"source completions/kcc.bash
f=$(complete -p "$1" | sed -E 's/.* -F ([^ ]+) .*/\1/')
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
"$f" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}""#;
    let out = tool("bash", "bash").args(["--norc", "-c", script, "bash"]).args(words).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().filter(|l| !l.is_empty()).map(String::from).collect()
}

#[test]
fn bash_completes_subcommands_flags_and_personalities() {
    let subcommands = bash_complete(&["kcc", ""]);
    for sub in ["cache", "inject", "clear", "doctor", "install-links"] {
        assert!(subcommands.iter().any(|s| s == sub), "kcc <TAB> lacks {sub}: {subcommands:?}");
    }
    assert_eq!(bash_complete(&["kcc", "in"]), ["inject", "install-links"]);
    assert!(bash_complete(&["kcc", "clear", "--"]).contains(&"--expired".to_string()));
    assert!(bash_complete(&["kcc", "doctor", "--"]).contains(&"--kubeconfig".to_string()));
    let injector = bash_complete(&["kcc-injector", "-"]);
    assert!(injector.contains(&"-i".to_string()) && injector.contains(&"-r".to_string()), "{injector:?}");
    // Kubeconfig arguments and option values: an empty reply, so bash's
    // `-o default` completes file names.
    assert!(bash_complete(&["kcc-injector", ""]).is_empty());
    assert!(bash_complete(&["kcc", "inject", "-i", ""]).is_empty());
    assert!(bash_complete(&["kcc", "doctor", "--kubeconfig", ""]).is_empty());
    // kcc-cache and kcc cache: the first word is a command.
    assert!(bash_complete(&["kcc-cache", "bas"]).contains(&"bash".to_string()));
    assert!(bash_complete(&["kcc", "cache", "--", "bas"]).contains(&"bash".to_string()));
}

#[test]
fn fish_completes_subcommands_flags_and_personalities() {
    let complete = |line: &str| -> Vec<String> {
        let out = tool("fish", "fish")
            .args(["--no-config", "-c", &format!("source completions/kcc.fish; complete -C '{line}'")])
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "fish: {}", stderr(&out));
        stdout(&out).lines().map(|l| l.split('\t').next().unwrap_or("").to_string()).collect()
    };
    let subcommands = complete("kcc ");
    for sub in ["cache", "inject", "clear", "doctor", "install-links"] {
        assert!(subcommands.iter().any(|s| s == sub), "kcc <TAB> lacks {sub}: {subcommands:?}");
    }
    assert!(complete("kcc clear --").contains(&"--expired".to_string()));
    assert!(complete("kcc-injector -").contains(&"-i".to_string()));
    assert!(complete("kcc-injector complet").contains(&"completions/".to_string()), "kubeconfigs are files");
    assert!(complete("kcc doctor --kubeconfig complet").contains(&"completions/".to_string()));
    assert!(complete("kcc-cache bas").contains(&"bash".to_string()));
    assert!(complete("kcc cache bas").contains(&"bash".to_string()));
}

#[test]
fn zsh_completion_parses() {
    // Syntax only; `zsh_really_completes_subcommands_and_flags` drives it.
    let out: Output = tool("zsh", "zsh").args(["-n", "completions/_kcc"]).output().unwrap();
    assert!(out.status.success(), "zsh -n completions/_kcc: {}", stderr(&out));
}

/// What an interactive zsh (driven through `zsh/zpty`, with the committed
/// `_kcc` on `fpath` and `compinit`) lists after typing `line` and TAB,
/// escape sequences removed.
fn zsh_complete(line: &str) -> String {
    let script = format!(
        r#"zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z "PS1='%% '; fpath=({dir} \$fpath); autoload -U compinit; compinit -u -D; setopt nobeep; LISTMAX=1000"
zpty -n -w z $'{line}\t'
# Read until the shell has been quiet for 3 s (at most 20 s): a loaded
# machine may take a while to run compinit and list.
out=''; idle=0
for i in {{1..200}}; do
  if zpty -r -t z chunk; then out+=$chunk; idle=0; else sleep 0.1; (( idle++ > 30 )) && break; fi
done
print -r -- "$out"
zpty -d z
"#,
        dir = repo("completions").display()
    );
    let out = tool("zsh", "zsh").arg("-f").arg("-c").arg(&script).env("TERM", "xterm").output().unwrap();
    let raw = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    // Strip ANSI escape sequences (ESC [ … letter).
    let mut clean = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                while let Some(&n) = chars.peek() {
                    chars.next();
                    if n.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        clean.push(c);
    }
    // The echo of the set-up line mentions none of the words the tests look for.
    clean
}

#[test]
fn zsh_really_completes_subcommands_and_flags() {
    let listed = zsh_complete("kcc ");
    for sub in ["cache", "clear", "doctor", "inject", "install-links"] {
        assert!(listed.contains(&format!("{sub} ")), "zsh did not offer '{sub}' for `kcc <TAB>`:\n{listed}");
    }
    assert!(!listed.contains("generate"), "the hidden generate subcommand was offered:\n{listed}");
    let flags = zsh_complete("kcc clear --");
    for flag in ["--expired", "--dry-run", "--user"] {
        assert!(flags.contains(flag), "zsh did not offer {flag} for `kcc clear --<TAB>`:\n{flags}");
    }
}

#[test]
fn installed_personality_pages_show_the_kcc_page() {
    // The README's install line, into a temporary man directory.
    let w = World::new();
    let man1 = w.path("share/man/man1");
    let pages = ["man/kcc.1", "man/kcc-cache.1", "man/kcc-injector.1"];
    let out = tool("install", "coreutils").args(["-Dm644"]).args(pages).arg("-t").arg(&man1).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["kcc", "kcc-cache", "kcc-injector"] {
        let out = tool("man", "man-db")
            .args(["--warnings", "-M"])
            .arg(w.path("share/man"))
            .arg(name)
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "man {name}: {}", stderr(&out));
        assert!(stdout(&out).contains("kcc, kcc-cache, kcc-injector - cache the credentials"), "man {name}");
    }
}

#[test]
fn the_readme_documents_every_setting() {
    let readme = fs::read_to_string(repo("README.md")).unwrap();
    for setting in kcc::config::SETTINGS {
        assert!(
            readme.contains(&format!("| `{}` |", setting.name)),
            "README's configuration table lacks {}",
            setting.name
        );
    }
}
