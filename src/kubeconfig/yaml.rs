//! A small YAML emitter for kubeconfigs, written so that kubectl reads back
//! exactly the values kcc parsed.
//!
//! Why not `serde_yml::to_string`: serde_yml 0.0.13 (a shim over noyalib)
//! emits YAML-1.1 booleans bare — a user named `on` comes out as `name: on`,
//! an env value `"yes"` as `value: yes` — and kubectl, which reads kubeconfigs
//! with YAML 1.1 rules, turns those into booleans and refuses the whole file
//! (`json: cannot unmarshal bool into Go struct field …`). It also drops the
//! final newline and leaves trailing spaces. Post-processing its output would
//! mean re-parsing YAML with regexes; walking the parsed [`Value`] ourselves
//! is about as much code and is correct by construction.
//!
//! The rule is simple: a string is written plain only when it is *provably*
//! a plain, safe scalar under both YAML 1.1 and 1.2 — a conservative
//! character set, no indicator at the start, no `: ` or ` #` inside, and
//! nothing a resolver could read as a boolean, null or number (`on`, `No`,
//! `~`, `0123`, `1e3`, `12:30`, `.inf`, dates…). Everything else is written
//! double-quoted with escapes. Multi-line strings in mapping values (an
//! `installHint`) become literal blocks (`|`, with an indentation indicator
//! when they start with a space or a line break, and the chomping indicator
//! that keeps their trailing newlines exact) when that is unambiguous, and
//! double-quoted otherwise. Numbers, booleans and nulls are written in the
//! forms both YAML versions agree on.
//!
//! The layout is kubectl's own: two-space indentation, sequences not indented
//! under their key (`users:\n- name: …`), `{}`/`[]` for empty collections,
//! one trailing newline. Comments are not part of the parsed value and are
//! lost; so are anchors (aliases are written out expanded, as kubectl reads
//! them).

use std::fmt::Write as _;

use serde_yml::{Mapping, Number, Value};

/// Renders `value` (a kubeconfig's root mapping) as YAML text ending in a
/// newline.
pub fn to_string(value: &Value) -> String {
    let mut out = String::with_capacity(4096);
    match value {
        Value::Mapping(m) if !m.is_empty() => write_mapping(&mut out, m, 0, false),
        Value::Sequence(s) if !s.is_empty() => write_sequence(&mut out, s, 0),
        other => {
            write_inline(&mut out, other);
            out.push('\n');
        }
    }
    out
}

/// Writes the entries of a non-empty mapping at `indent`. With `inline_first`
/// the cursor already sits after a `- ` and the first key goes there.
fn write_mapping(out: &mut String, map: &Mapping, indent: usize, inline_first: bool) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !inline_first {
            push_indent(out, indent);
        }
        write_string(out, key);
        out.push(':');
        write_after_key(out, value, indent);
    }
}

/// Writes a non-empty sequence with its dashes at `indent`.
fn write_sequence(out: &mut String, seq: &[Value], indent: usize) {
    for item in seq {
        push_indent(out, indent);
        out.push('-');
        write_item(out, item, indent);
    }
}

/// A mapping value, the cursor right after `key:`.
fn write_after_key(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            write_mapping(out, m, indent + 2, false);
        }
        // kubectl style: a sequence's dashes line up with its key.
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            write_sequence(out, s, indent);
        }
        Value::String(s) if literal_block_ok(s) => write_literal_block(out, s, indent),
        Value::Tagged(t) => {
            out.push(' ');
            out.push_str(t.tag().as_ref());
            write_after_key(out, t.value(), indent);
        }
        scalar => {
            out.push(' ');
            write_inline(out, scalar);
            out.push('\n');
        }
    }
}

