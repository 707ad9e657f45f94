//! A local TLS Kubernetes API server for end-to-end tests with real kubectl.
//!
//! [`ApiServer::start`] runs `tests/support/apiserver.py` (python3 standard
//! library plus the `openssl` CLI; the script's module docs explain the
//! protocol) with its state in the world's temp dir, waits until it listens
//! and hands back what a kubeconfig needs: [`ApiServer::url`] and
//! [`ApiServer::ca_data_base64`]. The server accepts a bearer token when it is
//! in its allow file ([`ApiServer::allow`] / [`ApiServer::revoke`]) or when it
//! is a real `aws eks get-token` token for [`AWS_ACCESS_KEY_ID`] signed with
//! [`AWS_SECRET_ACCESS_KEY`] for cluster [`AWS_CLUSTER`]. Every request is
//! logged (token hashed, never the token) and readable with
//! [`ApiServer::requests`], so a test counts what the server really saw.
//!
//! The process dies with the test: killed on drop, and it exits by itself
//! when its stdin (a pipe the wrapper holds) closes, when it is re-parented,
//! or after [`LIFETIME_SECS`].
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::util::World;

/// The access key id the server accepts `aws eks get-token` tokens for
/// (AWS's documented example key; it works offline).
pub const AWS_ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
/// The fake secret tests give `aws`; the server verifies signatures with it.
pub const AWS_SECRET_ACCESS_KEY: &str = "kcc-test-fake-aws-secret-9d2e";
/// The EKS cluster name (`--cluster-name`, signed as `x-k8s-aws-id`).
pub const AWS_CLUSTER: &str = "test";
/// Longest a server may live, whatever happens to the test.
pub const LIFETIME_SECS: u32 = 300;

/// The environment `aws eks get-token` needs offline to sign tokens this
/// server accepts: the static fake keys and no config files or instance
/// metadata from outside the world.
pub fn aws_env(w: &World) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", AWS_ACCESS_KEY_ID.into()),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET_ACCESS_KEY.into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_CONFIG_FILE", w.path("aws/config").display().to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", w.path("aws/credentials").display().to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/apiserver.py");
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A certificate and its key made by a test with the openssl CLI.
#[derive(Debug, Clone)]
pub struct TestCert {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// How [`TestCert::make`] makes a certificate.
#[derive(Debug, Clone, Copy)]
pub struct CertSpec<'a> {
    /// `subjectAltName`, e.g. `IP:127.0.0.1`.
    pub san: &'a str,
    /// `basicConstraints=critical,CA:TRUE` (a self-signed CA).
    pub ca: bool,
    /// `extendedKeyUsage`, if any (e.g. `clientAuth`).
    pub eku: Option<&'a str>,
    /// Valid only in 2020 (long expired) instead of from now for two days.
    pub expired: bool,
}

impl TestCert {
    /// A self-signed EC P-256 certificate in `dir` named `name`.
    pub fn make(dir: &std::path::Path, name: &str, spec: CertSpec<'_>) -> TestCert {
        fs::create_dir_all(dir).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap_or_else(|e| {
                panic!(
                    "cannot run openssl ({e}); the TLS tests make their certificates with it (apt-get install openssl)"
                )
            });
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let (cert, key, ext) = (format!("{name}.crt"), format!("{name}.key"), format!("{name}.ext"));
        let mut lines = vec![
            format!("basicConstraints=critical,CA:{}", if spec.ca { "TRUE" } else { "FALSE" }),
            format!("subjectAltName={}", spec.san),
        ];
        if spec.ca {
            lines.push("keyUsage=critical,keyCertSign,cRLSign,digitalSignature".into());
        }
        if let Some(eku) = spec.eku {
            lines.push(format!("extendedKeyUsage={eku}"));
        }
        fs::write(dir.join(&ext), lines.join("\n") + "\n").unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let subj = format!("/CN={name}");
        if spec.expired {
            // `openssl req` cannot date a certificate in the past; `openssl ca` can.
            let csr = format!("{name}.csr");
            run(&[&["req", "-new"][..], &ec, &["-keyout", &key, "-out", &csr, "-subj", &subj]].concat());
            let db = format!("{name}.index");
            fs::write(dir.join(&db), "").unwrap();
            fs::write(dir.join(format!("{name}.serial")), "01\n").unwrap();
            let conf = format!("{name}.cnf");
            fs::write(
                dir.join(&conf),
                format!("[ca]\ndefault_ca = d\n[d]\ndatabase = {db}\nnew_certs_dir = .\nserial = {name}.serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n"),
            )
            .unwrap();
            run(&[
                "ca",
                "-batch",
                "-selfsign",
                "-notext",
                "-config",
                &conf,
                "-keyfile",
                &key,
                "-in",
                &csr,
                "-out",
                &cert,
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20200102000000Z",
                "-extfile",
                &ext,
            ]);
        } else {
            let mut args: Vec<&str> = vec!["req", "-x509"];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &cert, "-days", "2", "-subj", &subj]);
            for line in &lines {
                args.extend(["-addext", line.as_str()]);
            }
            run(&args);
        }
        TestCert { cert: dir.join(cert), key: dir.join(key) }
    }
}

/// A running test API server; killed when dropped.
pub struct ApiServer {
    child: Child,
    /// Held only so the server sees end of file on stdin when we go away.
    _stdin: Option<ChildStdin>,
    /// The server's state directory (certificates, port, allow, requests.log).
    pub dir: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The port it listens on.
    pub port: u16,
    /// The CA certificate (PEM) that signed the server certificate.
    pub ca_file: PathBuf,
    /// The CA certificate as a kubeconfig's `certificate-authority-data`.
    pub ca_data_base64: String,
}

