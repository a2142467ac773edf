//! `tel:` URIs (RFC 3966 §3).
//!
//! ```text
//! telephone-uri        = "tel:" telephone-subscriber
//! telephone-subscriber = global-number / local-number
//! global-number        = global-number-digits *par
//! local-number         = local-number-digits *par context *par
//! global-number-digits = "+" *phonedigit DIGIT *phonedigit
//! local-number-digits  = *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex
//! phonedigit           = DIGIT / [ visual-separator ]
//! phonedigit-hex       = HEXDIG / "*" / "#" / [ visual-separator ]
//! visual-separator     = "-" / "." / "(" / ")"
//! par                  = parameter / extension / isdn-subaddress
//! parameter            = ";" pname ["=" pvalue ]
//! pname                = 1*( alphanum / "-" )
//! paramchar            = param-unreserved / unreserved / pct-encoded
//! param-unreserved     = "[" / "]" / "/" / ":" / "&" / "+" / "$"
//! ```

use std::fmt;
use std::str::FromStr;

use super::AddressError;
use super::pct::{self, Percent, unreserved_3986};

fn visual_separator(b: u8) -> bool {
    b"-.()".contains(&b)
}

fn param_char(b: u8) -> bool {
    unreserved_3986(b) || b"[]/:&+$".contains(&b)
}

/// A `tel:` URI: a global (`+...`) or local number and its parameters.
///
/// The number keeps its visual separators (`-.()`); [`TelUri::digits`]
/// drops them. A `#` in a local number is written `%23`, since a raw `#`
/// would start a URI fragment.
///
/// ```
/// use cpimgate_model::address::TelUri;
/// // RFC 3966 §6
/// let t: TelUri = "tel:+1-201-555-0123".parse().unwrap();
/// assert!(t.is_global());
/// assert_eq!(t.digits(), "+12015550123");
///
/// let t: TelUri = "tel:863-1234;phone-context=+1-914-555".parse().unwrap();
/// assert_eq!(t.phone_context(), Some("+1-914-555"));
/// assert!("tel:863-1234".parse::<TelUri>().is_err()); // a local number needs a context
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TelUri {
    number: String,
    params: Vec<(String, Option<String>)>,
}

impl TelUri {
    /// The number as written, with its visual separators.
    pub fn number(&self) -> &str {
        &self.number
    }

    /// Whether the number is global (starts with `+`).
    pub fn is_global(&self) -> bool {
        self.number.starts_with('+')
    }

    /// The number without visual separators.
    pub fn digits(&self) -> String {
        self.number
            .chars()
            .filter(|c| !"-.()".contains(*c))
            .collect()
    }

    /// The parameters in the order written, values decoded.
    pub fn params(&self) -> &[(String, Option<String>)] {
        &self.params
    }

    /// The first parameter of that name (compared without regard to case).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The `phone-context` of a local number.
    pub fn phone_context(&self) -> Option<&str> {
        self.param("phone-context").flatten()
    }

    /// The extension (`;ext=`).
    pub fn extension(&self) -> Option<&str> {
        self.param("ext").flatten()
    }

    /// Parses what follows `tel:`, found at byte `base`.
    pub(super) fn parse_rest(s: &str, base: usize) -> Result<TelUri, AddressError> {
        let end = s.find(';').unwrap_or(s.len());
        let number = parse_number(&s[..end], base)?;
        let mut params = Vec::new();
        let mut offset = base + end;
        for p in s[end..].split(';').skip(1) {
            offset += 1;
            let (name, value) = match p.find('=') {
                Some(e) => (&p[..e], Some((&p[e + 1..], offset + e + 1))),
                None => (p, None),
            };
            if let Some(i) = name
                .bytes()
                .position(|b| !(b.is_ascii_alphanumeric() || b == b'-'))
            {
                return Err(AddressError::Syntax {
                    offset: offset + i,
                    expected: "a parameter name (letters, digits, '-')",
                });
            }
            if name.is_empty() {
                return Err(AddressError::Syntax {
                    offset,
                    expected: "a parameter name",
                });
            }
            let value = match value {
                Some((v, at)) if !v.is_empty() => Some(pct::decode(
                    v,
                    at,
                    param_char,
                    false,
                    Percent::Strict,
                    "a parameter character",
                )?),
                Some((_, at)) => {
                    return Err(AddressError::Syntax {
                        offset: at,
                        expected: "a parameter value",
                    });
                }
                None => None,
            };
            params.push((name.to_owned(), value));
            offset += p.len();
        }
        let uri = TelUri { number, params };
        if !uri.is_global() && uri.phone_context().is_none() {
            return Err(AddressError::Syntax {
                offset: base + s.len(),
                expected: "';phone-context=' after a local number (RFC 3966 §5.1.5)",
            });
        }
        Ok(uri)
    }
}

