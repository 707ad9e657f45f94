//! Asking the API server whether it still accepts a cached credential: one
//! `GET <server>/version` with the credential, over TLS, bounded by
//! [`BOUND`] in total (DNS, proxy, handshake, answer).
//!
//! An invalid bearer token gets 401 on any path, before authorization, so
//! `/version` (readable by everyone authenticated, cheap, never audited as a
//! write) tells a rejected token from an accepted one; a client certificate
//! credential is presented in the TLS handshake instead (a server that
//! refuses it fails the handshake or answers 401). Only a 401 counts as a
//! rejection: every other answer, and no answer, serves the cached credential.
//!
//! Honours what client-go honours for the request: the cluster's CA
//! (`certificate-authority[-data]`, else the system's roots),
//! `tls-server-name`, `insecure-skip-tls-verify`, `proxy-url`, else
//! the proxy environment as Go reads it ([`super::proxy`]). Proxies are
//! HTTP CONNECT proxies (`http://[user:pass@]host:port`); a `socks5://` or
//! `https://` proxy is not supported: the server is then not asked and the
//! cached credential is served.
//!
//! The request runs on a worker thread and the caller waits at most
//! [`BOUND`]: a name lookup cannot be given a timeout any other way, and
//! the process exits right after serving anyway.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::ServerSaid;
use super::cluster::Cluster;
use super::proxy::{self, Route};

/// The whole check, from the first DNS lookup to the status line.
pub const BOUND: Duration = Duration::from_secs(2);

/// What a probe found.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The answer.
    pub said: ServerSaid,
    /// Why there was no answer (or what it was), for debug output; never a token.
    pub detail: Option<String>,
}

/// Asks the server with the credential stored as `json` (its
/// `status.token`, or `status.clientCertificateData`/`clientKeyData`).
pub fn probe(cluster: &Cluster, json: &str, bound: Duration) -> Probe {
    let (tx, rx) = std::sync::mpsc::channel();
    let cluster = cluster.clone();
    let json = json.to_owned();
    let deadline = Instant::now() + bound;
    std::thread::spawn(move || {
        let _ = tx.send(request(&cluster, &json, deadline));
    });
    match rx.recv_timeout(bound) {
        Ok(Ok(status)) => Probe { said: ServerSaid::Status(status), detail: None },
        Ok(Err(why)) => Probe { said: ServerSaid::NoAnswer, detail: Some(why) },
        Err(_) => Probe { said: ServerSaid::NoAnswer, detail: Some(format!("no answer within {}s", bound.as_secs())) },
    }
}

/// The credential's secret parts.
struct Secret {
    token: Option<String>,
    cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

fn secret_of(json: &str) -> Result<Secret, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|_| "the cached credential is not JSON")?;
    let status = &v["status"];
    let text = |f: &str| status[f].as_str().filter(|s| !s.is_empty());
    let token = text("token").map(str::to_owned);
    let cert = match (text("clientCertificateData"), text("clientKeyData")) {
        (Some(c), Some(k)) => {
            let certs = CertificateDer::pem_slice_iter(c.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| "the cached client certificate is not PEM")?;
            let key = PrivateKeyDer::from_pem_slice(k.as_bytes()).map_err(|_| "the cached client key is not PEM")?;
            Some((certs, key))
        }
        _ => None,
    };
    Ok(Secret { token, cert })
}

/// Where to connect: scheme, host, port and path prefix of a server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    tls: bool,
    host: String,
    port: u16,
    prefix: String,
    /// `user:pass` (proxies only).
    auth: Option<String>,
}

