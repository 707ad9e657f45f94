//! Expiry timestamps read exactly as kubectl reads them.
//!
//! client-go decodes `status.expirationTimestamp` into a `metav1.Time`,
//! whose `UnmarshalJSON` is `time.Parse(time.RFC3339, s)`. Go's parser is
//! not RFC 3339: it takes any number of fraction digits (using the first
//! nine), `,` as well as `.` before them, a one-digit hour, and offsets up
//! to `±24:60` (its range checks use `>`); it refuses lowercase `t`/`z`,
//! a leap second `60`, a missing offset and anything around the value.
//! Years run from 0000 to 9999 in local time, so with an offset the instant
//! can lie beyond jiff's range (`9999-12-31T23:59:59-23:59`): such an
//! instant is clamped to `Timestamp::MAX`/`MIN` — "no expiry soon" or
//! "long expired" — never an error. The rules were read from Go's
//! `time/format.go` (`parse`, `getnum`, `parseNanoseconds`) and
//! `format_rfc3339.go`, and are checked against the real kubectl by
//! `regression::timestamps_kubectl_accepts_fail_the_call`.
//!
//! It is also the cache hit's parser: a fixed layout walked once, no
//! allocation, cheaper than a general-purpose one.

use jiff::Timestamp;

/// Why a timestamp is refused. The text never quotes the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadTime(pub &'static str);

