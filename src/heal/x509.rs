//! The two facts of an X.509 certificate that Go's crypto/x509 checks on a
//! server certificate which is itself a trusted root, and that rustls/webpki
//! never reaches for such a certificate (it stops at `CaUsedAsEndEntity`):
//! the validity period and the extended key usages. A minimal DER walk over
//! the certificate kcc was handed, nothing more; every other check is
//! webpki's ([`super::verify`]).

use rustls::pki_types::UnixTime;

/// What [`facts`] reads out of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `notBefore`, unix seconds.
    pub not_before: i64,
    /// `notAfter`, unix seconds.
    pub not_after: i64,
    /// The extended key usage OIDs (DER contents), empty without the extension.
    pub ekus: Vec<Vec<u8>>,
}

/// `id-kp-serverAuth` (1.3.6.1.5.5.7.3.1).
const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// `anyExtendedKeyUsage` (2.5.29.37.0).
const ANY_EKU: &[u8] = &[0x55, 0x1d, 0x25, 0x00];
/// `id-ce-extKeyUsage` (2.5.29.37).
const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];

/// One DER element: its tag and contents; advances `input`.
fn element<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, r) = rest.split_at_checked(n)?;
        rest = r;
        bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b))
    };
    let (body, r) = rest.split_at_checked(len)?;
    *input = r;
    Some((tag, body))
}

fn expect<'a>(input: &mut &'a [u8], tag: u8) -> Option<&'a [u8]> {
    match element(input)? {
        (t, body) if t == tag => Some(body),
        _ => None,
    }
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`) as unix seconds.
fn time(tag: u8, body: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(body).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let full = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: u32 = digits[..2].parse().ok()?;
            format!("{}{digits}", if yy < 50 { "20" } else { "19" })
        }
        (0x18, 14) => digits.to_owned(),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| full[r].parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, sec) = (n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm): jiff's Timestamp stops
    // short of 9999-12-31T23:59:59Z, RFC 5280's "no expiration" date.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Reads the validity period and extended key usages of a DER certificate.
pub fn facts(der: &[u8]) -> Option<Facts> {
    let mut input = der;
    let mut cert = expect(&mut input, 0x30)?;
    let mut tbs = expect(&mut cert, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        element(&mut tbs)?; // version
    }
    expect(&mut tbs, 0x02)?; // serialNumber
    expect(&mut tbs, 0x30)?; // signature
    expect(&mut tbs, 0x30)?; // issuer
    let mut validity = expect(&mut tbs, 0x30)?;
    let (t1, b1) = element(&mut validity)?;
    let (t2, b2) = element(&mut validity)?;
    let (not_before, not_after) = (time(t1, b1)?, time(t2, b2)?);
    expect(&mut tbs, 0x30)?; // subject
    expect(&mut tbs, 0x30)?; // subjectPublicKeyInfo
    let mut ekus = Vec::new();
    while !tbs.is_empty() {
        let (tag, body) = element(&mut tbs)?;
        if tag != 0xa3 {
            continue; // issuerUniqueID, subjectUniqueID
        }
        let mut list = body;
        let mut exts = expect(&mut list, 0x30)?;
        while !exts.is_empty() {
            let mut ext = expect(&mut exts, 0x30)?;
            let oid = expect(&mut ext, 0x06)?;
            if ext.first() == Some(&0x01) {
                element(&mut ext)?; // critical
            }
            let mut value = expect(&mut ext, 0x04)?;
            if oid == EXT_KEY_USAGE {
                let mut seq = expect(&mut value, 0x30)?;
                while !seq.is_empty() {
                    ekus.push(expect(&mut seq, 0x06)?.to_vec());
                }
            }
        }
    }
    Some(Facts { not_before, not_after, ekus })
}

/// Go's `isValid` for a leaf that is a trusted root: inside its validity
/// period at `now`, and usable for server authentication when it lists
/// extended key usages. The error is what client-go would say.
pub fn check_root_as_leaf(der: &[u8], now: UnixTime) -> Result<(), String> {
    let f = facts(der).ok_or("the server certificate cannot be parsed")?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now < f.not_before {
        return Err("the server certificate is not valid yet".into());
    }
    if now > f.not_after {
        return Err("the server certificate has expired".into());
    }
    if !f.ekus.is_empty() && !f.ekus.iter().any(|e| e == SERVER_AUTH || e == ANY_EKU) {
        return Err("the server certificate is not for server authentication (extended key usage)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_times_read_as_unix_seconds() {
        assert_eq!(time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x18, b"99991231235959Z"), Some(253_402_300_799));
        assert_eq!(time(0x17, b"7001010000Z"), None);
        assert_eq!(time(0x18, b"700101000000Z"), None);
        assert_eq!(time(0x17, b"700101000000+0100"), None);
    }

    #[test]
    fn truncated_or_foreign_input_is_none_never_a_panic() {
        assert_eq!(facts(b""), None);
        assert_eq!(facts(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(facts(&[0x30, 0x03, 0x30, 0x01]), None);
        let mut input: &[u8] = &[0x04, 0x02, 0xaa];
        assert_eq!(element(&mut input), None);
    }
}
