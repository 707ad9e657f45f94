//! The platform rules kubectl (client-go, Go's `path/filepath` and
//! `os/exec`) applies, as pure functions of the platform.
//!
//! Why pure: kcc is built and tested on Linux, but its users are on macOS and
//! Windows too. Every rule that differs — the `KUBECONFIG` list separator,
//! what makes a path absolute, how a relative plugin path is joined and
//! cleaned, where the default kubeconfig and the cache live, how a bare
//! command name is found through `PATH` (and `PATHEXT` on Windows) — takes
//! the [`Os`] as a parameter, so its tests for every OS run on any machine;
//! the real code passes [`Os::CURRENT`]. Paths are handled as UTF-8 strings
//! (a non-UTF-8 entry is read lossily), since Windows rules cannot be applied
//! to a Linux `Path`.
//!
//! The rules follow Go, which is what kubectl is built with:
//! - `filepath.SplitList`: `:` on Unix, `;` on Windows (where a `"…"` entry
//!   may contain `;`); empty entries are dropped by the callers, as client-go does.
//! - `filepath.IsAbs`/`Join`/`Clean`: on Windows `/` and `\` both separate,
//!   a path is absolute only with a volume (`C:\…`, `\\server\share\…`), and a
//!   cleaned path uses `\`.
//! - `exec.LookPath`: a command containing a separator is used as it is
//!   (on Windows also with each `PATHEXT` extension appended); a bare name is
//!   looked for in each `PATH` directory — on Windows as `name` when it
//!   already has an extension, then as `name` + each `PATHEXT` extension
//!   (`.com;.exe;.bat;.cmd` when unset), so `aws` finds `aws.exe` or
//!   `aws.cmd`. The current directory is never searched: Go 1.19+ refuses a
//!   command found there (`exec.ErrDot`), so kubectl would too.

/// The operating systems whose rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Linux and the other Unix systems but Apple's.
    Linux,
    /// macOS.
    MacOs,
    /// Windows.
    Windows,
}

/// Extensions Windows tries when `PATHEXT` is not set (Go's default).
pub const DEFAULT_PATHEXT: &str = ".com;.exe;.bat;.cmd";

impl Os {
    /// The platform kcc was built for.
    pub const CURRENT: Os = if cfg!(windows) {
        Os::Windows
    } else if cfg!(target_vendor = "apple") {
        Os::MacOs
    } else {
        Os::Linux
    };

    /// The separator of `KUBECONFIG` and `PATH` lists.
    pub fn list_separator(self) -> char {
        if self == Os::Windows { ';' } else { ':' }
    }

    /// The separator a cleaned path uses.
    pub fn separator(self) -> char {
        if self == Os::Windows { '\\' } else { '/' }
    }

    /// Whether `c` separates path components.
    pub fn is_separator(self, c: char) -> bool {
        c == '/' || (self == Os::Windows && c == '\\')
    }

    /// Whether `path` has more than one component (client-go resolves such a
    /// relative command against the kubeconfig's directory; a bare name is
    /// looked up on `PATH`).
    pub fn has_separator(self, path: &str) -> bool {
        path.chars().any(|c| self.is_separator(c))
    }

    /// Splits a `KUBECONFIG`/`PATH` value (`filepath.SplitList`), keeping
    /// empty entries (callers decide what they mean). On Windows a quoted
    /// part may contain `;`; the quotes are removed.
    pub fn split_list(self, list: &str) -> Vec<String> {
        if list.is_empty() {
            return Vec::new();
        }
        if self != Os::Windows {
            return list.split(':').map(str::to_string).collect();
        }
        let mut out = vec![String::new()];
        let mut quoted = false;
        for c in list.chars() {
            match c {
                '"' => quoted = !quoted,
                ';' if !quoted => out.push(String::new()),
                c => out.last_mut().expect("never empty").push(c),
            }
        }
        out
    }

