//! Fuzz targets: one `pub fn` per parser of input kcc did not write.
//!
//! Each target takes arbitrary bytes, feeds them to the parser and checks
//! *properties*, not just "no panic": what parses re-serialises to the same
//! thing, the fast hit-path reader agrees with the full parser on files kcc
//! wrote, a credential cut short never quotes its token, a kubeconfig kcc
//! rewrites reads back as the same document. A violated property panics, so
//! libFuzzer (`fuzz/`, nightly, `cargo fuzz run NAME`) and the stable
//! property tests (`tests` below, proptest) report it the same way.
//!
//! The module is hidden from the docs and unused by the binary: with LTO the
//! release build drops it, so the hit path does not pay for it.
//!
//! [`TARGETS`] lists every target by name; `fuzz/fuzz_targets/*.rs` holds
//! one three-line wrapper per name and `.ci/fuzz` runs each for a fixed time.

use std::ffi::OsString;

use jiff::{SignedDuration, Timestamp};

use crate::credential::{self, CredentialHead, ExecInfo};
use crate::store::{self, file, index};

/// A fuzz target: arbitrary bytes in, a panic when a property fails.
pub type Target = fn(&[u8]);

/// Every target, by the name `cargo fuzz run` knows it under.
pub const TARGETS: &[(&str, Target)] = &[
    ("exec_credential", exec_credential),
    ("exec_info", exec_info),
    ("cache_file", cache_file),
    ("index", index_file),
    ("records", records),
    ("kubeconfig", kubeconfig),
    ("kuberc", kuberc),
    ("settings", settings),
    ("cache_key", cache_key),
    ("server", server),
    ("x509", x509),
    ("dbus", dbus),
];

/// Splits fuzz input into parts: the first byte says where the first part
/// ends (as a share of the rest), so one input drives several parsers.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.split_first() {
        None => (&[], &[]),
        Some((&n, rest)) => rest.split_at(rest.len() * usize::from(n) / 256),
    }
}

/// A fixed "now", so a run's verdicts do not depend on the clock.
fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Plugin output (the `ExecCredential` a plugin prints on stdout).
///
/// Properties: a valid credential re-serialised validates to the same
/// apiVersion, expiry and kind; the hit path's head reader sees the same
/// apiVersion and expiry; every expiry decision is total (no overflow at
/// jiff's range ends); the output cut short anywhere is refused and the
/// refusal never quotes the token.
pub fn exec_credential(data: &[u8]) {
    let Ok(valid) = credential::validate(data) else { return };
    let text = serde_json::to_string(&valid.value).expect("a parsed value serialises");
    let again = credential::validate(text.as_bytes()).expect("a re-serialised credential validates");
    assert_eq!(again.value, valid.value);
    assert_eq!(again.api_version, valid.api_version);
    assert_eq!(again.reported_expiry, valid.reported_expiry);
    assert_eq!(again.is_client_cert, valid.is_client_cert);

    // What a later hit reads from the store.
    let head = CredentialHead::parse(&text).expect("the hit path reads what was validated");
    assert_eq!(head.api_version, valid.api_version);
    if valid.reported_expiry.is_some() {
        assert_eq!(head.expiry(), valid.reported_expiry);
    }
    for (threshold, ttl) in
        [(SignedDuration::from_hours(24), SignedDuration::from_hours(1)), (SignedDuration::MAX, SignedDuration::MAX)]
    {
        for at in [now(), Timestamp::MIN, Timestamp::MAX] {
            let (expiry, _) = credential::effective_expiry(valid.reported_expiry, at, threshold, ttl);
            let _ = store::decide_expiry(expiry, at, SignedDuration::from_secs(30));
            let _ = store::decide_expiry(expiry, at, SignedDuration::MAX);
            let lookup = store::Lookup::Found(text.clone());
            let _ = store::decide(&lookup, Some(&valid.api_version), at, SignedDuration::from_secs(30));
        }
    }

    // Cut short (a plugin killed mid-write): refused, the token never shown.
    let token = valid.value["status"]["token"].as_str().unwrap_or("");
    if token.len() >= 8 {
        let bytes = text.as_bytes();
        for cut in (0..bytes.len()).step_by((bytes.len() / 16).max(1)) {
            if let Err(e) = credential::validate(&bytes[..cut]) {
                assert!(!e.0.contains(token), "a cut-off credential's error quotes its token: {e}");
            }
        }
    }
}