/// One line of the server's request log.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// `"allow"` or `"aws"` when accepted, `None` when rejected.
    pub auth: Option<String>,
    /// Hex SHA-256 of the bearer token (see [`token_sha256`]).
    pub token_sha256: Option<String>,
    /// Why the request was rejected.
    pub why: Option<String>,
}

impl Request {
    /// Whether the server accepted the credential (status 200 for a known path).
    pub fn accepted(&self) -> bool {
        self.auth.is_some()
    }
}

/// The hash under which the server logs `token`.
pub fn token_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl ApiServer {
    /// Starts a server with its state under the world's temp dir; panics with
    /// the server's stderr when it does not come up.
    pub fn start(world: &World) -> ApiServer {
        ApiServer::start_serving(world, None)
    }

    /// Starts a server that presents `cert` (a [`TestCert`] the test made)
    /// instead of its own; [`ApiServer::ca_file`] and `ca_data_base64` are
    /// then that certificate, as a hand-made cluster's kubeconfig names it.
    pub fn start_serving(world: &World, cert: Option<&TestCert>) -> ApiServer {
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let dir = world.path(&format!("apiserver-{}", SERIAL.fetch_add(1, Ordering::Relaxed)));
        fs::create_dir_all(&dir).unwrap();
        let stderr = fs::File::create(dir.join("stderr.log")).unwrap();
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .arg("--dir")
            .arg(&dir)
            .args(["--lifetime", &LIFETIME_SECS.to_string(), "--watch-stdin"])
            .args(["--aws-access-key-id", AWS_ACCESS_KEY_ID])
            .args(["--aws-secret-access-key", AWS_SECRET_ACCESS_KEY])
            .args(["--aws-cluster", AWS_CLUSTER])
            .args(cert.into_iter().flat_map(|c| {
                [OsStr::new("--server-cert"), c.cert.as_os_str(), OsStr::new("--server-key"), c.key.as_os_str()]
            }))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start the test API server: python3 {SCRIPT}: {e}; the e2e tests need python3 on PATH")
            });
        let stdin = child.stdin.take();
        let port_file = dir.join("port");
        let started = Instant::now();
        let port = loop {
            if let Ok(text) = fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse::<u16>()
            {
                break port;
            }
            let server_stderr = || {
                let mut s = String::new();
                let _ = fs::File::open(dir.join("stderr.log")).and_then(|mut f| f.read_to_string(&mut s));
                s
            };
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the test API server exited ({status}) before listening; its stderr:\n{}", server_stderr());
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the test API server did not listen within {START_TIMEOUT:?}; its stderr:\n{}", server_stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let ca_file = cert.map_or_else(|| dir.join("ca.crt"), |c| c.cert.clone());
        let ca_data_base64 = base64(&fs::read(&ca_file).unwrap());
        ApiServer { child, _stdin: stdin, url: format!("https://127.0.0.1:{port}"), port, ca_file, ca_data_base64, dir }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn allow_file(&self) -> PathBuf {
        self.dir.join("allow")
    }

    fn allowed(&self) -> Vec<String> {
        fs::read_to_string(self.allow_file()).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    fn write_allowed(&self, tokens: &[String]) {
        // Atomic, so the server never reads a half-written list.
        let tmp = self.dir.join("allow.tmp");
        fs::write(&tmp, tokens.iter().map(|t| format!("{t}\n")).collect::<String>()).unwrap();
        fs::rename(&tmp, self.allow_file()).unwrap();
    }

    /// Makes the server accept `token` from now on.
    pub fn allow(&self, token: &str) {
        assert!(!token.contains(char::is_whitespace), "a bearer token has no whitespace: {token:?}");
        let mut tokens = self.allowed();
        if !tokens.iter().any(|t| t == token) {
            tokens.push(token.to_owned());
        }
        self.write_allowed(&tokens);
    }

    /// Makes the server reject `token` from now on.
    pub fn revoke(&self, token: &str) {
        let tokens: Vec<String> = self.allowed().into_iter().filter(|t| t != token).collect();
        self.write_allowed(&tokens);
    }

    /// Every request the server answered, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        let text = fs::read_to_string(self.dir.join("requests.log")).unwrap_or_default();
        text.lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("requests.log line is JSON");
                let s = |k: &str| v[k].as_str().map(str::to_owned);
                Request {
                    method: s("method").unwrap_or_default(),
                    path: s("path").unwrap_or_default(),
                    status: v["status"].as_u64().expect("status") as u16,
                    auth: s("auth"),
                    token_sha256: s("token_sha256"),
                    why: s("why"),
                }
            })
            .collect()
    }

    /// How many requests the server answered.
    pub fn request_count(&self) -> usize {
        self.requests().len()
    }

    /// The requests whose credential the server accepted.
    pub fn accepted(&self) -> Vec<Request> {
        self.requests().into_iter().filter(Request::accepted).collect()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 with padding (what `certificate-authority-data` holds).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Unpadded base64url, as in `k8s-aws-v1.` tokens.
pub fn base64url(bytes: &[u8]) -> String {
    base64(bytes).trim_end_matches('=').replace('+', "-").replace('/', "_")
}

/// Whether something still listens on `port`.
pub fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_ok()
}

#[test]
fn base64_matches_the_standard_encodings() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"M"), "TQ==");
    assert_eq!(base64(b"Ma"), "TWE=");
    assert_eq!(base64(b"Man"), "TWFu");
    assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
}
