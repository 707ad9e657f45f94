//! `kcc inject` / `kcc-injector`, judged by the real kubectl: whatever kcc
//! writes, `kubectl config view` must read as the original plus exactly the
//! intended wrapping, and restore must give the original back.

use std::fs;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::util::*;

const USER_ENV: &str = "KUBE_CREDENTIAL_CACHE_USER";
const MARKER_ENV: &str = "KUBE_CREDENTIAL_CACHE_INJECTED";

/// A plain versioned kubectl (`kubectl.1.NN` beside the one on PATH, the
/// highest): the `kubectl` on PATH here is a version dispatcher that may
/// contact the server first.
fn kubectl() -> &'static Path {
    static KUBECTL: OnceLock<PathBuf> = OnceLock::new();
    KUBECTL.get_or_init(|| {
        let on_path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join("kubectl"))
            .find(|p| p.is_file())
            .expect("these tests need kubectl on PATH");
        let dir = fs::canonicalize(&on_path).unwrap().parent().unwrap().to_path_buf();
        let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                Some((name.strip_prefix("kubectl.1.")?.parse().ok()?, e.path()))
            })
            .collect();
        versioned.sort();
        versioned
            .pop()
            .unwrap_or_else(|| {
                panic!("no versioned kubectl.1.* beside {}; these tests need a plain kubectl", dir.display())
            })
            .1
    })
}

/// What kubectl makes of a kubeconfig (panics, with kubectl's message, when it refuses it).
fn kubectl_view(w: &World, file: &Path) -> Json {
    let out =
        w.cmd(kubectl()).args(["config", "view", "--raw", "-o", "json", "--kubeconfig"]).arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "kubectl refused {}: {}\n{}",
        file.display(),
        stderr(&out),
        fs::read_to_string(file).unwrap()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubeconfig")
}

/// Every kubeconfig fixture (the real tools' and `edge-cases.yaml`), by name.
fn fixtures() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fs::read_dir(fixture_dir())
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().into_string().unwrap(), fs::read_to_string(e.path()).unwrap()))
        .collect();
    out.sort();
    assert!(out.len() >= 6, "fixtures missing");
    out
}

/// Writes `text` as `<name>` in a directory of its own inside the world.
fn put(w: &World, name: &str, text: &str) -> PathBuf {
    let dir = w.path(&format!("kube-{name}"));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config");
    fs::write(&path, text).unwrap();
    path
}

fn kcc(w: &World, args: &[&str], file: &Path) -> Output {
    w.cmd("kcc").arg("inject").args(args).arg(file).output().unwrap()
}

/// The canonical rendering of kcc's own model of a kubeconfig: equal text
/// means equal values, keys in the same order.
fn model(path: &Path, text: &str) -> String {
    kcc::kubeconfig::Kubeconfig::from_bytes(path, text.as_bytes().to_vec()).unwrap().to_yaml()
}

/// Go's `filepath.Join(dir, rel)` for the test's expectations.
fn join_clean(dir: &Path, rel: &str) -> String {
    let mut out = dir.to_path_buf();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out.to_str().unwrap().to_string()
}

fn is_wrapper(command: &str) -> bool {
    Path::new(command).file_name().unwrap().to_str().unwrap().starts_with("kcc-cache")
}

/// What kubectl should see after `kcc inject -c COMMAND`: the original
/// view with every exec user wrapped (an independent statement of the rules).
fn expected_injected(original: &Json, dir: &Path, command: &str) -> Json {
    let mut v = original.clone();
    for user in v["users"].as_array_mut().into_iter().flatten() {
        let name = user["name"].as_str().unwrap().to_string();
        let Some(exec) = user.pointer_mut("/user/exec").filter(|e| !e.is_null()) else { continue };
        let plugin = exec["command"].as_str().unwrap().to_string();
        let mut env: Vec<Json> = exec["env"].as_array().cloned().unwrap_or_default();
        if is_wrapper(&plugin) {
            assert_eq!(env.iter().filter(|e| e["name"] == USER_ENV).count(), 1, "fixture: one user entry");
            continue;
        }
        let word = if plugin.contains('/') && !plugin.starts_with('/') { join_clean(dir, &plugin) } else { plugin };
        let mut args = vec![json!(word)];
        if Path::new(command).file_name().unwrap() == "kcc" {
            args.insert(0, json!("cache"));
        }
        args.extend(exec["args"].as_array().cloned().unwrap_or_default());
        env.retain(|e| e["name"] != USER_ENV && e["name"] != MARKER_ENV);
        env.push(json!({"name": USER_ENV, "value": name}));
        exec["command"] = json!(command);
        exec["args"] = json!(args);
        exec["env"] = json!(env);
        exec["provideClusterInfo"] = json!(true);
    }
    v
}

