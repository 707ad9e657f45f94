//! Go's `time.ParseDuration`, exactly.
//!
//! Users of the Go kcc wrote their settings in Go's duration syntax (`30s`,
//! `1h30m`, `1.5h`, `300ms`, `0`). jiff's parser accepts most of them but also
//! forms Go rejects (`2h 30m`, `PT30S`, `1m ago`) and rejects some Go accepts
//! (`0`, `1.5h30m`, `1h1h`, `1µs`), so kcc carries its own: a value that works
//! with one tool works with the other.

use jiff::SignedDuration;

/// Why a duration did not parse; the message is shown after the variable name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(pub String);

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationError {}

/// Nanoseconds per unit, the units Go knows.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

/// Parses a Go duration string (`[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` or `0`).
pub fn parse_go_duration(input: &str) -> Result<SignedDuration, DurationError> {
    let err = |why: &str| DurationError(format!("invalid duration '{input}': {why}"));
    let mut s = input;
    let negative = if let Some(rest) = s.strip_prefix('-') {
        s = rest;
        true
    } else {
        s = s.strip_prefix('+').unwrap_or(s);
        false
    };
    if s == "0" {
        return Ok(SignedDuration::ZERO);
    }
    if s.is_empty() {
        return Err(err("empty"));
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, rest) = s.split_at(int_len);
        let (frac_part, rest) = match rest.strip_prefix('.') {
            Some(after_dot) => {
                let n = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(n)
            }
            None => ("", rest),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err("expected a number"));
        }
        let unit_len =
            rest.char_indices().find(|(_, c)| *c == '.' || c.is_ascii_digit()).map_or(rest.len(), |(i, _)| i);
        let (unit, rest) = rest.split_at(unit_len);
        if unit.is_empty() {
            return Err(err("missing unit (one of ns, us, ms, s, m, h)"));
        }
        let per_unit =
            unit_nanos(unit).ok_or_else(|| err(&format!("unknown unit '{unit}' (use ns, us, ms, s, m, h)")))?;
        let whole: u128 =
            if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| err("number too large"))? };
        let mut nanos = whole.checked_mul(per_unit).ok_or_else(|| err("overflow"))?;
        // The fraction is scaled digit by digit, as Go does, so `1.5h` is exact.
        let mut scale = per_unit;
        for digit in frac_part.bytes().take(30) {
            scale /= 10;
            // Checked: `whole * per_unit` may sit just below u128::MAX, and a
            // wrapped sum read 94522879700260684295381835.9h as 30m (fuzzing).
            nanos = nanos.checked_add(u128::from(digit - b'0') * scale).ok_or_else(|| err("overflow"))?;
        }
        total = total.checked_add(nanos).ok_or_else(|| err("overflow"))?;
        s = rest;
    }
    Ok(SignedDuration::from_nanos(signed_nanos(total, negative).ok_or_else(|| err("overflow"))?))
}

