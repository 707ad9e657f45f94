//! Regression tests for review findings, each named after the finding it pins
//! (issue 21 and later), driving the built binary like the other modules.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::apiserver::{ApiServer, token_sha256};
use crate::kube;
use crate::util::*;

/// `kubectl config view` of a kubeconfig, as JSON (panics with kubectl's message).
fn view(w: &World, file: &Path) -> Json {
    let out = w
        .cmd(kube::kubectl())
        .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
        .arg(file)
        .output()
        .expect("run kubectl");
    assert!(out.status.success(), "kubectl refused {}: {}", file.display(), stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The exec section of user `name` (kubectl sorts users by name).
fn exec_of<'a>(view: &'a Json, name: &str) -> &'a Json {
    let users = view["users"].as_array().expect("users");
    &users.iter().find(|u| u["name"] == name).unwrap_or_else(|| panic!("no user '{name}' in {view}"))["user"]["exec"]
}

/// Issue 21 item 6: `kcc cache kcc-cache-token.sh prod` took the plugin for
/// kcc's own wrapper, dropped it and ran `prod` (exit 127).
#[test]
fn plugin_named_kcc_cache_something_is_taken_for_kcc() {
    let w = World::new();
    w.plugin("kcc-cache-token.sh", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    for call in [&["cache", "kcc-cache-token.sh", "prod"][..], &["cache", "--", "kcc-cache-token.sh", "prod"]] {
        let out = w.cmd("kcc").args(call).output().unwrap();
        assert!(ok(&out).contains(SECRET), "{call:?}: the plugin's credential, not prod's 127");
    }
    let out = w.cache(&["kcc-cache-token.sh", "prod"]);
    assert!(ok(&out).contains(SECRET));
    assert_eq!(w.runs("kcc-cache-token.sh"), 1, "one miss, then hits");
    let args = fs::read_to_string(w.path("kcc-cache-token.sh.args")).unwrap();
    assert_eq!(args, "prod\n", "the plugin got its own argument");
}

/// Issue 21 item 6: `inject -i` called a user whose command is
/// `/opt/tools/kcc-cache-token.sh` "already injected", and `-r` rewrote it
/// to `command: --profile`.
#[test]
fn plugin_named_kcc_cache_something_is_injected_and_restored_exactly() {
    let w = World::new();
    let file = w.path("config");
    let original = "apiVersion: v1\nkind: Config\nusers:\n- name: prod\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /opt/tools/kcc-cache-token.sh\n      args: [--profile, prod]\n- name: cached\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /opt/tools/kcc-cached\n";
    fs::write(&file, original).unwrap();
    let before = view(&w, &file);

    let out = w.cmd("kcc").args(["inject", "-i"]).arg(&file).output().unwrap();
    ok(&out);
    let injected = view(&w, &file);
    for (user, plugin) in [("prod", "/opt/tools/kcc-cache-token.sh"), ("cached", "/opt/tools/kcc-cached")] {
        let exec = exec_of(&injected, user);
        assert_eq!(exec["command"], "kcc-cache", "user {user} is wrapped: {exec}");
        assert_eq!(exec["args"][0], plugin, "{exec}");
    }
    assert_eq!(exec_of(&injected, "prod")["args"].as_array().unwrap().len(), 3, "plugin, --profile, prod");

    ok(&w.cmd("kcc").args(["inject", "-r", "-i"]).arg(&file).output().unwrap());
    assert_eq!(view(&w, &file), before, "restore gives the original back");
    assert_eq!(exec_of(&view(&w, &file), "prod")["command"], "/opt/tools/kcc-cache-token.sh");

    // And a user with exactly kcc's name stays "already injected".
    let again = w.cmd("kcc").args(["inject", "-i"]).arg(&file).output().unwrap();
    ok(&again);
    let twice = view(&w, &file);
    ok(&w.cmd("kcc").args(["inject", "-i"]).arg(&file).output().unwrap());
    assert_eq!(view(&w, &file), twice, "injecting twice equals injecting once");
}

/// Finding 7 (low): failures serialised by single flight. 8 concurrent
/// callers of a plugin that fails after 1 s returned at 1, 2, … 8 s and ran
/// it 8 times; without kcc all return in 1 s. The waiters of a failed
/// flight now get its failure (same exit code, same stderr): with the
/// failure back-off on and off (sharing a flight's result is not the
/// back-off), and for interactive callers behind an interactive failure.
#[test]
fn failures_serialised_by_single_flight_waiters_of_a_failed_flight_get_its_failure() {
    let interactive_info =
        r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":true}}"#;
    for (name, backoff, info) in [
        ("backoff-on", "5m", None),
        ("backoff-off", "0", None),
        ("interactive", "5m", Some(interactive_info.to_string())),
        ("kubectl-like", "0", Some(exec_info("v1", None))),
    ] {
        let mut w = World::new();
        w.set_env("KUBE_CREDENTIAL_CACHE_FAILURE_BACKOFF", backoff);
        if let Some(info) = &info {
            w.set_env("KUBERNETES_EXEC_INFO", info);
        }
        let plugin = w.script(
            "slowfail",
            &format!(
                "echo run >> '{}'\nsleep 1\necho 'kcc-test: login failed' >&2\nexit 5",
                w.path("slowfail.count").display()
            ),
        );
        let started = Instant::now();
        let children: Vec<_> = (0..8)
            .map(|_| {
                w.cmd("kcc-cache")
                    .arg(&plugin)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut slowest = Duration::ZERO;
        for child in children {
            let out = child.wait_with_output().unwrap();
            slowest = slowest.max(started.elapsed());
            assert_eq!(
                out.status.code(),
                Some(5),
                "{name}: every caller gets the plugin's exit code: {}",
                stderr(&out)
            );
            assert!(stderr(&out).contains("kcc-test: login failed"), "{name}: and its error: {}", stderr(&out));
            assert_eq!(stdout(&out), "", "{name}");
        }
        let runs = w.runs("slowfail");
        eprintln!("{name}: 8 callers done after {slowest:?}, {runs} plugin run(s)");
        assert!(runs <= 2, "{name}: the plugin ran {runs} times for 8 concurrent callers");
        // 1 s of plugin, then 7 waiters answered from the record (a loaded
        // machine adds process start-up; serialised runs would take 8 s).
        assert!(
            slowest < Duration::from_millis(2500 * runs as u64),
            "{name}: the last caller returned after {slowest:?}"
        );
    }
}

/// A plugin printing the token `SECRET-<first argument>` for an hour.
fn token_per_argument_plugin(w: &World) -> std::path::PathBuf {
    let cred = credential("v1", "SECRET-__ARG__", Some(&in_secs(3600)));
    let (before, after) = cred.split_once("__ARG__").unwrap();
    w.script("plug.sh", &format!("printf '%s%s%s' '{before}' \"$1\" '{after}'"))
}

/// `~/.kube/config` whose user `admin` runs `kcc-cache plug.sh <arg>` against `server`.
fn home_kubeconfig(w: &World, server: &ApiServer, arg: &str) {
    let dir = w.path("home/.kube");
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: cluster-a\n  cluster: {{server: '{}', certificate-authority-data: '{}'}}\ncontexts:\n- name: a\n  context: {{cluster: cluster-a, user: admin}}\ncurrent-context: a\nusers:\n- name: admin\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: kcc-cache\n      args: [plug.sh, {arg}]\n      env: [{{name: KUBE_CREDENTIAL_CACHE_USER, value: admin}}]\n",
        server.url, server.ca_data_base64
    );
    std::fs::write(dir.join("config"), text).unwrap();
}

/// Two calls of a client without exec info (client-node) from one parent:
/// the second is a re-ask, which makes kcc look for the cluster.
fn node_style_re_ask(w: &World, arg: &str) -> String {
    let call = || {
        w.cmd_direct("kcc-cache").args(["plug.sh", arg]).env("KUBE_CREDENTIAL_CACHE_USER", "admin").output().unwrap()
    };
    assert!(ok(&call()).contains(&format!("SECRET-{arg}")));
    let second = call();
    assert!(ok(&second).contains(&format!("SECRET-{arg}")));
    stderr(&second)
}

#[test]
fn healing_sends_a_cached_token_to_another_cluster() {
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_DEBUG", "1");
    let server = ApiServer::start(&w);
    token_per_argument_plugin(&w);
    home_kubeconfig(&w, &server, "cluster-a");
    // The application loaded another kubeconfig whose `admin` runs plug.sh cluster-b.
    let err = node_style_re_ask(&w, "cluster-b");
    assert!(err.contains("runs another plugin command"), "{err}");
    let sent: Vec<_> = server.requests().into_iter().filter_map(|r| r.token_sha256).collect();
    assert!(!sent.contains(&token_sha256("SECRET-cluster-b")), "cluster-b's token reached cluster-a's server");
    assert!(sent.is_empty(), "the server was not asked at all: {sent:?}");

    // The control: the user of ~/.kube/config itself is checked with its server.
    let err = node_style_re_ask(&w, "cluster-a");
    assert!(err.contains("asking the API server"), "{err}");
    let sent: Vec<_> = server.requests().into_iter().filter_map(|r| r.token_sha256).collect();
    assert_eq!(sent, [token_sha256("SECRET-cluster-a")]);
}

/// A listener that records the first line of every connection (a CONNECT
/// request when a client uses it as its proxy) and closes it.
fn recording_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut line = String::new();
            let _ = BufReader::new(&conn).read_line(&mut line);
            log.lock().unwrap().push(line.trim_end().to_owned());
        }
    });
    (url, seen)
}

