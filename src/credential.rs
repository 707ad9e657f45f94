//! The client-go exec credential protocol: what kubectl tells the plugin
//! (`KUBERNETES_EXEC_INFO`), what the plugin must print (`ExecCredential`),
//! and when a printed credential stops being worth serving.
//!
//! Only what kcc needs is modelled; the credential itself is kept as the
//! plugin printed it, so fields kcc does not know reach kubectl untouched.

pub mod rfc3339;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

/// The API group every ExecCredential version belongs to.
pub const API_GROUP: &str = "client.authentication.k8s.io/";

/// What kubectl says about the call in `KUBERNETES_EXEC_INFO`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecInfo {
    /// The ExecCredential apiVersion kubectl expects back.
    pub api_version: Option<String>,
    /// The cluster's server URL (only with `provideClusterInfo: true`).
    pub server: Option<String>,
    /// Whether the plugin may prompt on stdin.
    pub interactive: Option<bool>,
}

#[derive(Deserialize)]
struct RawExecInfo {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    spec: Option<RawExecInfoSpec>,
}

#[derive(Deserialize)]
struct RawExecInfoSpec {
    cluster: Option<RawCluster>,
    interactive: Option<bool>,
}

#[derive(Deserialize)]
struct RawCluster {
    server: Option<String>,
}

impl ExecInfo {
    /// Parses `KUBERNETES_EXEC_INFO`. Absent or unparsable info (non-Go
    /// clients may not set it) gives an empty `ExecInfo`: the key then
    /// falls back to the command line, which is still safe.
    pub fn parse(value: Option<&str>) -> ExecInfo {
        let Some(raw) = value.and_then(|v| serde_json::from_str::<RawExecInfo>(v).ok()) else {
            return ExecInfo::default();
        };
        let spec = raw.spec;
        ExecInfo {
            api_version: raw.api_version.filter(|v| !v.is_empty()),
            server: spec
                .as_ref()
                .and_then(|s| s.cluster.as_ref())
                .and_then(|c| c.server.clone())
                .filter(|s| !s.is_empty()),
            interactive: spec.and_then(|s| s.interactive),
        }
    }
}

/// The parts of a stored credential a cache hit looks at.
#[derive(Deserialize)]
pub struct CredentialHead {
    /// `client.authentication.k8s.io/v1` or `/v1beta1`.
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    /// The status; only the expiry is read.
    #[serde(default)]
    pub status: StatusHead,
}

/// The expiry part of a credential's status.
#[derive(Deserialize, Default)]
pub struct StatusHead {
    /// RFC 3339 expiry, absent when the plugin gave none.
    #[serde(rename = "expirationTimestamp", default)]
    pub expiration_timestamp: Option<String>,
}

impl CredentialHead {
    /// Reads the head of a stored credential.
    pub fn parse(json: &str) -> Option<CredentialHead> {
        serde_json::from_str(json).ok()
    }

    /// The reported expiry, if it parses (as kubectl parses it: [`rfc3339`]).
    pub fn expiry(&self) -> Option<Timestamp> {
        self.status.expiration_timestamp.as_deref().and_then(|t| rfc3339::parse(t).ok())
    }
}

/// Why the plugin's output was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCredential(pub String);

impl std::fmt::Display for InvalidCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidCredential {}

/// A plugin's output that is a usable ExecCredential.
#[derive(Debug, Clone)]
pub struct ValidCredential {
    /// The credential as a JSON object, field order kept.
    pub value: serde_json::Value,
    /// Its apiVersion.
    pub api_version: String,
    /// The expiry it reported, if any.
    pub reported_expiry: Option<Timestamp>,
    /// Whether it carries a client certificate rather than a token.
    pub is_client_cert: bool,
}

