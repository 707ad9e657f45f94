//! A bound on YAML alias expansion, checked before the YAML parser runs.
//!
//! serde_yml 0.0.13 (noyalib) expands every alias into a copy of its
//! anchored node and stops only at 32 MB of *estimated* expansion: a
//! "billion laughs" kubeconfig (anchors of nine aliases of the previous
//! anchor) took 1.2 GB and 11 s to refuse, and one level less (531,441
//! nodes) was accepted and would have been written back expanded by
//! `kcc inject`. serde_yml exposes no parser limits, so kcc estimates the
//! expansion from the text itself: each anchor's weight is the length of
//! its text plus the weight of every alias inside it; the expansion is the
//! sum of the weights of all aliases. Real kubeconfigs that use anchors
//! (one `exec` block shared by a few users) expand by kilobytes.
//!
//! The scan is deliberately rough and errs towards counting too much: an
//! anchor's extent runs to the next line indented no deeper than the line
//! it is on (a `key: &a` line keeps a same-indented `- item` list), or to
//! the end of the flow collection it is in; quoted scalars, comments and
//! block scalars are skipped. Over-counting can only refuse a file whose
//! aliases already expand to about [`LIMIT`] bytes.

/// The most alias expansion kcc reads, in bytes of anchored text.
pub const LIMIT: u64 = 1 << 20;

/// An anchor whose extent is still open.
struct Open {
    name: String,
    /// Indentation of the line the anchor is on.
    indent: usize,
    /// Whether that line is a `- ` sequence item (a same-indented item ends it).
    item_line: bool,
    /// Flow depth at the anchor; the anchor ends when the depth drops below it.
    flow: usize,
    start: usize,
    aliased: u64,
}

/// Checks `text`'s alias expansion; the error says how large it is.
pub fn check(text: &str) -> Result<(), String> {
    let total = expansion(text);
    if total > LIMIT {
        return Err(format!(
            "its YAML aliases expand to more than {} KiB (at least {} KiB: nested anchors and aliases, a \"billion laughs\"); write the repeated parts out, or use fewer nested aliases",
            LIMIT >> 10,
            total >> 10
        ));
    }
    Ok(())
}

/// The estimated bytes the aliases in `text` expand to (saturating).
pub fn expansion(text: &str) -> u64 {
    if !text.contains('*') {
        return 0;
    }
    let bytes = text.as_bytes();
    let mut done: Vec<(String, u64)> = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    let mut total: u64 = 0;
    let mut flow = 0usize;
    // Lines indented deeper than this are block scalar content.
    let mut block_scalar: Option<usize> = None;
    let mut i = 0;
    let mut at_line_start = true;
    let mut line_indent = 0;
    let mut line_is_item = false;
    let close = |o: Open, end: usize, done: &mut Vec<(String, u64)>| {
        let weight = ((end - o.start) as u64).saturating_add(o.aliased);
        done.retain(|(n, _)| *n != o.name);
        done.push((o.name, weight));
    };
    while i < bytes.len() {
        if at_line_start {
            let indent = bytes[i..].iter().take_while(|&&b| b == b' ').count();
            let rest = &bytes[i + indent..];
            let blank = rest.first().is_none_or(|&b| b == b'\n' || b == b'\r' || b == b'#');
            if let Some(min) = block_scalar {
                if blank || indent > min {
                    i = next_line(bytes, i);
                    continue;
                }
                block_scalar = None;
            }
            if blank {
                i = next_line(bytes, i);
                continue;
            }
            line_indent = indent;
            line_is_item = rest.starts_with(b"- ") || rest == b"-" || rest.starts_with(b"-\n");
            if flow == 0 {
                while let Some(o) = open.last() {
                    let keeps = o.indent < indent || (o.indent == indent && line_is_item && !o.item_line);
                    if keeps {
                        break;
                    }
                    let o = open.pop().unwrap_or_else(|| unreachable!("last() was Some"));
                    close(o, i, &mut done);
                }
            }
            at_line_start = false;
            i += indent;
            continue;
        }
        let b = bytes[i];
        let token_start = i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'[' | b'{' | b',' | b'\n');
        match b {
            b'\n' => {
                at_line_start = true;
                i += 1;
            }
            b'#' if token_start => i = skip_line(bytes, i),
            b'"' | b'\'' if token_start => i = skip_quoted(bytes, i),
            b'[' | b'{' => {
                flow += 1;
                i += 1;
            }
            b']' | b'}' => {
                flow = flow.saturating_sub(1);
                while open.last().is_some_and(|o| o.flow > flow) {
                    let o = open.pop().unwrap_or_else(|| unreachable!("last() was Some"));
                    close(o, i, &mut done);
                }
                i += 1;
            }
            b'|' | b'>' if token_start && flow == 0 => {
                // A block scalar indicator (with optional chomping/indent digits).
                let end = bytes[i + 1..].iter().position(|&c| c == b'\n').map_or(bytes.len(), |p| i + 1 + p);
                let tail = &bytes[i + 1..end];
                let header = tail.iter().take_while(|&&c| matches!(c, b'+' | b'-' | b'0'..=b'9')).count();
                if tail[header..].iter().all(|&c| c == b' ' || c == b'\r')
                    || tail[header..].trim_ascii_start().starts_with(b"#")
                {
                    block_scalar = Some(line_indent);
                }
                i = end;
            }
            b'&' | b'*' if token_start => {
                let name_end = bytes[i + 1..]
                    .iter()
                    .position(|&c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b',' | b'[' | b']' | b'{' | b'}'))
                    .map_or(bytes.len(), |p| i + 1 + p);
                let name = String::from_utf8_lossy(&bytes[i + 1..name_end]).into_owned();
                if b == b'&' {
                    open.push(Open { name, indent: line_indent, item_line: line_is_item, flow, start: i, aliased: 0 });
                } else if let Some((_, weight)) = done.iter().rev().find(|(n, _)| *n == name) {
                    let weight = *weight;
                    total = total.saturating_add(weight);
                    for o in &mut open {
                        o.aliased = o.aliased.saturating_add(weight);
                    }
                    if total > LIMIT.saturating_mul(4) {
                        return total;
                    }
                }
                i = name_end;
            }
            _ => i += 1,
        }
    }
    total
}

