//! The cache key: which calls may share a cached credential.
//!
//! A key must never let one identity's credential be served for another, so
//! it covers everything that can change the identity: the plugin command and
//! every argument, the values of the `KUBE_CREDENTIAL_CACHE_CACHEKEY_ENV_LIST`
//! variables, the ExecCredential apiVersion kubectl asks for, the server URL
//! (when kubectl provides cluster info) and `KUBE_CREDENTIAL_CACHE_USER`.
//!
//! It also names keyring entries and shows up in `kcc clear`/`kcc doctor`, so
//! it stays readable. Format (one line, values JSON-quoted):
//!
//! ```text
//! user="alice@prod" server="https://ABC.gr7.eu-west-1.eks.amazonaws.com" exec="aws" api="v1beta1" id=3f2a…(32 hex)
//! ```
//!
//! `id` is the first 128 bits of a SHA-256 over a length-prefixed encoding of
//! all the inputs above, so two calls that differ in anything get different
//! keys even when the readable part is the same. The Go kcc's keys
//! (`user="…" server="…"` alone, or the command line plus ` # env: …`) are
//! recognised by [`is_go_key`] but never served: they ignore args and
//! apiVersion, the very confusions this key exists to prevent.

use std::ffi::{OsStr, OsString};

use sha2::{Digest, Sha256};

use crate::credential::{API_GROUP, ExecInfo};

/// Everything that goes into a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInputs<'a> {
    /// The plugin command as written in the kubeconfig.
    pub command: &'a OsStr,
    /// The plugin's arguments.
    pub args: &'a [OsString],
    /// `(name, value)` of each variable in the key env list, in list order.
    pub env: Vec<(String, Option<OsString>)>,
    /// What kubectl said in `KUBERNETES_EXEC_INFO`.
    pub exec_info: &'a ExecInfo,
    /// `KUBE_CREDENTIAL_CACHE_USER`, or None.
    pub user: Option<OsString>,
}

/// A computed cache key with its readable parts, for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// The whole key, as stored.
    pub text: String,
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn bytes_of(s: &OsStr) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::borrow::Cow::Borrowed(s.as_bytes())
    }
    #[cfg(not(unix))]
    {
        std::borrow::Cow::Owned(s.to_string_lossy().into_owned().into_bytes())
    }
}

/// A SHA-256 over tagged, length-prefixed fields (so no two different
/// field lists hash alike), cut to 128 bits in hex: the cache key's id and
/// the identity fingerprint, which must never change for the same inputs
/// (stored entries are found by them).
pub(crate) struct TaggedDigest(Sha256);

impl TaggedDigest {
    /// Starts a digest whose first field names its version.
    pub(crate) fn new(version: &[u8]) -> TaggedDigest {
        let mut d = TaggedDigest(Sha256::new());
        d.field(b'V', Some(version));
        d
    }

    /// Adds one field: its tag, then absent, or present with its length.
    pub(crate) fn field(&mut self, tag: u8, value: Option<&[u8]>) {
        let h = &mut self.0;
        h.update([tag]);
        match value {
            None => h.update([0]),
            Some(v) => {
                h.update([1]);
                h.update((v.len() as u64).to_le_bytes());
                h.update(v);
            }
        }
    }

    /// The first 16 bytes of the digest, in lowercase hex.
    pub(crate) fn id(self) -> String {
        self.0.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.escape_default()))
}