/// Takes the marker entries out of a kubectl view, checking each wrapped
/// user has exactly one, in the v1 format.
fn without_markers(mut v: Json) -> Json {
    for user in v["users"].as_array_mut().into_iter().flatten() {
        let Some(env) = user.pointer_mut("/user/exec/env").and_then(Json::as_array_mut) else { continue };
        let markers: Vec<&Json> = env.iter().filter(|e| e["name"] == MARKER_ENV).collect();
        if markers.len() == 1 {
            assert!(markers[0]["value"].as_str().unwrap().starts_with("v1"), "{markers:?}");
        } else {
            assert!(markers.is_empty(), "one marker at most: {env:?}");
        }
        env.retain(|e| e["name"] != MARKER_ENV);
    }
    v
}

#[test]
fn inject_changes_only_the_exec_users_as_kubectl_reads_it() {
    let w = World::new();
    for (name, text) in fixtures() {
        for command in ["kcc-cache", "kcc", "/opt/kcc/bin/kcc-cache"] {
            let original = put(&w, &name, &text);
            let before = kubectl_view(&w, &original);
            let out = ok(&kcc(&w, &["-c", command], &original));
            let injected = put(&w, &format!("{name}-injected"), &out);
            let after = without_markers(kubectl_view(&w, &injected));
            let expected = expected_injected(&before, original.parent().unwrap(), command);
            assert!(
                after == expected,
                "{name} with -c {command}:\n{out}\nkubectl read:\n{after:#}\nexpected:\n{expected:#}"
            );
            assert!(out.ends_with('\n'));
            assert_eq!(fs::read_to_string(&original).unwrap(), text, "stdout mode must not touch the file");
        }
    }
}

#[test]
fn injecting_twice_equals_injecting_once() {
    let w = World::new();
    for (name, text) in fixtures() {
        let original = put(&w, &name, &text);
        let once = ok(&kcc(&w, &[], &original));
        let injected = put(&w, &format!("{name}-once"), &once);
        let twice = ok(&kcc(&w, &[], &injected));
        assert_eq!(twice, once, "{name}");
    }
}

#[test]
fn restore_after_inject_gives_back_the_original() {
    let w = World::new();
    for (name, text) in fixtures().into_iter().filter(|(n, _)| !n.starts_with("go-")) {
        for command in ["kcc-cache", "kcc"] {
            let original = put(&w, &name, &text);
            let injected = put(&w, &format!("{name}-injected"), &ok(&kcc(&w, &["-c", command], &original)));
            let restored_text = ok(&kcc(&w, &["-r", "-c", command], &injected));
            let restored = put(&w, &format!("{name}-restored"), &restored_text);
            assert_eq!(kubectl_view(&w, &restored), kubectl_view(&w, &original), "{name} -c {command}");
            assert_eq!(model(&restored, &restored_text), model(&original, &text), "{name} -c {command}");
        }
    }
}

#[test]
fn restore_leaves_a_never_injected_kubeconfig_as_it_is() {
    let w = World::new();
    for (name, text) in fixtures().into_iter().filter(|(n, _)| !n.starts_with("go-")) {
        let original = put(&w, &name, &text);
        assert_eq!(ok(&kcc(&w, &["-r"], &original)), text, "{name}: nothing to restore prints the file unchanged");
    }
}

#[test]
fn go_injected_kubeconfig_is_left_alone_and_restores_like_the_go_tool() {
    let w = World::new();
    let text = fs::read_to_string(fixture_dir().join("go-kcc-injected.yaml")).unwrap();
    let go = put(&w, "go", &text);
    assert_eq!(ok(&kcc(&w, &[], &go)), text, "already injected: unchanged");

    let restored_text = ok(&kcc(&w, &["-r"], &go));
    let restored = put(&w, "go-restored", &restored_text);
    let view = kubectl_view(&w, &restored);
    let exec = &view["users"][0]["user"]["exec"];
    assert_eq!(view["users"][0]["name"], "arn:aws:eks:us-west-2:111122223333:cluster/prod");
    assert_eq!(exec["command"], "aws");
    assert_eq!(exec["args"][0], "--region");
    assert_eq!(exec["provideClusterInfo"], false);
    assert_eq!(exec["env"], json!([{"name": "AWS_PROFILE", "value": "prod-admin"}]));
    // The Go tool wrapped the same user the EKS fixture has unwrapped.
    let eks = put(&w, "eks", &fs::read_to_string(fixture_dir().join("eks-update-kubeconfig.yaml")).unwrap());
    let eks_view = kubectl_view(&w, &eks);
    let eks_prod =
        eks_view["users"].as_array().unwrap().iter().find(|u| u["name"] == view["users"][0]["name"]).unwrap();
    assert_eq!(*exec, eks_prod["user"]["exec"]);
}