#[test]
fn heal_check_ignores_a_no_proxy_cidr() {
    let (proxy, seen) = recording_proxy();
    // A server in 10.0.0.0/8 (nothing answers there: the direct attempt
    // times out within the check's bound and the cached token is served).
    let info = r#"{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "spec": {"cluster": {"server": "https://10.255.255.1:6443"}, "interactive": false}}"#;
    let run = |no_proxy: Option<&str>| {
        let mut w = World::new();
        w.set_env("KUBE_CREDENTIAL_CACHE_DEBUG", "1");
        w.set_env("KUBERNETES_EXEC_INFO", info);
        w.set_env("HTTPS_PROXY", &proxy);
        if let Some(n) = no_proxy {
            w.set_env("NO_PROXY", n);
        }
        let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
        let call = || w.cmd_direct("kcc-cache").arg(&plugin).output().unwrap();
        ok(&call());
        let second = call();
        assert!(ok(&second).contains(SECRET), "the cached credential is served");
        stderr(&second)
    };
    let err = run(Some("example.com,10.0.0.0/8"));
    assert!(err.contains("asking the API server https://10.255.255.1:6443"), "{err}");
    assert_eq!(seen.lock().unwrap().clone(), Vec::<String>::new(), "NO_PROXY=10.0.0.0/8 bypasses the proxy");
    // The control: without the exception the check goes through the proxy.
    run(None);
    assert_eq!(seen.lock().unwrap().clone(), ["CONNECT 10.255.255.1:6443 HTTP/1.1"]);
}

