//! Which tool kcc is, from the name it was called by (`argv[0]`).
//!
//! Like busybox, rustup and uutils' coreutils, kcc is one executable with
//! several names: `kcc-cache` (the caching proxy kubeconfigs call),
//! `kcc-injector` (the Go tool's kubeconfig rewriter), `kcc` (all of them
//! as subcommands) and `kubectl-kcc` (`kcc` as a kubectl plugin, the name
//! krew installs: `kubectl kcc doctor` runs `kubectl-kcc doctor`). The file
//! stem decides, ASCII case ignored, so `kcc-cache.exe` and
//! `kubectl-kcc.exe` count. Names are matched exactly; the one allowance is
//! a browser's download suffix (`kcc-cache (1)`, `kcc-injector(2)`, as
//! rustup allows `rustup-init(2)`). Any other name is `kcc`.

use std::ffi::OsStr;
use std::path::Path;

/// The personalities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    /// `kcc`: subcommands.
    Kcc,
    /// `kubectl-kcc`: `kcc` run by kubectl's plugin mechanism.
    KubectlKcc,
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
        match strip_download_suffix(&stem) {
            "kcc-cache" => Personality::Cache,
            "kcc-injector" => Personality::Injector,
            "kubectl-kcc" => Personality::KubectlKcc,
            _ => Personality::Kcc,
        }
    }

    /// The name usage lines show.
    pub fn name(self) -> &'static str {
        match self {
            Personality::Kcc => "kcc",
            Personality::KubectlKcc => "kubectl kcc",
            Personality::Cache => "kcc-cache",
            Personality::Injector => "kcc-injector",
        }
    }
}

/// `kcc-cache (1)` / `kcc-cache(2)` → `kcc-cache`: what browsers make of a
/// second download of the same file.
fn strip_download_suffix(stem: &str) -> &str {
    let Some(open) = stem.strip_suffix(')').and_then(|s| s.rfind('(').map(|i| (s, i))) else { return stem };
    let (inner, at) = open;
    let digits = &inner[at + 1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return stem;
    }
    inner[..at].trim_end_matches(' ')
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
        assert_eq!(p("/root/.krew/bin/kubectl-kcc"), Personality::KubectlKcc);
        assert_eq!(p("kubectl-kcc.exe"), Personality::KubectlKcc);
    }

    #[test]
    fn download_suffixes_are_allowed_but_not_prefixes() {
        let p = |s: &str| Personality::from_argv0(OsStr::new(s));
        assert_eq!(p("kcc-cache (1)"), Personality::Cache);
        assert_eq!(p("kcc-injector(2).exe"), Personality::Injector);
        assert_eq!(p("kcc-cache-token.sh"), Personality::Kcc);
        assert_eq!(p("kcc-cached"), Personality::Kcc);
        assert_eq!(p("kcc-cache (x)"), Personality::Kcc);
        assert_eq!(p("kubectl-kcc-foo"), Personality::Kcc);
    }
}
