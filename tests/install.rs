//! `kcc install-links`: the personalities a `cargo install` needs, created
//! next to the binary or in `--dir`, idempotent, never overwriting a file
//! that is not kcc.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::*;

/// A copy of the built kcc in its own directory, as `cargo install` leaves it
/// (a hard link when the file system allows; the debug binary is large).
fn installed_kcc(w: &World) -> PathBuf {
    let dir = w.path("cargo-root/bin");
    fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("kcc");
    fs::hard_link(kcc_exe(), &exe).or_else(|_| fs::copy(kcc_exe(), &exe).map(|_| ())).unwrap();
    exe
}

fn install_links(w: &World, exe: &Path, args: &[&str]) -> std::process::Output {
    w.cmd(exe).arg("install-links").args(args).output().unwrap()
}

#[test]
fn install_links_beside_the_binary_gives_working_personalities() {
    let w = World::new();
    let exe = installed_kcc(&w);
    let dir = exe.parent().unwrap();
    let out = ok(&install_links(&w, &exe, &[]));
    for name in ["kcc-cache", "kcc-injector"] {
        let link = dir.join(name);
        assert!(out.contains(&format!("created {}", link.display())), "{out}");
        // Relative beside the binary, so the directory can move.
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("kcc"));
    }

    // The created kcc-cache is the caching proxy: a miss, then a hit.
    let cred = credential("v1", SECRET, Some(&in_secs(3600)));
    let plugin = w.plugin("plug", &cred, 0.0);
    for _ in 0..2 {
        let out = ok(&w.cmd(dir.join("kcc-cache")).arg(&plugin).output().unwrap());
        assert_eq!(out.trim(), cred);
    }
    assert_eq!(w.runs("plug"), 1, "the second call through the new link must be a hit");
    let help = ok(&w.cmd(dir.join("kcc-injector")).arg("--help").output().unwrap());
    assert!(help.contains("Usage: kcc-injector"), "{help}");

    // A second run changes nothing.
    let again = ok(&install_links(&w, &exe, &[]));
    assert_eq!(again.matches("already ").count(), 2, "{again}");
    assert!(!again.contains("created"), "{again}");
}

#[test]
fn install_links_into_a_directory_is_idempotent() {
    let w = World::new();
    let dir = w.path("links");
    fs::create_dir(&dir).unwrap();
    let kcc = w.bin.join("kcc");
    // --dir=DIR works as well as --dir DIR.
    let out = ok(&install_links(&w, &kcc, &[&format!("--dir={}", dir.display())]));
    assert_eq!(out.matches("created ").count(), 2, "{out}");
    for name in ["kcc-cache", "kcc-injector"] {
        assert_eq!(fs::canonicalize(dir.join(name)).unwrap(), fs::canonicalize(kcc_exe()).unwrap());
    }
    let out = ok(&install_links(&w, &kcc, &["--dir", dir.to_str().unwrap()]));
    assert_eq!(out.matches("already ").count(), 2, "{out}");
    // The world's own bin/ already holds correct links (made by the harness).
    let out = ok(&install_links(&w, &kcc, &["--dir", w.bin.to_str().unwrap()]));
    assert_eq!(out.matches("already ").count(), 2, "{out}");
}

#[test]
fn install_links_refuses_to_overwrite_a_regular_file() {
    let w = World::new();
    let dir = w.path("links");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("kcc-cache"), "#!/bin/sh\necho the go kcc\n").unwrap();
    let out = install_links(&w, &w.bin.join("kcc"), &["--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("'{}' already exists and is a file", dir.join("kcc-cache").display())), "{err}");
    assert!(err.contains("remove it"), "the error says what to do: {err}");
    assert_eq!(fs::read_to_string(dir.join("kcc-cache")).unwrap(), "#!/bin/sh\necho the go kcc\n");
}

#[cfg(unix)]
#[test]
fn install_links_refuses_a_link_to_another_program() {
    let w = World::new();
    let dir = w.path("links");
    fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink("/bin/true", dir.join("kcc-injector")).unwrap();
    let out = install_links(&w, &w.bin.join("kcc"), &["--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("kcc-injector") && err.contains("a link to '/bin/true'"), "{err}");
    assert_eq!(fs::read_link(dir.join("kcc-injector")).unwrap(), Path::new("/bin/true"));
}

#[test]
fn install_links_is_listed_in_help() {
    let w = World::new();
    let help = ok(&w.cmd("kcc").arg("--help").output().unwrap());
    assert!(help.contains("install-links"), "{help}");
    let out = w.cmd("kcc").args(["install-links", "--dir", "/nonexistent/kcc-dir"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("'/nonexistent/kcc-dir' is not a directory"), "{}", stderr(&out));
}