#[test]
fn stale_cache_user_entry_of_a_renamed_user_is_corrected() {
    let w = World::new();
    let text = fs::read_to_string(fixture_dir().join("go-kcc-injected.yaml")).unwrap();
    let renamed =
        text.replace("- name: arn:aws:eks:us-west-2:111122223333:cluster/prod\n  user:", "- name: prod\n  user:");
    let file = put(&w, "renamed", &renamed);
    let out = put(&w, "renamed-out", &ok(&kcc(&w, &[], &file)));
    let env = &kubectl_view(&w, &out)["users"][0]["user"]["exec"]["env"];
    assert_eq!(*env, json!([{"name": "AWS_PROFILE", "value": "prod-admin"}, {"name": USER_ENV, "value": "prod"}]));
}

#[cfg(unix)]
#[test]
fn in_place_through_a_symlink_keeps_the_link_the_mode_and_a_backup() {
    let w = World::new();
    let text = fs::read_to_string(fixture_dir().join("eks-update-kubeconfig.yaml")).unwrap();
    let real_dir = w.path("dotfiles");
    fs::create_dir_all(&real_dir).unwrap();
    let real = real_dir.join("kubeconfig");
    fs::write(&real, &text).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o600)).unwrap();
    let kube = w.home.join(".kube");
    fs::create_dir_all(&kube).unwrap();
    let link = kube.join("config");
    std::os::unix::fs::symlink(&real, &link).unwrap();

    // kcc-injector with no file: ~/.kube/config, as kubectl would pick it.
    let out = w.cmd("kcc-injector").arg("-i").output().unwrap();
    ok(&out);
    assert!(stderr(&out).contains("injected 2 exec user(s)"), "{}", stderr(&out));
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link must stay a link");
    assert_eq!(fs::read_link(&link).unwrap(), real);
    assert_eq!(fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o600);
    let view = kubectl_view(&w, &link);
    assert_eq!(view["users"][0]["user"]["exec"]["command"], "kcc-cache");
    let backup = kube.join("config.kcc-backup");
    assert_eq!(fs::read_to_string(&backup).unwrap(), text);
    assert_eq!(fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!kube.join("config.lock").exists(), "the lock file is removed");
    let leftovers: Vec<_> = fs::read_dir(&real_dir).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temp files left: {leftovers:?}");

    ok(&w.cmd("kcc-injector").args(["-i", "-r"]).output().unwrap());
    assert_eq!(model(&real, &fs::read_to_string(&real).unwrap()), model(&real, &text));
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
}

#[test]
fn backups_are_never_overwritten() {
    let w = World::new();
    let text = fs::read_to_string(fixture_dir().join("aks-kubelogin.yaml")).unwrap();
    let file = put(&w, "aks", &text);
    let backup = PathBuf::from(format!("{}.kcc-backup", file.display()));
    fs::write(&backup, "an older backup\n").unwrap();
    ok(&kcc(&w, &["-i"], &file));
    assert_eq!(fs::read_to_string(&backup).unwrap(), "an older backup\n");
    let stamped: Vec<PathBuf> = fs::read_dir(file.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_str().unwrap().contains(".kcc-backup."))
        .collect();
    assert_eq!(stamped.len(), 1, "{stamped:?}");
    assert_eq!(fs::read_to_string(&stamped[0]).unwrap(), text);

    // Nothing to change: no write, no new backup.
    let injected = fs::read(&file).unwrap();
    let again = kcc(&w, &["-i"], &file);
    assert!(stderr(&ok_output(again)).contains("nothing to change"));
    assert_eq!(fs::read(&file).unwrap(), injected);
}

fn ok_output(o: Output) -> Output {
    ok(&o);
    o
}

