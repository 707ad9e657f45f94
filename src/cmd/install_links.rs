//! `kcc install-links`: creates the `kcc-cache` and `kcc-injector`
//! personalities, busybox-style, so `cargo install --path .` followed by this
//! command is a complete set-up.
//!
//! Guarantees: the links point at the running kcc (`std::env::current_exe`);
//! running it again changes nothing ("already" for each correct link); a file
//! of that name which is not kcc — a regular file, a link to something else, a
//! dangling link — is never replaced: kcc names it and exits 1, and the user
//! decides. On Unix the links are symlinks (relative `kcc-cache -> kcc` next
//! to the binary, so the directory can move; absolute elsewhere). Where
//! symlinks need privileges (Windows) a hard link is made, or a copy when the
//! directory is on another volume.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use color_eyre::Result;
use color_eyre::eyre::{WrapErr, eyre};

use crate::cli::InstallLinksArgs;
use crate::personality::Personality;

/// The personalities a kcc installation needs beside `kcc` itself.
pub const LINKED: [Personality; 2] = [Personality::Cache, Personality::Injector];

/// What happened to one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Created now.
    Created(PathBuf),
    /// Was already there and leads to this kcc.
    Already(PathBuf),
}

/// Runs `kcc install-links [--dir DIR]`.
pub fn run(args: InstallLinksArgs) -> Result<ExitCode> {
    let exe = std::env::current_exe().wrap_err("cannot find the path of the running kcc")?;
    let dir = match &args.dir {
        Some(dir) => PathBuf::from(dir),
        None => exe.parent().map(Path::to_path_buf).ok_or_else(|| eyre!("'{}' has no directory", exe.display()))?,
    };
    for outcome in install(&exe, &dir)? {
        let (word, link) = match &outcome {
            Outcome::Created(link) => ("created", link),
            Outcome::Already(link) => ("already", link),
        };
        // What the link says (`kcc` beside the binary), else the binary.
        let target = fs::read_link(link).unwrap_or_else(|_| exe.clone());
        println!("{word} {} -> {}", link.display(), target.display());
    }
    if !on_path(&dir) {
        eprintln!(
            "kcc: note: '{}' is not on PATH; kubectl finds kcc-cache through PATH, so add it (or use --dir)",
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates every link of [`LINKED`] in `dir`, pointing at `exe`. Stops at
/// the first file that is in the way.
pub fn install(exe: &Path, dir: &Path) -> Result<Vec<Outcome>> {
    let real_exe = fs::canonicalize(exe).wrap_err_with(|| format!("cannot resolve '{}'", exe.display()))?;
    if !dir.is_dir() {
        return Err(eyre!("'{}' is not a directory; create it first or pass another --dir", dir.display()));
    }
    let mut outcomes = Vec::new();
    for personality in LINKED {
        let link = dir.join(format!("{}{}", personality.name(), std::env::consts::EXE_SUFFIX));
        if leads_to(&link, &real_exe) {
            outcomes.push(Outcome::Already(link));
            continue;
        }
        if fs::symlink_metadata(&link).is_ok() {
            let what = if link.is_symlink() {
                match fs::read_link(&link) {
                    Ok(target) => format!("a link to '{}'", target.display()),
                    Err(_) => "a link".to_string(),
                }
            } else {
                "a file".to_string()
            };
            return Err(eyre!(
                "'{}' already exists and is {what}, not this kcc ('{}'); kcc does not overwrite it: remove it and run `kcc install-links` again, or pass --dir",
                link.display(),
                real_exe.display()
            ));
        }
        create(&real_exe, dir, &link).wrap_err_with(|| format!("cannot create '{}'", link.display()))?;
        outcomes.push(Outcome::Created(link));
    }
    Ok(outcomes)
}

/// Whether `link` is (a link to) the same file as `real_exe`.
fn leads_to(link: &Path, real_exe: &Path) -> bool {
    if fs::canonicalize(link).is_ok_and(|p| p == real_exe) {
        return true;
    }
    same_file(link, real_exe)
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Without inode numbers in std, a hard link or copy counts when its bytes
/// are the running binary's.
#[cfg(not(unix))]
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::read(a), fs::read(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(unix)]
fn create(real_exe: &Path, dir: &Path, link: &Path) -> io::Result<()> {
    // Beside the binary a relative link survives moving the directory.
    let beside = fs::canonicalize(dir).is_ok_and(|d| Some(d.as_path()) == real_exe.parent());
    let target = match (beside, real_exe.file_name()) {
        (true, Some(name)) => PathBuf::from(name),
        _ => real_exe.to_path_buf(),
    };
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn create(real_exe: &Path, _dir: &Path, link: &Path) -> io::Result<()> {
    hard_link_or_copy(real_exe, link)
}

/// Windows: symlinks need Developer Mode or admin rights; a hard link needs
/// neither but only works on one volume, so a copy is the last resort (it
/// must be refreshed after an upgrade; `install-links` then reports it).
#[cfg_attr(unix, allow(dead_code))]
fn hard_link_or_copy(real_exe: &Path, link: &Path) -> io::Result<()> {
    fs::hard_link(real_exe, link).or_else(|_| fs::copy(real_exe, link).map(|_| ()))
}

fn on_path(dir: &Path) -> bool {
    let Some(path) = std::env::var_os("PATH") else { return false };
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    std::env::split_paths(&path).any(|p| fs::canonicalize(&p).unwrap_or(p) == dir)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn links_are_relative_beside_the_binary_and_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = tmp.path().join("kcc");
        fs::write(&exe, "binary").unwrap();
        let first = install(&exe, tmp.path()).unwrap();
        assert!(matches!(first[0], Outcome::Created(_)), "{first:?}");
        assert_eq!(fs::read_link(tmp.path().join("kcc-cache")).unwrap(), Path::new("kcc"));
        let second = install(&exe, tmp.path()).unwrap();
        assert!(second.iter().all(|o| matches!(o, Outcome::Already(_))), "{second:?}");
    }

    #[test]
    fn a_dangling_link_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = tmp.path().join("kcc");
        fs::write(&exe, "binary").unwrap();
        std::os::unix::fs::symlink("/nonexistent/kcc", tmp.path().join("kcc-cache")).unwrap();
        let err = install(&exe, tmp.path()).unwrap_err().to_string();
        assert!(err.contains("kcc-cache") && err.contains("/nonexistent/kcc"), "{err}");
    }
}