/// `KUBERNETES_EXEC_INFO` (set by kubectl, or by whoever runs kcc).
///
/// Properties: parsing is total; the background refresher's rewrite of it
/// still parses and, when the original was an object with an object (or
/// no) spec, says `interactive: false` and keeps apiVersion and server;
/// healing's reading of its cluster never panics.
pub fn exec_info(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let info = ExecInfo::parse(Some(text));
    let rewritten = crate::refresh::non_interactive(text);
    let after = ExecInfo::parse(Some(&rewritten));
    let spec_ok = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.get("spec").is_none_or(serde_json::Value::is_object)))
        .unwrap_or(false);
    if spec_ok && info != ExecInfo::default() {
        assert_eq!(after.interactive, Some(false), "{text} -> {rewritten}");
        assert_eq!(after.api_version, info.api_version);
        assert_eq!(after.server, info.server);
    }
    let _ = crate::heal::Family::of(Some(text));
    let _ = crate::heal::cluster::in_exec_info(text);
}

/// `cache.json`, kcc's one-entry-per-line layout and the Go kcc's shape.
///
/// Input: a key, then the file. Properties: reading is total; a file that
/// parses renders (kcc's rewrite) to a file that parses to the same entries,
/// in which the hit path finds every entry exactly and nothing else; in the
/// Go kcc's layout (parsed whole) the hit path agrees with the full parser.
pub fn cache_file(data: &[u8]) {
    let (key, content) = split(data);
    let key = String::from_utf8_lossy(key);
    let found = file::find(content, &key);
    let Ok(entries) = file::parse_all(content) else { return };
    if !content.starts_with(file::LAYOUT_HEADER) {
        let found = found.expect("a file that parses whole is not corrupt for the hit path");
        assert_eq!(found.map(|r| r.get()), entries.get(key.as_ref()).map(|r| r.get()));
    }
    let rendered = file::render(&entries);
    let back = file::parse_all(&rendered).expect("kcc's own rendering parses");
    assert_eq!(back.len(), entries.len());
    for (k, v) in &entries {
        let value = |raw: &str| serde_json::from_str::<serde_json::Value>(raw).ok();
        assert_eq!(value(back[k].get()), value(v.get()), "entry {k:?} changed by a rewrite");
        let hit = file::find(&rendered, k).expect("kcc's own rendering is not corrupt").expect("every entry is found");
        assert_eq!(hit.get(), back[k].get(), "the hit path found another value for {k:?}");
    }
    if !entries.contains_key(key.as_ref()) {
        assert!(file::find(&rendered, &key).expect("not corrupt").is_none(), "found an entry that is not there");
    }
    assert_eq!(file::render(&back), rendered, "rendering is stable");
}

/// The non-secret index (`index.json`).
///
/// Properties: an index that parses saves and loads back equal; every
/// expiry in it is judged without panicking; carrying history is total.
pub fn index_file(data: &[u8]) {
    let Ok(idx) = serde_json::from_slice::<index::Index>(data) else { return };
    let bytes = serde_json::to_vec_pretty(&idx).expect("an index serialises");
    let back: index::Index = serde_json::from_slice(&bytes).expect("a saved index loads");
    assert_eq!(back.entries, idx.entries);
    assert_eq!(back.version, idx.version);
    for (key, entry) in &idx.entries {
        if let Ok(expiry) = entry.expiry.parse::<Timestamp>() {
            let _ = store::decide_expiry(expiry, now(), SignedDuration::from_secs(30));
        }
        if let Some(bg) = &entry.background {
            let _ = crate::refresh::describe(bg);
            let _ = bg.next_allowed.parse::<Timestamp>();
        }
        let mut fresh = index::IndexEntry::default();
        idx.carry_history(key, &mut fresh);
        assert_eq!(fresh.background, entry.background);
        let _ = crate::key::parse_fields(key);
    }
}