    /// Splits `path` into its volume (`C:`, `\\server\share`; empty on Unix)
    /// and the rest.
    fn volume(self, path: &str) -> (&str, &str) {
        if self != Os::Windows {
            return ("", path);
        }
        let b = path.as_bytes();
        if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
            return path.split_at(2);
        }
        // UNC: two separators, a server, a separator, a share.
        if b.len() >= 5 && self.is_separator(b[0] as char) && self.is_separator(b[1] as char) {
            let rest = &path[2..];
            if let Some(server_end) = rest.find(['/', '\\']).filter(|&i| i > 0) {
                let after = &rest[server_end + 1..];
                let share_end = after.find(['/', '\\']).unwrap_or(after.len());
                if share_end > 0 {
                    return path.split_at(2 + server_end + 1 + share_end);
                }
            }
        }
        ("", path)
    }

    /// `filepath.IsAbs`.
    pub fn is_absolute(self, path: &str) -> bool {
        let (volume, rest) = self.volume(path);
        match self {
            // A UNC volume is absolute by itself; a drive needs a root after it.
            Os::Windows => volume.len() > 2 || (!volume.is_empty() && rest.starts_with(['/', '\\'])),
            _ => path.starts_with('/'),
        }
    }

    /// `filepath.Clean`: `.` and `..` resolved lexically, separators
    /// collapsed, Windows paths written with `\`.
    pub fn clean(self, path: &str) -> String {
        let (volume, rest) = self.volume(path);
        let sep = self.separator();
        let rooted = rest.starts_with(|c| self.is_separator(c));
        let mut parts: Vec<&str> = Vec::new();
        for part in rest.split(|c| self.is_separator(c)) {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.last().is_some_and(|p| *p != "..") {
                        parts.pop();
                    } else if !rooted {
                        parts.push("..");
                    }
                }
                p => parts.push(p),
            }
        }
        let volume = if self == Os::Windows { volume.replace('/', "\\") } else { volume.to_string() };
        let mut out = volume;
        if rooted {
            out.push(sep);
        }
        out.push_str(&parts.join(&sep.to_string()));
        if out.is_empty() {
            out.push('.');
        }
        out
    }

    /// `filepath.Join(base, rel)` — except that an absolute `rel` stands for
    /// itself, as client-go treats an absolute command.
    pub fn join(self, base: &str, rel: &str) -> String {
        if self.is_absolute(rel) {
            return self.clean(rel);
        }
        if base.is_empty() {
            return self.clean(rel);
        }
        self.clean(&format!("{base}{}{rel}", self.separator()))
    }

    /// `filepath.Dir(filepath.Abs(file))`: the absolute, clean directory of
    /// `file` given the current directory `cwd` (symlinks are not resolved).
    pub fn absolute_dir(self, cwd: &str, file: &str) -> String {
        let absolute = self.join(cwd, file);
        let (volume, rest) = self.volume(&absolute);
        match rest.rfind(|c| self.is_separator(c)) {
            Some(0) => format!("{volume}{}", self.separator()),
            Some(i) => format!("{volume}{}", &rest[..i]),
            None => format!("{volume}."),
        }
    }

    /// The kubeconfig kubectl reads when neither `--kubeconfig` nor
    /// `KUBECONFIG` names one: `~/.kube/config` (on Windows
    /// `%USERPROFILE%\.kube\config`, `home` being that directory).
    pub fn default_kubeconfig(self, home: &str) -> String {
        self.join(home, &[".kube", "config"].join(&self.separator().to_string()))
    }

    /// The user cache directory, as Go's `os.UserCacheDir` (where the Go kcc
    /// kept its cache): `%LOCALAPPDATA%` on Windows, `~/Library/Caches` on
    /// macOS, `$XDG_CACHE_HOME` (when absolute) or `~/.cache` elsewhere.
    /// `var` reads the environment.
    pub fn user_cache_dir(self, var: impl Fn(&str) -> Option<String>) -> Option<String> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        match self {
            Os::Windows => set("LOCALAPPDATA"),
            Os::MacOs => set("HOME").map(|h| self.join(&h, "Library/Caches")),
            Os::Linux => set("XDG_CACHE_HOME")
                .filter(|d| self.is_absolute(d))
                .or_else(|| set("HOME").map(|h| self.join(&h, ".cache"))),
        }
    }

    /// The `PATHEXT` extensions, lower-cased with a leading dot, Go's default
    /// when unset or empty.
    fn path_extensions(pathext: Option<&str>) -> Vec<String> {
        let list = pathext.filter(|p| !p.trim().is_empty()).unwrap_or(DEFAULT_PATHEXT);
        list.split(';')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| if e.starts_with('.') { e.to_lowercase() } else { format!(".{}", e.to_lowercase()) })
            .collect()
    }

    /// The files `exec.LookPath` tries for `command`, in order, given `PATH`
    /// and (Windows) `PATHEXT`; the first that exists and is executable is
    /// the one kubectl runs.
    pub fn command_candidates(self, command: &str, path: Option<&str>, pathext: Option<&str>) -> Vec<String> {
        if command.is_empty() {
            return Vec::new();
        }
        let with_extensions = |file: String| -> Vec<String> {
            if self != Os::Windows {
                return vec![file];
            }
            let mut out = Vec::new();
            let last = file.rfind(['.', '\\', '/', ':']);
            if last.is_some_and(|i| file[i..].starts_with('.')) {
                out.push(file.clone());
            }
            out.extend(Os::path_extensions(pathext).iter().map(|e| format!("{file}{e}")));
            out
        };
        if self.has_separator(command) || (self == Os::Windows && command.contains(':')) {
            return with_extensions(command.to_string());
        }
        let mut out = Vec::new();
        for dir in self.split_list(path.unwrap_or("")) {
            // An empty entry means the current directory on Unix; Go refuses
            // what it finds there (ErrDot), so kubectl would not run it.
            if dir.is_empty() || dir == "." {
                continue;
            }
            out.extend(with_extensions(self.join(&dir, command)));
        }
        out
    }

    /// `exec.LookPath`: the first of [`Os::command_candidates`] for which
    /// `is_executable` holds.
    pub fn look_path(
        self,
        command: &str,
        path: Option<&str>,
        pathext: Option<&str>,
        is_executable: impl Fn(&str) -> bool,
    ) -> Option<String> {
        self.command_candidates(command, path, pathext).into_iter().find(|c| is_executable(c))
    }
}

