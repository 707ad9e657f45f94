//! `kubectl kcc`: kcc as a kubectl plugin, installed the way krew lays it
//! out (`~/.krew/store/kcc/<version>/kcc`, `~/.krew/bin/kubectl-kcc` a
//! symlink to it, only `~/.krew/bin` on PATH) and run through the real
//! kubectl's plugin mechanism. `.ci/krew` does the same from the release
//! archive and the generated manifest.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value as Json;

use crate::apiserver::ApiServer;
use crate::kube::{self, ExecUser, write_kubeconfig};
use crate::util::*;

/// A krew-style install in the world: returns the PATH that holds only
/// `~/.krew/bin` (kubectl-kcc), a `kubectl` and the system's directories.
fn krew_install(w: &World) -> String {
    let store = w.home.join(".krew/store/kcc/v0.1.0");
    let bin = w.home.join(".krew/bin");
    let tools = w.path("tools");
    for d in [&store, &bin, &tools] {
        fs::create_dir_all(d).unwrap();
    }
    fs::copy(kcc_exe(), store.join("kcc")).unwrap();
    std::os::unix::fs::symlink(store.join("kcc"), bin.join("kubectl-kcc")).unwrap();
    std::os::unix::fs::symlink(kube::kubectl(), tools.join("kubectl")).unwrap();
    let path = format!("{}:{}:/usr/bin:/bin", bin.display(), tools.display());
    for dir in std::env::split_paths(&path) {
        assert!(
            !dir.join("kcc-cache").exists(),
            "{} has a kcc-cache: this test needs a PATH where krew's kubectl-kcc is the only kcc",
            dir.display()
        );
    }
    path
}

fn kubectl(w: &World, path: &str, args: &[&str]) -> Command {
    let mut cmd = w.cmd(kube::kubectl());
    cmd.env("PATH", path).args(args);
    cmd
}

fn view(w: &World, file: &Path) -> Json {
    let out = w.cmd(kube::kubectl()).args(["config", "view", "--raw", "-o", "json", "--kubeconfig"]).arg(file).output();
    serde_json::from_slice(ok(&out.unwrap()).as_bytes()).unwrap()
}

#[test]
fn kubectl_finds_kcc_as_a_plugin_and_runs_doctor_clear_and_help() {
    let w = World::new();
    let path = krew_install(&w);
    let list = ok(&kubectl(&w, &path, &["plugin", "list"]).output().unwrap());
    let link = w.home.join(".krew/bin/kubectl-kcc");
    assert!(list.contains(&link.display().to_string()), "kubectl plugin list: {list}");

    let help = ok(&kubectl(&w, &path, &["kcc", "--help"]).output().unwrap());
    assert!(help.contains("Usage: kubectl kcc"), "{help}");
    let doctor = kubectl(&w, &path, &["kcc", "doctor"]).output().unwrap();
    let text = stdout(&doctor);
    assert!(text.contains("kcc ") && text.contains("backend"), "kubectl kcc doctor: {text}{}", stderr(&doctor));
    assert!(doctor.status.code().is_some_and(|c| c <= 1), "{}", stderr(&doctor));
    ok(&kubectl(&w, &path, &["kcc", "clear", "--all"]).output().unwrap());
}

