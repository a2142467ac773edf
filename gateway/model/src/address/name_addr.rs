//! An address with a display name: `name-addr` of RFC 3261 §25.1 and the
//! `From`/`To`/`cc` value of RFC 3862 §5.
//!
//! ```text
//! name-addr    = [ display-name ] LAQUOT addr-spec RAQUOT     ; RFC 3261
//! display-name = *(token LWS) / quoted-string
//! From-header  = "From" ": " [ Formal-name ] "<" URI ">"     ; RFC 3862 §5.1
//! Formal-name  = 1*( Token SP ) / String
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Address, AddressError, pct};

/// An address with an optional display name
/// (`"Alice" <sip:alice@example.com>`).
///
/// Parses a quoted display name (with `\"` and `\\` escapes, UTF-8 allowed),
/// an unquoted one (RFC 3862 §6.3: `MR SANDERS <im:piglet@100akerwood.com>`),
/// `<addr>` alone, and a bare address. Writes the display name unquoted
/// only when it is made of tokens separated by single spaces, and the
/// address always in angle brackets.
///
/// ```
/// use cpimgate_model::address::NameAddr;
/// let n: NameAddr = "MR SANDERS <im:piglet@100akerwood.com>".parse().unwrap();
/// assert_eq!(n.display.as_deref(), Some("MR SANDERS"));
/// assert_eq!(n.to_string(), "MR SANDERS <im:piglet@100akerwood.com>");
///
/// let n: NameAddr = r#""Alice \"the great\"" <sip:alice@example.com>"#.parse().unwrap();
/// assert_eq!(n.display.as_deref(), Some(r#"Alice "the great""#));
/// assert_eq!(n.to_string(), r#""Alice \"the great\"" <sip:alice@example.com>"#);
///
/// let n: NameAddr = "sip:alice@example.com".parse().unwrap();
/// assert_eq!(n.display, None);
/// assert_eq!(n.to_string(), "<sip:alice@example.com>");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NameAddr {
    /// Display name, unquoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The address.
    pub address: Address,
}

/// Header parameters after `>` (`;tag=9fxced76sl`), in order, unparsed
/// values (`None` for a parameter without `=`).
pub type NameAddrParams = Vec<(String, Option<String>)>;

impl NameAddr {
    /// An address without display name.
    pub fn new(address: Address) -> Self {
        NameAddr {
            display: None,
            address,
        }
    }

    /// An address with a display name.
    pub fn with_display(display: impl Into<String>, address: Address) -> Self {
        NameAddr {
            display: Some(display.into()),
            address,
        }
    }

    /// Parses a name-addr followed by header parameters, as in a SIP `From`
    /// or `To` header. [`FromStr`] refuses such parameters, since the model
    /// has nowhere to keep them.
    ///
    /// ```
    /// use cpimgate_model::address::NameAddr;
    /// // RFC 7701 §9.1
    /// let (n, params) =
    ///     NameAddr::parse_with_params("Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl").unwrap();
    /// assert_eq!(n.display.as_deref(), Some("Alice"));
    /// assert_eq!(params, vec![("tag".to_owned(), Some("9fxced76sl".to_owned()))]);
    /// assert!("Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl".parse::<NameAddr>().is_err());
    /// ```
    pub fn parse_with_params(s: &str) -> Result<(NameAddr, NameAddrParams), AddressError> {
        pct::check_len(s)?;
        let start = s.len() - s.trim_start_matches(is_lws).len();
        let t = s[start..].trim_end_matches(is_lws);
        if t.is_empty() {
            return Err(AddressError::Empty);
        }
        let (display, lt) = if t.starts_with('"') {
            let (display, end) = quoted_string(t, start)?;
            let after = &t[end..];
            let skip = after.len() - after.trim_start_matches(is_lws).len();
            if !after[skip..].starts_with('<') {
                return Err(AddressError::Syntax {
                    offset: start + end + skip,
                    expected: "'<' after the display name",
                });
            }
            (Some(display), end + skip)
        } else {
            match t.find('<') {
                None => {
                    // A bare addr-spec: everything is the address.
                    let address = t.parse::<Address>().map_err(|e| e.shifted(start))?;
                    return Ok((NameAddr::new(address), Vec::new()));
                }
                Some(lt) => {
                    let display = t[..lt].trim_end_matches(is_lws);
                    if let Some(i) = display.find(|c: char| c == '"' || c.is_control()) {
                        return Err(AddressError::Syntax {
                            offset: start + i,
                            expected: "a display name (tokens, or a quoted string)",
                        });
                    }
                    ((!display.is_empty()).then(|| display.to_owned()), lt)
                }
            }
        };
        let inner = &t[lt + 1..];
        let gt = inner.find('>').ok_or(AddressError::Syntax {
            offset: start + t.len(),
            expected: "'>' closing the address",
        })?;
        let abase = start + lt + 1;
        let address = inner[..gt]
            .parse::<Address>()
            .map_err(|e| e.shifted(abase))?;
        let params = header_params(&inner[gt + 1..], abase + gt + 1)?;
        Ok((NameAddr { display, address }, params))
    }
}

