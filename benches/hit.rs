//! kcc's benchmark: whole-process wall times, reported as ratios measured
//! side by side in one run (these machines are shared and noisy, so only
//! ratios from one run mean anything). Runs are interleaved (a, b, c, a, b,
//! c, …) so drift in machine load hits every column alike; medians are
//! reported.
//!
//! Run: `cargo bench --bench hit` (or `.ci/bench`): the release build kcc
//! ships, statically linked on Linux by default (the start-up figures depend
//! on it: a dynamically linked Rust program pays ~0.4x `/bin/true` in the
//! loader alone; build/static_link.rs). Prints markdown
//! tables the README carries, and a mermaid chart.
//!
//! Sections:
//! 1. start-up: a file-backend hit and a keyring-backend hit (private
//!    gnome-keyring) against starting `/bin/true`;
//! 2. miss overhead: kcc wrapping an instant plugin vs the plugin alone;
//! 3. store scaling: a hit with 1, 100, 1,000 and 10,000 entries;
//! 4. the real `aws eks get-token` alone vs a hit wrapping it;
//! 5. `kubectl get --raw /version` against the local TLS API server: a
//!    plain aws user, the same user through kcc (hit), an instant plugin;
//! 6. concurrency: 64 simultaneous cold callers for one key;
//! 7. identity (issue 18): file hits of an EKS-like (`aws`, profile in the
//!    shared files) and a GKE-like (`gke-gcloud-auth-plugin`, a gcloud
//!    configuration) entry with the built-in identity sources on and off.
//!
//! `KCC_BENCH_RUNS` sets the start-up sample count (default 300);
//! `KCC_BENCH_SECTIONS=1,3` runs only those sections.

#[path = "../tests/util.rs"]
mod util;

#[path = "../tests/apiserver.rs"]
mod apiserver;

#[path = "../tests/kube.rs"]
mod kube;

#[allow(dead_code)]
#[path = "../tests/secret_service.rs"]
mod secret_service;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use apiserver::{AWS_CLUSTER, ApiServer, aws_env};
use kube::{ExecUser, find_on_path, write_kubeconfig};
use secret_service::SecretService;
use util::{World, credential, in_secs, kcc_exe};

/// Runs `cmd` (stdout and stderr discarded) and returns its wall time.
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

/// Times every case `runs` times, interleaved; returns the medians in order.
fn interleaved(runs: usize, cases: &mut [&mut dyn FnMut() -> Duration]) -> Vec<Duration> {
    let mut samples = vec![Vec::with_capacity(runs); cases.len()];
    for _ in 0..runs {
        for (case, out) in cases.iter_mut().zip(samples.iter_mut()) {
            out.push(case());
        }
    }
    samples.into_iter().map(median).collect()
}

/// A 1.4 KB bearer token, the size of an EKS token.
fn eks_sized_token(tag: &str) -> String {
    format!("k8s-aws-v1.{tag}{}", "a".repeat(1400))
}

/// Whether `path` is a dynamically linked ELF (it names an interpreter).
fn linkage(path: &std::path::Path) -> &'static str {
    let bytes = std::fs::read(path).unwrap_or_default();
    if bytes.windows(12).any(|w| w == b"/lib64/ld-li" || w == b"/lib/ld-linu") {
        "dynamically linked"
    } else {
        "statically linked"
    }
}

struct Report {
    markdown: String,
    chart: Vec<(String, f64)>,
}

impl Report {
    fn line(&mut self, text: String) {
        println!("{text}");
        self.markdown.push_str(&text);
        self.markdown.push('\n');
    }
}