/// Checks that `output` is an ExecCredential with a token or a client
/// certificate/key pair. The error never quotes what could be a secret: it
/// says what was missing, describes output that is not JSON
/// ([`describe_output`]) and shows a field's value only when it has the
/// shape that field should have ([`shown_if`]).
pub fn validate(output: &[u8]) -> Result<ValidCredential, InvalidCredential> {
    let value: serde_json::Value = serde_json::from_slice(output)
        .map_err(|e| InvalidCredential(format!("its output is not JSON ({e}): {}", describe_output(output))))?;
    let obj = value
        .as_object()
        .ok_or_else(|| InvalidCredential("its output is JSON but not an object (expected an ExecCredential)".into()))?;
    let kind = obj.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    if kind != "ExecCredential" {
        return Err(InvalidCredential(format!(
            "its output has kind {}, expected 'ExecCredential'",
            shown_if(kind, looks_like_kind)
        )));
    }
    let api_version = obj.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("").to_string();
    if !api_version.starts_with(API_GROUP) {
        return Err(InvalidCredential(format!(
            "its output has apiVersion {}, expected '{API_GROUP}v1' or '{API_GROUP}v1beta1'",
            shown_if(&api_version, looks_like_api_version)
        )));
    }
    let status = obj.get("status").and_then(|s| s.as_object()).ok_or_else(|| {
        InvalidCredential("its ExecCredential has no status (no token, no client certificate)".into())
    })?;
    let non_empty = |field: &str| status.get(field).and_then(|v| v.as_str()).is_some_and(|s| !s.is_empty());
    let has_token = non_empty("token");
    let has_cert = non_empty("clientCertificateData") && non_empty("clientKeyData");
    if !has_token && !has_cert {
        return Err(InvalidCredential(
            "its ExecCredential has neither status.token nor status.clientCertificateData with status.clientKeyData"
                .into(),
        ));
    }
    let reported_expiry = match status.get("expirationTimestamp") {
        None | Some(serde_json::Value::Null) => None,
        // An empty string is what kubectl refuses too (Go's time.Parse fails).
        Some(serde_json::Value::String(s)) => Some(rfc3339::parse(s).map_err(|e| {
            InvalidCredential(format!(
                "its status.expirationTimestamp {} is not a time kubectl accepts ({e}; expected RFC 3339 such as '2026-01-02T15:04:05Z')",
                shown_if(s, looks_like_time)
            ))
        })?),
        Some(_) => return Err(InvalidCredential("its status.expirationTimestamp is not a string".into())),
    };
    Ok(ValidCredential { value, api_version, reported_expiry, is_client_cert: !has_token })
}

/// Describes output that is not JSON without quoting any of it: a bare
/// token, a note followed by the credential (`Note: {"status":{"token":…`)
/// or a credential cut short all hold a secret, and a help text or an HTML
/// page cannot be told apart from them safely. What is said — the length,
/// the lines, the kind of the first bytes and where a JSON object starts —
/// is enough to tell a plugin that printed something before its JSON from
/// one that printed no JSON at all.
pub fn describe_output(output: &[u8]) -> String {
    if output.is_empty() {
        return "it printed nothing".into();
    }
    let lines = output.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    let start = output.iter().position(|b| !b.is_ascii_whitespace());
    let first = match start.map(|i| output[i]) {
        None => "only whitespace".to_string(),
        Some(b'{' | b'[') => "JSON that is cut off or malformed".to_string(),
        Some(b'<') => "'<' (an HTML or XML page?)".to_string(),
        Some(b) if b.is_ascii_alphanumeric() => "letters or digits".to_string(),
        Some(b) if b.is_ascii_punctuation() => format!("the punctuation '{}'", b as char),
        Some(b) if b.is_ascii() => "a control character".to_string(),
        Some(_) => {
            if std::str::from_utf8(&output[start.unwrap_or(0)..]).is_ok() {
                "non-ASCII text".to_string()
            } else {
                "bytes that are not UTF-8 text".to_string()
            }
        }
    };
    let mut described =
        format!("{} bytes on {lines} line{}, beginning with {first}", output.len(), if lines == 1 { "" } else { "s" });
    if let Some(at) = output.iter().position(|&b| b == b'{')
        && Some(at) != start
    {
        described.push_str(&format!(
            "; a JSON object starts at byte {at} (did the plugin print a note on stdout before its ExecCredential? notes belong on stderr)"
        ));
    }
    described.push_str(" — not shown, as it may hold a token");
    described
}