#[test]
fn held_kubeconfig_lock_makes_kcc_wait_then_fail_naming_it() {
    let w = World::new();
    let text = fs::read_to_string(fixture_dir().join("gke-gcloud-auth-plugin.yaml")).unwrap();
    let file = put(&w, "gke", &text);
    let lock = PathBuf::from(format!("{}.lock", file.display()));
    fs::write(&lock, "").unwrap();
    let started = Instant::now();
    let out = kcc(&w, &["-i"], &file);
    assert!(started.elapsed() >= Duration::from_secs(2), "kcc must wait a little for the lock");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&lock.display().to_string()) && err.contains("locked"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(fs::read_to_string(&file).unwrap(), text);
    assert!(lock.exists(), "somebody else's lock is not removed");
}

#[test]
fn kcc_waits_for_a_lock_released_in_time() {
    let w = World::new();
    let text = fs::read_to_string(fixture_dir().join("gke-gcloud-auth-plugin.yaml")).unwrap();
    let file = put(&w, "gke", &text);
    let lock = PathBuf::from(format!("{}.lock", file.display()));
    fs::write(&lock, "").unwrap();
    let releaser = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            fs::remove_file(lock).unwrap();
        })
    };
    ok(&kcc(&w, &["-i"], &file));
    releaser.join().unwrap();
    assert!(fs::read_to_string(&file).unwrap().contains("kcc-cache"));
    assert!(!lock.exists());
}