pub(crate) fn parse_url(url: &str, default_scheme: &str) -> Result<Url, String> {
    let (scheme, rest) = url.split_once("://").unwrap_or((default_scheme, url));
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        other => return Err(format!("'{other}://' is not supported")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let (auth, hostport) = match authority.rsplit_once('@') {
        Some((a, h)) => (Some(a.to_owned()), h),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("bad IPv6 address")?;
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port '{p}'"))?,
        None if tls => 443,
        None => 80,
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    Ok(Url { tls, host, port, prefix: path.to_owned(), auth })
}

/// The proxy for `server`: the cluster's `proxy-url` (always, as client-go
/// uses it), else what Go's `ProxyFromEnvironment` picks ([`proxy::route`]).
/// Err when Go would refuse the request.
fn proxy_for(cluster: &Cluster, server: &Url, env: impl Fn(&str) -> Option<String>) -> Result<Option<String>, String> {
    if let Some(p) = &cluster.proxy_url {
        return Ok(Some(p.clone()));
    }
    match proxy::route(server.tls, &server.host, server.port, env) {
        Route::Direct => Ok(None),
        Route::Proxy(p) => Ok(Some(p)),
        Route::Refused(why) => Err(why.to_owned()),
    }
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()).ok_or_else(|| "timed out".to_owned())
}

fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let addrs = (host, port).to_socket_addrs().map_err(|e| format!("cannot resolve '{host}' ({e})"))?;
    let mut last = format!("'{host}' has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {addr} ({e})"),
        }
    }
    Err(last)
}

/// Opens a tunnel through an HTTP CONNECT proxy.
fn tunnel(proxy: &str, target: &Url, deadline: Instant) -> Result<TcpStream, String> {
    let p = parse_url(proxy, "http").map_err(|e| format!("proxy '{}': {e}", redact(proxy)))?;
    if p.tls {
        return Err(format!("proxy '{}': https:// proxies are not supported", redact(proxy)));
    }
    let mut s = connect(&p.host, p.port, deadline)?;
    s.set_read_timeout(Some(remaining(deadline)?)).ok();
    let host = if target.host.contains(':') { format!("[{}]", target.host) } else { target.host.clone() };
    let mut req = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n", port = target.port);
    if let Some(auth) = &p.auth {
        let decoded = percent_decode(auth);
        req.push_str(&format!("Proxy-Authorization: Basic {}\r\n", encode_base64(decoded.as_bytes())));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(|e| format!("proxy: {e}"))?;
    let status = read_status(&mut s).map_err(|e| format!("proxy: {e}"))?;
    if status != 200 {
        return Err(format!("the proxy answered CONNECT with HTTP {status}"));
    }
    Ok(s)
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(i), Some(j)) if j > i => format!("{}***{}", &url[..i + 3], &url[j..]),
        _ => url.to_owned(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode_base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Reads an HTTP response head far enough to get its status code.
fn read_status(s: &mut impl Read) -> Result<u16, String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let text = String::from_utf8_lossy(line);
    let mut words = text.split_ascii_whitespace();
    match (words.next(), words.next().and_then(|c| c.parse().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ => Err("not an HTTP answer".into()),
    }
}

fn tls_config(cluster: &Cluster, secret: Secret) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if cluster.insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let mut root_ders = Vec::new();
        match &cluster.ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|_| "the cluster's certificate authority is not PEM")?;
                    roots.add(cert.clone()).map_err(|e| format!("the cluster's certificate authority: {e}"))?;
                    root_ders.push(cert);
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs.iter().cloned());
                if added > 0 {
                    root_ders = found.certs;
                }
            }
        }
        if roots.is_empty() {
            return Err("no certificate authority to trust".into());
        }
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("TLS: {e}"))?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(LikeGo { webpki, roots: root_ders }))
    };
    match secret.cert {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key).map_err(|e| format!("client certificate: {e}")),
        None => Ok(builder.with_no_client_auth()),
    }
}