/// `value` quoted when `shape` says it is what the field should look like,
/// else only described: a field can hold anything, a token included.
fn shown_if(value: &str, shape: fn(&str) -> bool) -> String {
    if value.is_empty() {
        "'' (empty or missing)".into()
    } else if shape(value) {
        format!("'{value}'")
    } else {
        format!(
            "(a {}-character value, not shown: it does not look like one and may hold a secret)",
            value.chars().count()
        )
    }
}

/// A Kubernetes kind: a capitalised word (`Status`, `ExecCredentials`).
fn looks_like_kind(s: &str) -> bool {
    s.len() <= 40 && s.starts_with(|c: char| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphabetic())
}

/// An apiVersion: `[group/]v1`, `v1beta1`, `v2alpha3`.
fn looks_like_api_version(s: &str) -> bool {
    let version = s.rsplit_once('/').map_or(s, |(group, v)| {
        if group.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-') { v } else { "" }
    });
    s.len() <= 64
        && version.strip_prefix('v').is_some_and(|rest| {
            let digits = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            digits.len() < rest.len()
                && ["", "alpha", "beta"].iter().any(|stage| {
                    digits.strip_prefix(stage).is_some_and(|n| {
                        if stage.is_empty() {
                            n.is_empty()
                        } else {
                            !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())
                        }
                    })
                })
        })
}

/// Something meant as a time: a year and a dash first, time characters only.
fn looks_like_time(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() <= 64
        && b.len() > 5
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && s.chars().all(|c| c.is_ascii_alphanumeric() || ":.,+- ".contains(c))
}

/// Where an entry's expiry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpirySource {
    /// The plugin reported it.
    Reported,
    /// The plugin reported none (or one far in the past): default TTL.
    DefaultTtl,
}

/// Decides the expiry kcc stores: the reported one, or `now + ttl` when
/// there is none or it lies more than `threshold` in the past (Go's zero
/// time `0001-01-01T00:00:00Z`). A credential that expired recently keeps its
/// expiry: it is expired, not "without expiry".
pub fn effective_expiry(
    reported: Option<Timestamp>,
    now: Timestamp,
    threshold: SignedDuration,
    ttl: SignedDuration,
) -> (Timestamp, ExpirySource) {
    match reported {
        Some(t) if now.duration_since(t) <= threshold => (t, ExpirySource::Reported),
        _ => (now.checked_add(ttl).unwrap_or(Timestamp::MAX), ExpirySource::DefaultTtl),
    }
}