fn main() {
    let runs: usize = std::env::var("KCC_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let mut report = Report { markdown: String::new(), chart: Vec::new() };
    report.line(format!("kcc binary: {} ({})", kcc_exe().display(), linkage(&kcc_exe())));
    report.line(String::new());
    // KCC_BENCH_SECTIONS=1,5 runs only those sections (for development).
    let only: Option<Vec<u32>> =
        std::env::var("KCC_BENCH_SECTIONS").ok().map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect());
    let run = |n: u32| only.as_ref().is_none_or(|o| o.contains(&n));
    if run(1) {
        startup(&mut report, runs);
    }
    if run(2) {
        miss_overhead(&mut report, (runs / 3).max(1));
    }
    if run(3) {
        scaling(&mut report, (runs / 3).max(1));
    }
    if run(4) {
        real_aws(&mut report);
    }
    if run(5) {
        kubectl(&mut report);
    }
    if run(6) {
        concurrency(&mut report);
    }
    if run(7) {
        identity(&mut report, runs);
    }

    let mut chart = String::from(
        "```mermaid\nxychart-beta\n    title \"Cost of one credential, as a multiple of starting /bin/true (log10)\"\n    x-axis [",
    );
    let labels: Vec<String> = report.chart.iter().map(|(l, _)| format!("\"{l}\"")).collect();
    let _ = write!(chart, "{}]\n    y-axis \"log10(ratio to /bin/true)\"\n    bar [", labels.join(", "));
    let values: Vec<String> = report.chart.iter().map(|(_, v)| format!("{:.2}", v.log10())).collect();
    let _ = write!(chart, "{}]\n```", values.join(", "));
    println!("\n{chart}");
    report.markdown.push_str(&chart);
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-hit.md");
    if std::fs::write(&out, &report.markdown).is_ok() {
        println!("\n(written to {})", out.display());
    }
}

/// Makes another process the last client served (healing's per-key records), so the
/// next hit is judged as a new kubectl process's first request — what every
/// real kubectl call is. Without this, the benchmark process would be the
/// same parent on every call and healing would (rightly) see a client that
/// asks again.
fn forget_clients(w: &World) {
    fn walk(dir: &std::path::Path) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path);
            } else if path.extension().is_some_and(|e| e == "served") {
                // Another client's record, as a real kubectl finds it: the
                // file exists and kcc overwrites it.
                // Overwritten in place like kcc does: truncating instead
                // makes ext4 flush the file on close (auto_da_alloc), and
                // the next timed write would wait for that writeback.
                if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) {
                    let record = format!("{:<95}\n", "k2 12345 67890 0000000000000000 0 0 0 g");
                    #[cfg(unix)]
                    let _ = std::os::unix::fs::FileExt::write_all_at(&file, record.as_bytes(), 0);
                    #[cfg(windows)]
                    let _ = std::os::windows::fs::FileExt::seek_write(&file, record.as_bytes(), 0);
                }
            }
        }
    }
    walk(w.dir.path());
}

