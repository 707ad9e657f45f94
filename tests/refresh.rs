//! Refresh ahead (`KUBE_CREDENTIAL_CACHE_REFRESH_AHEAD`): a hit inside the
//! window is served at once and a detached kcc refreshes the entry.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::util::*;

const AHEAD: &str = "KUBE_CREDENTIAL_CACHE_REFRESH_AHEAD";

/// A counting plugin that also records the `KUBERNETES_EXEC_INFO` it saw
/// (`<name>.info`), sleeps `delay` seconds, fails with exit 3 while
/// `<name>.fail` exists, and prints `<name>.out` (see [`World::set_plugin_output`]).
fn plugin(w: &World, name: &str, credential: &str, delay: f32) -> PathBuf {
    w.set_plugin_output(name, credential);
    let p = |ext: &str| w.path(&format!("{name}.{ext}")).display().to_string();
    w.script(
        name,
        &format!(
            "echo run >> '{count}'\nprintf '%s\\n' \"$KUBERNETES_EXEC_INFO\" >> '{info}'\n\
             [ \"{delay}\" = 0 ] || sleep {delay}\n\
             if [ -e '{fail}' ]; then echo 'kcc-test: this plugin needs a prompt' >&2; exit 3; fi\ncat '{out}'",
            count = p("count"),
            info = p("info"),
            fail = p("fail"),
            out = p("out"),
        ),
    )
}

/// `KUBERNETES_EXEC_INFO` of an interactive kubectl.
fn interactive_info() -> String {
    r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"server":"https://k"},"interactive":true}}"#.into()
}

fn call(w: &World, plugin: &std::path::Path) -> std::process::Output {
    w.cmd("kcc-cache").arg(plugin).env("KUBERNETES_EXEC_INFO", interactive_info()).output().unwrap()
}

#[cfg(unix)]
fn token(out: &std::process::Output) -> String {
    let v: serde_json::Value = serde_json::from_str(ok(out).trim()).expect("an ExecCredential");
    v["status"]["token"].as_str().unwrap().to_owned()
}

/// The `background` record of the index entry of plugin `exec` (any entry when None).
fn background_of(w: &World, exec: Option<&str>) -> serde_json::Value {
    let index = w.store_file().with_file_name("cache.index.json");
    let v: serde_json::Value =
        std::fs::read_to_string(index).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let entries = v["entries"].as_object().cloned().unwrap_or_default();
    let found = entries.values().find(|e| exec.is_none_or(|x| e["exec"] == x)).cloned();
    found.map(|e| e["background"].clone()).unwrap_or_default()
}

/// The `background` record of the only entry in the index.
fn background(w: &World) -> serde_json::Value {
    background_of(w, None)
}

/// Polls until the background refresh has finished (result other than
/// `started`), or panics after `timeout`.
#[track_caller]
fn wait_for_background(w: &World, timeout: Duration) -> serde_json::Value {
    wait_for_background_of(w, None, timeout)
}

#[track_caller]
fn wait_for_background_of(w: &World, exec: Option<&str>, timeout: Duration) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let bg = background_of(w, exec);
        if bg["result"].as_str().is_some_and(|r| r != "started") {
            return bg;
        }
        assert!(start.elapsed() < timeout, "no background refresh finished within {timeout:?}: {bg}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log(w: &World) -> String {
    std::fs::read_to_string(w.store_file().with_file_name("cache.refresh.log")).unwrap_or_default()
}

#[cfg(unix)]
#[test]
fn a_hit_inside_the_window_is_served_at_once_and_refreshed_in_the_background() {
    let mut w = World::new();
    w.set_env(AHEAD, "10m");
    let first = format!("{SECRET}-first");
    let second = format!("{SECRET}-second");
    let p = plugin(&w, "plug", &credential("v1", &first, Some(&in_secs(300))), 0.0);
    assert_eq!(token(&call(&w, &p)), first);
    w.set_plugin_output("plug", &credential("v1", &second, Some(&in_secs(300))));

    assert_eq!(token(&call(&w, &p)), first, "the second call returns the cached token at once");
    let bg = wait_for_background(&w, Duration::from_secs(5));
    assert_eq!(bg["result"], "ok", "{bg}");
    assert_eq!(w.runs("plug"), 2, "the plugin ran once more, in the background");
    let infos = std::fs::read_to_string(w.path("plug.info")).unwrap();
    let infos: Vec<serde_json::Value> = infos.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(infos[0]["spec"]["interactive"], true);
    assert_eq!(infos[1]["spec"]["interactive"], false, "the refresher tells the plugin nobody can answer a prompt");
    assert_eq!(infos[1]["spec"]["cluster"]["server"], "https://k", "the rest of the exec info is kept");

    assert_eq!(token(&call(&w, &p)), second, "the third call serves the new token");
    // A 5-minute credential is always inside a 10-minute window: the new one
    // must not be refreshed again on every call.
    for _ in 0..3 {
        assert_eq!(token(&call(&w, &p)), second);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(w.runs("plug"), 2, "5 calls, one background run");

    use std::os::unix::fs::PermissionsExt;
    let log_file = w.store_file().with_file_name("cache.refresh.log");
    assert_eq!(std::fs::metadata(&log_file).unwrap().permissions().mode() & 0o777, 0o600);
    let log = log(&w);
    assert!(log.contains("refresh ahead") && log.contains("ok"), "{log}");
    assert!(!log.contains(SECRET), "the refresher never logs a token: {log}");
}

#[test]
fn the_foreground_never_waits_for_the_background_plugin() {
    let mut w = World::new();
    w.set_env(AHEAD, "10m");
    let p = plugin(&w, "slow", &credential("v1", SECRET, Some(&in_secs(300))), 2.0);
    ok(&call(&w, &p));
    let started = Instant::now();
    ok(&call(&w, &p));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1000), "the hit waited {took:?} for a 2 s background plugin");
    assert_eq!(wait_for_background(&w, Duration::from_secs(10))["result"], "ok");
    assert_eq!(w.runs("slow"), 2);
}

