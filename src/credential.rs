//! The client-go exec credential protocol: what kubectl tells the plugin
//! (`KUBERNETES_EXEC_INFO`), what the plugin must print (`ExecCredential`),
//! and when a printed credential stops being worth serving.
//!
//! Only what kcc needs is modelled; the credential itself is kept as the
//! plugin printed it, so fields kcc does not know reach kubectl untouched.

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

    /// The reported expiry, if it parses.
    pub fn expiry(&self) -> Option<Timestamp> {
        self.status.expiration_timestamp.as_deref().and_then(|t| t.parse().ok())
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
/// certificate/key pair. The error never quotes a secret: it says what was
/// missing and shows only the start of output that is not JSON at all.
pub fn validate(output: &[u8]) -> Result<ValidCredential, InvalidCredential> {
    let value: serde_json::Value = serde_json::from_slice(output)
        .map_err(|e| InvalidCredential(format!("its output is not JSON ({e}); it began with: {}", preview(output))))?;
    let obj = value
        .as_object()
        .ok_or_else(|| InvalidCredential("its output is JSON but not an object (expected an ExecCredential)".into()))?;
    let kind = obj.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    if kind != "ExecCredential" {
        return Err(InvalidCredential(format!("its output has kind '{kind}', expected 'ExecCredential'")));
    }
    let api_version = obj.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("").to_string();
    if !api_version.starts_with(API_GROUP) {
        return Err(InvalidCredential(format!(
            "its output has apiVersion '{api_version}', expected '{API_GROUP}v1' or '{API_GROUP}v1beta1'"
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
        Some(serde_json::Value::String(s)) if s.is_empty() => None,
        Some(serde_json::Value::String(s)) => Some(s.parse::<Timestamp>().map_err(|e| {
            InvalidCredential(format!("its status.expirationTimestamp '{s}' is not an RFC 3339 time ({e})"))
        })?),
        Some(_) => return Err(InvalidCredential("its status.expirationTimestamp is not a string".into())),
    };
    Ok(ValidCredential { value, api_version, reported_expiry, is_client_cert: !has_token })
}

/// Shows the start of non-JSON output so the user can see what the plugin
/// printed instead (a help text, an HTML error page, a prompt). Output that
/// parsed as JSON is never quoted: it could hold a secret — and neither is
/// output that merely starts like JSON: a credential cut short (a plugin
/// killed mid-write, a full pipe) is not valid JSON but still holds its token.
fn preview(output: &[u8]) -> String {
    const MAX: usize = 80;
    if looks_like_json(output) {
        return "'{…' (not shown: it looks like cut-off JSON and may hold a secret)".into();
    }
    let text = String::from_utf8_lossy(&output[..output.len().min(MAX * 4)]);
    let mut shown: String = text.chars().take(MAX).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().count() > MAX || output.len() > MAX * 4 {
        shown.push('…');
    }
    if output.is_empty() { "(nothing)".into() } else { format!("'{}'", shown.trim_end()) }
}

/// Whether `output` starts like a JSON object or array (after whitespace).
fn looks_like_json(output: &[u8]) -> bool {
    matches!(output.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{' | b'['))
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
        assert!(validate(b"<html>").unwrap_err().0.contains("<html>"));
        let cut = validate(br#" {"status":{"token":"secret-part"#).unwrap_err().0;
        assert!(!cut.contains("secret-part") && cut.contains("cut-off JSON"), "{cut}");
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