/// Per-key records: the failure back-off record (JSON), healing's fixed-size
/// record, a keyring entry's split header and its parts.
///
/// Properties: a back-off record that parses round-trips and every decision
/// and description over it is total; a healing record that decodes encodes
/// to a record that decodes to itself (or to none, never to another); split
/// parts are joined only when their digest matches.
pub fn records(data: &[u8]) {
    if let Ok(f) = serde_json::from_slice::<crate::backoff::Failure>(data) {
        let back: crate::backoff::Failure =
            serde_json::from_slice(&serde_json::to_vec(&f).expect("serialises")).expect("a record loads");
        assert_eq!(back, f);
        for at in [now(), Timestamp::MIN, Timestamp::MAX] {
            for max in [None, Some(SignedDuration::from_mins(5)), Some(SignedDuration::MAX)] {
                let _ = crate::backoff::decide(Some(&f), false, Some(at), max, at);
                let _ = crate::backoff::describe(&f, max, at);
                let run = crate::backoff::FailedRun { code: 1, stderr: Some(b"x"), error: None };
                let next = crate::backoff::after_failure(Some(&f), &f.key, &f.exec, &run, false, max, at);
                assert!(next.streak >= 1 || max.is_none());
            }
        }
    }
    if let Some(r) = crate::heal::Record::decode(data) {
        let encoded = r.encode();
        if let Some(again) = crate::heal::Record::decode(&encoded) {
            assert_eq!(again, r, "a healing record re-read as another record");
        }
    }
    let (main, rest) = split(data);
    if let Some((n, _)) = crate::store::keyring::parse_header(main) {
        let parts: Vec<&[u8]> = rest.chunks(rest.len().div_ceil(n).max(1)).collect();
        let joined = crate::store::keyring::join_parts::<std::io::Error>("k", |account| {
            Ok(match account.strip_prefix("k#") {
                None => Some(main.to_vec()),
                Some(i) => i.parse::<usize>().ok().and_then(|i| parts.get(i - 1)).map(|p| p.to_vec()),
            })
        });
        if let Ok(Some(secret)) = joined {
            let header = crate::store::keyring::split_header(n, secret.as_bytes());
            assert_eq!(header.as_bytes(), main, "joined parts that do not match their digest");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::heal::parse_comm(data);
        let _ = crate::heal::parse_start_time(data);
        #[cfg(target_os = "linux")]
        let _ = crate::store::backend::Quota::parse(text, 0);
        let _ = text;
    }
}

/// A kubeconfig (what `kcc inject` rewrites and `kcc doctor` reads).
///
/// Properties: loading is total and bounded (anchors and aliases included:
/// a "billion laughs" is refused); a loaded file written back by kcc's
/// emitter reads back as the same document; inject followed by restore is
/// the identity on a file kcc had not wrapped; doctor's and healing's typed
/// readings are total.
pub fn kubeconfig(data: &[u8]) {
    let Ok(root) = crate::kubeconfig::parse(data) else { return };
    let text = crate::kubeconfig::yaml::to_string(&root);
    let back = crate::kubeconfig::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("kcc's own output does not load: {e:#}\n{text}"));
    let again = crate::kubeconfig::yaml::to_string(&back);
    assert_eq!(again, text, "a rewrite changed the document");
    let _ = serde_yml::from_value::<crate::kubeconfig::merge::Kubeconfig>(root.clone());
    let _ = crate::heal::cluster::typed(&text);

    let mut unwrapped = root.clone();
    let nothing_wrapped = crate::cmd::inject::restore(&mut unwrapped, "kcc-cache").is_ok_and(|c| !c.changed());
    let mut v = root;
    if nothing_wrapped
        && crate::cmd::inject::inject(&mut v, "kcc-cache", "/home/u/.kube", crate::platform::Os::Linux).is_ok()
    {
        let wrapped = crate::kubeconfig::yaml::to_string(&v);
        crate::kubeconfig::parse(wrapped.as_bytes())
            .unwrap_or_else(|e| panic!("an injected kubeconfig does not load: {e:#}\n{wrapped}"));
        crate::cmd::inject::restore(&mut v, "kcc-cache").expect("restore undoes inject");
        assert_eq!(crate::kubeconfig::yaml::to_string(&v), text, "inject then restore is not the identity");
    }
}

/// kubectl's kuberc (its credential-plugin policy).
pub fn kuberc(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    #[allow(deprecated)] // serde_yml 0.0.13 marks itself deprecated; see the README
    let Ok(k) = serde_yml::from_str::<crate::kuberc::Kuberc>(text) else { return };
    let _ = k.policy();
    let _ = k.allowlist().count();
    let _ = k.allows("kcc-cache", |name| Some(std::path::PathBuf::from("/usr/bin").join(name)));
}