fn request(cluster: &Cluster, json: &str, deadline: Instant) -> Result<u16, String> {
    let url = parse_url(&cluster.server, "https").map_err(|e| format!("server '{}': {e}", cluster.server))?;
    let secret = secret_of(json)?;
    let token = secret.token.clone();
    let proxy = proxy_for(cluster, &url, |n| std::env::var(n).ok())?;
    let tcp = match &proxy {
        Some(p) => tunnel(p, &url, deadline)?,
        None => connect(&url.host, url.port, deadline)?,
    };
    tcp.set_read_timeout(Some(remaining(deadline)?)).ok();
    tcp.set_write_timeout(Some(remaining(deadline)?)).ok();
    let host_header = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let mut req = format!(
        "GET {}/version HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: kcc/{} (healing check)\r\nAccept: application/json\r\nConnection: close\r\n",
        url.prefix,
        env!("CARGO_PKG_VERSION")
    );
    if let Some(t) = &token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    if !url.tls {
        let mut tcp = tcp;
        tcp.write_all(req.as_bytes()).map_err(|e| format!("sending the request: {e}"))?;
        return read_status(&mut tcp);
    }
    let config = tls_config(cluster, secret)?;
    let name = cluster.tls_server_name.as_deref().unwrap_or(&url.host);
    let name = ServerName::try_from(name.to_owned()).map_err(|_| format!("'{name}' is not a valid TLS server name"))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| format!("TLS: {e}"))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(req.as_bytes()).map_err(|e| format!("TLS: {e}"))?;
    read_status(&mut tls)
}

/// The server check of client-go (Go's crypto/x509 `Certificate.Verify`):
/// webpki's, except for a server certificate that is byte for byte one of
/// the trusted roots. Go takes such a certificate as a chain of length one
/// (`opts.Roots.contains(leaf)`) after checking its validity period, its
/// extended key usage and the name, whatever its basic constraints say —
/// hand-made clusters serve a self-signed `CA:TRUE` certificate and name it
/// in `certificate-authority-data`; webpki refuses it (`CaUsedAsEndEntity`).
/// Unknown critical extensions are refused in both (webpki's parse).
#[derive(Debug)]
struct LikeGo {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    /// The trusted roots as configured (DER), to recognise one served as the leaf.
    roots: Vec<CertificateDer<'static>>,
}

impl rustls::client::danger::ServerCertVerifier for LikeGo {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if !self.roots.iter().any(|r| r.as_ref() == end_entity.as_ref()) {
            return self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        }
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        super::x509::check_root_as_leaf(end_entity, now).map_err(rustls::Error::General)?;
        rustls::client::verify_server_name(&parsed, server_name)?;
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `insecure-skip-tls-verify: true`: any server certificate is accepted
/// (signatures are still checked, so the handshake itself is sound).
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_give_host_port_and_prefix() {
        let u = parse_url("https://rancher.example/k8s/clusters/c-1/", "https").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.prefix.as_str(), u.tls),
            ("rancher.example", 443, "/k8s/clusters/c-1", true)
        );
        let u = parse_url("https://[::1]:6443", "https").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 6443));
        let p = parse_url("http://me:p%40ss@proxy:3128", "http").unwrap();
        assert_eq!((p.host.as_str(), p.port, p.auth.as_deref(), p.tls), ("proxy", 3128, Some("me:p%40ss"), false));
        assert!(parse_url("socks5://proxy:1080", "http").unwrap_err().contains("not supported"));
    }

    #[test]
    fn the_clusters_proxy_url_wins_over_the_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |n: &str| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
        };
        let server = parse_url("https://10.1.2.3:6443", "https").unwrap();
        let none = Cluster::default();
        let vars = &[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "10.0.0.0/8")];
        assert_eq!(proxy_for(&none, &server, env(vars)), Ok(None), "NO_PROXY CIDR");
        let local = parse_url("https://127.0.0.1:1", "https").unwrap();
        let own = Cluster { proxy_url: Some("http://mine:2".into()), ..Cluster::default() };
        assert_eq!(proxy_for(&own, &local, env(vars)), Ok(Some("http://mine:2".into())), "proxy-url wins");
    }

    #[test]
    fn helpers_encode_and_decode() {
        assert_eq!(encode_base64(b"me:p@ss"), "bWU6cEBzcw==");
        assert_eq!(percent_decode("p%40ss"), "p@ss");
        assert_eq!(redact("http://me:pw@proxy:1"), "http://***@proxy:1");
        assert_eq!(read_status(&mut &b"HTTP/1.1 401 Unauthorized\r\nX: y\r\n\r\n"[..]), Ok(401));
        assert!(read_status(&mut &b"SSH-2.0\r\n"[..]).is_err());
    }
}
