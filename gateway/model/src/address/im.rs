//! `im:` URIs (RFC 3860 §3, used by CPIM, RFC 3862).
//!
//! ```text
//! IM-URI  = "im:" [ to ] [ headers ]
//! to      = mailbox                      ; RFC 2822, percent-encoded
//! headers = "?" header *( "&" header )
//! header  = hname "=" hvalue
//! ```
//!
//! This module requires the mailbox (`user@domain`): an `im:` URI without
//! one names nobody the gateway could deliver to.

use std::fmt;
use std::str::FromStr;

use super::AddressError;
use super::host::check_domain;
use super::pct::{self, Percent, unreserved_3986};

/// Bytes accepted raw in the user part: the printable ASCII of an RFC 2822
/// local part (`atext`, `.`) and what URIs let through, but none of the
/// delimiters of the URI (`@ ? # % / < > " \` and space).
fn user_in(b: u8) -> bool {
    b.is_ascii_graphic() && !b"@?#<>\"\\[]^`{|}".contains(&b)
}

/// Bytes written raw in the user part.
fn user_out(b: u8) -> bool {
    unreserved_3986(b) || b"!$*+=,;".contains(&b)
}

fn header_in(b: u8) -> bool {
    b.is_ascii_graphic() && !b"&=?#<>\"\\[]^`{|}".contains(&b)
}

fn header_out(b: u8) -> bool {
    unreserved_3986(b) || b"!$*+,;:@/".contains(&b)
}

/// An `im:` URI: `im:user@domain`, with optional headers.
///
/// The user is stored percent-decoded. A `%` that does not start a
/// `%XX` sequence is kept as a literal `%`, as in the XEP-0106 §5.4
/// example below (it is written back as `%25`).
///
/// ```
/// use cpimgate_model::address::ImUri;
/// // RFC 3862 §3.1 / §6.1
/// let u: ImUri = "im:pooh@100akerwood.com".parse().unwrap();
/// assert_eq!((u.user(), u.domain()), ("pooh", "100akerwood.com"));
///
/// // XEP-0106 §5.4 "IM and Presence Addresses"
/// let u: ImUri = "im:here%27s_a_wild_%26_%2Fcr%zy%2F_address@example.com".parse().unwrap();
/// assert_eq!(u.user(), "here's_a_wild_&_/cr%zy/_address");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImUri {
    user: String,
    domain: String,
    headers: Vec<(String, String)>,
}

impl ImUri {
    /// `im:user@domain`.
    ///
    /// ```
    /// use cpimgate_model::address::ImUri;
    /// let u = ImUri::new("d'artagnan", "musketeers.lit").unwrap();
    /// assert_eq!(u.to_string(), "im:d%27artagnan@musketeers.lit");
    /// ```
    pub fn new(user: &str, domain: &str) -> Result<ImUri, AddressError> {
        if user.is_empty() {
            return Err(AddressError::Invalid {
                what: "im: user",
                reason: "empty",
            });
        }
        if user.chars().any(char::is_control) {
            return Err(AddressError::Invalid {
                what: "im: user",
                reason: "control character",
            });
        }
        if domain.len() > super::MAX_ADDRESS_LEN || user.len() > super::MAX_ADDRESS_LEN {
            return Err(AddressError::Invalid {
                what: "im: URI",
                reason: "too long",
            });
        }
        check_domain(domain, 0)?;
        Ok(ImUri {
            user: user.to_owned(),
            domain: domain.to_owned(),
            headers: Vec::new(),
        })
    }