/// Section 1: what a hit costs against starting a process at all.
fn startup(report: &mut Report, runs: usize) {
    let w = World::sharing_the_real_keyrings();
    let expiry = in_secs(7200);
    w.plugin("plugin", &credential("v1beta1", &eks_sized_token("file"), Some(&expiry)), 0.0);
    let hit = |w: &World, extra: &[(&str, &str)]| {
        let mut c = w.cmd_direct("kcc-cache");
        c.arg("plugin").env("KUBE_CREDENTIAL_CACHE_BACKEND", "file").envs(extra.iter().copied());
        c
    };
    time(&mut hit(&w, &[])); // the miss that fills the cache
    assert_eq!(w.runs("plugin"), 1);

    // The kernel keyring (the persistent keyring of the uid running the bench).
    let nw = World::sharing_the_real_keyrings();
    let kernel_hit = |nw: &World| {
        let mut c = nw.cmd_direct("kcc-cache");
        c.arg("plugin").env("KUBE_CREDENTIAL_CACHE_BACKEND", "kernel");
        c
    };
    nw.plugin("plugin", &credential("v1beta1", &eks_sized_token("kernel"), Some(&expiry)), 0.0);
    let kernel = kernel_hit(&nw).output().is_ok_and(|o| o.status.success());
    if kernel {
        assert_eq!(nw.runs("plugin"), 1);
    }

    let mut kw = World::sharing_the_real_keyrings();
    let keyring = SecretService::start(&mut kw);
    let keyring_hit = |kw: &World| {
        let mut c = kw.cmd_direct("kcc-cache");
        c.arg("plugin").env("KUBE_CREDENTIAL_CACHE_BACKEND", "keyring");
        c
    };
    if keyring.is_some() {
        kw.plugin("plugin", &credential("v1beta1", &eks_sized_token("keyring"), Some(&expiry)), 0.0);
        time(&mut keyring_hit(&kw));
        assert_eq!(kw.runs("plugin"), 1);
    }

    let true_cmd = || {
        let mut c = w.cmd_direct("/bin/true");
        c.env("KUBE_CREDENTIAL_CACHE_BACKEND", "file");
        c
    };
    let heal_off = [("KUBE_CREDENTIAL_CACHE_HEAL", "0")];
    // A 2 h credential is outside a 5 m window: refresh ahead has nothing to do.
    let ahead_outside = [("KUBE_CREDENTIAL_CACHE_HEAL", "0"), ("KUBE_CREDENTIAL_CACHE_REFRESH_AHEAD", "5m")];
    let mut cases: Vec<Box<dyn FnMut() -> Duration>> = vec![
        Box::new(|| time(&mut true_cmd())),
        Box::new(|| {
            forget_clients(&w);
            time(&mut hit(&w, &[]))
        }),
        Box::new(|| time(&mut hit(&w, &heal_off))),
        Box::new(|| time(&mut hit(&w, &ahead_outside))),
        Box::new(|| {
            if !kernel {
                return Duration::ZERO;
            }
            forget_clients(&nw);
            time(&mut kernel_hit(&nw))
        }),
    ];
    if keyring.is_some() {
        cases.push(Box::new(|| {
            forget_clients(&kw);
            time(&mut keyring_hit(&kw))
        }));
    }
    let mut refs: Vec<&mut dyn FnMut() -> Duration> = cases.iter_mut().map(|c| c.as_mut() as _).collect();
    let medians = interleaved(runs, &mut refs);
    drop(refs);
    drop(cases);
    assert_eq!(w.runs("plugin"), 1, "every timed call was a hit");
    let base = medians[0];
    let ratio = |i: usize| ms(medians[i]) / ms(base);
    report.line(format!("### 1. Start-up (median of {runs} interleaved runs)\n"));
    report.line("| case | ms | ratio to /bin/true | goal |".into());
    report.line("|---|---|---|---|".into());
    report.line(format!("| /bin/true | {:.3} | 1.00x | |", ms(base)));
    report.line(format!(
        "| file-backend hit (1.4 KB token), default settings: a new client, so healing records it | {:.3} | {:.2}x | ≤ 1.1x |",
        ms(medians[1]),
        ratio(1)
    ));
    report.line(format!("| the same hit with `HEAL=0` | {:.3} | {:.2}x | |", ms(medians[2]), ratio(2)));
    report.line(format!(
        "| `HEAL=0`, `REFRESH_AHEAD=5m`, credential outside the window | {:.3} | {:.2}x | |",
        ms(medians[3]),
        ratio(3)
    ));
    report.chart.push(("file hit".into(), ratio(1)));
    if kernel {
        report.line(format!(
            "| kernel-keyring hit (persistent keyring), default settings: {:.2}x the file hit | {:.3} | {:.2}x | ≤ 1.1x the file hit |",
            ms(medians[4]) / ms(medians[1]),
            ms(medians[4]),
            ratio(4)
        ));
        report.chart.push(("kernel hit".into(), ratio(4)));
        // Exactly this world's key: `clear --all` would also remove every
        // other kcc key in the real persistent keyring (a user's own).
        let keys: Vec<String> =
            nw.index_json()["entries"].as_object().map(|rows| rows.keys().cloned().collect()).unwrap_or_default();
        for key in keys {
            let _ = nw
                .cmd_direct("kcc")
                .args(["clear", "--key", &key])
                .env("KUBE_CREDENTIAL_CACHE_BACKEND", "kernel")
                .output();
        }
    } else {
        report.line("| kernel-keyring hit | skipped: the kernel keyring is not usable here | | |".into());
    }
    if keyring.is_some() {
        report.line(format!(
            "| keyring-backend hit (private gnome-keyring), default settings | {:.3} | {:.2}x | ≤ 4x |",
            ms(medians[5]),
            ratio(5)
        ));
        report.chart.push(("keyring hit".into(), ratio(5)));
    } else {
        report.line("| keyring-backend hit | skipped: no Secret Service (see above) | | |".into());
    }
    report.line(String::new());
}

