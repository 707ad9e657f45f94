//! The `kcc` binary is linked statically on x86_64/aarch64 Linux with glibc,
//! by a plain `cargo build` / `cargo install`: no flags to remember.
//!
//! Why: a cache hit is over in well under a millisecond, and a dynamically
//! linked Rust binary spends ~0.4x the cost of starting `/bin/true` in the
//! dynamic loader (mapping libgcc_s and libc, relocating a PIE) before kcc
//! runs — most of what a hit costs (README, Benchmark).
//!
//! How, and why not the usual ways:
//! - `-C target-feature=+crt-static` in `RUSTFLAGS` or `.cargo/config.toml`
//!   without `--target` also applies to proc-macros, which then cannot be
//!   built; with `--target` it changes the output path (and a config
//!   `[build] target` would cross-compile to Linux on a Mac).
//! - `-static-pie` (or `-static`) alone as a link argument links, but the
//!   binary segfaults: rustc still names std's system libraries (`-lgcc_s
//!   -lutil -lrt -lpthread -lm -ldl -lc`) after `-Wl,-Bdynamic`, so the
//!   linker records their shared objects as needed by an executable that
//!   has no interpreter to load them.
//! - So this module gives the linker, for the `kcc` binary only, a search
//!   directory that is searched before the system's and holds *static*
//!   archives under exactly those names (`libgcc_s.a` is libgcc's static
//!   unwinder `libgcc_eh.a`, the rest glibc's own `lib*.a`), and adds
//!   `-static-pie`: every `-l` then resolves to an archive and the result is
//!   the same static PIE `+crt-static` makes. Tests, benches and build
//!   scripts are linked as before.
//!
//! If an archive is missing (no `libc.a`: `libc6-dev` on Debian ships it),
//! the build stays dynamic and says so in a cargo warning. `KCC_LINK=dynamic`
//! asks for the dynamic build. An explicit `+crt-static` is left to rustc.
//! `tests/linkage.rs` fails if the default build is not static where it
//! should be (so a new system library cannot silently break it).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The libraries rustc's std names on Linux with glibc, and the static
/// archive that stands in for each.
const ARCHIVES: [(&str, &str); 7] = [
    ("libgcc_s.a", "libgcc_eh.a"),
    ("libutil.a", "libutil.a"),
    ("librt.a", "librt.a"),
    ("libpthread.a", "libpthread.a"),
    ("libm.a", "libm.a"),
    ("libdl.a", "libdl.a"),
    ("libc.a", "libc.a"),
];

pub fn configure() {
    println!("cargo:rerun-if-env-changed=KCC_LINK");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let wanted = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && matches!(var("CARGO_CFG_TARGET_ARCH").as_str(), "x86_64" | "aarch64");
    let already_static = var("CARGO_CFG_TARGET_FEATURE").split(',').any(|f| f == "crt-static");
    if !wanted || already_static {
        return;
    }
    match var("KCC_LINK").as_str() {
        "" | "static" => {}
        "dynamic" => return,
        other => panic!("KCC_LINK={other}: expected `static` (the default) or `dynamic`"),
    }
    let dir = PathBuf::from(var("OUT_DIR")).join("static-libs");
    match shadow_archives(&dir) {
        Ok(()) => {
            // `-L` given to the compiler driver goes before its own library
            // directories, wherever it stands on the command line.
            println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
            println!("cargo:rustc-link-arg-bins=-static-pie");
            // rustc passes -nodefaultlibs, so the driver's closing
            // `--start-group -lgcc -lgcc_eh -lc --end-group` is missing, and
            // libgcc_eh (standing in for -lgcc_s) is scanned before libc.a,
            // whose -fexceptions objects (iofclose.o) need its
            // __gcc_personality_v0. rustup's prebuilt std pulls that in
            // earlier by itself; a std built with -Z build-std (the aarch64
            // cross build, scripts/build-aarch64) does not. This link
            // argument comes after every library rustc names.
            println!("cargo:rustc-link-arg-bins=-lgcc_eh");
        }
        Err(why) => println!(
            "cargo:warning=kcc is linked dynamically ({why}); a cache hit then costs ~0.4x more: \
             install glibc's static archives (Debian: libc6-dev) or set KCC_LINK=dynamic"
        ),
    }
}

/// Fills `dir` with links named as in [`ARCHIVES`] to the linker's own
/// static archives.
fn shadow_archives(dir: &Path) -> Result<(), String> {
    let linker = env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".into());
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, archive) in ARCHIVES {
        let found = Command::new(&linker)
            .arg(format!("-print-file-name={archive}"))
            .output()
            .map_err(|e| format!("running `{linker}`: {e}"))?;
        let path = PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
        // The driver echoes the bare name when it has no such file.
        if !path.is_absolute() || !path.exists() {
            return Err(format!("`{linker}` has no {archive}"));
        }
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        #[cfg(unix)]
        let made = std::os::unix::fs::symlink(&path, &link);
        #[cfg(not(unix))]
        let made = std::fs::copy(&path, &link).map(drop);
        made.map_err(|e| format!("{}: {e}", link.display()))?;
    }
    Ok(())
}