/// Settings from the environment: every `KUBE_CREDENTIAL_CACHE_*` value,
/// Go durations, booleans.
///
/// Input: lines `N=VALUE`, N picking a setting. Properties: reading the
/// settings is total and an error names the variable it is about; a Go
/// duration that parses formats to text that parses to the same duration.
pub fn settings(data: &[u8]) {
    const NAMES: &[&str] = &[
        crate::config::ENV_BACKEND,
        crate::config::ENV_FILE,
        crate::config::ENV_REFRESH_MARGIN,
        crate::config::ENV_DEFAULT_TTL,
        crate::config::ENV_NO_EXPIRY_THRESHOLD,
        crate::config::ENV_CACHEKEY_ENV_LIST,
        crate::config::ENV_DEBUG,
        crate::config::ENV_KEYRING_ENTRY_LIMIT,
        crate::config::ENV_PLUGIN_TIMEOUT,
        crate::config::ENV_REFRESH_AHEAD,
        crate::config::ENV_FAILURE_BACKOFF,
        crate::config::ENV_HEAL,
        crate::config::ENV_USER,
    ];
    let text = String::from_utf8_lossy(data);
    let mut env: Vec<(&str, OsString)> = Vec::new();
    for line in text.lines() {
        let (n, value) = line.split_once('=').unwrap_or(("0", line));
        let name = NAMES[n.bytes().map(usize::from).sum::<usize>() % NAMES.len()];
        env.push((name, OsString::from(value)));
        if let Ok(d) = crate::duration::parse_go_duration(value.trim()) {
            let shown = crate::duration::format_go_duration(d);
            assert_eq!(crate::duration::parse_go_duration(&shown).ok(), Some(d), "{value:?} shown as {shown:?}");
        }
        let _ = crate::config::parse_bool(value);
        let _ = value.parse::<Timestamp>();
    }
    match crate::config::Config::from_lookup(|name| env.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.clone()))
    {
        Ok(config) => {
            assert!(!config.refresh_margin.is_negative() && !config.default_ttl.is_negative());
            let _ = crate::refresh::in_window(&config, now(), now());
            let _ = crate::refresh::in_window(&config, Timestamp::MAX, Timestamp::MIN);
            if let Some(max) = config.failure_backoff {
                for streak in [0, 1, 2, 40, u32::MAX] {
                    let w = crate::backoff::wait_after(streak, max);
                    assert!(w <= max && !w.is_negative());
                }
            }
        }
        Err(e) => assert!(e.to_string().contains(e.variable), "an error that does not name its variable: {e}"),
    }
}

/// Cache keys: kcc's own (read back by `clear` and `doctor`) and the Go
/// kcc's.
///
/// Properties: a key computed from any inputs reads back with those inputs'
/// readable fields; reading foreign keys is total.
pub fn cache_key(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::key::parse_fields(&text);
    let _ = crate::key::is_go_key(&text);
    let _ = crate::key::parse_go_fields(&text);
    let mut words = text.split('\u{1}');
    let command = words.next().unwrap_or_default();
    let user = words.next();
    let server = words.next();
    let api = words.next();
    let args: Vec<OsString> = words.map(OsString::from).collect();
    let info = ExecInfo { api_version: api.map(String::from), server: server.map(String::from), interactive: None };
    let key = crate::key::CacheKey::compute(&crate::key::KeyInputs {
        command: command.as_ref(),
        args: &args,
        env: vec![],
        exec_info: &info,
        user: user.map(OsString::from),
    });
    let fields = crate::key::parse_fields(&key.text).unwrap_or_else(|| panic!("kcc cannot read its own key {key}"));
    assert_eq!(fields[0], ("user".into(), user.unwrap_or_default().to_string()));
    assert_eq!(fields[1], ("server".into(), server.unwrap_or_default().to_string()));
    assert!(!crate::key::is_go_key(&key.text));
}

/// What healing reads about a server: its URL (kubeconfig or exec info),
/// `NO_PROXY`/`HTTPS_PROXY`, base64 certificate data.
pub fn server(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let url = parts.next().unwrap_or_default();
    let no_proxy = parts.next().unwrap_or_default().to_string();
    let b64 = parts.next().unwrap_or_default();
    #[cfg(target_os = "linux")]
    {
        let _ = crate::heal::verify::parse_url(url, "https");
        let _ = crate::heal::verify::parse_url(url, "http");
        let host = url.split(['/', ':']).find(|s| !s.is_empty()).unwrap_or("h");
        let env = |name: &str| match name {
            "HTTPS_PROXY" | "HTTP_PROXY" => Some("http://proxy:3128".to_string()),
            "NO_PROXY" => Some(no_proxy.clone()),
            _ => None,
        };
        let _ = crate::heal::proxy::route(true, host, 443, env);
        let _ = crate::heal::proxy::route(false, url, 0, env);
    }
    let _ = (url, &no_proxy);
    if let Some(bytes) = crate::heal::cluster::decode_base64(b64) {
        assert!(bytes.len() <= b64.len(), "base64 decoded to more bytes than it had");
    }
}

/// A DER certificate (what a server presents; healing reads a CA-as-leaf's
/// validity and key usages itself).
pub fn x509(data: &[u8]) {
    #[cfg(target_os = "linux")]
    {
        if let Some(f) = crate::heal::x509::facts(data) {
            let _ = f;
        }
        let _ = crate::heal::x509::check_root_as_leaf(
            data,
            rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000)),
        );
    }
    let _ = data;
}