/// Section 2: what kcc adds to a miss.
fn miss_overhead(report: &mut Report, runs: usize) {
    let w = World::sharing_the_real_keyrings();
    let plugin = w.plugin("plugin", &credential("v1beta1", &eks_sized_token("miss"), Some(&in_secs(7200))), 0.0);
    let store = w.path("miss-store/cache.json");
    let medians = interleaved(
        runs,
        &mut [&mut || time(&mut w.cmd_direct(&plugin)), &mut || {
            let _ = std::fs::remove_file(&store);
            let mut c = w.cmd_direct("kcc-cache");
            c.arg("plugin").env("KUBE_CREDENTIAL_CACHE_BACKEND", "file").env("KUBE_CREDENTIAL_CACHE_FILE", &store);
            time(&mut c)
        }],
    );
    assert_eq!(w.runs("plugin"), 2 * runs, "every kcc call was a miss");
    report.line(format!("### 2. Miss overhead (median of {runs} interleaved runs)\n"));
    report.line("| case | ms | ratio |".into());
    report.line("|---|---|---|".into());
    report.line(format!("| instant plugin alone (sh + cat) | {:.3} | 1.00x |", ms(medians[0])));
    report.line(format!(
        "| kcc-cache miss wrapping it (runs it, validates, fsyncs the store) | {:.3} | {:.2}x |",
        ms(medians[1]),
        ms(medians[1]) / ms(medians[0])
    ));
    report.line(String::new());
}

/// Section 3: a hit's cost as the store grows (≈1.4 KB tokens, the hit's
/// entry in the middle of the file).
fn scaling(report: &mut Report, runs: usize) {
    let w = World::sharing_the_real_keyrings();
    w.plugin("plugin", &credential("v1beta1", &eks_sized_token("scale"), Some(&in_secs(7200))), 0.0);
    let sizes = [1usize, 100, 1_000, 10_000];
    let store_of = |n: usize| w.path(&format!("scale-{n}/cache.json"));
    let hit = |n: usize| {
        // The benchmark is one client calling again and again: healing off.
        let mut c = w.cmd_direct("kcc-cache");
        c.arg("plugin")
            .env("KUBE_CREDENTIAL_CACHE_HEAL", "0")
            .env("KUBE_CREDENTIAL_CACHE_BACKEND", "file")
            .env("KUBE_CREDENTIAL_CACHE_FILE", store_of(n))
            .env("KUBE_CREDENTIAL_CACHE_USER", "m-user");
        c
    };
    for n in sizes {
        time(&mut hit(n)); // the real entry
        let text = std::fs::read_to_string(store_of(n)).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut entries: BTreeMap<String, String> =
            parsed["credentials"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
        let (real_key, real_value) = entries.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
        for i in 1..n {
            // Half the fillers sort before the real key ("a-…" < "m-user"), half after.
            let user = if i % 2 == 0 { format!("a-{i:05}") } else { format!("z-{i:05}") };
            let key = real_key.replacen("user=\"m-user\"", &format!("user=\"{user}\""), 1);
            assert_ne!(key, real_key);
            entries.insert(key, real_value.replace("k8s-aws-v1.scale", &format!("k8s-aws-v1.{i:05}")));
        }
        let mut file = String::from("{\"credentials\":{\n");
        let lines: Vec<String> =
            entries.iter().map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap())).collect();
        file.push_str(&lines.join(",\n"));
        file.push_str("\n}}\n");
        std::fs::write(store_of(n), file).unwrap();
    }
    let mut cases: Vec<Box<dyn FnMut() -> Duration>> =
        sizes.iter().map(|&n| Box::new(move || time(&mut hit(n))) as Box<dyn FnMut() -> Duration>).collect();
    let mut refs: Vec<&mut dyn FnMut() -> Duration> = cases.iter_mut().map(|c| c.as_mut() as _).collect();
    let medians = interleaved(runs, &mut refs);
    assert_eq!(w.runs("plugin"), sizes.len(), "every timed call was a hit");
    report.line(format!("### 3. Store scaling (median of {runs} interleaved runs)\n"));
    report.line("| entries in the file store | file size | hit ms | ratio to 1 entry | goal |".into());
    report.line("|---|---|---|---|---|".into());
    for (i, n) in sizes.iter().enumerate() {
        let size = std::fs::metadata(store_of(*n)).unwrap().len();
        let goal = match n {
            100 => "≤ 1.2x",
            1_000 => "≤ 1.5x",
            _ => "",
        };
        report.line(format!(
            "| {n} | {:.1} KB | {:.3} | {:.2}x | {goal} |",
            size as f64 / 1024.0,
            ms(medians[i]),
            ms(medians[i]) / ms(medians[0])
        ));
    }
    report.line(String::new());
}