/// Issue 21 item 8: a relative `KUBE_CREDENTIAL_CACHE_FILE` in a group
/// project directory (2775) turned it into 0700 and dropped its setgid bit.
/// kcc tightens only its own default directory now; a store in a directory
/// others can write to is refused (the credential served uncached) and the
/// directory is left exactly as it was.
#[cfg(unix)]
#[test]
fn secure_dir_changes_a_directory_it_does_not_own() {
    use std::os::unix::fs::PermissionsExt;
    let mode_of = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    for (file, mode) in [("cache.json", 0o2775), ("ABSOLUTE", 0o770), ("ABSOLUTE", 0o3777)] {
        let mut w = World::new();
        let project = w.path("project");
        fs::create_dir_all(&project).unwrap();
        fs::set_permissions(&project, fs::Permissions::from_mode(mode)).unwrap();
        let file = if file == "ABSOLUTE" { project.join("cache.json").display().to_string() } else { file.into() };
        w.set_env("KUBE_CREDENTIAL_CACHE_FILE", &file);
        let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
        for _ in 0..2 {
            let out = w.cmd("kcc-cache").arg(&plugin).current_dir(&project).output().unwrap();
            assert!(ok(&out).contains(SECRET), "{file} {mode:o}: served");
            let err = stderr(&out);
            assert!(err.contains(&project.display().to_string()), "{file} {mode:o}: names the directory: {err}");
            assert!(err.contains("writable by") && err.contains("KUBE_CREDENTIAL_CACHE_FILE"), "{err}");
        }
        assert_eq!(mode_of(&project), mode, "{file}: not kcc's to change");
        assert_eq!(fs::read_dir(&project).unwrap().count(), 0, "{file} {mode:o}: nothing written there");
        assert_eq!(w.runs("plug"), 2, "{file} {mode:o}: nothing cached");
    }
    // The default directory kcc creates is private, and is cached in.
    let w = World::new();
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    for _ in 0..2 {
        assert_eq!(stderr(&w.cache(&[plugin.to_str().unwrap()])), "");
    }
    assert_eq!(mode_of(w.store_file().parent().unwrap()), 0o700);
    assert_eq!(w.runs("plug"), 1);
}