impl std::fmt::Display for BadTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Parses `s` as Go's `time.Parse(time.RFC3339, s)` would.
pub fn parse(s: &str) -> Result<Timestamp, BadTime> {
    let b = s.as_bytes();
    let mut at = 0;
    let year = fixed(b, &mut at, 4).ok_or(BadTime("the year must be four digits"))?;
    literal(b, &mut at, b'-', "expected '-' after the year")?;
    let month = fixed(b, &mut at, 2).ok_or(BadTime("the month must be two digits"))?;
    if !(1..=12).contains(&month) {
        return Err(BadTime("month out of range"));
    }
    literal(b, &mut at, b'-', "expected '-' after the month")?;
    let day = fixed(b, &mut at, 2).ok_or(BadTime("the day must be two digits"))?;
    literal(b, &mut at, b'T', "expected 'T' between date and time (uppercase)")?;
    // Go's `getnum(value, false)`: one or two digits.
    let hour = match (digit(b, at), digit(b, at + 1)) {
        (Some(h), Some(l)) => {
            at += 2;
            h * 10 + l
        }
        (Some(h), None) => {
            at += 1;
            h
        }
        _ => return Err(BadTime("the hour must be one or two digits")),
    };
    if hour > 23 {
        return Err(BadTime("hour out of range"));
    }
    literal(b, &mut at, b':', "expected ':' after the hour")?;
    let minute = fixed(b, &mut at, 2).ok_or(BadTime("the minute must be two digits"))?;
    if minute > 59 {
        return Err(BadTime("minute out of range"));
    }
    literal(b, &mut at, b':', "expected ':' after the minute")?;
    let second = fixed(b, &mut at, 2).ok_or(BadTime("the second must be two digits"))?;
    if second > 59 {
        return Err(BadTime("second out of range (Go accepts no leap second)"));
    }
    let mut nanos: i64 = 0;
    if matches!(b.get(at), Some(b'.' | b',')) && digit(b, at + 1).is_some() {
        at += 1;
        let mut count = 0;
        while let Some(d) = digit(b, at) {
            if count < 9 {
                nanos = nanos * 10 + d;
            }
            count += 1;
            at += 1;
        }
        for _ in count..9 {
            nanos *= 10;
        }
    }
    let offset: i64 = match b.get(at) {
        Some(b'Z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let (Some(hh), Some(b':'), Some(mm)) = (fixed_at(b, at + 1), b.get(at + 3), fixed_at(b, at + 4)) else {
                return Err(BadTime("the offset must be 'Z' or ±hh:mm"));
            };
            if hh > 24 || mm > 60 {
                return Err(BadTime("offset out of range"));
            }
            at += 6;
            let seconds = (hh * 60 + mm) * 60;
            if sign == b'-' { -seconds } else { seconds }
        }
        _ => return Err(BadTime("the offset is missing ('Z' or ±hh:mm, uppercase Z)")),
    };
    if at != b.len() {
        return Err(BadTime("extra text after the time"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(BadTime("day out of range"));
    }
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Ok(clamp(local - offset, nanos))
}

/// The instant `seconds` + `nanos` since the Unix epoch, clamped to jiff's range.
fn clamp(seconds: i64, nanos: i64) -> Timestamp {
    if seconds > Timestamp::MAX.as_second() {
        return Timestamp::MAX;
    }
    if seconds < Timestamp::MIN.as_second() {
        return Timestamp::MIN;
    }
    // In range but at the very edge a nanosecond part can still overflow.
    Timestamp::new(seconds, nanos as i32).unwrap_or(if seconds > 0 { Timestamp::MAX } else { Timestamp::MIN })
}

fn digit(b: &[u8], at: usize) -> Option<i64> {
    b.get(at).filter(|c| c.is_ascii_digit()).map(|c| i64::from(c - b'0'))
}

/// `n` digits at `at` as a number.
fn fixed_n(b: &[u8], at: usize, n: usize) -> Option<i64> {
    (0..n).try_fold(0, |acc, i| Some(acc * 10 + digit(b, at + i)?))
}

fn fixed_at(b: &[u8], at: usize) -> Option<i64> {
    fixed_n(b, at, 2)
}

fn fixed(b: &[u8], at: &mut usize, n: usize) -> Option<i64> {
    let v = fixed_n(b, *at, n)?;
    *at += n;
    Some(v)
}

fn literal(b: &[u8], at: &mut usize, want: u8, why: &'static str) -> Result<(), BadTime> {
    if b.get(*at) != Some(&want) {
        return Err(BadTime(why));
    }
    *at += 1;
    Ok(())
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard
/// Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Timestamp {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn agrees_with_jiff_on_ordinary_times() {
        for s in [
            "2026-12-06T22:30:33Z",
            "1970-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "2096-02-29T12:00:00.5+05:30",
            "2000-03-01T00:00:00.123456789-08:00",
            "1999-12-31T23:59:59.000000001Z",
            "2026-06-30T01:02:03-00:00",
        ] {
            assert_eq!(ok(s), s.parse::<Timestamp>().unwrap(), "{s}");
        }
    }

    #[test]
    fn takes_what_go_takes() {
        assert_eq!(ok("9999-12-31T23:59:59Z"), Timestamp::MAX, "beyond jiff: clamped");
        assert_eq!(ok("9999-12-31T23:59:59-23:59"), Timestamp::MAX);
        assert_eq!(ok("2099-01-01T00:00:00.1234567890123Z"), ok("2099-01-01T00:00:00.123456789Z"));
        assert_eq!(ok("2099-01-01T00:00:00,5Z"), ok("2099-01-01T00:00:00.5Z"));
        assert_eq!(ok("2099-01-01T1:00:00Z"), ok("2099-01-01T01:00:00Z"));
        assert_eq!(ok("2099-01-01T00:00:00+24:00"), ok("2098-12-31T00:00:00Z"));
        assert_eq!(ok("2099-01-01T00:00:00+23:60"), ok("2098-12-31T00:00:00Z"));
        assert_eq!(ok("0000-01-01T00:00:00Z").as_second(), -62_167_219_200);
    }

    #[test]
    fn refuses_what_go_refuses() {
        for s in [
            "",
            "2099-01-01t00:00:00Z",
            "2099-01-01T00:00:00z",
            "2099-01-01T00:00:60Z",
            "2099-01-01T24:00:00Z",
            "2099-01-01T00:60:00Z",
            "2099-1-01T00:00:00Z",
            "2099-01-1T00:00:00Z",
            "2099-13-01T00:00:00Z",
            "2099-00-01T00:00:00Z",
            "2099-01-32T00:00:00Z",
            "2099-02-29T00:00:00Z",
            "2099-01-00T00:00:00Z",
            "2099-01-01T00:00:00+25:00",
            "2099-01-01T00:00:00+23:61",
            "2099-01-01T00:00:00+0530",
            "2099-01-01T00:00:00+05",
            "2099-01-01T00:00:00",
            "2099-01-01 00:00:00Z",
            "2099-01-01T00:00:00Z ",
            " 2099-01-01T00:00:00Z",
            "+2099-01-01T00:00:00Z",
            "20990-01-01T00:00:00Z",
            "2099-01-01T00:00:00.Z",
            "2099-01-01T123:00:00Z",
            "２０９９-01-01T00:00:00Z",
        ] {
            assert!(parse(s).is_err(), "{s:?} is accepted");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn any_text_is_judged_without_panicking(s in "\\PC{0,40}") {
                let _ = parse(&s);
            }

            #[test]
            fn every_instant_jiff_prints_reads_back(secs in -62_135_596_800i64..253_402_300_799, nanos in 0i32..1_000_000_000) {
                let t = Timestamp::new(secs, nanos).unwrap();
                prop_assert_eq!(parse(&t.to_string()).unwrap(), t);
            }
        }
    }
}