/// Whether `path` is a file this platform would execute: on Unix a regular
/// file with an execute bit, on Windows any regular file (the extension was
/// chosen by [`Os::look_path`]).
pub fn is_executable(path: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// [`Os::look_path`] on this machine, with its `PATH` and `PATHEXT`.
pub fn find_command(command: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").map(|p| p.to_string_lossy().into_owned());
    let pathext = std::env::var_os("PATHEXT").map(|p| p.to_string_lossy().into_owned());
    Os::CURRENT
        .look_path(command, path.as_deref(), pathext.as_deref(), |c| is_executable(std::path::Path::new(c)))
        .map(std::path::PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::Os::{Linux, MacOs, Windows};
    use super::*;

    #[test]
    fn kubeconfig_lists_split_on_the_platform_separator() {
        assert_eq!(Linux.split_list("/a:/b::/c"), ["/a", "/b", "", "/c"]);
        assert_eq!(MacOs.split_list("/a:/b"), ["/a", "/b"]);
        assert_eq!(Windows.split_list(r"C:\a\config;D:\b"), [r"C:\a\config", r"D:\b"]);
        assert_eq!(Windows.split_list(r#""C:\x;y\config";C:\z"#), [r"C:\x;y\config", r"C:\z"]);
        assert!(Linux.split_list("").is_empty());
        assert_eq!(Linux.list_separator(), ':');
        assert_eq!(Windows.list_separator(), ';');
    }

    #[test]
    fn absolute_paths_follow_go() {
        assert!(Linux.is_absolute("/a"));
        assert!(!Linux.is_absolute("a/b"));
        assert!(!Linux.is_absolute(r"C:\a"));
        assert!(Windows.is_absolute(r"C:\tools\aws.exe"));
        assert!(Windows.is_absolute("C:/tools/aws.exe"));
        assert!(Windows.is_absolute(r"\\server\share\x.exe"));
        assert!(!Windows.is_absolute(r"\tools\aws.exe"), "rooted without a volume is relative in Go");
        assert!(!Windows.is_absolute(r"C:tools\aws.exe"));
        assert!(!Windows.is_absolute(r"bin\token.exe"));
    }

    #[test]
    fn relative_plugins_are_joined_and_cleaned_per_platform() {
        assert_eq!(Linux.join("/home/u/.kube", "./bin/tok"), "/home/u/.kube/bin/tok");
        assert_eq!(Linux.join("/a/b", "../x"), "/a/x");
        assert_eq!(Linux.join("/a/b", "/etc/x"), "/etc/x");
        assert_eq!(Linux.join("/", "../../x"), "/x");
        assert_eq!(Windows.join(r"C:\Users\u\.kube", r"bin\token.exe"), r"C:\Users\u\.kube\bin\token.exe");
        assert_eq!(Windows.join(r"C:\Users\u\.kube", "./bin/token.exe"), r"C:\Users\u\.kube\bin\token.exe");
        assert_eq!(Windows.join(r"C:\Users\u\.kube", r"..\tools\t.exe"), r"C:\Users\u\tools\t.exe");
        assert_eq!(Windows.join(r"C:\k", r"D:\x\..\y.exe"), r"D:\y.exe");
        assert_eq!(Windows.join(r"\\srv\share\k", r"bin\t.exe"), r"\\srv\share\k\bin\t.exe");
        assert_eq!(Windows.clean("C:/a//b/./c/.."), r"C:\a\b");
    }

    #[test]
    fn the_kubeconfig_directory_is_made_absolute() {
        assert_eq!(Linux.absolute_dir("/w", "k/config"), "/w/k");
        assert_eq!(Linux.absolute_dir("/w", "config"), "/w");
        assert_eq!(Linux.absolute_dir("/w", "/etc/k"), "/etc");
        assert_eq!(Linux.absolute_dir("/", "config"), "/");
        assert_eq!(Windows.absolute_dir(r"C:\work", r"kube\config"), r"C:\work\kube");
        assert_eq!(Windows.absolute_dir(r"C:\work", r"D:\k\config"), r"D:\k");
        assert_eq!(Windows.absolute_dir(r"C:\", "config"), r"C:\");
    }

    #[test]
    fn default_locations_per_platform() {
        assert_eq!(Linux.default_kubeconfig("/home/u"), "/home/u/.kube/config");
        assert_eq!(MacOs.default_kubeconfig("/Users/u"), "/Users/u/.kube/config");
        assert_eq!(Windows.default_kubeconfig(r"C:\Users\u"), r"C:\Users\u\.kube\config");
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let all =
            env(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/x/cache"), ("LOCALAPPDATA", r"C:\Users\u\AppData\Local")]);
        assert_eq!(Linux.user_cache_dir(all).unwrap(), "/x/cache");
        assert_eq!(MacOs.user_cache_dir(all).unwrap(), "/home/u/Library/Caches");
        assert_eq!(Windows.user_cache_dir(all).unwrap(), r"C:\Users\u\AppData\Local");
        assert_eq!(Linux.user_cache_dir(env(&[("HOME", "/h"), ("XDG_CACHE_HOME", "rel")])).unwrap(), "/h/.cache");
        assert_eq!(Windows.user_cache_dir(env(&[("HOME", "/h")])), None);
    }

    #[test]
    fn commands_are_found_as_client_go_finds_them() {
        let files = [r"C:\tools\aws.cmd", r"C:\bin\aws.exe", r"C:\bin\get-token.bat", "/usr/bin/aws", "/opt/t.exe"];
        let exists = |c: &str| files.contains(&c);
        let path = Some(r"C:\tools;C:\bin");
        // PATH order first, then PATHEXT order within a directory.
        assert_eq!(Windows.look_path("aws", path, None, exists).unwrap(), r"C:\tools\aws.cmd");
        assert_eq!(Windows.look_path("aws", path, Some(".EXE"), exists).unwrap(), r"C:\bin\aws.exe");
        assert_eq!(Windows.look_path("aws", path, Some(".BAT"), exists), None);
        assert_eq!(Windows.look_path("aws", Some(r"C:\bin;C:\tools"), None, exists).unwrap(), r"C:\bin\aws.exe");
        assert_eq!(Windows.look_path("aws.exe", path, None, exists).unwrap(), r"C:\bin\aws.exe");
        assert_eq!(
            Windows.look_path("get-token", path, Some(".COM;.EXE;.BAT"), exists).unwrap(),
            r"C:\bin\get-token.bat"
        );
        assert_eq!(Windows.look_path(r"C:\bin\aws", None, None, exists).unwrap(), r"C:\bin\aws.exe");
        assert_eq!(Windows.look_path(r"C:\tools\aws.cmd", None, None, exists).unwrap(), r"C:\tools\aws.cmd");
        assert_eq!(Linux.look_path("aws", Some("/opt:/usr/bin"), None, exists).unwrap(), "/usr/bin/aws");
        assert_eq!(Linux.look_path("aws", Some("/opt"), None, exists), None);
        assert_eq!(Linux.look_path("/opt/t", Some("/usr/bin"), None, exists), None, "no extensions on Unix");
        assert_eq!(MacOs.look_path("/opt/t.exe", None, None, exists).unwrap(), "/opt/t.exe");
        // The current directory is never searched (Go's exec.ErrDot).
        assert_eq!(Linux.command_candidates("aws", Some(":.:/b"), None), ["/b/aws"]);
        assert_eq!(
            Windows.command_candidates("aws", Some(r"C:\b"), None),
            [r"C:\b\aws.com", r"C:\b\aws.exe", r"C:\b\aws.bat", r"C:\b\aws.cmd"]
        );
        assert!(Windows.command_candidates("", Some(r"C:\b"), None).is_empty());
    }

    /// The pure rule agrees with where the store really goes on this machine
    /// (etcetera's native strategy, which `paths` uses): on Linux here, on
    /// Windows under wine (`%LOCALAPPDATA%`).
    #[test]
    fn the_cache_dir_rule_matches_the_store_location() {
        let dir = Os::CURRENT.user_cache_dir(|k| std::env::var(k).ok()).expect("HOME or LOCALAPPDATA is set");
        let store = crate::paths::StorePaths::resolve(None).unwrap();
        let want = Os::CURRENT
            .join(&dir, &format!("{}{}{}", crate::paths::APP_DIR, Os::CURRENT.separator(), crate::paths::STORE_FILE));
        assert_eq!(store.file.to_string_lossy(), want);
    }

    #[test]
    fn current_is_this_build() {
        assert_eq!(Os::CURRENT == Windows, cfg!(windows));
        assert_eq!(Os::CURRENT.list_separator(), if cfg!(windows) { ';' } else { ':' });
    }
}