/// D-Bus: a session bus address (`DBUS_SESSION_BUS_ADDRESS`), a reply's
/// header fields and body (from whoever answers on the bus).
pub fn dbus(data: &[u8]) {
    #[cfg(secret_service)]
    {
        use crate::store::keyring::dbus;
        let (head, body) = split(data);
        let _ = dbus::parse_address(&String::from_utf8_lossy(head));
        for le in [true, false] {
            let _ = dbus::reply_fields(head, le);
            let mut r = dbus::BodyReader::new(body, le);
            let _ = r.object_paths();
            let _ = r.signature();
            let _ = r.string();
            let _ = r.bytes();
            let _ = r.u32();
        }
    }
    let _ = data;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Inputs that look like what each parser expects, so the properties
    /// past the first parse get exercised, plus arbitrary bytes.
    fn json_like() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            "[ -~\n]{0,200}".prop_map(String::into_bytes),
            (
                "[ -~]{0,12}",
                prop::option::of("[0-9T:Z.+-]{0,24}|2026-01-01T00:00:00Z|9999-12-31T23:59:59Z|-009999-01-02T01:59:59Z"),
                "client\\.authentication\\.k8s\\.io/v1(beta1)?|[a-z/]{0,10}",
            )
                .prop_map(|(token, exp, api)| {
                    let mut status = serde_json::json!({ "token": token });
                    if let Some(e) = exp {
                        status["expirationTimestamp"] = e.into();
                    }
                    serde_json::json!({"kind": "ExecCredential", "apiVersion": api, "status": status})
                        .to_string()
                        .into_bytes()
                }),
        ]
    }

    fn yaml_like() -> impl Strategy<Value = Vec<u8>> {
        let scalar = "on|yes|no|off|y|n|true|null|~|1\\.0|1e3|0123|0x1F|12:30|\"a: b\"|'#'|NaN|\\.inf|2026-01-01|[a-z]{1,6}|\"\\\\n x\"|-|\\?|\\*a|&a x";
        (scalar, scalar, scalar, "[ -~]{0,12}").prop_map(|(a, b, c, d)| {
            format!(
                "kind: Config\nusers:\n- name: {a}\n  user:\n    exec:\n      command: {b}\n      args: [{c}, {d}]\n      env:\n      - {{name: {a}, value: {c}}}\nclusters:\n- name: {b}\n  cluster: {{server: {d}}}\n"
            )
            .into_bytes()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn exec_credential_properties(data in json_like()) { exec_credential(&data) }

        #[test]
        fn exec_info_properties(data in json_like()) { exec_info(&data) }

        #[test]
        fn cache_file_properties(key in "[ -~]{0,6}", data in json_like()) {
            let mut input = vec![16u8];
            input.extend_from_slice(key.as_bytes());
            input.extend_from_slice(b"{\"credentials\":{");
            input.extend_from_slice(&serde_json::to_vec(&key).unwrap());
            input.push(b':');
            input.extend_from_slice(&data);
            input.extend_from_slice(b"}}");
            cache_file(&input);
            cache_file(&data);
        }

        #[test]
        fn index_properties(data in json_like()) { index_file(&data) }

        #[test]
        fn records_properties(data in json_like()) { records(&data) }

        #[test]
        fn kubeconfig_properties(data in yaml_like()) { kubeconfig(&data) }

        #[test]
        fn kuberc_properties(data in yaml_like()) { kuberc(&data) }

        #[test]
        fn settings_properties(data in "([0-9]{1,2}=[ -~]{0,12}\n){0,6}") { settings(data.as_bytes()) }

        #[test]
        fn cache_key_properties(data in "[ -~\u{1}\u{80}-\u{10ffff}]{0,64}") { cache_key(data.as_bytes()) }

        #[test]
        fn server_properties(data in "[ -~\n]{0,64}") { server(data.as_bytes()) }

        #[test]
        fn x509_properties(data in prop::collection::vec(any::<u8>(), 0..200)) { x509(&data) }

        #[test]
        fn dbus_properties(data in prop::collection::vec(any::<u8>(), 0..200)) { dbus(&data) }
    }

    /// Every input in `tests/corpus/` (the nastiest cases, the fuzzers'
    /// finds) through every target: no panic, no violated property.
    #[test]
    fn the_corpus_passes_every_target() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("tests/corpus exists") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                for input in std::fs::read_dir(&path).unwrap() {
                    let bytes = std::fs::read(input.unwrap().path()).unwrap();
                    for (_, target) in TARGETS {
                        target(&bytes);
                    }
                    seen += 1;
                }
            }
        }
        assert!(seen > 10, "the corpus has only {seen} inputs");
    }
}
