//! Records the git revision for `kcc --version` when built from a checkout,
//! links the binary statically where that is the fast build
//! (build/static_link.rs),
//! and names the platform cfgs the code would otherwise spell out each time.
use std::process::Command;

#[path = "build/static_link.rs"]
mod static_link;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let rev = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=KCC_GIT_REVISION={rev}");
    static_link::configure();

    // `secret_service`: the OS secret store is the freedesktop Secret Service
    // over D-Bus (Linux and the BSDs), not the Keychain (Apple) or the
    // Credential Manager (Windows); Android has none of them.
    println!("cargo::rustc-check-cfg=cfg(secret_service)");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let unix = std::env::var_os("CARGO_CFG_UNIX").is_some();
    if unix && !matches!(os.as_str(), "macos" | "ios" | "tvos" | "watchos" | "visionos" | "android") {
        println!("cargo:rustc-cfg=secret_service");
    }
}
