//! Percent-encoding (RFC 3986 §2.1, RFC 3261 §25.1 `escaped`) and the
//! character classes that the URI grammars of this module share.

use std::fmt;

use super::AddressError;

/// The value of one hexadecimal digit.
pub(super) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// How a lone `%` that does not start `%XX` is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Percent {
    /// It is an error (every grammar of RFC 3986 and RFC 3261).
    Strict,
    /// It stays a literal `%` (XEP-0106 §5.3 writes `im:...cr%zy...`).
    Lenient,
}

/// Decodes one URI component that starts at byte `base` of the input.
///
/// A byte that is neither `%XX`, nor in `allowed`, nor (with `utf8`) part of
/// a raw non-ASCII character is an error naming `expected`.
pub(super) fn decode(
    s: &str,
    base: usize,
    allowed: fn(u8) -> bool,
    utf8: bool,
    percent: Percent,
    expected: &'static str,
) -> Result<String, AddressError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_val);
            let lo = bytes.get(i + 2).copied().and_then(hex_val);
            match (hi, lo) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ if percent == Percent::Lenient => {
                    out.push(b'%');
                    i += 1;
                    continue;
                }
                _ => return Err(AddressError::BadEscape { offset: base + i }),
            }
        }
        if allowed(b) || (utf8 && b >= 0x80) {
            out.push(b);
            i += 1;
        } else {
            return Err(AddressError::Syntax {
                offset: base + i,
                expected,
            });
        }
    }
    String::from_utf8(out).map_err(|_| AddressError::NotUtf8 { offset: base })
}

/// Writes `s`, percent-encoding every byte not in `literal` (all non-ASCII
/// bytes included), with upper-case hex digits.
pub(super) fn encode(f: &mut impl fmt::Write, s: &str, literal: fn(u8) -> bool) -> fmt::Result {
    for &b in s.as_bytes() {
        if b < 0x80 && literal(b) {
            f.write_char(char::from(b))?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

/// `alphanum` of RFC 3261 §25.1.
pub(super) fn alphanum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `unreserved` of RFC 3261 §25.1 (RFC 2396): alphanum and `mark`.
pub(super) fn unreserved_2396(b: u8) -> bool {
    alphanum(b) || b"-_.!~*'()".contains(&b)
}

/// `unreserved` of RFC 3986 §2.3.
pub(super) fn unreserved_3986(b: u8) -> bool {
    alphanum(b) || b"-._~".contains(&b)
}

/// `sub-delims` of RFC 3986 §2.2.
pub(super) fn sub_delim(b: u8) -> bool {
    b"!$&'()*+,;=".contains(&b)
}

/// Whether `s` is too long to be parsed at all.
pub(super) fn check_len(s: &str) -> Result<(), AddressError> {
    if s.len() > super::MAX_ADDRESS_LEN {
        Err(AddressError::TooLong {
            len: s.len(),
            max: super::MAX_ADDRESS_LEN,
        })
    } else if s.is_empty() {
        Err(AddressError::Empty)
    } else {
        Ok(())
    }
}

/// Splits a leading `scheme:` off `s`, comparing without regard to case.
/// Returns the rest, or `None` when `s` does not start with `scheme:`.
pub(super) fn strip_scheme<'a>(s: &'a str, scheme: &str) -> Option<&'a str> {
    let head = s.get(..scheme.len())?;
    if head.eq_ignore_ascii_case(scheme) && s.as_bytes().get(scheme.len()) == Some(&b':') {
        Some(&s[scheme.len() + 1..])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decode_and_encode() {
        let d = decode("a%20b", 0, alphanum, false, Percent::Strict, "x").unwrap();
        assert_eq!(d, "a b");
        assert!(matches!(
            decode("a%2", 5, alphanum, false, Percent::Strict, "x"),
            Err(AddressError::BadEscape { offset: 6 })
        ));
        assert_eq!(
            decode("cr%zy", 0, alphanum, false, Percent::Lenient, "x").unwrap(),
            "cr%zy"
        );
        assert!(matches!(
            decode("%FF", 3, alphanum, false, Percent::Strict, "x"),
            Err(AddressError::NotUtf8 { offset: 3 })
        ));
        let mut s = String::new();
        encode(&mut s, "a b\u{e9}%", alphanum).unwrap();
        assert_eq!(s, "a%20b%C3%A9%25");
    }
}