/// Applies the sign to a magnitude in nanoseconds. The range is asymmetric,
/// as Go's: `-9223372036854775808ns` (what Go prints for its most negative
/// duration) parses, `9223372036854775808ns` overflows.
fn signed_nanos(magnitude: u128, negative: bool) -> Option<i64> {
    if negative {
        0i128.checked_sub(i128::try_from(magnitude).ok()?).and_then(|n| i64::try_from(n).ok())
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Formats a duration the way Go prints one (`1h30m0s`, `30s`, `1.5s`, `0s`),
/// so diagnostics read like the settings users write.
pub fn format_go_duration(d: SignedDuration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        let (value, unit) = if n < 1_000 {
            (n as f64, "ns")
        } else if n < 1_000_000 {
            (n as f64 / 1e3, "µs")
        } else {
            (n as f64 / 1e6, "ms")
        };
        return format!("{sign}{value}{unit}");
    }
    let hours = n / 3_600_000_000_000;
    let minutes = (n / 60_000_000_000) % 60;
    let secs = (n % 60_000_000_000) as f64 / 1e9;
    let mut out = String::from(sign);
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{secs}s"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> f64 {
        parse_go_duration(s).unwrap().as_secs_f64()
    }

    #[test]
    fn accepts_what_go_accepts() {
        assert_eq!(secs("30s"), 30.0);
        assert_eq!(secs("1h"), 3600.0);
        assert_eq!(secs("1h30m"), 5400.0);
        assert_eq!(secs("1.5h"), 5400.0);
        assert_eq!(secs("1.5h30m"), 7200.0);
        assert_eq!(secs("1h1h"), 7200.0);
        assert_eq!(secs("300ms"), 0.3);
        assert_eq!(secs("0"), 0.0);
        assert_eq!(secs("0s"), 0.0);
        assert_eq!(secs("-1m"), -60.0);
        assert_eq!(secs("+5s"), 5.0);
        assert_eq!(secs(".5s"), 0.5);
        assert_eq!(secs("1µs"), 0.000_001);
        assert_eq!(secs("1μs"), 0.000_001);
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in ["", "-", "30", "1d", "2h 30m", "PT30S", "1m ago", ".s", "1.h.", "h", "1e3s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn the_extremes_parse_like_go() {
        assert_eq!(parse_go_duration("-9223372036854775808ns").unwrap().as_nanos(), i64::MIN as i128);
        assert_eq!(parse_go_duration("9223372036854775807ns").unwrap().as_nanos(), i64::MAX as i128);
        assert!(parse_go_duration("9223372036854775808ns").is_err());
        assert!(parse_go_duration("-9223372036854775809ns").is_err());
        assert_eq!(format_go_duration(SignedDuration::from_nanos(i64::MIN)), "-2562047h47m16.854775808s");
        assert!(parse_go_duration("99999999999999999999999999999999999999999999h").is_err());
    }

    #[test]
    fn a_fraction_overflowing_just_below_u128_max_is_refused_not_wrapped() {
        // 94522879700260684295381835h is u128::MAX ns less 1.43e12; .9h more wrapped to 30m.
        assert!(parse_go_duration("94522879700260684295381835.9h").is_err());
        assert!(parse_go_duration("94522879700260684295381835h").is_err(), "beyond i64 anyway");
    }

    #[test]
    fn formats_like_go() {
        let d = |s| format_go_duration(parse_go_duration(s).unwrap());
        assert_eq!(d("1h30m"), "1h30m0s");
        assert_eq!(d("30s"), "30s");
        assert_eq!(d("0"), "0s");
        assert_eq!(d("300ms"), "300ms");
        assert_eq!(d("24h"), "24h0m0s");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Units with their length in nanoseconds and how many fraction
        /// digits they take exactly.
        const UNITS: &[(&str, i128, usize)] = &[
            ("ns", 1, 0),
            ("us", 1_000, 3),
            ("µs", 1_000, 3),
            ("μs", 1_000, 3),
            ("ms", 1_000_000, 6),
            ("s", 1_000_000_000, 9),
            ("m", 60_000_000_000, 9),
            ("h", 3_600_000_000_000, 9),
        ];

        /// One `<int>[.<frac>]<unit>` part with its exact value.
        fn part() -> impl Strategy<Value = (String, i128)> {
            (0usize..UNITS.len(), 0u32..10_000, prop::option::of(0u32..1_000_000_000))
                .prop_flat_map(|(u, whole, frac)| {
                    let (unit, nanos, max_digits) = UNITS[u];
                    let digits = if max_digits == 0 { Just(None).boxed() } else { Just(frac).boxed() };
                    (Just((unit, nanos, max_digits, whole)), digits, 1..=max_digits.max(1))
                })
                .prop_map(|((unit, nanos, max_digits, whole), frac, len)| {
                    let mut text = whole.to_string();
                    let mut value = i128::from(whole) * nanos;
                    if let (Some(f), true) = (frac, max_digits > 0) {
                        let f = f % 10u32.pow(len as u32);
                        text.push_str(&format!(".{f:0len$}"));
                        value += i128::from(f) * nanos / 10i128.pow(len as u32);
                    }
                    text.push_str(unit);
                    (text, value)
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn generated_go_durations_parse_to_their_value(
                sign in prop::sample::select(vec!["", "+", "-"]),
                parts in prop::collection::vec(part(), 1..4),
            ) {
                let text = format!("{sign}{}", parts.iter().map(|(t, _)| t.as_str()).collect::<String>());
                let magnitude: i128 = parts.iter().map(|(_, v)| v).sum();
                let want = if sign == "-" { -magnitude } else { magnitude };
                prop_assert_eq!(parse_go_duration(&text).unwrap().as_nanos(), want, "{}", text);
            }

            #[test]
            fn formatting_then_parsing_is_the_identity(nanos in any::<i64>()) {
                let d = SignedDuration::from_nanos(nanos);
                let text = format_go_duration(d);
                prop_assert_eq!(parse_go_duration(&text), Ok(d), "{}", text);
            }

            #[test]
            fn arbitrary_text_never_panics(s in "\\PC{0,24}", t in "[-+0-9.nuµμmsh]{0,16}") {
                let _ = parse_go_duration(&s);
                let _ = parse_go_duration(&t);
            }

            #[test]
            fn a_foreign_character_anywhere_is_rejected(
                (text, _) in part(),
                at in any::<prop::sample::Index>(),
                junk in prop::sample::select(vec![' ', '\n', 'd', 'x', ',', '_', '/', 'e', 'w', 'y', 'H', 'S', '\u{0}']),
            ) {
                let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
                let at = boundaries[at.index(boundaries.len())];
                let bad = format!("{}{junk}{}", &text[..at], &text[at..]);
                prop_assert!(parse_go_duration(&bad).is_err(), "{:?} was accepted", bad);
            }

            #[test]
            fn numbers_without_a_unit_are_rejected(n in 1u64.., frac in "(\\.[0-9]*)?") {
                let text = format!("{}{}", n, frac);
                prop_assert!(parse_go_duration(&text).is_err(), "{:?} was accepted", text);
            }
        }
    }
}