/// `global-number-digits` or `local-number-digits`; `%23` is read as `#`.
fn parse_number(s: &str, base: usize) -> Result<String, AddressError> {
    let global = s.starts_with('+');
    let mut out = String::with_capacity(s.len());
    let mut has_digit = false;
    let bytes = s.as_bytes();
    let mut i = usize::from(global);
    if global {
        out.push('+');
    }
    while i < bytes.len() {
        let b = bytes[i];
        let (c, len) = if b == b'%' && bytes.get(i + 1..i + 3) == Some(b"23") {
            (b'#', 3)
        } else {
            (b, 1)
        };
        let ok = if global {
            c.is_ascii_digit() || visual_separator(c)
        } else {
            c.is_ascii_hexdigit() || c == b'*' || c == b'#' || visual_separator(c)
        };
        if !ok {
            return Err(AddressError::Syntax {
                offset: base + i,
                expected: if global {
                    "a digit or a visual separator"
                } else {
                    "a hex digit, '*', '#' or a visual separator"
                },
            });
        }
        has_digit |= !visual_separator(c);
        out.push(char::from(c));
        i += len;
    }
    if !has_digit {
        return Err(AddressError::Syntax {
            offset: base + s.len(),
            expected: "a digit of the telephone number",
        });
    }
    Ok(out)
}

impl FromStr for TelUri {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        pct::check_len(s)?;
        let rest = pct::strip_scheme(s, "tel").ok_or(AddressError::UnknownScheme { offset: 0 })?;
        TelUri::parse_rest(rest, 4)
    }
}

impl fmt::Display for TelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tel:")?;
        for part in self.number.split_inclusive('#') {
            match part.strip_suffix('#') {
                Some(p) => write!(f, "{p}%23")?,
                None => f.write_str(part)?,
            }
        }
        for (name, value) in &self.params {
            write!(f, ";{name}")?;
            if let Some(v) = value {
                f.write_str("=")?;
                pct::encode(f, v, param_char)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 3966 §6 "Examples", and the `tel:` URIs of RFC 3261 §19.1.6.
    #[test]
    fn examples() {
        for s in [
            "tel:+1-201-555-0123",
            "tel:7042;phone-context=example.com",
            "tel:863-1234;phone-context=+1-914-555",
            "tel:+358-555-1234567;postd=pp22",
            "tel:+358-555-1234567;POSTD=PP22",
            "tel:+358-555-1234567;postd=pp22;isub=1411",
            "tel:+358-555-1234567;tsp=a.b;phone-context=5",
            "tel:+1-212-555-1212;ext=42",
            "tel:*21%23;phone-context=example.com",
        ] {
            let t: TelUri = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(t.to_string(), s);
        }
        let t: TelUri = "tel:7042;phone-context=example.com".parse().unwrap();
        assert!(!t.is_global());
        assert_eq!(t.phone_context(), Some("example.com"));
        let t: TelUri = "tel:+1-212-555-1212;ext=42".parse().unwrap();
        assert_eq!(t.extension(), Some("42"));
        let t: TelUri = "tel:*21%23;phone-context=example.com".parse().unwrap();
        assert_eq!(t.number(), "*21#");
    }

    #[test]
    fn errors() {
        let e = |s: &str| s.parse::<TelUri>().unwrap_err();
        assert_eq!(e("tel:+1-20x").offset(), Some(9));
        assert_eq!(e("tel:+--").offset(), Some(7));
        assert_eq!(e("tel:+1;=x").offset(), Some(7));
        assert_eq!(e("tel:+1;a=").offset(), Some(9));
        assert_eq!(e("tel:123").offset(), Some(7));
    }
}
