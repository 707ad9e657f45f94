//! The command line itself: version, the `--flag=value` form.

use crate::util::*;

#[test]
fn version_shows_the_package_version_and_git_revision() {
    let w = World::new();
    for flag in ["--version", "-V"] {
        let out = ok(&w.cmd("kcc").arg(flag).output().unwrap());
        let line = out.trim();
        let prefix = format!("kcc {}", env!("CARGO_PKG_VERSION"));
        assert!(line.starts_with(&prefix), "{line}");
        // Built from a checkout (as the tests always are): the revision too.
        if std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.git")).exists() {
            let rev = line.strip_prefix(&format!("{prefix} (git ")).and_then(|r| r.strip_suffix(')'));
            assert!(rev.is_some_and(|r| r.len() == 12 && r.chars().all(|c| c.is_ascii_hexdigit())), "{line}");
        }
    }
}

#[test]
fn equals_form_is_accepted_by_every_subcommand() {
    let w = World::new();
    ok(&w.cmd("kcc").args(["clear", "--user=alice", "--dry-run"]).output().unwrap());
    ok(&w.cmd("kcc").args(["clear", "--key=some-key", "--server=https://x.example", "--dry-run"]).output().unwrap());
    let kubeconfig = w.path("config");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\nusers: []\n").unwrap();
    ok(&w.cmd("kcc").args(["inject", &format!("--command={}", "kcc"), kubeconfig.to_str().unwrap()]).output().unwrap());
    ok(&w.cmd("kcc-injector").args(["--command=kcc", kubeconfig.to_str().unwrap()]).output().unwrap());
    // Unknown flags still fail as usage errors, showing the flag.
    let out = w.cmd("kcc").args(["clear", "--bogus=1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--bogus"), "{}", stderr(&out));
}
