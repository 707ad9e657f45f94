//! `kcc cache …` must behave exactly like `kcc-cache …`, and `kcc inject …`
//! like `kcc-injector …`: Scoop's shims do not keep argv[0], so the Scoop
//! manifest (scripts/scoop-manifest) installs the personalities as aliases
//! with arguments — the `kcc-cache` shim runs `kcc.exe cache ARGS…`. Same
//! output, same key and store entry (one serves the other's hit), same exit
//! codes and messages on failure, nothing cached by either when it fails.

use crate::util::*;
use std::fs;
use std::process::Output;

/// Runs the proxy the native way (`kcc-cache ARGS`) or the Scoop-shim way
/// (`kcc cache ARGS`).
fn proxy(w: &World, shim: bool, args: &[&str]) -> Output {
    if shim { w.cmd("kcc").arg("cache").args(args).output().unwrap() } else { w.cache(args) }
}

/// Stderr with the world's own directory and the personality's name made
/// neutral, so the two forms' messages can be compared.
fn neutral(w: &World, o: &Output) -> String {
    stderr(o).replace(&w.dir.path().display().to_string(), "<world>").replace("kcc cache", "kcc-cache")
}

/// A credential with a fixed expiry, so two worlds print the same bytes.
fn fixed_credential() -> String {
    credential("v1", SECRET, Some("2099-01-01T00:00:00Z"))
}

const PLUGIN_ARGS: [&str; 6] = ["eks", "get-token", "--cluster-name", "c", "-o", "json"];

fn args_for(plugin: &std::path::Path) -> Vec<&str> {
    let mut args = vec![plugin.to_str().unwrap()];
    args.extend(PLUGIN_ARGS);
    args
}

#[test]
fn kcc_cache_and_kcc_cache_personality_share_one_entry_in_both_orders() {
    for shim_first in [false, true] {
        let mut w = World::new();
        w.set_env("KUBERNETES_EXEC_INFO", &exec_info("v1", Some("https://example.invalid:6443")));
        let plugin = w.plugin("plug", &fixed_credential(), 0.0);
        let args = args_for(&plugin);
        ok(&proxy(&w, shim_first, &args));
        let other = ok(&proxy(&w, !shim_first, &args));
        assert_eq!(w.runs("plug"), 1, "the second form was served the first form's entry (shim first: {shim_first})");
        assert_eq!(w.store_keys().len(), 1, "one key for both forms: {:?}", w.store_keys());
        let again = ok(&proxy(&w, shim_first, &args));
        assert_eq!(other, again, "the other form's hit is this form's hit, byte for byte");
        // A `--` before the plugin (what the shim passes on when the user typed it).
        let mut dashed = vec!["--"];
        dashed.extend(&args);
        assert_eq!(ok(&proxy(&w, !shim_first, &dashed)), again);
        assert_eq!(w.runs("plug"), 1, "`--` first is the same key");
        assert_eq!(fs::read_to_string(w.path("plug.args")).unwrap(), "eks get-token --cluster-name c -o json\n");
    }
}

#[test]
fn kcc_cache_and_kcc_cache_personality_print_the_same_miss_and_hit() {
    let (native, shim) = (World::new(), World::new());
    let outputs: Vec<(String, String)> = [(&native, false), (&shim, true)]
        .into_iter()
        .map(|(w, form)| {
            let plugin = w.plugin("plug", &fixed_credential(), 0.0);
            let args = args_for(&plugin);
            let miss = ok(&proxy(w, form, &args));
            let hit = ok(&proxy(w, form, &args));
            assert_eq!(w.runs("plug"), 1);
            (miss, hit)
        })
        .collect();
    assert_eq!(outputs[0], outputs[1], "kcc-cache and kcc cache print the same miss and the same hit");
    let entry = |w: &World| {
        let store = w.store_json();
        let (_, v) = store["credentials"].as_object().unwrap().iter().next().unwrap();
        v.to_string()
    };
    assert_eq!(entry(&native), entry(&shim), "the same store entry");
    // (Keys hash the plugin's absolute path, so they are compared within one
    // world: kcc_cache_and_kcc_cache_personality_share_one_entry_in_both_orders.)
}

#[test]
fn kcc_cache_and_kcc_cache_personality_fail_alike() {
    // Each form in its own world (a failure backs off later asks of its key).
    let cases: [(&str, &str); 3] = [
        ("failing", "echo 'login required: run aws sso login' >&2; exit 3"),
        ("garbage", "echo 'not a credential'"),
        ("missing", ""),
    ];
    for (name, body) in cases {
        let results: Vec<(Option<i32>, String, String)> = [false, true]
            .into_iter()
            .map(|form| {
                let w = World::new();
                let plugin = if body.is_empty() { w.path("no-such-plugin") } else { w.script(name, body) };
                let out = proxy(&w, form, &[plugin.to_str().unwrap(), "--flag"]);
                assert!(!out.status.success(), "{name}: must fail");
                assert!(w.store_keys().is_empty(), "{name}: nothing cached: {:?}", w.store_keys());
                (out.status.code(), stdout(&out), neutral(&w, &out))
            })
            .collect();
        assert_eq!(results[0], results[1], "{name}: the same exit code, stdout and message");
    }
    // No plugin at all: the same usage error (each usage line names the way it was called).
    let w = World::new();
    assert_eq!(proxy(&w, false, &[]).status.code(), proxy(&w, true, &[]).status.code());
    // One key for failures too: the shim form gets the native form's back-off.
    let failing = w.script("failing", "echo 'login required' >&2; exit 3");
    assert_eq!(proxy(&w, false, &[failing.to_str().unwrap()]).status.code(), Some(3));
    let backed_off = proxy(&w, true, &[failing.to_str().unwrap()]);
    assert_eq!(backed_off.status.code(), Some(3));
    assert!(stderr(&backed_off).contains("did not run 'failing'"), "{}", stderr(&backed_off));
}

#[test]
fn kcc_inject_and_kcc_injector_write_the_same_kubeconfig() {
    let w = World::new();
    let fixture = fs::read_to_string("tests/fixtures/kubeconfig/eks-update-kubeconfig.yaml").unwrap();
    let (a, b) = (w.path("a.yaml"), w.path("b.yaml"));
    fs::write(&a, &fixture).unwrap();
    fs::write(&b, &fixture).unwrap();
    ok(&w.cmd("kcc-injector").arg("-i").arg(&a).output().unwrap());
    ok(&w.cmd("kcc").args(["inject", "-i"]).arg(&b).output().unwrap());
    let (wa, wb) = (fs::read_to_string(&a).unwrap(), fs::read_to_string(&b).unwrap());
    assert!(wa.contains("command: kcc-cache"), "{wa}");
    assert_eq!(wa, wb, "kcc inject and kcc-injector wrap alike");
    ok(&w.cmd("kcc").args(["inject", "-i", "-r"]).arg(&b).output().unwrap());
    assert_eq!(fs::read_to_string(&b).unwrap(), fixture, "kcc inject -r restores exactly");
}