const GET_TOKEN: [&str; 6] = ["eks", "get-token", "--cluster-name", AWS_CLUSTER, "--region", "us-east-1"];

/// Section 4: the real plugin against a hit that wraps it.
fn real_aws(report: &mut Report) {
    report.line("### 4. The real `aws eks get-token` (median of 7 runs; the others of 100 interleaved)\n".into());
    let Some(aws) = find_on_path("aws") else {
        report.line("skipped: `aws` is not installed (pip install awscli)\n".into());
        return;
    };
    let w = World::sharing_the_real_keyrings();
    let direct = || {
        let mut c = w.cmd_direct(&aws);
        c.args(GET_TOKEN).envs(aws_env(&w));
        c
    };
    let through = || {
        let mut c = w.cmd_direct("kcc-cache");
        c.arg(&aws)
            .args(GET_TOKEN)
            .envs(aws_env(&w))
            .env("KUBE_CREDENTIAL_CACHE_BACKEND", "file")
            .env("KUBE_CREDENTIAL_CACHE_HEAL", "0");
        c
    };
    time(&mut through()); // fill
    // aws takes ~0.6 s a run: 7 of those, and 100 interleaved runs of the cheap pair.
    let aws_median = interleaved(7, &mut [&mut || time(&mut direct())])[0];
    let pair = interleaved(100, &mut [&mut || time(&mut w.cmd_direct("/bin/true")), &mut || time(&mut through())]);
    let medians = [pair[0], aws_median, pair[1]];
    report.line("| case | ms | ratio to /bin/true |".into());
    report.line("|---|---|---|".into());
    report.line(format!("| /bin/true | {:.3} | 1.00x |", ms(medians[0])));
    let aws_ratio = ms(medians[1]) / ms(medians[0]);
    report.line(format!("| aws eks get-token (real, offline) | {:.1} | {aws_ratio:.0}x |", ms(medians[1])));
    report.line(format!(
        "| kcc-cache hit wrapping it | {:.3} | {:.2}x (aws alone is {:.0}x slower) |",
        ms(medians[2]),
        ms(medians[2]) / ms(medians[0]),
        ms(medians[1]) / ms(medians[2])
    ));
    report.chart.push(("aws eks get-token".into(), aws_ratio));
    report.line(String::new());
}

/// Section 5: what the user feels: kubectl calls against a TLS API server.
fn kubectl(report: &mut Report) {
    let runs = 15;
    report.line(format!(
        "### 5. `kubectl get --raw /version`, local TLS API server (median of {runs} interleaved runs)\n"
    ));
    let Some(aws) = find_on_path("aws") else {
        report.line("skipped: `aws` is not installed (pip install awscli)\n".into());
        return;
    };
    let w = World::sharing_the_real_keyrings();
    let server = ApiServer::start(&w);
    let with_aws_env = |mut user: ExecUser| {
        for (name, value) in aws_env(&w) {
            user = user.env(name, value);
        }
        user
    };
    let plain = w.path("plain.kubeconfig");
    write_kubeconfig(
        &plain,
        &server,
        &with_aws_env(ExecUser::new(aws.display().to_string()).api("v1beta1").args(GET_TOKEN)),
    );
    let cached = w.path("cached.kubeconfig");
    let cached_user = ExecUser::new("kcc-cache")
        .api("v1beta1")
        .args([aws.display().to_string()])
        .args(GET_TOKEN)
        .env("KUBE_CREDENTIAL_CACHE_USER", "kcc-test-user")
        .env("KUBE_CREDENTIAL_CACHE_BACKEND", "file");
    write_kubeconfig(&cached, &server, &with_aws_env(cached_user));
    // The floor prints a real aws token too, so the server's (Python,
    // SigV4-recomputing) token check costs the same in every column.
    let instant = w.path("instant.kubeconfig");
    let mut fetch = w.cmd_direct(&aws);
    fetch.args(GET_TOKEN).envs(aws_env(&w));
    let aws_credential = String::from_utf8(fetch.output().expect("run aws").stdout).unwrap();
    assert!(aws_credential.contains("k8s-aws-v1."), "aws printed no token: {aws_credential}");
    w.plugin("instant", aws_credential.trim(), 0.0);
    write_kubeconfig(&instant, &server, &ExecUser::new("instant").api("v1beta1"));
    let get = |kubeconfig: &std::path::Path| {
        let mut c = w.cmd_direct(kube::kubectl());
        c.args(["get", "--raw", "/version", "--kubeconfig"]).arg(kubeconfig);
        time(&mut c)
    };
    get(&cached); // fill the cache
    let medians = interleaved(runs, &mut [&mut || get(&instant), &mut || get(&cached), &mut || get(&plain)]);
    let floor = medians[0];
    report.line("| kubeconfig user | ms | ratio to the instant plugin | goal |".into());
    report.line("|---|---|---|---|".into());
    report.line(format!("| instant plugin (the floor) | {:.1} | 1.00x | |", ms(floor)));
    report.line(format!(
        "| aws eks get-token through kcc (hit) | {:.1} | {:.3}x | ≤ 1.02x |",
        ms(medians[1]),
        ms(medians[1]) / ms(floor)
    ));
    report.line(format!("| plain aws eks get-token | {:.1} | {:.2}x | |", ms(medians[2]), ms(medians[2]) / ms(floor)));
    report.line(String::new());
}