fn is_lws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// A quoted string at the start of `t` (which is at byte `base`): its
/// unescaped content and the byte just after the closing quote.
fn quoted_string(t: &str, base: usize) -> Result<(String, usize), AddressError> {
    let mut out = String::new();
    let mut chars = t.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => match chars.next() {
                Some((_, c)) if c != '\r' && c != '\n' => out.push(c),
                _ => {
                    return Err(AddressError::Syntax {
                        offset: base + i,
                        expected: "a character after '\\' in the quoted display name",
                    });
                }
            },
            '\r' | '\n' => {
                return Err(AddressError::Syntax {
                    offset: base + i,
                    expected: "no line break in the quoted display name",
                });
            }
            c => out.push(c),
        }
    }
    Err(AddressError::Syntax {
        offset: base + t.len(),
        expected: "'\"' closing the display name",
    })
}

/// `*( SEMI generic-param )` after `>`.
fn header_params(s: &str, base: usize) -> Result<NameAddrParams, AddressError> {
    let mut params = Vec::new();
    let trimmed = s.trim_start_matches(is_lws);
    if trimmed.is_empty() {
        return Ok(params);
    }
    let mut offset = base + s.len() - trimmed.len();
    if !trimmed.starts_with(';') {
        return Err(AddressError::Syntax {
            offset,
            expected: "';' and a parameter, or the end, after '>'",
        });
    }
    for p in trimmed.split(';').skip(1) {
        offset += 1;
        let p_trim = p.trim_matches(is_lws);
        let (name, value) = match p_trim.find('=') {
            Some(e) => (
                p_trim[..e].trim_end_matches(is_lws),
                Some(p_trim[e + 1..].trim_start_matches(is_lws)),
            ),
            None => (p_trim, None),
        };
        if name.is_empty() || name.chars().any(|c| !is_token_char(c)) {
            return Err(AddressError::Syntax {
                offset,
                expected: "a parameter name (a token)",
            });
        }
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(AddressError::Syntax {
                offset,
                expected: "a parameter value without control characters",
            });
        }
        params.push((name.to_owned(), value.map(str::to_owned)));
        offset += p.len();
    }
    Ok(params)
}

/// `token` characters of RFC 3261 §25.1.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Whether a display name can be written without quotes and read back the
/// same: tokens separated by single spaces.
fn plain_display(d: &str) -> bool {
    !d.is_empty()
        && d.split(' ')
            .all(|w| !w.is_empty() && w.chars().all(is_token_char))
}