#[test]
fn a_failing_background_refresh_backs_off_and_a_foreground_miss_still_refreshes() {
    let mut w = World::new();
    w.set_env(AHEAD, "10m");
    let p = plugin(&w, "plug", &credential("v1", SECRET, Some(&in_secs(300))), 0.0);
    ok(&call(&w, &p));
    std::fs::write(w.path("plug.fail"), "").unwrap();

    ok(&call(&w, &p));
    let bg = wait_for_background(&w, Duration::from_secs(5));
    assert_eq!(bg["result"], "failed", "{bg}");
    assert!(log(&w).contains("this plugin needs a prompt"), "the plugin's stderr is in the log: {}", log(&w));
    for _ in 0..4 {
        ok(&call(&w, &p));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(w.runs("plug"), 2, "a failed background refresh is not retried on every call");

    let debug = call_with(&w, &p, &[("KUBE_CREDENTIAL_CACHE_DEBUG", "1")]);
    let err = stderr(&debug);
    assert!(err.contains("last background refresh failed") && err.contains("next allowed at"), "{err}");
    let doctor = stdout(&w.cmd("kcc").arg("doctor").output().unwrap());
    assert!(doctor.contains("last background refresh failed") && doctor.contains("next allowed at"), "{doctor}");

    // The back-off holds only the background: a foreground miss (here: the
    // entry is inside a 6-minute refresh margin) runs the plugin as always.
    std::fs::remove_file(w.path("plug.fail")).unwrap();
    let miss = call_with(&w, &p, &[("KUBE_CREDENTIAL_CACHE_REFRESH_MARGIN", "6m")]);
    assert!(ok(&miss).contains(SECRET));
    assert_eq!(w.runs("plug"), 3);
}

fn call_with(w: &World, plugin: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut c = w.cmd("kcc-cache");
    c.arg(plugin).env("KUBERNETES_EXEC_INFO", interactive_info());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn sixteen_parallel_hits_in_the_window_start_one_refresher() {
    let mut w = World::new();
    w.set_env(AHEAD, "10m");
    let p = plugin(&w, "plug", &credential("v1", SECRET, Some(&in_secs(300))), 0.5);
    ok(&call(&w, &p));
    let children: Vec<_> = (0..16)
        .map(|_| {
            w.cmd("kcc-cache")
                .arg(&p)
                .env("KUBERNETES_EXEC_INFO", interactive_info())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(stdout(&out).contains(SECRET), "every hit is served");
    }
    assert_eq!(wait_for_background(&w, Duration::from_secs(10))["result"], "ok");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(w.runs("plug"), 2, "16 hits in the window, one background refresh");
}

#[test]
fn outside_the_window_or_switched_off_nothing_runs_in_the_background() {
    let mut w = World::new();
    let p = plugin(&w, "plug", &credential("v1", SECRET, Some(&in_secs(300))), 0.0);
    for _ in 0..3 {
        ok(&call(&w, &p));
    }
    w.set_env(AHEAD, "4m");
    for _ in 0..3 {
        ok(&call(&w, &p));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.runs("plug"), 1, "off by default, and 5 minutes left is outside a 4-minute window");
    assert!(background(&w).is_null());
    assert!(!w.store_file().with_file_name("cache.refresh.log").exists());
}

#[test]
fn a_plugin_that_runs_kcc_itself_is_refreshed_normally() {
    // The refresher's marker must not leak into the plugin: a kcc-cache
    // inside it serves its caller like any other.
    let mut w = World::new();
    w.set_env(AHEAD, "10m");
    let inner = plugin(&w, "inner", &credential("v1", SECRET, Some(&in_secs(300))), 0.0);
    let outer = w.script(
        "outer",
        &format!("echo run >> '{}'\nexec kcc-cache '{}'", w.path("outer.count").display(), inner.display()),
    );
    ok(&call(&w, &outer));
    ok(&call(&w, &outer));
    let bg = wait_for_background_of(&w, Some("outer"), Duration::from_secs(5));
    assert_eq!(bg["result"], "ok", "{bg}\n{}", log(&w));
    assert_eq!(w.runs("outer"), 2);
}