    /// The user (local part), decoded.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The headers, decoded, in the order written.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Parses what follows `im:`, found at byte `base`.
    pub(super) fn parse_rest(s: &str, base: usize) -> Result<ImUri, AddressError> {
        let (to, headers_str) = match s.find('?') {
            Some(q) => (&s[..q], Some((&s[q + 1..], base + q + 1))),
            None => (s, None),
        };
        let at = to.rfind('@').ok_or(AddressError::Syntax {
            offset: base + to.len(),
            expected: "'@' and a domain",
        })?;
        if at == 0 {
            return Err(AddressError::Syntax {
                offset: base,
                expected: "a user before '@'",
            });
        }
        let user = pct::decode(
            &to[..at],
            base,
            user_in,
            true,
            Percent::Lenient,
            "a mailbox character",
        )?;
        if user.contains(char::is_control) {
            return Err(AddressError::Syntax {
                offset: base,
                expected: "a mailbox character (no control characters)",
            });
        }
        let domain = &to[at + 1..];
        if domain.is_empty() {
            return Err(AddressError::Syntax {
                offset: base + at + 1,
                expected: "a domain",
            });
        }
        check_domain(domain, base + at + 1)?;
        let mut headers = Vec::new();
        if let Some((h, mut offset)) = headers_str {
            for pair in h.split('&') {
                let eq = pair.find('=').ok_or(AddressError::Syntax {
                    offset: offset + pair.len(),
                    expected: "'=' after a header name",
                })?;
                let name = pct::decode(
                    &pair[..eq],
                    offset,
                    header_in,
                    true,
                    Percent::Lenient,
                    "a header character",
                )?;
                let value = pct::decode(
                    &pair[eq + 1..],
                    offset + eq + 1,
                    header_in,
                    true,
                    Percent::Lenient,
                    "a header character",
                )?;
                if name.is_empty() {
                    return Err(AddressError::Syntax {
                        offset,
                        expected: "a header name",
                    });
                }
                headers.push((name, value));
                offset += pair.len() + 1;
            }
        }
        Ok(ImUri {
            user,
            domain: domain.to_owned(),
            headers,
        })
    }
}

impl FromStr for ImUri {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        pct::check_len(s)?;
        let rest = pct::strip_scheme(s, "im").ok_or(AddressError::UnknownScheme { offset: 0 })?;
        ImUri::parse_rest(rest, 3)
    }
}

impl fmt::Display for ImUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("im:")?;
        pct::encode(f, &self.user, user_out)?;
        f.write_str("@")?;
        f.write_str(&self.domain)?;
        for (i, (name, value)) in self.headers.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            pct::encode(f, name, header_out)?;
            f.write_str("=")?;
            pct::encode(f, value, header_out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The `im:` addresses of RFC 3862 (§3.1, §4.x, §6.x examples).
    #[test]
    fn rfc3862_examples() {
        for (s, user) in [
            ("im:pooh@100akerwood.com", "pooh"),
            ("im:piglet@100akerwood.com", "piglet"),
            ("im:tigger@100akerwood.com", "tigger"),
            ("im:eeyore@100akerwood.com", "eeyore"),
        ] {
            let u: ImUri = s.parse().unwrap();
            assert_eq!(u.user(), user);
            assert_eq!(u.domain(), "100akerwood.com");
            assert_eq!(u.to_string(), s);
        }
    }

    #[test]
    fn headers_and_case() {
        let u: ImUri = "IM:alice@atlanta.example.com?subject=hi%20there&x=1"
            .parse()
            .unwrap();
        assert_eq!(u.headers()[0], ("subject".into(), "hi there".into()));
        assert_eq!(
            u.to_string(),
            "im:alice@atlanta.example.com?subject=hi%20there&x=1"
        );
    }

    #[test]
    fn lenient_percent_round_trips() {
        let u: ImUri = "im:cr%zy@example.com".parse().unwrap();
        assert_eq!(u.user(), "cr%zy");
        assert_eq!(u.to_string(), "im:cr%25zy@example.com");
        assert_eq!(u.to_string().parse::<ImUri>().unwrap(), u);
    }

    #[test]
    fn errors() {
        let e = |s: &str| s.parse::<ImUri>().unwrap_err();
        assert_eq!(
            e("im:alice"),
            AddressError::Syntax {
                offset: 8,
                expected: "'@' and a domain"
            }
        );
        assert_eq!(e("im:@x.org").offset(), Some(3));
        assert_eq!(e("im:a@").offset(), Some(5));
        assert_eq!(e("im:a b@x.org").offset(), Some(4));
        assert_eq!(e("im:a@x..org").offset(), Some(7));
        assert_eq!(e("im:a%0A@x.org").offset(), Some(3));
    }
}