/// Issue 21 item 4: expiry timestamps kubectl accepts failed the call through
/// kcc ("is not an RFC 3339 time", exit 1): `9999-12-31T23:59:59Z` (beyond
/// jiff's range), 13-digit fractions. kcc now reads them as Go's
/// `time.Parse(time.RFC3339, …)` does (what client-go's `metav1.Time`
/// uses). Judged by the real kubectl: for each value, kubectl running the
/// plugin itself and kubectl running it through kcc (a miss, then a hit)
/// succeed or fail alike.
#[test]
fn timestamps_kubectl_accepts_fail_the_call() {
    let w = World::new();
    let server = ApiServer::start(&w);
    server.allow(SECRET);
    // JSON values of status.expirationTimestamp.
    let stamps = [
        r#""2099-01-01T00:00:00Z""#,
        r#""9999-12-31T23:59:59Z""#,
        r#""9999-12-31T23:59:59.999999999Z""#,
        r#""9999-12-31T23:59:59-23:59""#,
        r#""2099-01-01T00:00:00.1234567890123Z""#,
        r#""2099-01-01T00:00:00.000000000000000000000000001Z""#,
        r#""2099-01-01T00:00:00,5Z""#,
        r#""2099-01-01T00:00:00.Z""#,
        r#""2099-01-01t00:00:00Z""#,
        r#""2099-01-01T00:00:00z""#,
        r#""2099-01-01T00:00:60Z""#,
        r#""2099-01-01T24:00:00Z""#,
        r#""2099-01-01T00:60:00Z""#,
        r#""2099-01-01T1:00:00Z""#,
        r#""2099-1-01T00:00:00Z""#,
        r#""2099-01-1T00:00:00Z""#,
        r#""2099-13-01T00:00:00Z""#,
        r#""2099-00-01T00:00:00Z""#,
        r#""2099-01-32T00:00:00Z""#,
        r#""2099-02-29T00:00:00Z""#,
        r#""2096-02-29T00:00:00Z""#,
        r#""2099-01-01T00:00:00+05:30""#,
        r#""2099-01-01T00:00:00-00:00""#,
        r#""2099-01-01T00:00:00+24:00""#,
        r#""2099-01-01T00:00:00+23:60""#,
        r#""2099-01-01T00:00:00+25:00""#,
        r#""2099-01-01T00:00:00+23:61""#,
        r#""2099-01-01T00:00:00+0530""#,
        r#""2099-01-01T00:00:00+05""#,
        r#""2099-01-01T00:00:00""#,
        r#""2099-01-01 00:00:00Z""#,
        r#""2099-01-01T00:00:00Z ""#,
        r#"" 2099-01-01T00:00:00Z""#,
        r#""+2099-01-01T00:00:00Z""#,
        r#""20990-01-01T00:00:00Z""#,
        r#""2099-01-01T00:00:00\u005a""#,
        r#""0000-01-01T00:00:00Z""#,
        r#""0001-01-01T00:00:00Z""#,
        r#""2020-01-01T00:00:00Z""#,
        r#""""#,
        "null",
        "1234567890",
    ];
    let plugin = w.script("stamp.sh", "cat \"$1\"");
    let plugin = plugin.to_str().unwrap();
    let mut rows = Vec::new();
    for (i, stamp) in stamps.iter().enumerate() {
        let out = w.path(&format!("stamp{i}.json"));
        fs::write(
            &out,
            format!(
                r#"{{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{{"token":"{SECRET}","expirationTimestamp":{stamp}}}}}"#
            ),
        )
        .unwrap();
        let out = out.to_str().unwrap();
        let direct = w.path(&format!("direct{i}.kubeconfig"));
        kube::write_kubeconfig(&direct, &server, &kube::ExecUser::new(plugin).args([out]));
        let through = w.path(&format!("kcc{i}.kubeconfig"));
        kube::write_kubeconfig(&through, &server, &kube::ExecUser::new("kcc-cache").args([plugin, out]));
        let alone = kube::get_version(&w, &direct);
        let miss = kube::get_version(&w, &through);
        let hit = kube::get_version(&w, &through);
        let verdict = |o: &std::process::Output| o.status.success();
        eprintln!(
            "{stamp:58} kubectl {:5} kcc miss {:5} hit {:5} {}",
            verdict(&alone),
            verdict(&miss),
            verdict(&hit),
            stderr(&miss).lines().find(|l| l.contains("kcc")).unwrap_or("")
        );
        rows.push((*stamp, verdict(&alone), verdict(&miss), verdict(&hit)));
    }
    let differ: Vec<_> = rows.iter().filter(|(_, a, m, h)| a != m || a != h).collect();
    assert!(differ.is_empty(), "kcc decides differently from kubectl (stamp, kubectl, miss, hit): {differ:?}");
    // The issue's cases are ones kubectl accepts (else this test proves nothing).
    for accepted in [r#""9999-12-31T23:59:59Z""#, r#""2099-01-01T00:00:00.1234567890123Z""#] {
        assert!(rows.iter().any(|(s, a, ..)| *s == accepted && *a), "kubectl accepts {accepted}");
    }
    assert!(rows.iter().any(|(_, a, ..)| !a), "and some are refused");
}

