//! Which proxy the healing check goes through when the cluster names none:
//! what Go's `http.ProxyFromEnvironment` (golang.org/x/net/http/httpproxy,
//! which client-go uses for a cluster without `proxy-url`) decides, as one
//! pure function of the server's scheme, host and port and the environment.
//!
//! Go's rules, mirrored one by one:
//! - `HTTPS_PROXY` (else `https_proxy`) for https servers, `HTTP_PROXY`
//!   (else `http_proxy`) for http ones; the first *non-empty* one counts,
//!   and an https server never falls back to `HTTP_PROXY`;
//! - `localhost` and loopback addresses (127.0.0.0/8, `::1`, IPv4-mapped
//!   loopback) are never proxied, whatever `NO_PROXY` says;
//! - `NO_PROXY` (else `no_proxy`) is a comma-separated list, trimmed and
//!   lowercased: `*` turns the proxy off; an IP address or CIDR block
//!   (`10.0.0.0/8`, `fd00::/8`) matches IP hosts; `name` matches the name
//!   and its subdomains, `.name` and `*.name` only subdomains; any entry may
//!   carry `:port` (`[v6]:port` for IPv6), then only that port matches;
//! - under CGI (`REQUEST_METHOD` set) an http server's `HTTP_PROXY` is refused.
//!
//! One difference: Go converts internationalised host names to punycode
//! before comparing; kcc compares them as written (README, Freshness).

use std::net::IpAddr;

/// How to reach the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Connect directly.
    Direct,
    /// Through this proxy URL (as written in the environment).
    Proxy(String),
    /// Go refuses the request (so kcc does not ask the server).
    Refused(&'static str),
}

/// Go's `getEnvAny`: the first of `names` set to a non-empty value.
fn env_any(env: &impl Fn(&str) -> Option<String>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| env(n).filter(|v| !v.is_empty()))
}

/// The route to `host:port` (`host` without brackets, as in the URL) for an
/// https (`tls`) or http server, given the environment `env`.
pub fn route(tls: bool, host: &str, port: u16, env: impl Fn(&str) -> Option<String>) -> Route {
    let proxy =
        if tls { env_any(&env, &["HTTPS_PROXY", "https_proxy"]) } else { env_any(&env, &["HTTP_PROXY", "http_proxy"]) };
    let Some(proxy) = proxy else { return Route::Direct };
    if !tls && env("REQUEST_METHOD").is_some_and(|v| !v.is_empty()) {
        return Route::Refused("refusing to use HTTP_PROXY value in CGI environment");
    }
    let no_proxy = env_any(&env, &["NO_PROXY", "no_proxy"]).unwrap_or_default();
    if use_proxy(host, &port.to_string(), &no_proxy) { Route::Proxy(proxy) } else { Route::Direct }
}

/// One `NO_PROXY` entry, parsed as Go's `config.init` parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    All,
    Cidr(IpAddr, u8),
    Ip(IpAddr, String),
    /// `host` starts with '.'; `match_host`: the bare name matches too.
    Domain {
        host: String,
        port: String,
        match_host: bool,
    },
}

fn parse_no_proxy(list: &str) -> Vec<Matcher> {
    let mut out = Vec::new();
    for p in list.split(',') {
        let p = p.trim().to_lowercase();
        if p.is_empty() {
            continue;
        }
        if p == "*" {
            return vec![Matcher::All];
        }
        if let Some((ip, bits)) = parse_cidr(&p) {
            out.push(Matcher::Cidr(ip, bits));
            continue;
        }
        let (phost, pport) = match split_host_port(&p) {
            Some(("", _)) => continue,
            Some((h, port)) => (h.to_owned(), port.to_owned()),
            None => (p.clone(), String::new()),
        };
        if let Ok(ip) = phost.parse::<IpAddr>() {
            out.push(Matcher::Ip(ip, pport));
            continue;
        }
        let mut phost = phost;
        if phost.starts_with("*.") {
            phost.remove(0);
        }
        let match_host = !phost.starts_with('.');
        if match_host {
            phost.insert(0, '.');
        }
        out.push(Matcher::Domain { host: phost, port: pport, match_host });
    }
    out
}