impl CacheKey {
    /// Computes the key for one call.
    pub fn compute(inputs: &KeyInputs<'_>) -> CacheKey {
        let mut h = TaggedDigest::new(b"kcc-key-v1");
        let mut field = |tag: u8, value: Option<&[u8]>| h.field(tag, value);
        field(b'C', Some(&bytes_of(inputs.command)));
        field(b'N', Some(&(inputs.args.len() as u64).to_le_bytes()));
        for arg in inputs.args {
            field(b'A', Some(&bytes_of(arg)));
        }
        for (name, value) in &inputs.env {
            field(b'E', Some(name.as_bytes()));
            field(b'e', value.as_deref().map(bytes_of).as_deref());
        }
        field(b'P', inputs.exec_info.api_version.as_deref().map(str::as_bytes));
        field(b'S', inputs.exec_info.server.as_deref().map(str::as_bytes));
        field(b'U', inputs.user.as_deref().map(bytes_of).as_deref());
        let id = h.id();

        let user = inputs.user.as_deref().map(OsStr::to_string_lossy).unwrap_or_default();
        let server = inputs.exec_info.server.as_deref().unwrap_or("");
        let exec = std::path::Path::new(inputs.command)
            .file_name()
            .map(OsStr::to_string_lossy)
            .unwrap_or_else(|| inputs.command.to_string_lossy());
        let api = inputs.exec_info.api_version.as_deref().unwrap_or("");
        let api = api.strip_prefix(API_GROUP).unwrap_or(api);
        CacheKey {
            text: format!(
                "user={} server={} exec={} api={} id={id}",
                quoted(&user),
                quoted(server),
                quoted(&exec),
                quoted(api)
            ),
        }
    }
}

/// The key a `kcc-cache` call computes, from the plugin command line (already
/// unwrapped, see [`crate::plugin::unwrap_self`]), the environment the call
/// sees (`env`), the key env list in force and `KUBERNETES_EXEC_INFO`.
///
/// The one place that decides which environment goes into a key: `kcc cache`
/// passes the process environment, `kcc doctor` the environment kubectl would
/// give the plugin (its own plus the kubeconfig's exec env), so doctor shows
/// exactly the key the next call will use.
pub fn for_call(
    command: &OsStr,
    args: &[OsString],
    key_env: &[String],
    env: impl Fn(&str) -> Option<OsString>,
    exec_info: &ExecInfo,
) -> CacheKey {
    CacheKey::compute(&KeyInputs {
        command,
        args,
        env: key_env.iter().map(|name| (name.clone(), env(name))).collect(),
        exec_info,
        user: env(crate::config::ENV_USER),
    })
}

/// The readable fields of a kcc key (`user`, `server`, `exec`, `api`, `id`),
/// or None for a key kcc did not write.
pub fn parse_fields(key: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = key;
    for name in ["user", "server", "exec", "api"] {
        rest = rest.strip_prefix(name)?.strip_prefix('=')?;
        let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
        let value = de.next()?.ok()?;
        rest = rest[de.byte_offset()..].strip_prefix(' ')?;
        out.push((name.to_string(), value));
    }
    let id = rest.strip_prefix("id=")?;
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    out.push(("id".into(), id.into()));
    Some(out)
}

/// Whether `key` has the Go kcc's shape: `user="…" server="…"` (with cluster
/// info) or a command line, optionally followed by ` # env: NAME='value'…`.
pub fn is_go_key(key: &str) -> bool {
    if parse_fields(key).is_some() {
        return false;
    }
    if let Some(rest) = key.strip_prefix("user=\"") {
        return rest.contains("\" server=\"") && rest.ends_with('"');
    }
    !key.is_empty()
}

