//! Header names and values: character classes (RFC 3862 §3.1, §3.6), the
//! escape mechanism (§2.3), name-addr values (§4.1–§4.3) and parameters.

use std::borrow::Cow;
use std::fmt::Write as _;

/// NAMECHAR of RFC 3862 §3.6: US-ASCII except ".", CTLs and SEPARATORS.
pub(crate) fn is_name_char(b: u8) -> bool {
    matches!(b,
        b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'^'..=b'`' | b'|' | b'~'
        | b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9')
}

/// TOKENCHAR of RFC 3862 §3.6: NAMECHAR, "." or any non-ASCII octet.
pub(crate) fn is_token_char(b: u8) -> bool {
    is_name_char(b) || b == b'.' || b >= 0x80
}

/// A MIME header field name character (RFC 5322 §3.6.8 ftext).
pub(crate) fn is_mime_name_char(b: u8) -> bool {
    matches!(b, 0x21..=0x39 | 0x3b..=0x7e)
}

/// CTL of RFC 2234 except HTAB, which is harmless inside a value.
pub(crate) fn is_bad_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Whether `name` is a valid CPIM header name: `[Name-prefix "."] Name`
/// (RFC 3862 §3.6).
pub(crate) fn is_header_name(name: &str) -> bool {
    let b = name.as_bytes();
    let (prefix, local) = match name.split_once('.') {
        Some((p, l)) => (Some(p), l),
        None => (None, name),
    };
    !b.is_empty()
        && prefix.is_none_or(|p| !p.is_empty() && p.bytes().all(is_name_char))
        && !local.is_empty()
        && local.bytes().all(is_name_char)
}

fn hex4(s: &[u8]) -> Option<u32> {
    if s.len() < 4 {
        return None;
    }
    let mut v = 0u32;
    for &c in &s[..4] {
        v = v * 16 + char::from(c).to_digit(16)?;
    }
    Some(v)
}

/// Undoes the escape mechanism of RFC 3862 §2.3.
///
/// `\uXXXX` is a UCS-2 code point; a UTF-16 surrogate pair written as two
/// escapes is joined, a lone surrogate becomes U+FFFD. An unrecognised
/// escape stands for the character after the backslash and a backslash at
/// the very end is dropped (§2.3.1, "SHOULD").
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let mut chars = after.chars();
        let Some(c) = chars.next() else {
            rest = "";
            break;
        };
        let mut used = c.len_utf8();
        match c {
            'b' => out.push('\u{8}'),
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'u' => match hex4(&after.as_bytes()[1..]) {
                Some(hi @ 0xd800..=0xdbff) => {
                    let tail = &after.as_bytes()[5..];
                    match (tail.starts_with(b"\\u"), hex4(tail.get(2..).unwrap_or(&[]))) {
                        (true, Some(lo @ 0xdc00..=0xdfff)) => {
                            let cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
                            out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                            used = 11;
                        }
                        _ => {
                            out.push('\u{fffd}');
                            used = 5;
                        }
                    }
                }
                Some(cp) => {
                    out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                    used = 5;
                }
                None => out.push('u'),
            },
            other => out.push(other),
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Applies the escape mechanism of RFC 3862 §2.3.1 to `s`, appending to
/// `out`: the special sequences for `\`, backspace, tab, LF and CR, `\uXXXX`
/// for every other control character, `\"` when `quoted`. Everything else,
/// non-ASCII included, is written as UTF-8 (§2.3.1: "MUST NOT be
/// represented using an escape sequence").
pub fn escape_into(s: &str, quoted: bool, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '"' if quoted => out.push_str("\\\""),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Scans a quoted String (RFC 3862 §3.6) that starts at `s[0] == '"'`;
/// returns the length including both quotes.
pub(crate) fn quoted_len(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// A `[Formal-name] "<" URI ">"` value split into its parts, the display
/// name still escaped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RawNameAddr<'a> {
    /// The display name or NS prefix as written (quotes removed).
    pub display: Option<&'a str>,
    /// Whether `display` was a quoted String.
    pub quoted: bool,
    /// The URI between the angle brackets.
    pub uri: &'a str,
}

/// Splits a From/To/cc/NS value (RFC 3862 §4.1–§4.3, §4.6).
///
/// Liberal where it cannot mislead: a bare URI without angle brackets and
/// without whitespace is accepted.
pub(crate) fn split_name_addr(v: &str) -> Result<RawNameAddr<'_>, &'static str> {
    let v = v.trim_matches([' ', '\t']);
    let b = v.as_bytes();
    let (display, quoted, rest) = if b.first() == Some(&b'"') {
        let n = quoted_len(b).ok_or("unterminated quoted display name")?;
        (
            Some(&v[1..n - 1]),
            true,
            v[n..].trim_start_matches([' ', '\t']),
        )
    } else if let Some(lt) = v.find('<') {
        let d = v[..lt].trim_end_matches([' ', '\t']);
        (Some(d).filter(|d| !d.is_empty()), false, &v[lt..])
    } else if !v.is_empty() && !v.contains([' ', '\t', '>']) && v.contains(':') {
        return Ok(RawNameAddr {
            display: None,
            quoted: false,
            uri: v,
        });
    } else {
        return Err("expected [display name] <URI>");
    };
    let inner = rest
        .strip_prefix('<')
        .ok_or("expected '<' before the URI")?
        .strip_suffix('>')
        .ok_or("expected '>' at the end of the value")?;
    if inner.is_empty() {
        return Err("empty URI");
    }
    if inner.contains(['<', '>', ' ', '\t']) {
        return Err("URI contains '<', '>' or whitespace");
    }
    Ok(RawNameAddr {
        display,
        quoted,
        uri: inner,
    })
}

/// Iterates the `;name=value` parameters of a header (RFC 3862 §3.6),
/// given the raw text between the colon and the value. Quoted values are
/// returned unescaped.
pub(crate) fn params(raw: &str) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
    let mut rest = raw;
    std::iter::from_fn(move || {
        let r = rest.strip_prefix(';')?;
        let eq = r.find('=')?;
        let name = &r[..eq];
        let v = &r[eq + 1..];
        let (value, len) = if v.starts_with('"') {
            let n = quoted_len(v.as_bytes()).unwrap_or(v.len());
            (unescape(v.get(1..n.saturating_sub(1)).unwrap_or("")), n)
        } else {
            let n = v.find([';', ' ', '\t']).unwrap_or(v.len());
            (Cow::Borrowed(&v[..n]), n)
        };
        rest = &v[len..];
        Some((name, value))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn unescape_rfc3862_2_3() {
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape(r#"a\\b\"c\'d"#), "a\\b\"c'd");
        assert_eq!(unescape(r"\b\t\n\r"), "\u{8}\t\n\r");
        assert_eq!(unescape(r"\u00e9\u00C9"), "éÉ");
        assert_eq!(unescape(r"\ud83d\ude00!"), "😀!");
        assert_eq!(unescape(r"\ud83dx"), "\u{fffd}x");
        assert_eq!(unescape(r"\u12"), "u12");
        assert_eq!(unescape(r"\q"), "q");
        assert_eq!(unescape("end\\"), "end");
        assert_eq!(unescape("\\é"), "é");
    }

    #[test]
    fn escape_round_trips() {
        let s = "a\\b\"c\u{1}\u{7f}\t\n\r\u{8} é 😀";
        let mut out = String::new();
        escape_into(s, true, &mut out);
        assert_eq!(out, "a\\\\b\\\"c\\u0001\\u007f\\t\\n\\r\\b é 😀");
        assert_eq!(unescape(&out), s);
        out.clear();
        escape_into("say \"hi\"", false, &mut out);
        assert_eq!(out, "say \"hi\"");
    }

    #[test]
    fn name_addr_forms() {
        let n = split_name_addr("MR SANDERS <im:piglet@100akerwood.com>").unwrap();
        assert_eq!(n.display, Some("MR SANDERS"));
        assert_eq!(n.uri, "im:piglet@100akerwood.com");
        let n = split_name_addr(r#""A \"B\" <c>" <sip:a@b>"#).unwrap();
        assert_eq!(n.display, Some(r#"A \"B\" <c>"#));
        assert!(n.quoted);
        assert_eq!(n.uri, "sip:a@b");
        let n = split_name_addr("<im:tigger@100akerwood.com>").unwrap();
        assert_eq!(n.display, None);
        assert_eq!(split_name_addr("sip:a@b").unwrap().uri, "sip:a@b");
        assert!(split_name_addr("Pooh Bear").is_err());
        assert!(split_name_addr("<>").is_err());
        assert!(split_name_addr("<sip:a@b").is_err());
        assert!(split_name_addr("<sip:a@b> junk").is_err());
        assert!(split_name_addr("\"open <sip:a@b>").is_err());
    }

    #[test]
    fn header_names() {
        assert!(is_header_name("From"));
        assert!(is_header_name("imdn.Message-ID"));
        assert!(!is_header_name(""));
        assert!(!is_header_name(".x"));
        assert!(!is_header_name("x."));
        assert!(!is_header_name("a.b.c"));
        assert!(!is_header_name("Bad Name"));
    }

    #[test]
    fn params_iterate() {
        let p: Vec<_> = params(";lang=fr;x=\"a b\"").collect();
        assert_eq!(p, vec![("lang", "fr".into()), ("x", "a b".into())]);
        assert_eq!(params("").count(), 0);
    }
}