/// Section 6: a thundering herd of cold callers.
fn concurrency(report: &mut Report) {
    let callers = 64;
    let delay = 0.5;
    let w = Arc::new(World::sharing_the_real_keyrings());
    w.plugin("slow", &credential("v1", &eks_sized_token("herd"), Some(&in_secs(7200))), delay);
    let barrier = Arc::new(Barrier::new(callers + 1));
    let threads: Vec<_> = (0..callers)
        .map(|_| {
            let (w, barrier) = (Arc::clone(&w), Arc::clone(&barrier));
            std::thread::spawn(move || {
                // All 64 share the benchmark as parent; real callers are
                // separate processes, so healing is off here.
                let mut c = w.cmd_direct("kcc-cache");
                c.env("KUBE_CREDENTIAL_CACHE_HEAL", "0").arg("slow").env("KUBE_CREDENTIAL_CACHE_BACKEND", "file");
                barrier.wait();
                time(&mut c)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let slowest = threads.into_iter().map(|t| t.join().expect("caller")).max().unwrap();
    let wall = start.elapsed();
    report.line(format!("### 6. Concurrency: {callers} simultaneous cold callers, one key, a {delay} s plugin\n"));
    report.line("| wall time until all served | slowest caller | plugin runs |".into());
    report.line("|---|---|---|".into());
    report.line(format!(
        "| {:.0} ms ({:.2}x the plugin) | {:.0} ms | {} |",
        ms(wall),
        wall.as_secs_f64() / f64::from(delay),
        ms(slowest),
        w.runs("slow")
    ));
    report.line(String::new());
}

/// Section 7: what checking the identity costs a hit (issue 18). The same
/// binary with `KUBE_CREDENTIAL_CACHE_IDENTITY=off` is the "before": it
/// records nothing and finds no record, so its hit path is the old one but
/// for one `rfind` and a plan that returns at once.
fn identity(report: &mut Report, runs: usize) {
    // Like every timed world: a private keyring namespace would add its
    // fork and setns to each command (file backend only: no kernel key).
    let w = World::sharing_the_real_keyrings();
    let expiry = in_secs(7200);
    w.plugin("aws", &credential("v1beta1", &eks_sized_token("eks"), Some(&expiry)), 0.0);
    w.plugin("gke-gcloud-auth-plugin", &credential("v1beta1", &eks_sized_token("gke"), Some(&expiry)), 0.0);
    w.plugin("plugin", &credential("v1beta1", &eks_sized_token("plain"), Some(&expiry)), 0.0);
    let aws = w.path("aws-files");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("config"),
        "[default]\nregion = eu-west-1\n\n[profile prod]\nregion = eu-west-1\noutput = json\n",
    )
    .unwrap();
    std::fs::write(
        aws.join("credentials"),
        "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = x\n\n[prod]\naws_access_key_id = AKIAPROD\naws_secret_access_key = y\n",
    )
    .unwrap();
    let gcloud = w.path("gcloud");
    std::fs::create_dir_all(gcloud.join("configurations")).unwrap();
    std::fs::write(gcloud.join("active_config"), "alice").unwrap();
    std::fs::write(
        gcloud.join("configurations/config_alice"),
        "[core]\naccount = alice@example.com\nproject = demo\n\n[compute]\nregion = europe-west1\n",
    )
    .unwrap();
    let env: Vec<(&str, String)> = vec![
        ("KUBE_CREDENTIAL_CACHE_BACKEND", "file".into()),
        ("AWS_PROFILE", "prod".into()),
        ("AWS_CONFIG_FILE", aws.join("config").display().to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", aws.join("credentials").display().to_string()),
        ("CLOUDSDK_CONFIG", gcloud.display().to_string()),
    ];
    let hit = |plugin: &str, args: &[&str], on: bool| {
        let mut c = w.cmd_direct("kcc-cache");
        c.arg(plugin).args(args).envs(env.iter().map(|(k, v)| (*k, v)));
        if !on {
            c.env("KUBE_CREDENTIAL_CACHE_IDENTITY", "off");
        }
        c
    };
    let eks = ["eks", "get-token", "--cluster-name", "prod"];
    let eks_off = ["eks", "get-token", "--cluster-name", "prod-off"];
    let gke: [&str; 0] = [];
    let gke_off = ["--off"];
    for (plugin, args, on) in [
        ("plugin", &[][..], true),
        ("aws", &eks[..], true),
        ("aws", &eks_off[..], false),
        ("gke-gcloud-auth-plugin", &gke[..], true),
        ("gke-gcloud-auth-plugin", &gke_off[..], false),
    ] {
        time(&mut hit(plugin, args, on)); // the miss that fills the cache
    }
    let mut cases: Vec<Box<dyn FnMut() -> Duration>> = vec![
        Box::new(|| time(&mut w.cmd_direct("/bin/true"))),
        Box::new(|| {
            forget_clients(&w);
            time(&mut hit("plugin", &[], true))
        }),
        Box::new(|| {
            forget_clients(&w);
            time(&mut hit("aws", &eks_off, false))
        }),
        Box::new(|| {
            forget_clients(&w);
            time(&mut hit("aws", &eks, true))
        }),
        Box::new(|| {
            forget_clients(&w);
            time(&mut hit("gke-gcloud-auth-plugin", &gke_off, false))
        }),
        Box::new(|| {
            forget_clients(&w);
            time(&mut hit("gke-gcloud-auth-plugin", &gke, true))
        }),
    ];
    let mut refs: Vec<&mut dyn FnMut() -> Duration> = cases.iter_mut().map(|c| c.as_mut() as _).collect();
    let medians = interleaved(runs, &mut refs);
    drop(refs);
    drop(cases);
    assert_eq!(w.runs("aws"), 2, "every timed EKS call was a hit");
    assert_eq!(w.runs("gke-gcloud-auth-plugin"), 2, "every timed GKE call was a hit");
    let base = medians[0];
    let ratio = |i: usize| ms(medians[i]) / ms(base);
    report.line(format!(
        "### 7. Identity checks on the hit path (median of {runs} interleaved runs, default settings)\n"
    ));
    report.line("| case | ms | ratio to /bin/true | goal |".into());
    report.line("|---|---|---|---|".into());
    report.line(format!("| /bin/true | {:.3} | 1.00x | |", ms(base)));
    report.line(format!(
        "| file hit, a plugin with no identity source | {:.3} | {:.2}x | ≤ 1.1x |",
        ms(medians[1]),
        ratio(1)
    ));
    let rows = [
        (2, "EKS-like file hit (`aws`), `IDENTITY=off` (before)", ""),
        (3, "EKS-like file hit, identity on: 2 stats + 1 SHA-256", "≤ 1.1x"),
        (4, "GKE-like file hit (`gke-gcloud-auth-plugin`), `IDENTITY=off` (before)", ""),
        (5, "GKE-like file hit, identity on: 2 stats + 1 SHA-256", "≤ 1.1x"),
    ];
    for (i, what, goal) in rows {
        report.line(format!("| {what} | {:.3} | {:.2}x | {goal} |", ms(medians[i]), ratio(i)));
    }
    report.line(format!(
        "\nidentity on / off: EKS {:.3}x, GKE {:.3}x\n",
        ms(medians[3]) / ms(medians[2]),
        ms(medians[5]) / ms(medians[4])
    ));
}