/// A sequence item, the cursor right after `-` at `indent`.
fn write_item(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Mapping(m) if !m.is_empty() => {
            out.push(' ');
            write_mapping(out, m, indent + 2, true);
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            write_sequence(out, s, indent + 2);
        }
        Value::Tagged(t) => {
            out.push(' ');
            out.push_str(t.tag().as_ref());
            match t.value() {
                Value::Mapping(m) if !m.is_empty() => {
                    out.push('\n');
                    write_mapping(out, m, indent + 2, false);
                }
                inner => write_item(out, inner, indent),
            }
        }
        scalar => {
            out.push(' ');
            write_inline(out, scalar);
            out.push('\n');
        }
    }
}

/// A scalar (or empty collection) on the current line.
fn write_inline(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Mapping(_) => out.push_str("{}"),
        Value::Sequence(_) => out.push_str("[]"),
        Value::Tagged(t) => {
            out.push_str(t.tag().as_ref());
            out.push(' ');
            write_inline(out, t.value());
        }
    }
}

fn write_number(out: &mut String, n: &Number) {
    match n {
        Number::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Number::Float(f) if f.is_nan() => out.push_str(".nan"),
        Number::Float(f) if f.is_infinite() => out.push_str(if *f > 0.0 { ".inf" } else { "-.inf" }),
        // `{:?}` keeps a `.0` on whole numbers (`1.0`, not `1`) and uses
        // `1e300`-style exponents, both read as floats by YAML 1.1 and 1.2.
        Number::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
    }
}

/// A string as a plain scalar when provably safe, else double-quoted.
fn write_string(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else {
        write_double_quoted(out, s);
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Words any YAML 1.1 or 1.2 resolver reads as a boolean or null (compared
/// case-insensitively, which also covers odd casings like `nO` for safety).
const SPECIAL_WORDS: &[&str] = &["y", "yes", "n", "no", "on", "off", "true", "false", "null", "~"];

/// Whether `s` may be written as a plain scalar and read back as the same
/// string by YAML 1.1 (kubectl) and YAML 1.2 (serde_yml) alike.
pub fn is_plain_safe(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else { return false };
    let first_ok = first.is_ascii_alphanumeric()
        || first == b'/'
        || first == b'_'
        || s.starts_with("./")
        || s.starts_with("../")
        // `--region`, `-v`: a dash followed by a letter starts no sequence
        // item, document marker or number.
        || (first == b'-' && s.trim_start_matches('-').len() + 2 >= s.len() && s.trim_start_matches('-').starts_with(|c: char| c.is_ascii_alphabetic()));
    if !first_ok || s.ends_with(' ') || s.ends_with(':') || s.contains(": ") || s.contains(" #") {
        return false;
    }
    let chars_ok = bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b" -_./:@+=,;~%#".contains(&b));
    if !chars_ok {
        return false;
    }
    if SPECIAL_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        return false;
    }
    // Anything starting with a digit made only of the characters decimal
    // numbers, exponents, sexagesimals and timestamps use is quoted, and so
    // are hex/octal/binary literals. That also quotes some harmless strings
    // (an all-digit UUID); being wrong the other way would change what
    // kubectl reads.
    if first.is_ascii_digit()
        && (bytes.iter().all(|&b| b.is_ascii_digit() || b"._:+- eEtTzZ".contains(&b))
            || (first == b'0' && bytes.get(1).is_some_and(|b| b"xXoObB".contains(b))))
    {
        return false;
    }
    true
}

/// Double-quoted scalar: printable characters as they are (UTF-8 included),
/// everything YAML calls non-printable or a line break escaped.
fn write_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c if is_yaml_printable(c) => out.push(c),
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
}