/// The index just past the end of the line at `i` (its newline excluded).
fn skip_line(bytes: &[u8], i: usize) -> usize {
    bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p)
}

/// The start of the line after the one at `i`.
fn next_line(bytes: &[u8], i: usize) -> usize {
    (skip_line(bytes, i) + 1).min(bytes.len())
}

/// The index just past the quoted scalar starting at `i`.
fn skip_quoted(bytes: &[u8], i: usize) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' if quote == b'"' => j += 2,
            b'\'' if quote == b'\'' && bytes.get(j + 1) == Some(&b'\'') => j += 2,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn laughs(levels: usize) -> String {
        let mut text = String::from(
            "kind: Config\na0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..=levels {
            let aliases = vec![format!("*a{}", i - 1); 9].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{aliases}]\n"));
        }
        text
    }

    #[test]
    fn billion_laughs_is_refused_in_every_layout() {
        assert!(check(&laughs(9)).is_err());
        assert!(check(&laughs(5)).is_err(), "531,441 nodes");
        assert!(check(&laughs(2)).is_ok());
        // Block layout: a `key: &a` line followed by a same-indented list.
        let mut block = String::from("a0: &a0\n- lol\n- lol\n- lol\n- lol\n- lol\n- lol\n- lol\n- lol\n");
        for i in 1..=9 {
            block.push_str(&format!("a{i}: &a{i}\n"));
            for _ in 0..9 {
                block.push_str(&format!("- *a{}\n", i - 1));
            }
        }
        assert!(check(&block).is_err(), "{}", expansion(&block));
        // Nested mappings.
        let mut maps = String::from("a0: &a0 {x: lollollollollollol}\n");
        for i in 1..=9 {
            maps.push_str(&format!("a{i}: &a{i}\n"));
            for k in 0..9 {
                maps.push_str(&format!("  k{k}: *a{}\n", i - 1));
            }
        }
        assert!(check(&maps).is_err(), "{}", expansion(&maps));
    }

    #[test]
    fn ordinary_anchors_and_lookalikes_pass() {
        let shared = "exec: &exec\n  command: aws\n  args: [eks, get-token]\nusers:\n".to_string()
            + &(0..200).map(|i| format!("- name: u{i}\n  user:\n    exec: *exec\n")).collect::<String>();
        assert!(check(&shared).is_ok(), "{}", expansion(&shared));
        let text = "a: \"*x &y\"\nb: 'it''s *z'\nc: |\n  *a *a *a\nd: x*y&z # *a\n";
        assert_eq!(expansion(text), 0);
    }
}