#[test]
fn krew_only_install_injects_kubectl_kcc_and_restores_exactly() {
    let w = World::new();
    let path = krew_install(&w);
    let server = ApiServer::start(&w);
    server.allow(SECRET);
    let plugin = w.plugin("plug", &credential("v1", SECRET, Some(&in_secs(3600))), 0.0);
    let file = w.home.join(".kube/config");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    write_kubeconfig(&file, &server, &ExecUser::new(plugin.display().to_string()).args(["--region", "eu"]));
    let before = view(&w, &file);

    ok(&kubectl(&w, &path, &["kcc", "inject", "-i", &file.display().to_string()]).output().unwrap());
    let exec = view(&w, &file)["users"][0]["user"]["exec"].clone();
    assert_eq!(exec["command"], "kubectl-kcc", "krew puts only kubectl-kcc on PATH: {exec}");
    assert_eq!(exec["args"], serde_json::json!(["cache", plugin.display().to_string(), "--region", "eu"]));

    for _ in 0..3 {
        let out = kubectl(&w, &path, &["get", "--raw", "/version", "--kubeconfig", &file.display().to_string()])
            .output()
            .unwrap();
        ok(&out);
    }
    assert_eq!(w.runs("plug"), 1, "kubectl-kcc cache ran the plugin once, then served hits");
    assert_eq!(server.accepted().len(), 3);

    // Doctor sees the wrapping as kcc's own.
    let doctor = kubectl(&w, &path, &["kcc", "doctor", "--json"]).output().unwrap();
    let report: Json = serde_json::from_str(&stdout(&doctor)).expect("doctor --json");
    let user = &report["kubeconfig"]["users"][0];
    assert_eq!(user["wrapped"], true, "{user}");
    assert_eq!(user["wrapper"], "kubectl-kcc cache", "{user}");

    // Injecting again changes nothing; restore gives the original back.
    let injected = fs::read(&file).unwrap();
    ok(&kubectl(&w, &path, &["kcc", "inject", "-i", &file.display().to_string()]).output().unwrap());
    assert_eq!(fs::read(&file).unwrap(), injected, "already injected");
    ok(&kubectl(&w, &path, &["kcc", "inject", "-r", "-i", &file.display().to_string()]).output().unwrap());
    assert_eq!(view(&w, &file), before);
}

#[test]
fn kubectl_kcc_with_kcc_cache_on_path_keeps_writing_kcc_cache() {
    let w = World::new();
    let path = format!("{}:{}", w.bin.display(), krew_install(&w));
    let file = w.path("config");
    let server = ApiServer::start(&w);
    write_kubeconfig(&file, &server, &ExecUser::new("aws").args(["eks", "get-token"]));
    ok(&kubectl(&w, &path, &["kcc", "inject", "-i", &file.display().to_string()]).output().unwrap());
    let exec = view(&w, &file)["users"][0]["user"]["exec"].clone();
    assert_eq!(exec["command"], "kcc-cache", "the Go kcc's command when kcc-cache is installed: {exec}");
    assert_eq!(exec["args"][0], "aws");
    // `-c` decides over both.
    ok(&kubectl(&w, &path, &["kcc", "inject", "-r", "-i", &file.display().to_string()]).output().unwrap());
    ok(&kubectl(&w, &path, &["kcc", "inject", "-c", "kubectl-kcc", "-i", &file.display().to_string()])
        .output()
        .unwrap());
    let exec = view(&w, &file)["users"][0]["user"]["exec"].clone();
    assert_eq!(exec["command"], "kubectl-kcc");
    assert_eq!(exec["args"], serde_json::json!(["cache", "aws", "eks", "get-token"]));
}

#[test]
fn doctor_names_kubectl_kcc_when_a_krew_injected_kubeconfig_cannot_find_it() {
    let w = World::new();
    let file = w.path("config");
    let server = ApiServer::start(&w);
    write_kubeconfig(&file, &server, &ExecUser::new("kubectl-kcc").args(["cache", "--", "aws", "eks"]));
    // A PATH without any kubectl-kcc (a machine with krew may have one).
    let path = format!("{}:/usr/bin:/bin", w.bin.display());
    let out = w.cmd("kcc").env("PATH", path).args(["doctor", "--json", "--kubeconfig"]).arg(&file).output().unwrap();
    let report: Json = serde_json::from_str(&stdout(&out)).expect("doctor --json");
    let user = &report["kubeconfig"]["users"][0];
    assert_eq!(
        (&user["wrapped"], &user["wrapper"], &user["plugin"]),
        (&Json::from(true), &Json::from("kubectl-kcc cache"), &Json::from("aws")),
        "{user}"
    );
    let finding = report["findings"].as_array().unwrap().iter().find(|f| f["code"] == "wrapper-not-found");
    let fix = finding.unwrap_or_else(|| panic!("no wrapper-not-found in {report}"))["fix"].as_str().unwrap();
    assert!(fix.contains("/kubectl-kcc\""), "{fix}");
}