/// Go's `useProxy`: whether `host:port` goes through the proxy.
fn use_proxy(host: &str, port: &str, no_proxy: &str) -> bool {
    if host == "localhost" {
        return false;
    }
    let ip = host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    let addr = host.trim().to_lowercase();
    let matchers = parse_no_proxy(no_proxy);
    let port_ok = |want: &str| want.is_empty() || want == port;
    if let Some(ip) = ip {
        for m in &matchers {
            let hit = match m {
                Matcher::All => true,
                Matcher::Cidr(net, bits) => in_cidr(ip, *net, *bits),
                Matcher::Ip(want, p) => want.to_canonical() == ip && port_ok(p),
                Matcher::Domain { .. } => false,
            };
            if hit {
                return false;
            }
        }
    }
    for m in &matchers {
        let hit = match m {
            Matcher::All => true,
            Matcher::Domain { host, port: p, match_host } => {
                (addr.ends_with(host.as_str()) || (*match_host && addr == host[1..])) && port_ok(p)
            }
            _ => false,
        };
        if hit {
            return false;
        }
    }
    true
}

/// `net.ParseCIDR`: an address, `/`, a prefix length within its family
/// (decimal, no sign). An IPv6 block over IPv4-mapped space (`::ffff:0:0/96`
/// and longer) is the IPv4 block it covers, as Go's `IPNet.Contains` sees it.
fn parse_cidr(p: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = p.split_once('/')?;
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let ip: IpAddr = addr.parse().ok()?;
    match ip {
        IpAddr::V4(_) if bits <= 32 => Some((ip, bits)),
        IpAddr::V6(v6) if bits <= 128 => match v6.to_ipv4_mapped() {
            Some(v4) if bits >= 96 => Some((IpAddr::V4(v4), bits - 96)),
            _ => Some((ip, bits)),
        },
        _ => None,
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Go's `net.SplitHostPort`: None where it returns an error (no port, too
/// many colons, stray brackets). Brackets are removed from the host.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    let i = s.rfind(':')?;
    let (host, j, k) = if s.starts_with('[') {
        let end = s.find(']')?;
        if end + 1 != i {
            return None;
        }
        (&s[1..end], 1, end + 1)
    } else {
        let host = &s[..i];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if s[j..].contains('[') || s[k..].contains(']') {
        return None;
    }
    Some((host, &s[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        let vars = vars.to_vec();
        move |n: &str| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
    }

    /// (NO_PROXY, host, port, proxied?) — the cases of Go's own
    /// `TestUseProxy` and `TestIssue...` tables that apply, plus CIDR.
    const NO_PROXY_TABLE: &[(&str, &str, u16, bool)] = &[
        ("", "example.com", 443, true),
        ("*", "example.com", 443, false),
        ("foo, *, bar", "example.com", 443, false),
        ("example.com", "example.com", 443, false),
        ("example.com", "www.example.com", 443, false),
        ("example.com", "notexample.com", 443, true),
        (".example.com", "example.com", 443, true),
        (".example.com", "www.example.com", 443, false),
        ("*.example.com", "example.com", 443, true),
        ("*.example.com", "a.b.example.com", 443, false),
        ("EXAMPLE.com", "Www.Example.COM", 443, false),
        ("example.com:443", "example.com", 443, false),
        ("example.com:443", "example.com", 6443, true),
        (" example.com , other", "example.com", 443, false),
        ("10.0.0.0/8", "10.1.2.3", 6443, false),
        ("10.0.0.0/8", "11.1.2.3", 6443, true),
        ("10.1.2.3/8", "10.200.0.1", 6443, false),
        ("10.0.0.0/8", "::ffff:10.1.2.3", 6443, false),
        ("10.0.0.0/8", "ten.example", 6443, true),
        ("0.0.0.0/0", "192.0.2.1", 443, false),
        ("fd00::/8", "fd12::1", 443, false),
        ("fd00::/8", "fe80::1", 443, true),
        ("10.0.0.0/33", "10.0.0.1", 443, true),
        ("192.0.2.1", "192.0.2.1", 443, false),
        ("192.0.2.1:443", "192.0.2.1", 443, false),
        ("192.0.2.1:80", "192.0.2.1", 443, true),
        ("2001:db8::1", "2001:db8::1", 443, false),
        ("[2001:db8::1]:443", "2001:db8::1", 443, false),
        ("[2001:db8::1]:80", "2001:db8::1", 443, true),
        ("[2001:db8::1]", "2001:db8::1", 443, true),
        ("0.0.1", "10.0.0.1", 443, false),
        (":443", "example.com", 443, true),
        ("localhost", "example.com", 443, true),
        ("", "localhost", 443, false),
        ("", "127.1.2.3", 443, false),
        ("", "::1", 443, false),
        ("", "::ffff:127.0.0.1", 443, false),
        ("", "LOCALHOST", 443, true),
    ];

    #[test]
    fn no_proxy_entries_match_as_gos_httpproxy_matches_them() {
        for &(no_proxy, host, port, proxied) in NO_PROXY_TABLE {
            assert_eq!(
                use_proxy(host, &port.to_string(), no_proxy),
                proxied,
                "NO_PROXY={no_proxy:?} host={host}:{port}"
            );
        }
    }

    #[test]
    fn the_variables_are_read_as_go_reads_them() {
        let p = || Route::Proxy("http://p:1".into());
        assert_eq!(route(true, "api.example", 443, env(&[("https_proxy", "http://p:1")])), p());
        assert_eq!(
            route(true, "api.example", 443, env(&[("HTTPS_PROXY", ""), ("https_proxy", "http://p:1")])),
            p(),
            "an empty upper-case variable does not hide the lower-case one"
        );
        assert_eq!(
            route(true, "api.example", 443, env(&[("HTTPS_PROXY", "http://p:1"), ("https_proxy", "http://q:2")])),
            p()
        );
        assert_eq!(
            route(true, "api.example", 443, env(&[("HTTP_PROXY", "http://p:1")])),
            Route::Direct,
            "https never uses HTTP_PROXY"
        );
        assert_eq!(route(false, "api.example", 80, env(&[("HTTP_PROXY", "http://p:1")])), p());
        assert_eq!(
            route(true, "10.1.2.3", 6443, env(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "10.0.0.0/8")])),
            Route::Direct
        );
        assert_eq!(
            route(
                true,
                "10.1.2.3",
                6443,
                env(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", ""), ("no_proxy", "10.0.0.0/8")])
            ),
            Route::Direct
        );
        assert_eq!(
            route(true, "api.example", 443, env(&[("HTTPS_PROXY", "http://p:1"), ("REQUEST_METHOD", "GET")])),
            p(),
            "CGI affects http only"
        );
        assert!(matches!(
            route(
                false,
                "api.example",
                80,
                env(&[("HTTP_PROXY", "http://p:1"), ("REQUEST_METHOD", "GET"), ("NO_PROXY", "*")])
            ),
            Route::Refused(_)
        ));
        assert_eq!(route(true, "127.0.0.1", 443, env(&[("HTTPS_PROXY", "http://p:1")])), Route::Direct);
    }

    #[test]
    fn split_host_port_is_gos() {
        assert_eq!(split_host_port("a:1"), Some(("a", "1")));
        assert_eq!(split_host_port("a:"), Some(("a", "")));
        assert_eq!(split_host_port("[::1]:1"), Some(("::1", "1")));
        for bad in ["a", "::1", "[::1]", "[::1]x:1", "a]:1", "[a:1", "a:b:1"] {
            assert_eq!(split_host_port(bad), None, "{bad}");
        }
    }
}