#[cfg(unix)]
#[test]
fn bad_input_fails_with_one_line_and_leaves_the_file_untouched() {
    let w = World::new();
    let cases = [
        ("malformed", "users: [\n  - name: x\n", "is not valid YAML"),
        ("pod", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n", "its kind is 'Pod', expected 'Config'"),
        ("two-docs", "kind: Config\nusers: []\n---\nkind: Config\n", "several YAML documents"),
        ("scalar", "just text\n", "not a kubeconfig"),
        ("bad-args", "kind: Config\nusers:\n- name: u\n  user:\n    exec: {command: aws, args: oops}\n", "user 'u'"),
    ];
    for (name, text, problem) in cases {
        let file = put(&w, name, text);
        for args in [&["-i"][..], &[], &["-r", "-i"]] {
            let out = kcc(&w, args, &file);
            assert!(!out.status.success(), "{name} {args:?}");
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{name}: {err}");
            assert!(
                err.starts_with("kcc: ") && err.contains(&file.display().to_string()) && err.contains(problem),
                "{name}: {err}"
            );
            assert_eq!(fs::read_to_string(&file).unwrap(), text);
        }
        let siblings = fs::read_dir(file.parent().unwrap()).unwrap().count();
        assert_eq!(siblings, 1, "{name}: no backup, lock or temp file left behind");
    }

    let missing = w.path("nowhere/config");
    let out = kcc(&w, &["-i"], &missing);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist") && stderr(&out).contains(&missing.display().to_string()));
    assert!(!w.path("nowhere").exists());

    let unreadable = put(&w, "unreadable", "kind: Config\n");
    fs::set_permissions(&unreadable, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(&unreadable).is_err() {
        // (root reads everything; the check only means something for others)
        let out = kcc(&w, &["-i"], &unreadable);
        assert!(stderr(&out).contains("cannot read kubeconfig"), "{}", stderr(&out));
    }
}

#[test]
fn one_bad_file_among_several_leaves_all_of_them_untouched() {
    let w = World::new();
    let good_text = fs::read_to_string(fixture_dir().join("aks-kubelogin.yaml")).unwrap();
    let good = put(&w, "good", &good_text);
    let bad = put(&w, "bad", "kind: Secret\n");
    let out = w.cmd("kcc").args(["inject", "-i"]).arg(&good).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    assert_eq!(fs::read_to_string(&good).unwrap(), good_text);
}

#[test]
fn several_files_from_kubeconfig_are_printed_each_under_its_name() {
    let mut w = World::new();
    let a = put(&w, "a", &fs::read_to_string(fixture_dir().join("aks-kubelogin.yaml")).unwrap());
    let b = put(&w, "b", &fs::read_to_string(fixture_dir().join("gke-gcloud-auth-plugin.yaml")).unwrap());
    let missing = w.path("missing/config");
    w.set_env("KUBECONFIG", &format!("{}:{}:{}", a.display(), missing.display(), b.display()));
    let out = w.cmd("kcc").arg("inject").output().unwrap();
    let text = ok(&out);
    assert!(text.starts_with(&format!("# file: {}\n", a.display())), "{text}");
    assert!(text.contains(&format!("\n---\n# file: {}\n", b.display())), "{text}");
    assert!(stderr(&out).contains(&format!("skipping '{}'", missing.display())));
    assert_eq!(text.matches("command: kcc-cache").count(), 2);
}

#[test]
fn warns_when_the_injected_command_is_not_on_path() {
    let w = World::new();
    let file = put(&w, "eks", &fs::read_to_string(fixture_dir().join("eks-update-kubeconfig.yaml")).unwrap());
    let out = kcc(&w, &["-c", "kcc-cache-nowhere"], &file);
    let err = stderr(&ok_output(out));
    assert!(err.contains("'kcc-cache-nowhere' is not on PATH") && err.contains("ln -s"), "{err}");
    let quiet = kcc(&w, &[], &file);
    assert_eq!(stderr(&ok_output(quiet)), "", "kcc-cache is on the world's PATH");
}

#[cfg(unix)]
#[test]
fn kubectl_runs_the_wrapped_plugin_through_kcc_cache() {
    let w = World::new();
    let cred = credential("v1", SECRET, Some(&in_secs(3600)));
    w.plugin("get-token", &cred, 0.0);
    let dir = w.path("kube-e2e");
    fs::create_dir_all(dir.join("bin")).unwrap();
    std::os::unix::fs::symlink(w.bin.join("get-token"), dir.join("bin/get-token")).unwrap();
    // Nothing listens on port 1: kubectl runs the plugin, then fails to
    // connect; enough to prove it accepts the wrapped exec section.
    let file = put(
        &w,
        "e2e",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context: {cluster: c, user: \"on\"}\ncurrent-context: c\nusers:\n- name: \"on\"\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ../kube-e2e/bin/get-token\n      args: [--cluster, \"yes\"]\n      interactiveMode: Never\n",
    );
    ok(&kcc(&w, &["-i"], &file));
    for _ in 0..3 {
        let out = w
            .cmd(kubectl())
            .args(["get", "--raw", "/version", "--request-timeout", "5s", "--kubeconfig"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(stderr(&out).contains("127.0.0.1:1"), "kubectl got as far as connecting: {}", stderr(&out));
    }
    assert_eq!(w.runs("get-token"), 1, "the plugin ran once, through the cache");
    let args = fs::read_to_string(w.path("get-token.args")).unwrap();
    assert_eq!(args.trim(), "--cluster yes");
}

mod properties {
    //! inject → restore is the identity, and kcc's YAML reads back as the
    //! value it wrote, for generated kubeconfigs (in process: kubectl's
    //! agreement with the emitter is proven by the fixture tests above).
    #![allow(deprecated)] // serde_yml 0.0.13 marks itself deprecated

    use std::path::Path;

    use kcc::cmd::inject::{inject, restore};
    use kcc::kubeconfig::yaml::to_string;
    use proptest::prelude::*;
    use serde_yml::{Mapping, Value};

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "on",
                "yes",
                "No",
                "off",
                "y",
                "~",
                "null",
                "true",
                "1.0",
                "0123",
                "1e3",
                "12:30",
                ".inf",
                "",
                " ",
                "a: b",
                "#x",
                "- x",
                "vault:prod admin",
                "日本",
                "x\ny",
                "\nlead\n",
                "tail\n\n",
            ])
            .prop_map(String::from),
            "[ -~]{0,12}",
            "[a-z \n]{0,16}",
            "\\PC{0,6}",
            any::<String>().prop_map(|s| s.chars().take(8).collect()),
        ]
    }

    /// Absent, null, or a value.
    fn field<T: Strategy<Value = Value>>(value: T) -> impl Strategy<Value = Option<Value>> {
        prop_oneof![Just(None), Just(Some(Value::Null)), value.prop_map(Some)]
    }

    fn strings(max: usize) -> impl Strategy<Value = Value> {
        prop::collection::vec(text().prop_map(Value::String), 0..max).prop_map(Value::Sequence)
    }

    fn env() -> impl Strategy<Value = Value> {
        let name = prop_oneof![
            prop::sample::select(vec!["AWS_PROFILE", "KUBE_CREDENTIAL_CACHE_USER", "KUBE_CREDENTIAL_CACHE_INJECTED"])
                .prop_map(String::from),
            text(),
        ];
        prop::collection::vec(
            (name, text()).prop_map(|(n, v)| {
                let mut m = Mapping::new();
                m.insert("name", Value::String(n));
                m.insert("value", Value::String(v));
                Value::Mapping(m)
            }),
            0..4,
        )
        .prop_map(Value::Sequence)
    }

    fn command() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "aws",
                "./bin/get-token",
                "../x/y",
                "/opt/p",
                "tools/p",
                "gke-gcloud-auth-plugin"
            ])
            .prop_map(String::from),
            "[a-z./]{1,10}",
        ]
        .prop_filter("not already a kcc wrapper", |c| {
            let stem = Path::new(c).file_stem().and_then(|s| s.to_str()).unwrap_or("");
            !stem.starts_with("kcc") && !c.is_empty()
        })
    }

    fn exec() -> impl Strategy<Value = Value> {
        (
            command(),
            field(strings(4)),
            field(env()),
            field(any::<bool>().prop_map(Value::Bool)),
            field(text().prop_map(Value::String)),
            Just(vec!["apiVersion", "command", "args", "env", "provideClusterInfo", "installHint"]).prop_shuffle(),
        )
            .prop_map(|(command, args, env, pci, hint, order)| {
                let mut m = Mapping::new();
                for key in order {
                    let value = match key {
                        "apiVersion" => Some(Value::String("client.authentication.k8s.io/v1".into())),
                        "command" => Some(Value::String(command.clone())),
                        "args" => args.clone(),
                        "env" => env.clone(),
                        "provideClusterInfo" => pci.clone(),
                        _ => hint.clone(),
                    };
                    if let Some(v) = value {
                        m.insert(key, v);
                    }
                }
                Value::Mapping(m)
            })
    }

    fn kubeconfig() -> impl Strategy<Value = Value> {
        let user = (text(), prop_oneof![exec().prop_map(Some), Just(None)], text()).prop_map(|(name, exec, token)| {
            let mut inner = Mapping::new();
            match exec {
                Some(e) => inner.insert("exec", e),
                None => inner.insert("token", Value::String(token)),
            };
            let mut u = Mapping::new();
            u.insert("name", Value::String(name));
            u.insert("user", Value::Mapping(inner));
            Value::Mapping(u)
        });
        prop::collection::vec(user, 0..4).prop_map(|users| {
            let mut root = Mapping::new();
            root.insert("apiVersion", Value::String("v1".into()));
            root.insert("kind", Value::String("Config".into()));
            root.insert("users", Value::Sequence(users));
            Value::Mapping(root)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn restore_of_inject_is_the_identity_through_yaml_text(original in kubeconfig()) {
            let text = to_string(&original);
            let reparsed: Value = serde_yml::from_str(&text).unwrap();
            prop_assert_eq!(to_string(&reparsed), text.clone(), "the emitter's text reads back as its value");
            prop_assert_eq!(&reparsed, &original);

            let mut v = reparsed;
            inject(&mut v, "kcc-cache", "/home/u/.kube", kcc::platform::Os::Linux).unwrap();
            let injected = to_string(&v);
            let mut v: Value = serde_yml::from_str(&injected).unwrap();
            prop_assert_eq!(to_string(&v), injected.clone());
            let mut twice = v.clone();
            prop_assert!(!inject(&mut twice, "kcc-cache", "/home/u/.kube", kcc::platform::Os::Linux).unwrap().changed());
            restore(&mut v, "kcc-cache").unwrap();
            prop_assert_eq!(to_string(&v), text, "injected:\n{}", injected);
        }
    }
}

#[test]
fn kcc_injector_shows_its_help_for_dash_h_like_the_go_tool() {
    let w = World::new();
    let help = ok(&w.cmd("kcc-injector").arg("-h").output().unwrap());
    assert!(help.starts_with("Usage: kcc-injector [-i] [-r] [-c <command>]"), "{help}");
}

#[test]
fn a_missing_kcc_cache_link_points_to_install_links() {
    let w = World::new();
    fs::remove_file(w.bin.join("kcc-cache")).unwrap();
    let file = put(&w, "eks", &fs::read_to_string(fixture_dir().join("eks-update-kubeconfig.yaml")).unwrap());
    let err = stderr(&ok_output(kcc(&w, &[], &file)));
    assert!(err.contains("'kcc-cache' is not on PATH") && err.contains("kcc install-links"), "{err}");
}
