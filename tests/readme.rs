//! The README's commands stay true: each one a user is told to run is run
//! here against the built binary (or by `.ci/run`), so an edit that breaks
//! one fails the suite.

use std::process::Command;

use crate::util::*;

const README: &str = include_str!("../README.md");

/// The shell lines of the first ```sh block after `heading`.
fn sh_block(heading: &str) -> Vec<&'static str> {
    let section = README.split_once(heading).unwrap_or_else(|| panic!("README has no '{heading}'")).1;
    let block = section.split_once("```sh\n").expect("a ```sh block").1.split_once("```").unwrap().0;
    block.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).collect()
}

#[test]
fn readme_set_up_command_one_shows_a_miss_then_a_hit() {
    let lines = sh_block("## Set-up: the two commands");
    assert_eq!(lines.len(), 2, "two set-up commands: {lines:?}");
    let (build, demo) = lines[0].split_once(" && ").expect("`cargo build --release && …`");
    assert_eq!(build, "cargo build --release");
    assert_eq!(lines[1], "scripts/test", "the second set-up command is the test suite");

    // The same command with the test's binary and a private demo directory.
    let w = World::new();
    let demo_dir = w.path("kcc-demo");
    let demo = demo
        .replace("target/release/kcc", kcc_exe().to_str().unwrap())
        .replace("/tmp/kcc-demo", demo_dir.to_str().unwrap());
    let out = Command::new("sh")
        .arg("-c")
        .arg(&demo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("XDG_CACHE_HOME", w.path("xdg-cache"))
        .env("HOME", &w.home)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{demo}\n{err}");
    let miss = err.find("miss: no entry").unwrap_or_else(|| panic!("no miss explained:\n{err}"));
    let hit = err.find("hit: expires").unwrap_or_else(|| panic!("no hit explained:\n{err}"));
    assert!(miss < hit, "the first call misses, the second hits:\n{err}");
    assert_eq!(err.matches("running '").count(), 1, "the example plugin runs once:\n{err}");
    let printed = stdout(&out);
    assert_eq!(printed.lines().count(), 2, "both calls print the credential:\n{printed}");
    assert!(demo_dir.join("cache.json").exists());
}

#[test]
fn readme_completion_install_lines_work_in_a_fresh_home() {
    let lines = sh_block("### Shell completions");
    assert!(lines.len() >= 6, "{lines:?}");
    let w = World::new();
    let script = lines.join("\n");
    let out = Command::new("sh")
        .arg("-ec")
        .arg(&script)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HOME", &w.home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}\n{}", stderr(&out));
    // Every installed name resolves to the committed file (links included).
    let installed = [
        (".local/share/bash-completion/completions/kcc", "completions/kcc.bash"),
        (".local/share/bash-completion/completions/kcc-cache", "completions/kcc.bash"),
        (".local/share/bash-completion/completions/kcc-injector", "completions/kcc.bash"),
        (".zfunc/_kcc", "completions/_kcc"),
        (".config/fish/completions/kcc.fish", "completions/kcc.fish"),
        (".config/fish/completions/kcc-cache.fish", "completions/kcc.fish"),
        (".config/fish/completions/kcc-injector.fish", "completions/kcc.fish"),
    ];
    for (at, committed) in installed {
        let got = std::fs::read(w.home.join(at)).unwrap_or_else(|e| panic!("{at}: {e}"));
        let want = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(committed)).unwrap();
        assert!(got == want, "{at} is not {committed}");
    }
}
