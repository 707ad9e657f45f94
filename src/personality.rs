//! Which tool kcc is, from the name it was called by (`argv[0]`).
//!
//! Like busybox, rustup and uutils' coreutils, kcc is one executable with
//! several names: `kcc-cache` (the caching proxy kubeconfigs call),
//! `kcc-injector` (the Go tool's kubeconfig rewriter) and `kcc` (all of them
//! as subcommands). The file stem decides, so `kcc-cache.exe` is `kcc-cache`;
//! a name that merely starts with one (`kcc-cache-v2`, `kcc-injector (1)`
//! after a browser download) counts too.

use std::ffi::OsStr;
use std::path::Path;

/// The personalities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    /// `kcc`: subcommands.
    Kcc,
    /// `kcc-cache CMD ARGS…`: the caching proxy.
    Cache,
    /// `kcc-injector [-i] [-r] [-c CMD] FILE…`.
    Injector,
}

impl Personality {
    /// Picks the personality from `argv[0]`.
    pub fn from_argv0(argv0: &OsStr) -> Personality {
        let stem = Path::new(argv0).file_stem().map(OsStr::to_string_lossy).unwrap_or_default();
        let stem = stem.to_ascii_lowercase();
        if stem.starts_with("kcc-cache") {
            Personality::Cache
        } else if stem.starts_with("kcc-injector") {
            Personality::Injector
        } else {
            Personality::Kcc
        }
    }

    /// The name usage lines show.
    pub fn name(self) -> &'static str {
        match self {
            Personality::Kcc => "kcc",
            Personality::Cache => "kcc-cache",
            Personality::Injector => "kcc-injector",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_pick_personalities() {
        let p = |s: &str| Personality::from_argv0(OsStr::new(s));
        assert_eq!(p("/usr/local/bin/kcc-cache"), Personality::Cache);
        assert_eq!(p("kcc-cache.exe"), Personality::Cache);
        assert_eq!(p("C:/bin/KCC-CACHE.EXE"), Personality::Cache);
        assert_eq!(p("kcc-injector"), Personality::Injector);
        assert_eq!(p("kcc"), Personality::Kcc);
        assert_eq!(p("/opt/kcc/bin/kcc"), Personality::Kcc);
        assert_eq!(p("something-else"), Personality::Kcc);
    }
}
