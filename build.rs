//! Records the git revision for `kcc --version` when built from a checkout,
//! and links the binary statically where that is the fast build
//! (build/static_link.rs).
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
}