/// Whether a credential expiring at `expiry` may still be served at `now`.
pub fn is_fresh(expiry: Timestamp, now: Timestamp, margin: SignedDuration) -> bool {
    expiry.duration_since(now) > margin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_info_is_read() {
        let info = ExecInfo::parse(Some(
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"server":"https://x"},"interactive":false}}"#,
        ));
        assert_eq!(info.api_version.as_deref(), Some("client.authentication.k8s.io/v1"));
        assert_eq!(info.server.as_deref(), Some("https://x"));
        assert_eq!(info.interactive, Some(false));
        assert_eq!(ExecInfo::parse(Some("garbage")), ExecInfo::default());
    }

    #[test]
    fn fields_are_quoted_only_when_they_have_their_shape() {
        assert!(looks_like_kind("Status") && !looks_like_kind("kcc-test-secret") && !looks_like_kind("eyJhbGciOi1"));
        for good in ["v1", "v1beta1", "client.authentication.k8s.io/v2alpha3", "apps/v1"] {
            assert!(looks_like_api_version(good), "{good}");
        }
        for bad in ["kcc-test-secret-token", "v1x", "v", "a/b/vbeta", "eyJhbGciOiJSUzI1NiJ9/v1x", "v1alpha"] {
            assert!(!looks_like_api_version(bad), "{bad}");
        }
        assert!(looks_like_time("2026-13-01T00:00:00Z") && !looks_like_time("kcc-test-secret-token-7f3a9c"));
        let err = validate(br#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"t","expirationTimestamp":"2026-02-30T00:00:00Z"}}"#).unwrap_err().0;
        assert!(err.contains("'2026-02-30T00:00:00Z'") && err.contains("day out of range"), "{err}");
    }

    #[test]
    fn zero_and_absent_expiry_get_the_default_ttl() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let day = SignedDuration::from_hours(24);
        let hour = SignedDuration::from_hours(1);
        let zero: Timestamp = "0001-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(effective_expiry(Some(zero), now, day, hour).1, ExpirySource::DefaultTtl);
        assert_eq!(effective_expiry(None, now, day, hour), (now + hour, ExpirySource::DefaultTtl));
        let recent = now - SignedDuration::from_mins(5);
        assert_eq!(effective_expiry(Some(recent), now, day, hour), (recent, ExpirySource::Reported));
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        assert!(validate(b"").is_err());
        let html = validate(b"<html>secret-part</html>").unwrap_err().0;
        assert!(!html.contains("secret-part") && html.contains("HTML") && html.contains("24 bytes"), "{html}");
        let cut = validate(br#" {"status":{"token":"secret-part"#).unwrap_err().0;
        assert!(!cut.contains("secret-part") && cut.contains("cut off"), "{cut}");
        let note = validate(b"Note: {\"status\":{\"token\":\"secret-part\"}}").unwrap_err().0;
        assert!(!note.contains("secret-part") && note.contains("a JSON object starts at byte 6"), "{note}");
        assert!(
            validate(br#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{}}"#)
                .is_err()
        );
        let ok = validate(
            br#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"t"}}"#,
        );
        assert!(ok.is_ok());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Any JSON value, small.
        fn json() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::Bool),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<f64>().prop_map(serde_json::Value::from),
                "\\PC{0,8}".prop_map(serde_json::Value::String),
                prop::sample::select(vec!["", "t", "2026-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-99-99T"])
                    .prop_map(|s| serde_json::Value::String(s.into())),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                    prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// Something shaped like an ExecCredential, with any field possibly wrong.
        fn almost_a_credential() -> impl Strategy<Value = serde_json::Value> {
            let status_field = prop::sample::select(vec![
                "token",
                "expirationTimestamp",
                "clientCertificateData",
                "clientKeyData",
                "other",
            ]);
            (
                prop_oneof![Just(serde_json::json!("ExecCredential")), json()],
                prop_oneof![Just(serde_json::json!("client.authentication.k8s.io/v1")), json()],
                prop_oneof![
                    prop::collection::btree_map(status_field, json(), 0..5)
                        .prop_map(|m| serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.into(), v)).collect())),
                    json(),
                ],
            )
                .prop_map(|(kind, api, status)| serde_json::json!({"kind": kind, "apiVersion": api, "status": status}))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                let _ = validate(&bytes);
                let text = String::from_utf8_lossy(&bytes);
                let _ = CredentialHead::parse(&text).map(|h| h.expiry());
                let _ = ExecInfo::parse(Some(&text));
            }

            #[test]
            fn almost_credentials_are_judged_without_panicking(value in almost_a_credential()) {
                let bytes = serde_json::to_vec(&value).unwrap();
                if let Ok(valid) = validate(&bytes) {
                    prop_assert!(valid.api_version.starts_with(API_GROUP));
                    let status = &value["status"];
                    let has = |f: &str| status[f].as_str().is_some_and(|s| !s.is_empty());
                    prop_assert!(has("token") || (has("clientCertificateData") && has("clientKeyData")));
                }
                let text = String::from_utf8_lossy(&bytes);
                let _ = CredentialHead::parse(&text).map(|h| h.expiry());
                let _ = ExecInfo::parse(Some(&text));
            }
        }
    }
}