/// Issue 21 item 5: a plugin printing `Note: {"status":{"token":…` got
/// `began with: 'Note: {"status":{"token":"SECRET…` on stderr, and a
/// bare-token plugin its whole token. kcc now describes unusable output
/// (its length, the kind of its first bytes, where a JSON object starts)
/// and never quotes it, nor a credential's fields that could be a token.
#[test]
fn a_token_quoted_in_an_error() {
    let good = |status: &str| {
        format!(r#"{{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{status}}}"#)
    };
    let cases = [
        ("note-then-cut-json", format!(r#"Note: {{"status":{{"token":"{SECRET}"#)),
        ("note-then-json", format!("Note: using profile prod\n{}", good(&format!(r#"{{"token":"{SECRET}"}}"#)))),
        ("bare-token", format!("{SECRET}\n")),
        ("html", format!("<html><body>{SECRET}</body></html>")),
        ("kind", format!(r#"{{"kind":"{SECRET}","apiVersion":"client.authentication.k8s.io/v1"}}"#)),
        ("api-version", format!(r#"{{"kind":"ExecCredential","apiVersion":"{SECRET}"}}"#)),
        ("expiry", good(&format!(r#"{{"token":"t","expirationTimestamp":"{SECRET}"}}"#))),
    ];
    for debug in ["0", "1"] {
        for (name, output) in &cases {
            let mut w = World::new();
            w.set_env("KUBE_CREDENTIAL_CACHE_DEBUG", debug);
            let plugin = w.plugin("plug", output, 0.0);
            let out = w.cache(&[plugin.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(1), "{name}: refused");
            let err = stderr(&out);
            assert!(err.contains("did not print a usable ExecCredential"), "{name}: {err}");
            // (Not its first characters: "kcc-test-" also starts the world's temp dir.)
            for part in [&SECRET[9..19], &SECRET[19..]] {
                assert!(!err.contains(part), "{name} (debug {debug}): '{part}' of the token is quoted: {err}");
            }
            for file in w.files().iter().filter(|f| f.starts_with(&w.cache_home)) {
                let text = fs::read(file).unwrap_or_default();
                assert!(!String::from_utf8_lossy(&text).contains(SECRET), "{name}: in {}", file.display());
            }
            if name.starts_with("note") {
                let at = format!("a JSON object starts at byte {}", output.find('{').unwrap());
                assert!(err.contains(&at), "{name}: says where the JSON starts: {err}");
            }
            if *name == "bare-token" {
                assert!(err.contains(&format!("{} bytes", SECRET.len() + 1)), "{name}: says how long: {err}");
            }
        }
    }
    // Cache content: a store whose JSON has the wrong shape is reported by
    // position, never by quoting it (serde's type errors quote the value).
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_DEBUG", "1");
    fs::create_dir_all(w.store_file().parent().unwrap()).unwrap();
    fs::write(w.store_file(), format!(r#"{{"credentials":"{SECRET}"}}"#)).unwrap();
    let plugin = w.plugin("plug", &credential("v1", "fresh-token", Some(&in_secs(3600))), 0.0);
    let doctor = w.cmd("kcc").arg("doctor").output().unwrap();
    let call = w.cache(&[plugin.to_str().unwrap()]);
    assert!(stderr(&call).contains("not the shape of a credential store"), "{}", stderr(&call));
    assert!(stdout(&doctor).contains("not the shape of a credential store"), "{}", stdout(&doctor));
    for text in [stderr(&call), stdout(&doctor), stderr(&doctor)] {
        for part in [&SECRET[9..19], &SECRET[19..]] {
            assert!(!text.contains(part), "the store's content is quoted: {text}");
        }
    }
}

#[cfg(unix)]
/// Runs `cmd` and returns its output, failing the test when it has not
/// finished within `limit` (the command is killed: a hang is the bug).
fn output_within(cmd: &mut std::process::Command, limit: Duration, what: &str) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    // Its own process group, so a hung call is killed with every child.
    cmd.process_group(0);
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            // The group this test made: the shell and the kcc under it.
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            panic!("{what}: still running after {limit:?} (hung)");
        }
    }
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

#[cfg(unix)]
fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// Issue 21 item 2: a FIFO at any file kcc opens in the store (the store,
/// the index, the lock, a key's flight lock, its healing and failure
/// records) hung `kcc cache` — the plugin never ran —, `kcc doctor` and
/// `kcc clear` forever. Now each is refused as "not a regular file" naming
/// it, the credential is served (exit 0), nothing is written through or
/// over the FIFO, and doctor and clear answer.
#[cfg(unix)]
#[test]
fn store_path_never_checked_to_be_a_regular_file_a_fifo_hangs_nothing() {
    let limit = Duration::from_secs(15);
    for what in ["cache.json", "cache.index.json", "cache.lock", "flight.lock", "flight.served", "flight.failed"] {
        let w = World::new();
        let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
        let dir = w.store_file().parent().unwrap().to_path_buf();
        ok(&w.cache(&[plugin.to_str().unwrap()]));
        let hash = fs::read_dir(dir.join("cache.flight"))
            .unwrap()
            .flatten()
            .find_map(|e| e.file_name().to_str()?.strip_suffix(".lock").map(str::to_owned))
            .expect("a flight lock");
        let fifo = match what.strip_prefix("flight.") {
            Some(ext) => dir.join("cache.flight").join(format!("{hash}.{ext}")),
            None => dir.join(what),
        };
        // A miss every time (the store holds nothing), so every file is consulted.
        fs::remove_file(w.store_file()).unwrap();
        let _ = fs::remove_file(&fifo);
        mkfifo(&fifo);
        for direct in [false, true] {
            let mut cmd = if direct { w.cmd_direct("kcc-cache") } else { w.cmd("kcc-cache") };
            cmd.arg(&plugin);
            let out = output_within(&mut cmd, limit, &format!("kcc-cache with a FIFO at {what}"));
            assert!(out.status.success(), "{what}: served anyway: {}", stderr(&out));
            assert!(stdout(&out).contains(SECRET), "{what}: the plugin's credential");
            if ["cache.json", "cache.index.json", "cache.lock", "flight.lock"].contains(&what) {
                let err = stderr(&out);
                assert!(
                    err.contains(&fifo.display().to_string()) && err.contains("not a regular file"),
                    "{what}: {err}"
                );
            }
        }
        assert!(is_fifo(&fifo), "{what}: the FIFO is never replaced");
        let doctor = output_within(w.cmd("kcc").args(["doctor", "--json"]), limit, "doctor");
        if ["cache.json", "cache.index.json", "cache.lock"].contains(&what) {
            assert!(stdout(&doctor).contains("not a regular file"), "{what}: doctor reports it: {}", stdout(&doctor));
        }
        let clear = output_within(w.cmd("kcc").arg("clear"), limit, "clear");
        if ["cache.json", "cache.index.json", "cache.lock"].contains(&what) {
            assert!(!clear.status.success(), "{what}: clear cannot clear");
            let err = stderr(&clear);
            assert!(err.contains(&fifo.display().to_string()) && err.contains("not a regular file"), "{what}: {err}");
        }
        assert!(is_fifo(&fifo), "{what}: the FIFO is never replaced");
    }
}

/// Issue 21 item 2: a device node as `KUBE_CREDENTIAL_CACHE_FILE` (as root,
/// `=/dev/null`, a natural attempt to disable caching) was *replaced* by a
/// JSON file holding the token. Here a node with /dev/null's numbers stands
/// in for the real one: it stays a device, nothing is created beside it,
/// and every call runs the plugin and serves its credential.
#[cfg(unix)]
#[test]
fn store_path_never_checked_to_be_a_regular_file_a_device_node_is_never_replaced() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::FileTypeExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip("needs root to make a device node");
        return;
    }
    let mut w = World::new();
    let devdir = w.path("dev");
    fs::create_dir_all(&devdir).unwrap();
    let node = devdir.join("null");
    let c = std::ffi::CString::new(node.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string; mknod only reads it.
    assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) }, 0);
    w.set_env("KUBE_CREDENTIAL_CACHE_FILE", node.to_str().unwrap());
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    for _ in 0..2 {
        let out = output_within(w.cmd("kcc-cache").args([&plugin]), Duration::from_secs(15), "kcc-cache");
        assert!(ok(&out).contains(SECRET));
        let err = stderr(&out);
        assert!(err.contains(node.to_str().unwrap()) && err.contains("not a regular file"), "{err}");
        assert!(err.contains("KUBE_CREDENTIAL_CACHE_BACKEND=none"), "says how to turn caching off: {err}");
    }
    assert_eq!(w.runs("plug"), 2, "nothing cached");
    assert!(fs::symlink_metadata(&node).unwrap().file_type().is_char_device(), "still the device node");
    let beside: Vec<_> = fs::read_dir(&devdir).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(beside, [std::ffi::OsString::from("null")], "nothing created beside it");
    let doctor = output_within(w.cmd("kcc").arg("doctor"), Duration::from_secs(15), "doctor");
    assert!(stdout(&doctor).contains("not a regular file"), "{}", stdout(&doctor));
    let clear = output_within(w.cmd("kcc").arg("clear"), Duration::from_secs(15), "clear");
    assert!(!clear.status.success() && stderr(&clear).contains("not a regular file"), "{}", stderr(&clear));
    assert!(fs::symlink_metadata(&node).unwrap().file_type().is_char_device(), "still the device node");
}

/// Issue 21 item 2 (the peers' "no store" mode, int128/kubelogin #1285):
/// `KUBE_CREDENTIAL_CACHE_BACKEND=none` runs the plugin on every call,
/// passes its output through and writes nothing; doctor says so.
#[test]
fn store_path_never_checked_to_be_a_regular_file_backend_none_is_a_pass_through() {
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_BACKEND", "none");
    let cred = credential("v1", SECRET, Some(&in_secs(3600)));
    let plugin = w.plugin("plug", &cred, 0.0);
    for _ in 0..3 {
        let out = w.cache(&[plugin.to_str().unwrap()]);
        assert_eq!(ok(&out).trim_end(), cred, "the plugin's output, untouched");
        assert_eq!(stderr(&out), "");
    }
    assert_eq!(w.runs("plug"), 3, "the plugin runs every time");
    assert!(!w.cache_home.join("kube-credential-cache").exists(), "nothing written");
    let failing = w.script("failing", "echo 'kcc-test: no' >&2; exit 7");
    let out = w.cache(&[failing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(7), "its exit code");
    let doctor = w.cmd("kcc").args(["doctor", "--json"]).output().unwrap();
    let report: Json = serde_json::from_slice(&doctor.stdout).expect("doctor --json");
    assert_eq!(report["backend"]["setting"], "none", "{report}");
    assert!(report["backend"]["reason"].as_str().unwrap().contains("not cached"), "{report}");
    assert!(!w.cache_home.join("kube-credential-cache").exists(), "doctor writes nothing either");
}

/// Issue 20 item 4 (fuzzing the settings): a Go duration whose integer part
/// sits just below u128::MAX nanoseconds overflowed when its fraction was
/// added — a panic in a debug build, and in the release build the sum
/// wrapped and `94522879700260684295381835.9h` was taken as 30 minutes.
#[test]
fn fuzz_a_duration_overflowing_in_its_fraction_is_refused_naming_the_variable() {
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_DEFAULT_TTL", "94522879700260684295381835.9h");
    let plugin = w.plugin("p", &credential("v1", SECRET, None), 0.0);
    let out = w.cache(&[plugin.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("KUBE_CREDENTIAL_CACHE_DEFAULT_TTL") && err.contains("overflow"), "{err}");
}

/// Issue 20 item 4 (fuzzing kubeconfigs): serde_yml expands YAML aliases
/// up to 32 MB of its own estimate, so five levels of nine aliases (531,441
/// nodes from a 400-byte file) were accepted and `kcc inject -i` wrote the
/// file back expanded (and nine levels took 1.2 GB and 11 s to refuse).
#[test]
fn fuzz_nested_yaml_aliases_are_refused_before_they_are_expanded() {
    let w = World::new();
    let mut text = String::from("kind: Config\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..=5 {
        text.push_str(&format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 9].join(", ")));
    }
    text.push_str("users:\n- name: u\n  user:\n    exec:\n      command: aws\n");
    let file = w.path("config");
    fs::write(&file, &text).unwrap();
    let started = Instant::now();
    let out = w.cmd("kcc").args(["inject", "-i"]).arg(&file).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("config") && err.contains("aliases expand to more than"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(fs::read_to_string(&file).unwrap(), text, "the kubeconfig was rewritten");
    let out = w.cmd("kcc").args(["doctor", "--kubeconfig"]).arg(&file).output().unwrap();
    assert!(stdout(&out).contains("aliases expand to more than"), "{}", stdout(&out));
}

/// Issue 20 item 4 (memory bounded): healing read a `certificate-authority`
/// file whole, so one named `/dev/zero` (in `KUBERNETES_EXEC_INFO` or a
/// kubeconfig) made a re-asked hit read until memory ran out.
#[cfg(target_os = "linux")]
#[test]
fn fuzz_a_certificate_authority_of_dev_zero_does_not_exhaust_memory() {
    let mut w = World::new();
    w.set_env("KUBE_CREDENTIAL_CACHE_DEBUG", "1");
    w.set_env(
        "KUBERNETES_EXEC_INFO",
        r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"cluster":{"server":"https://127.0.0.1:9","certificate-authority":"/dev/zero"},"interactive":false}}"#,
    );
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let call = || {
        let mut cmd = w.cmd_direct("kcc-cache");
        cmd.arg(&plugin);
        // 1 GiB of address space: without the bound the read fails the call instead of ending it.
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit { rlim_cur: 1 << 30, rlim_max: 1 << 30 };
                libc::setrlimit(libc::RLIMIT_AS, &limit);
                Ok(())
            })
        };
        cmd.output().unwrap()
    };
    ok(&call());
    let started = Instant::now();
    let second = call();
    assert!(ok(&second).contains(SECRET), "the cached credential is served: {}", stderr(&second));
    assert!(stderr(&second).contains("larger than 4 MiB"), "{}", stderr(&second));
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

/// Issue 21, item 3: exported assumed-role credentials (CI) and
/// `AWS_DEFAULT_PROFILE` were not in the key, so switching them served the
/// previous role's token. Fixed through the identity mechanism
/// (`src/identity`): they are identity inputs of every AWS tool, the secret
/// ones only ever hashed.
#[test]
fn identity_variables_missing_from_the_key_aws_exported_credentials() {
    let w = World::new();
    let real = crate::kube::find_on_path("aws").expect("the real aws CLI (pip install awscli)");
    let aws =
        w.script("aws", &format!("echo run >> '{}'\nexec '{}' \"$@\"", w.path("aws.count").display(), real.display()));
    let key_of = |out: &std::process::Output| {
        let v: serde_json::Value = serde_json::from_str(ok(out).trim()).unwrap();
        let token = v["status"]["token"].as_str().unwrap().strip_prefix("k8s-aws-v1.").unwrap().to_owned();
        let url = String::from_utf8(crate::identity::base64url_decode(&token)).unwrap();
        let at = url.find("X-Amz-Credential=").unwrap() + "X-Amz-Credential=".len();
        url[at..].split("%2F").next().unwrap().to_owned()
    };
    let run = |vars: &[(&str, &str)]| {
        let mut cmd = w.cmd("kcc-cache");
        cmd.arg(&aws).args(["eks", "get-token", "--cluster-name", "test", "--region", "us-east-1"]);
        cmd.env("AWS_CONFIG_FILE", w.path("aws-config")).env("AWS_SHARED_CREDENTIALS_FILE", w.path("aws-credentials"));
        cmd.env("AWS_EC2_METADATA_DISABLED", "true");
        cmd.envs(vars.iter().copied()).output().unwrap()
    };
    let role_a = [
        ("AWS_ACCESS_KEY_ID", "ASIAKCCROLEAAAAAAAAA"),
        ("AWS_SECRET_ACCESS_KEY", "secret-a"),
        ("AWS_SESSION_TOKEN", "session-a"),
    ];
    let role_b = [
        ("AWS_ACCESS_KEY_ID", "ASIAKCCROLEBBBBBBBBB"),
        ("AWS_SECRET_ACCESS_KEY", "secret-b"),
        ("AWS_SESSION_TOKEN", "session-b"),
    ];
    assert_eq!(key_of(&run(&role_a)), "ASIAKCCROLEAAAAAAAAA");
    assert_eq!(key_of(&run(&role_b)), "ASIAKCCROLEBBBBBBBBB", "the next role's credentials sign the next token");
    assert_eq!(w.runs("aws"), 2);

    std::fs::write(
        w.path("aws-credentials"),
        "[ci-a]\naws_access_key_id = AKIAKCCPROFILEAAAAAA\naws_secret_access_key = s\n[ci-b]\naws_access_key_id = AKIAKCCPROFILEBBBBBB\naws_secret_access_key = s\n",
    )
    .unwrap();
    assert_eq!(key_of(&run(&[("AWS_DEFAULT_PROFILE", "ci-a")])), "AKIAKCCPROFILEAAAAAA");
    assert_eq!(key_of(&run(&[("AWS_DEFAULT_PROFILE", "ci-b")])), "AKIAKCCPROFILEBBBBBB");
    assert_eq!(w.runs("aws"), 4);
    assert!(!w.store_text().contains("session-b") && !w.index_json().to_string().contains("session-b"));
}

/// Issue 20.2, as filed: after `rm -rf ~/.cache`, kernel keys no index names
/// stayed in the kernel, where `kcc clear --all` could not find them (one CI
/// run left 65 in root's persistent keyring).
#[cfg(target_os = "linux")]
#[test]
fn kernel_keys_outlive_their_index_rm_rf_cache_then_clear_all_forgets_them() {
    if !crate::kernel::kernel_usable() {
        return;
    }
    let w = crate::kernel::kernel_world();
    let plugins: Vec<_> =
        (0..3).map(|i| w.plugin(&format!("p{i}"), &credential("v1", SECRET, Some(&in_secs(3600))), 0.0)).collect();
    for p in &plugins {
        ok(&w.cache(&[p.to_str().unwrap()]));
    }
    let ids: Vec<String> = w.index_json()["entries"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.split("id=").nth(1).unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    fs::remove_dir_all(&w.cache_home).unwrap();
    let out = ok(&w.cmd("kcc").args(["clear", "--all"]).output().unwrap());
    assert!(out.contains("removed 3 of 3 cached entries (from the kernel store)"), "{out}");
    for id in &ids {
        assert!(crate::kernel::gone_soon(id), "key {id} outlived 'kcc clear --all'");
    }
}
