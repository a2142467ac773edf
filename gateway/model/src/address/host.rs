//! Hosts of SIP URIs and IRC networks (RFC 3261 §25.1 `host`), and the
//! looser domain names of `im:` URIs and JIDs.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::AddressError;

/// A host: a DNS name, an IPv4 address or an IPv6 address.
///
/// The name keeps the case it was written in (derived equality is
/// structural); [`Host::eq_ignore_case`] compares as RFC 3261 §19.1.4 asks.
///
/// ```
/// use cpimgate_model::address::Host;
/// let h: Host = "[2001:db8::1]".parse().unwrap();
/// assert_eq!(h, Host::Ipv6("2001:db8::1".parse().unwrap()));
/// assert_eq!(h.to_string(), "[2001:db8::1]");
/// assert_eq!("192.0.2.4".parse::<Host>().unwrap().to_string(), "192.0.2.4");
/// assert!("atlanta.com".parse::<Host>().unwrap().eq_ignore_case(&"AtLanTa.CoM".parse().unwrap()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// A host name (`hostname` of RFC 3261: ASCII labels, the last one
    /// starting with a letter).
    Domain(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address, written in brackets.
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Compares two hosts, names without regard to ASCII case and a final
    /// dot.
    pub fn eq_ignore_case(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a
                .trim_end_matches('.')
                .eq_ignore_ascii_case(b.trim_end_matches('.')),
            _ => self == other,
        }
    }

    /// Parses a host that starts at byte `base` of the input.
    pub(super) fn parse_at(s: &str, base: usize) -> Result<Host, AddressError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(AddressError::Syntax {
                offset: base + s.len(),
                expected: "']' closing an IPv6 reference",
            })?;
            return inner
                .parse()
                .map(Host::Ipv6)
                .map_err(|_| AddressError::Syntax {
                    offset: base + 1,
                    expected: "an IPv6 address",
                });
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return s.parse().map(Host::Ipv4).map_err(|_| AddressError::Syntax {
                offset: base,
                expected: "an IPv4 address",
            });
        }
        check_hostname(s, base)?;
        Ok(Host::Domain(s.to_owned()))
    }
}

/// `hostname` of RFC 3261 §25.1: `*( domainlabel "." ) toplabel [ "." ]`.
fn check_hostname(s: &str, base: usize) -> Result<(), AddressError> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.is_empty() {
        return Err(AddressError::Syntax {
            offset: base,
            expected: "a host name",
        });
    }
    if name.len() > 253 {
        return Err(AddressError::Syntax {
            offset: base + 253,
            expected: "a host name of at most 253 bytes",
        });
    }
    let mut offset = base;
    let mut last = "";
    for label in name.split('.') {
        let bytes = label.as_bytes();
        let bad = bytes
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'-'))
            .map(|i| offset + i);
        let bad = bad.or_else(|| match (bytes.first(), bytes.last()) {
            (None, _) => Some(offset),
            (Some(b'-'), _) => Some(offset),
            (_, Some(b'-')) => Some(offset + bytes.len() - 1),
            _ => None,
        });
        if let Some(offset) = bad {
            return Err(AddressError::Syntax {
                offset,
                expected: "a host name label (letters, digits and inner '-')",
            });
        }
        if label.len() > 63 {
            return Err(AddressError::Syntax {
                offset: offset + 63,
                expected: "a host name label of at most 63 bytes",
            });
        }
        last = label;
        offset += label.len() + 1;
    }
    if !last.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
        return Err(AddressError::Syntax {
            offset: base + name.len() - last.len(),
            expected: "a top label that starts with a letter",
        });
    }
    Ok(())
}

/// A domain of an `im:` URI or a JID: non-empty labels of letters, digits,
/// `-` and `_` (any non-ASCII character counts as a letter: IDNs may stay in
/// Unicode there), or an IP literal in brackets.
pub(super) fn check_domain(s: &str, base: usize) -> Result<(), AddressError> {
    if let Some(inner) = s.strip_prefix('[') {
        return match inner.strip_suffix(']').map(Ipv6Addr::from_str) {
            Some(Ok(_)) => Ok(()),
            _ => Err(AddressError::Syntax {
                offset: base,
                expected: "an IPv6 literal in brackets",
            }),
        };
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    let mut offset = base;
    for label in name.split('.') {
        if label.is_empty() {
            return Err(AddressError::Syntax {
                offset,
                expected: "a domain label",
            });
        }
        if let Some((i, _)) = label.char_indices().find(|&(_, c)| !domain_char(c)) {
            return Err(AddressError::Syntax {
                offset: offset + i,
                expected: "a domain label (letters, digits, '-' and '_')",
            });
        }
        offset += label.len() + 1;
    }
    Ok(())
}

/// A character of a domain label: ASCII letters, digits, `-`, `_`, and any
/// non-ASCII character that is neither a control character nor a space.
fn domain_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '-' || c == '_'
    } else {
        !c.is_control() && !c.is_whitespace()
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

impl FromStr for Host {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        super::pct::check_len(s)?;
        Host::parse_at(s, 0)
    }
}

/// Splits `host[:port]` (the host may be an IPv6 reference) found at byte
/// `base` of the input.
pub(super) fn parse_hostport(s: &str, base: usize) -> Result<(Host, Option<u16>), AddressError> {
    let colon = if s.starts_with('[') {
        match s.find(']') {
            Some(end) if end + 1 < s.len() => {
                if s.as_bytes()[end + 1] != b':' {
                    return Err(AddressError::Syntax {
                        offset: base + end + 1,
                        expected: "':' and a port after the IPv6 reference",
                    });
                }
                Some(end + 1)
            }
            _ => None,
        }
    } else {
        s.find(':')
    };
    match colon {
        None => Ok((Host::parse_at(s, base)?, None)),
        Some(c) => {
            let host = Host::parse_at(&s[..c], base)?;
            let digits = &s[c + 1..];
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(AddressError::Port {
                    offset: base + c + 1,
                });
            }
            let port = digits.parse::<u16>().map_err(|_| AddressError::Port {
                offset: base + c + 1,
            })?;
            Ok((host, Some(port)))
        }
    }
}