/// YAML's `c-printable` minus the BOM (which a reader may strip).
fn is_yaml_printable(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFEFE | 0xFF00..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Whether `s` can be a literal block (`|`) with its exact content: it has a
/// line break, at least one non-empty line, only printable characters (no
/// tabs or carriage returns) and no line with trailing spaces, which a block
/// would keep but editors and readers mangle.
fn literal_block_ok(s: &str) -> bool {
    s.contains('\n')
        && s.chars().any(|c| c != '\n')
        && s.chars().all(|c| c == '\n' || (c != '\t' && is_yaml_printable(c)))
        && s.split('\n').all(|line| !line.ends_with(' '))
}

/// `key: |…` with the content indented two spaces deeper than the key.
fn write_literal_block(out: &mut String, s: &str, indent: usize) {
    out.push_str(" |");
    // Auto-detection of the indentation would misread content that starts
    // with spaces or empty lines; an explicit indicator settles it.
    if s.starts_with(' ') || s.starts_with('\n') {
        out.push('2');
    }
    let body = s.trim_end_matches('\n');
    match s.len() - body.len() {
        0 => out.push('-'),
        1 => {}
        _ => out.push('+'),
    }
    out.push('\n');
    for line in body.split('\n') {
        if !line.is_empty() {
            push_indent(out, indent + 2);
            out.push_str(line);
        }
        out.push('\n');
    }
    // Keep-chomping: the trailing line breaks beyond the first are empty lines.
    for _ in 1..(s.len() - body.len()) {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    #![allow(deprecated)]
    use super::*;

    fn round_trip(v: &Value) -> Value {
        serde_yml::from_str(&to_string(v)).unwrap()
    }

    #[test]
    fn awkward_strings_are_quoted() {
        for s in [
            "on",
            "On",
            "yes",
            "NO",
            "off",
            "y",
            "n",
            "true",
            "null",
            "~",
            "",
            " a",
            "a ",
            "1.0",
            "1e3",
            "0123",
            "0x1F",
            "12:30",
            "2001-12-14",
            ".inf",
            ".NaN",
            "-",
            "- a",
            "a: b",
            "a #b",
            "#",
            "!x",
            "&a",
            "*a",
            "{",
            "[",
            "'",
            "\"",
            "@x",
            "`x",
            "%x",
            "|",
            ">",
            "?",
            "a:",
            "1_000",
            "0b101",
            "+1",
            "-1",
            "---x",
            "-.inf",
            "--1",
        ] {
            assert!(!is_plain_safe(s), "{s:?} must be quoted");
            let v = Value::String(s.to_string());
            assert_eq!(round_trip(&v), v, "{s:?}");
        }
    }

    #[test]
    fn ordinary_strings_stay_plain() {
        for s in [
            "kubelogin",
            "https://example.com:443/x#frag",
            "arn:aws:eks:us-west-2:111122223333:cluster/prod",
            "./bin/get-token",
            "client.authentication.k8s.io/v1beta1",
            "--region",
            "6dae42f8-4368-4678-94ff-3960e28e3630",
            "vault:prod admin",
            "v1;provideClusterInfo=absent",
        ] {
            assert!(is_plain_safe(s), "{s:?}");
        }
    }

    #[test]
    fn multi_line_and_control_strings_round_trip() {
        for s in [
            "\nkubelogin is not installed.\n\nTo learn more\n",
            "a\nb",
            "a\nb\n\n\n",
            "  indented\nnext\n",
            "tab\there\n",
            "trailing \nspace",
            "\r\n",
            "\u{85}\u{2028}\u{feff}\u{7f}\u{1}",
            "ünïcødé ✓ 日本",
            "\n",
        ] {
            let mut m = Mapping::new();
            m.insert("k", Value::String(s.to_string()));
            m.insert("list", Value::Sequence(vec![Value::String(s.to_string())]));
            let v = Value::Mapping(m);
            assert_eq!(round_trip(&v), v, "{s:?}\n{}", to_string(&v));
        }
    }

    #[test]
    fn layout_is_kubectls() {
        let v: Value = serde_yml::from_str(
            "a: 1\nb:\n- name: x\n  v: [ ]\n  m: { }\n- - nested\nc:\n  d: null\n  e: true\n  f: 1.5\n",
        )
        .unwrap();
        assert_eq!(
            to_string(&v),
            "a: 1\nb:\n- name: x\n  v: []\n  m: {}\n-\n  - nested\nc:\n  d: null\n  e: true\n  f: 1.5\n"
        );
        assert_eq!(round_trip(&v), v);
    }
}
