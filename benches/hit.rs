//! The cache-hit benchmark: whole-process wall time of `kcc-cache` serving a
//! cached credential, as ratios against starting `/bin/true` and against the
//! real `aws eks get-token`, all measured side by side in one run (these
//! machines are shared and noisy, so only ratios from one run mean anything).
//!
//! Run: `cargo bench --bench hit` (builds the release binary). Prints a
//! markdown table the README carries. Runs are interleaved (true, hit, true,
//! hit, …) so drift in machine load hits every column alike; the median is
//! reported.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("run");
    let took = start.elapsed();
    assert!(status.success(), "{cmd:?} failed");
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let kcc = PathBuf::from(env!("CARGO_BIN_EXE_kcc"));
    let dir = std::env::temp_dir().join(format!("kcc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cache_bin = dir.join("kcc-cache");
    let _ = std::fs::remove_file(&cache_bin);
    std::os::unix::fs::symlink(&kcc, &cache_bin).unwrap();
    let store = dir.join("store/cache.json");
    let plugin = dir.join("plugin.sh");
    let expiry = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2);
    let expiry = jiff::Timestamp::from_second(expiry.as_second()).unwrap();
    let token = format!("k8s-aws-v1.{}", "a".repeat(1400));
    std::fs::write(
        &plugin,
        format!("#!/bin/sh\necho '{{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"spec\":{{}},\"status\":{{\"token\":\"{token}\",\"expirationTimestamp\":\"{expiry}\"}}}}'\n"),
    )
    .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&plugin).status().unwrap();

    let hit = |extra: &[(&str, &str)]| {
        let mut c = Command::new(&cache_bin);
        c.arg(&plugin).env("KUBE_CREDENTIAL_CACHE_FILE", &store).env("KUBE_CREDENTIAL_CACHE_BACKEND", "file");
        for (k, v) in extra {
            c.env(k, v);
        }
        c
    };
    time(&mut hit(&[])); // the miss that fills the cache

    // Healing (src/heal.rs) remembers the last client per key; every kubectl
    // call is a new client, so a realistic hit finds someone else's record
    // and writes its own. The bench process is one parent for every run, so
    // the record is emptied (untimed) before each heal-on hit to get that case.
    let flight = store.with_file_name("cache.flight");
    let forget_clients = || {
        for e in std::fs::read_dir(&flight).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "served") {
                std::fs::write(e.path(), b"").unwrap();
            }
        }
    };
    let heal_off = [("KUBE_CREDENTIAL_CACHE_HEAL", "0")];
    let ahead_outside = [("KUBE_CREDENTIAL_CACHE_HEAL", "0"), ("KUBE_CREDENTIAL_CACHE_REFRESH_AHEAD", "5m")];
    let runs = 300;
    let (mut t_true, mut t_hit, mut t_plugin) = (Vec::new(), Vec::new(), Vec::new());
    let (mut t_off, mut t_ahead) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        t_true.push(time(&mut Command::new("/bin/true")));
        forget_clients();
        t_hit.push(time(&mut hit(&[])));
        t_off.push(time(&mut hit(&heal_off)));
        t_ahead.push(time(&mut hit(&ahead_outside)));
        t_plugin.push(time(&mut Command::new(&plugin)));
    }
    let (m_true, m_hit, m_plugin) = (median(t_true), median(t_hit), median(t_plugin));
    let (m_off, m_ahead) = (median(t_off), median(t_ahead));

    println!("| case (median of {runs} interleaved runs) | ms | ratio to /bin/true |");
    println!("|---|---|---|");
    println!("| /bin/true | {:.3} | 1.00x |", ms(m_true));
    println!(
        "| kcc-cache file-backend hit (1.4 KB token), defaults: healing records a new client | {:.3} | {:.2}x |",
        ms(m_hit),
        ms(m_hit) / ms(m_true)
    );
    println!("| the same hit with KUBE_CREDENTIAL_CACHE_HEAL=0 | {:.3} | {:.2}x |", ms(m_off), ms(m_off) / ms(m_true));
    println!(
        "| HEAL=0, REFRESH_AHEAD=5m, credential outside the window | {:.3} | {:.2}x |",
        ms(m_ahead),
        ms(m_ahead) / ms(m_true)
    );
    println!("| the instant fake plugin alone (sh + echo) | {:.3} | {:.2}x |", ms(m_plugin), ms(m_plugin) / ms(m_true));

    // The real plugin, where installed: `aws eks get-token` with fake static keys works offline.
    if let Some(aws) = which("aws") {
        let aws_env = |c: &mut Command| {
            c.env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
                .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("AWS_CONFIG_FILE", dir.join("none"))
                .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("none"));
        };
        let aws_args = ["eks", "get-token", "--cluster-name", "bench", "--region", "us-east-1"];
        let mut through = Command::new(&cache_bin);
        through.arg(&aws).args(aws_args).env("KUBE_CREDENTIAL_CACHE_FILE", &store);
        aws_env(&mut through);
        time(&mut through); // fill
        let (mut t_aws, mut t_aws_hit, mut t_true2) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..7 {
            let mut direct = Command::new(&aws);
            direct.args(aws_args);
            aws_env(&mut direct);
            t_aws.push(time(&mut direct));
            forget_clients();
            t_aws_hit.push(time(&mut through));
            t_true2.push(time(&mut Command::new("/bin/true")));
        }
        let (m_aws, m_aws_hit, m_true2) = (median(t_aws), median(t_aws_hit), median(t_true2));
        println!("| aws eks get-token (real, offline) | {:.1} | {:.0}x |", ms(m_aws), ms(m_aws) / ms(m_true2));
        println!(
            "| kcc-cache hit wrapping aws eks get-token | {:.3} | {:.2}x (aws is {:.0}x slower) |",
            ms(m_aws_hit),
            ms(m_aws_hit) / ms(m_true2),
            ms(m_aws) / ms(m_aws_hit)
        );
    } else {
        println!("| aws eks get-token | not installed (pip install awscli) | - |");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p: &PathBuf| Path::new(p).is_file())
}