/// The user and server of a Go kcc key of the form `user="…" server="…"`
/// (Go's `%q` quoting, which JSON string syntax reads for every name and URL
/// kubectl accepts). None for its command-line keys, which name neither.
pub fn parse_go_fields(key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix("user=")?;
    let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    let user = de.next()?.ok()?;
    let rest = rest[de.byte_offset()..].strip_prefix(" server=")?;
    let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    let server = de.next()?.ok()?;
    rest[de.byte_offset()..].is_empty().then_some((user, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cmd: &str, args: &[&str], server: Option<&str>, user: Option<&str>) -> CacheKey {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let info = ExecInfo { server: server.map(String::from), ..Default::default() };
        CacheKey::compute(&KeyInputs {
            command: OsStr::new(cmd),
            args: &args,
            env: vec![],
            exec_info: &info,
            user: user.map(OsString::from),
        })
    }

    #[test]
    fn key_is_readable_and_parses_back() {
        let k = key("/usr/bin/aws", &["eks"], Some("https://x"), Some("alice"));
        assert!(k.text.starts_with(r#"user="alice" server="https://x" exec="aws" api="" id="#), "{k}");
        let fields = parse_fields(&k.text).unwrap();
        assert_eq!(fields[0], ("user".into(), "alice".into()));
        assert!(!is_go_key(&k.text));
    }

    #[test]
    fn args_and_users_separate_keys() {
        assert_ne!(key("aws", &["a b"], None, None), key("aws", &["a", "b"], None, None));
        assert_ne!(key("aws", &[], Some("s"), Some("a")), key("aws", &[], Some("s"), Some("b")));
        assert_eq!(key("aws", &["x"], None, None), key("aws", &["x"], None, None));
    }

    #[test]
    fn go_keys_are_recognised() {
        assert!(is_go_key(r#"user="alice" server="https://x""#));
        assert!(is_go_key("aws --region r eks get-token --cluster-name c # env: AWS_PROFILE='p'"));
    }

    #[test]
    fn go_keys_give_user_and_server() {
        let f = parse_go_fields(r#"user="alice" server="https://x""#);
        assert_eq!(f, Some(("alice".into(), "https://x".into())));
        assert_eq!(parse_go_fields("aws eks get-token # env: AWS_PROFILE='p'"), None);
        assert_eq!(parse_go_fields(r#"user="a" server="b" exec="c" api="" id=00"#), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Strings from a tiny, hostile alphabet, so that two draws are often
        /// equal or differ by one character, plus whole tricky values.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a\" =\n\\\\é\u{0}]{0,3}",
                prop::sample::select(vec![
                    "",
                    " ",
                    "=",
                    "\"",
                    "a=b",
                    "ab",
                    "c",
                    "a",
                    "bc",
                    "日本",
                    "x\ny",
                    "user=\"a\""
                ])
                .prop_map(String::from),
            ]
        }

        /// One call's inputs: command, args, AWS_PROFILE, apiVersion, server, user.
        type Inputs = (String, Vec<String>, Option<String>, Option<String>, Option<String>, Option<String>);

        fn inputs() -> impl Strategy<Value = Inputs> {
            (
                prop::sample::select(vec!["aws", "/usr/bin/aws", "a", "ab", "a b", ""]).prop_map(String::from),
                prop::collection::vec(text(), 0..3),
                prop::option::of(text()),
                prop::option::of(text()),
                prop::option::of(text()),
                prop::option::of(text()),
            )
        }

        fn key_of(i: &Inputs) -> CacheKey {
            let (command, args, profile, api, server, user) = i;
            let args: Vec<OsString> = args.iter().map(OsString::from).collect();
            let info = ExecInfo { api_version: api.clone(), server: server.clone(), interactive: None };
            let key_env = crate::config::Config::from_lookup(|_| None).unwrap().key_env;
            let env = |name: &str| match name {
                crate::config::ENV_USER => user.as_ref().map(OsString::from),
                "AWS_PROFILE" => profile.as_ref().map(OsString::from),
                _ => None,
            };
            for_call(OsStr::new(command), &args, &key_env, env, &info)
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn keys_differ_exactly_when_inputs_differ(a in inputs(), b in inputs()) {
                let (ka, kb) = (key_of(&a), key_of(&b));
                prop_assert_eq!(ka == kb, a == b, "{:?} / {:?} → {} / {}", a, b, ka, kb);
            }

            #[test]
            fn moving_text_between_arguments_changes_the_key(a in inputs(), split in any::<prop::sample::Index>()) {
                // ["ab", "c"] vs ["a", "bc"]: same concatenation, different call.
                let joined: String = a.1.concat();
                let chars: Vec<char> = joined.chars().collect();
                let at = split.index(chars.len() + 1);
                let (left, right): (String, String) = (chars[..at].iter().collect(), chars[at..].iter().collect());
                let mut b = a.clone();
                b.1 = vec![left, right];
                prop_assert_eq!(key_of(&a) == key_of(&b), a.1 == b.1);
            }

            #[test]
            fn the_readable_part_parses_back(a in inputs()) {
                let k = key_of(&a);
                prop_assert!(!k.text.contains('\n'), "a key is one line: {}", k);
                let fields = parse_fields(&k.text).unwrap();
                prop_assert_eq!(&fields[0].1, a.5.as_deref().unwrap_or(""));
                prop_assert_eq!(&fields[1].1, a.4.as_deref().unwrap_or(""));
                prop_assert!(!is_go_key(&k.text));
            }
        }
    }
}