impl FromStr for NameAddr {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (n, params) = NameAddr::parse_with_params(s)?;
        if !params.is_empty() {
            return Err(AddressError::Syntax {
                offset: s.rfind('>').map_or(0, |i| i + 1),
                expected: "the end after '>' (header parameters have no place here)",
            });
        }
        // As for Address: the written form must read back.
        super::check_written_len(s, &n)?;
        Ok(n)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.display.as_deref() {
            Some(d) if plain_display(d) => write!(f, "{d} ")?,
            Some(d) => {
                f.write_str("\"")?;
                for c in d.chars() {
                    match c {
                        '"' | '\\' => write!(f, "\\{c}")?,
                        // A line break cannot be quoted (RFC 3261 §25.1
                        // quoted-pair): it must not leave as header syntax.
                        '\r' | '\n' => f.write_str(" ")?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\" ")?;
            }
            None => {}
        }
        write!(f, "<{}>", self.address)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(s: &str) -> NameAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// RFC 3862 §3.1, §4.x, §6.3 headers.
    #[test]
    fn rfc3862_examples() {
        for (s, display, addr) in [
            (
                "Pooh Bear <im:pooh@100akerwood.com>",
                Some("Pooh Bear"),
                "im:pooh@100akerwood.com",
            ),
            (
                "<im:piglet@100akerwood.com>",
                None,
                "im:piglet@100akerwood.com",
            ),
            (
                "Winnie the Pooh <im:pooh@100akerwood.com>",
                Some("Winnie the Pooh"),
                "im:pooh@100akerwood.com",
            ),
            (
                "MR SANDERS <im:piglet@100akerwood.com>",
                Some("MR SANDERS"),
                "im:piglet@100akerwood.com",
            ),
            (
                "Depressed Donkey <im:eeyore@100akerwood.com>",
                Some("Depressed Donkey"),
                "im:eeyore@100akerwood.com",
            ),
        ] {
            let n = p(s);
            assert_eq!(n.display.as_deref(), display);
            assert_eq!(n.address.to_string(), addr);
            assert_eq!(n.to_string(), s);
        }
    }

    /// RFC 7701 §9 headers.
    #[test]
    fn rfc7701_examples() {
        let n = p("Chatroom 22 <sip:chatroom22@chat.example.com>");
        assert_eq!(n.display.as_deref(), Some("Chatroom 22"));
        let (n, params) = NameAddr::parse_with_params(
            "Chatroom 22 <sip:chatroom22@chat.example.com>;tag=8321234356",
        )
        .unwrap();
        assert_eq!(n.address.to_string(), "sip:chatroom22@chat.example.com");
        assert_eq!(params, vec![("tag".into(), Some("8321234356".into()))]);
        let n = p("<sip:chatroom22@chat.example.com;transport=tcp>");
        assert_eq!(
            n.address.to_string(),
            "sip:chatroom22@chat.example.com;transport=tcp"
        );
    }

    #[test]
    fn quoting() {
        let n = p("  \"Bj\u{f6}rk \\\\ Co\"\t<xmpp:bjork@example.is>  ");
        assert_eq!(n.display.as_deref(), Some("Bj\u{f6}rk \\ Co"));
        assert_eq!(
            n.to_string(),
            "\"Bj\u{f6}rk \\\\ Co\" <xmpp:bjork@example.is>"
        );
        assert_eq!(p(&n.to_string()), n);
        let n = p("\"\" <sip:a@b.com>");
        assert_eq!(n.display.as_deref(), Some(""));
        assert_eq!(p(&n.to_string()), n);
        let n = p("\"a<b>\" <sip:a@b.com>");
        assert_eq!(n.display.as_deref(), Some("a<b>"));
        let n = NameAddr::with_display("evil\r\nX-Injected: 1", p("<sip:a@b.com>").address);
        assert!(!n.to_string().contains('\n'));
    }

    #[test]
    fn errors() {
        let e = |s: &str| s.parse::<NameAddr>().unwrap_err();
        assert_eq!(e("\"Alice <sip:a@b.com>").offset(), Some(20));
        assert_eq!(e("Alice <sip:a@b.com").offset(), Some(18));
        assert_eq!(e("\"Alice\" sip:a@b.com").offset(), Some(8));
        assert_eq!(e("Alice <sip:a b@b.com>").offset(), Some(12));
        assert_eq!(e("Al\"ice <sip:a@b.com>").offset(), Some(2));
        assert_eq!(e("<sip:a@b.com> x").offset(), Some(14));
        assert_eq!(e("   "), AddressError::Empty);
    }
}
