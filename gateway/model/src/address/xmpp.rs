//! XMPP addresses: JIDs (RFC 7622) and `xmpp:` URIs (RFC 5122 §2).
//!
//! ```text
//! jid       = [ localpart "@" ] domainpart [ "/" resourcepart ]   ; RFC 7622 §3.1
//!
//! xmppiri   = "xmpp" ":" hierxmpp [ "?" querycomp ] [ "#" ifragment ]  ; RFC 5122 §2.3
//! hierxmpp  = authpath / pathxmpp
//! authpath  = "//" authxmpp [ "/" pathxmpp ]
//! authxmpp  = nodeid "@" host
//! pathxmpp  = [ nodeid "@" ] host [ "/" resid ]
//! nodeid    = *( unreserved / pct-encoded / nodeallow )
//! nodeallow = "!" / "$" / "(" / ")" / "*" / "+" / "," / ";" / "="
//! resid     = *( unreserved / pct-encoded / resallow )
//! resallow  = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ":" / ";" / "="
//! querycomp = querytype [ *pair ]   ; pair = ";" key "=" value
//! ```
//!
//! The checks of a JID here are the basic ones of RFC 7622 (lengths,
//! forbidden characters of the localpart, no spaces or control characters
//! where PRECIS IdentifierClass forbids them). The PRECIS tables (symbols,
//! compatibility characters) and case mapping are not applied.

use std::fmt;
use std::str::FromStr;

use super::AddressError;
use super::escape::forbidden_in_localpart;
use super::host::check_domain;
use super::pct::{self, Percent, sub_delim, unreserved_3986};

/// Longest localpart, domainpart and resourcepart (RFC 7622 §3.2–3.4).
const MAX_PART: usize = 1023;

/// A JID: `[localpart@]domainpart[/resourcepart]`.
///
/// The localpart is kept as on the wire, that is XEP-0106-escaped
/// (`alice\40atlanta.example.com`); see
/// [`unescape_node`](super::unescape_node) to show it to a human.
///
/// ```
/// use cpimgate_model::address::Jid;
/// // RFC 7622 §3.5, table 1
/// let j: Jid = "juliet@example.com/foo bar".parse().unwrap();
/// assert_eq!(j.node(), Some("juliet"));
/// assert_eq!(j.resource(), Some("foo bar"));
/// assert_eq!(j.bare().to_string(), "juliet@example.com");
/// // example 15: the resource is split off first
/// let j: Jid = "a.example.com/b@example.net".parse().unwrap();
/// assert_eq!((j.node(), j.domain(), j.resource()), (None, "a.example.com", Some("b@example.net")));
/// // table 2, example 17
/// assert!("foo bar@example.com".parse::<Jid>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    node: Option<String>,
    domain: String,
    resource: Option<String>,
}

impl Jid {
    /// A JID from its parts, checked.
    ///
    /// ```
    /// use cpimgate_model::address::{escape_node, Jid};
    /// let j = Jid::new(Some(&escape_node("d'artagnan")), "musketeers.lit", None).unwrap();
    /// assert_eq!(j.to_string(), r"d\27artagnan@musketeers.lit");
    /// ```
    pub fn new(
        node: Option<&str>,
        domain: &str,
        resource: Option<&str>,
    ) -> Result<Jid, AddressError> {
        check_node(node, 0)?;
        let domain = check_domainpart(domain, 0)?;
        check_resource(resource, 0)?;
        Ok(Jid {
            node: node.map(str::to_owned),
            domain: domain.to_owned(),
            resource: resource.map(str::to_owned),
        })
    }

    /// The localpart, escaped as on the wire.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The domainpart.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The resourcepart.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// Whether there is no resourcepart.
    pub fn is_bare(&self) -> bool {
        self.resource.is_none()
    }

    /// The same JID without its resourcepart.
    pub fn bare(&self) -> Jid {
        Jid {
            resource: None,
            ..self.clone()
        }
    }

    /// The same JID with another resourcepart.
    pub fn with_resource(&self, resource: Option<&str>) -> Result<Jid, AddressError> {
        check_resource(resource, 0)?;
        Ok(Jid {
            resource: resource.map(str::to_owned),
            ..self.clone()
        })
    }

    /// Parses a JID found at byte `base`, in RFC 7622 §3.1 order: the
    /// resource from the first `/`, then the localpart up to the first `@`.
    fn parse_at(s: &str, base: usize) -> Result<Jid, AddressError> {
        let (rest, resource) = match s.find('/') {
            Some(sl) => (&s[..sl], Some((&s[sl + 1..], base + sl + 1))),
            None => (s, None),
        };
        let (node, domain, dbase) = match rest.find('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..], base + at + 1),
            None => (None, rest, base),
        };
        check_node(node, base)?;
        let domain = check_domainpart(domain, dbase)?;
        let resource = match resource {
            Some((r, rbase)) => {
                check_resource(Some(r), rbase)?;
                Some(r)
            }
            None => None,
        };
        Ok(Jid {
            node: node.map(str::to_owned),
            domain: domain.to_owned(),
            resource: resource.map(str::to_owned),
        })
    }
}

fn check_node(node: Option<&str>, base: usize) -> Result<(), AddressError> {
    let Some(node) = node else { return Ok(()) };
    if node.is_empty() || node.len() > MAX_PART {
        return Err(AddressError::Jid {
            offset: base,
            reason: "localpart must be 1 to 1023 bytes",
        });
    }
    if let Some((i, _)) = node
        .char_indices()
        .find(|&(_, c)| forbidden_in_localpart(c))
    {
        return Err(AddressError::Jid {
            offset: base + i,
            reason: "character not allowed in a localpart",
        });
    }
    Ok(())
}

/// Checks a domainpart and strips one final dot (RFC 7622 §3.2).
fn check_domainpart(domain: &str, base: usize) -> Result<&str, AddressError> {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.ends_with('.') {
        return Err(AddressError::Jid {
            offset: base + domain.len(),
            reason: "empty label in the domainpart",
        });
    }
    if domain.is_empty() || domain.len() > MAX_PART {
        return Err(AddressError::Jid {
            offset: base,
            reason: "domainpart must be 1 to 1023 bytes",
        });
    }
    check_domain(domain, base).map_err(|e| AddressError::Jid {
        offset: e.offset().unwrap_or(base),
        reason: "invalid domainpart",
    })?;
    Ok(domain)
}

fn check_resource(resource: Option<&str>, base: usize) -> Result<(), AddressError> {
    let Some(r) = resource else { return Ok(()) };
    if r.is_empty() || r.len() > MAX_PART {
        return Err(AddressError::Jid {
            offset: base,
            reason: "resourcepart must be 1 to 1023 bytes",
        });
    }
    if let Some((i, _)) = r.char_indices().find(|&(_, c)| c.is_control()) {
        return Err(AddressError::Jid {
            offset: base + i,
            reason: "control character in the resourcepart",
        });
    }
    if r.starts_with(char::is_whitespace) {
        // RFC 7622 §3.5, table 2, example 18.
        return Err(AddressError::Jid {
            offset: base,
            reason: "leading space in the resourcepart",
        });
    }
    Ok(())
}

impl FromStr for Jid {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        pct::check_len(s)?;
        Jid::parse_at(s, 0)
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = &self.node {
            write!(f, "{n}@")?;
        }
        f.write_str(&self.domain)?;
        if let Some(r) = &self.resource {
            write!(f, "/{r}")?;
        }
        Ok(())
    }
}

fn node_char(b: u8) -> bool {
    unreserved_3986(b) || b"!$()*+,;=".contains(&b)
}

fn res_char(b: u8) -> bool {
    unreserved_3986(b) || b"!$&'()*+,:;=".contains(&b)
}

fn host_char(b: u8) -> bool {
    unreserved_3986(b) || sub_delim(b) || b"[]:".contains(&b)
}

fn query_char(b: u8) -> bool {
    unreserved_3986(b) || b";=%".contains(&b)
}

fn fragment_char(b: u8) -> bool {
    unreserved_3986(b) || sub_delim(b) || b":@/?%".contains(&b)
}

/// An `xmpp:` URI (RFC 5122): the JID of an entity, optionally the account
/// to act as (`//authority`), a query (`?message;subject=...`) and a
/// fragment, both kept as written.
///
/// The node, domain and resource are percent-decoded into a [`Jid`] and
/// encoded again on output (every non-ASCII byte as `%XX`, so the string
/// form is a URI, not an IRI). A `\` of an escaped localpart is `%5C`.
///
/// ```
/// use cpimgate_model::address::XmppUri;
/// // RFC 5122 §2.4 / §2.5
/// let u: XmppUri = "xmpp:romeo@montague.net/orchard".parse().unwrap();
/// assert_eq!(u.jid().resource(), Some("orchard"));
/// let u: XmppUri = "xmpp://guest@example.com/support@example.com?message".parse().unwrap();
/// assert_eq!(u.authority().map(|a| a.to_string()).as_deref(), Some("guest@example.com"));
/// assert_eq!(u.jid().to_string(), "support@example.com");
/// assert_eq!(u.query_type(), Some("message"));
/// let u: XmppUri = "xmpp:alice%5C40atlanta.example.com@sip.gw.example.com".parse().unwrap();
/// assert_eq!(u.jid().node(), Some(r"alice\40atlanta.example.com"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct XmppUri {
    authority: Option<Jid>,
    jid: Jid,
    query: Option<String>,
    fragment: Option<String>,
}

impl XmppUri {
    /// `xmpp:<jid>`.
    pub fn new(jid: Jid) -> XmppUri {
        XmppUri {
            authority: None,
            jid,
            query: None,
            fragment: None,
        }
    }

    /// The JID of the entity.
    pub fn jid(&self) -> &Jid {
        &self.jid
    }

    /// The account to act as (`xmpp://account@host/...`).
    pub fn authority(&self) -> Option<&Jid> {
        self.authority.as_ref()
    }

    /// The query, as written, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The query type (`message` in `?message;subject=Hi`).
    pub fn query_type(&self) -> Option<&str> {
        self.query
            .as_deref()
            .map(|q| q.split(';').next().unwrap_or(q))
    }

    /// The fragment, as written, without the `#`.
    pub fn fragment(&self) -> Option<&str> {
        self.fragment.as_deref()
    }

    /// Parses what follows `xmpp:`, found at byte `base`.
    pub(super) fn parse_rest(s: &str, base: usize) -> Result<XmppUri, AddressError> {
        let (s, fragment) = match s.find('#') {
            Some(h) => {
                let frag = &s[h + 1..];
                check_raw(frag, base + h + 1, fragment_char, "a fragment character")?;
                (&s[..h], Some(frag.to_owned()))
            }
            None => (s, None),
        };
        let (s, query) = match s.find('?') {
            Some(q) => {
                let query = &s[q + 1..];
                check_raw(query, base + q + 1, query_char, "a query character")?;
                (&s[..q], Some(query.to_owned()))
            }
            None => (s, None),
        };
        let (authority, path, pbase) = match s.strip_prefix("//") {
            Some(auth_path) => {
                let end = auth_path.find('/').ok_or(AddressError::Syntax {
                    offset: base + s.len(),
                    expected: "'/' and the JID of the entity after the authority",
                })?;
                let auth = &auth_path[..end];
                let at = auth.find('@').ok_or(AddressError::Syntax {
                    offset: base + 2 + auth.len(),
                    expected: "'@' in the authority (node@host)",
                })?;
                let node = decode(&auth[..at], base + 2, node_char)?;
                let host = decode(&auth[at + 1..], base + 2 + at + 1, host_char)?;
                let jid = Jid::new(Some(&node), &host, None).map_err(|e| e.shifted(base + 2))?;
                (Some(jid), &auth_path[end + 1..], base + 2 + end + 1)
            }
            None => (None, s, base),
        };
        let (rest, resource) = match path.find('/') {
            Some(sl) => (
                &path[..sl],
                Some(decode(&path[sl + 1..], pbase + sl + 1, res_char)?),
            ),
            None => (path, None),
        };
        let (node, host, hbase) = match rest.find('@') {
            Some(at) => (
                Some(decode(&rest[..at], pbase, node_char)?),
                &rest[at + 1..],
                pbase + at + 1,
            ),
            None => (None, rest, pbase),
        };
        let host = decode(host, hbase, host_char)?;
        let jid = Jid::new(node.as_deref(), &host, resource.as_deref()).map_err(|e| match e {
            AddressError::Jid { reason, .. } => AddressError::Jid {
                offset: pbase,
                reason,
            },
            e => e,
        })?;
        Ok(XmppUri {
            authority,
            jid,
            query,
            fragment,
        })
    }
}

fn decode(s: &str, base: usize, class: fn(u8) -> bool) -> Result<String, AddressError> {
    pct::decode(
        s,
        base,
        class,
        true,
        Percent::Strict,
        "a character of an xmpp: URI",
    )
}

/// Checks a component kept as written: its bytes and its `%XX` sequences.
fn check_raw(
    s: &str,
    base: usize,
    class: fn(u8) -> bool,
    expected: &'static str,
) -> Result<(), AddressError> {
    pct::decode(s, base, class, false, Percent::Strict, expected).map(drop)
}

impl FromStr for XmppUri {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        pct::check_len(s)?;
        let rest = pct::strip_scheme(s, "xmpp").ok_or(AddressError::UnknownScheme { offset: 0 })?;
        XmppUri::parse_rest(rest, 5)
    }
}

fn write_jid(f: &mut fmt::Formatter<'_>, jid: &Jid) -> fmt::Result {
    if let Some(n) = jid.node() {
        pct::encode(f, n, node_char)?;
        f.write_str("@")?;
    }
    pct::encode(f, jid.domain(), host_char)?;
    if let Some(r) = jid.resource() {
        f.write_str("/")?;
        pct::encode(f, r, res_char)?;
    }
    Ok(())
}

impl fmt::Display for XmppUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("xmpp:")?;
        if let Some(a) = &self.authority {
            f.write_str("//")?;
            write_jid(f, a)?;
            f.write_str("/")?;
        }
        write_jid(f, &self.jid)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        if let Some(h) = &self.fragment {
            write!(f, "#{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 7622 §3.5, table 1: valid JIDs (PRECIS-only checks aside).
    #[test]
    fn rfc7622_valid() {
        for s in [
            "juliet@example.com",
            "juliet@example.com/foo",
            "juliet@example.com/foo bar",
            "juliet@example.com/foo@bar",
            r"foo\20bar@example.com",
            "fussball@example.com",
            "fu\u{df}ball@example.com",
            "\u{3c0}@example.com",
            "\u{3a3}@example.com/foo",
            "\u{3c3}@example.com/foo",
            "\u{3c2}@example.com/foo",
            "king@example.com/\u{265a}",
            "example.com",
            "example.com/foobar",
            "a.example.com/b@example.net",
        ] {
            let j: Jid = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(j.to_string(), s);
        }
    }

    /// RFC 7622 §3.5, table 2: not JIDs. Examples 20 and 21 need the PRECIS
    /// tables, which this module does not carry.
    #[test]
    fn rfc7622_invalid() {
        for s in [
            "\"juliet\"@example.com",
            "foo bar@example.com",
            "juliet@example.com/ foo",
            "@example.com/",
            "juliet@",
            "/foobar",
            "example.com..",
        ] {
            assert!(s.parse::<Jid>().is_err(), "{s}");
        }
        let long = "a".repeat(1024);
        assert!(format!("{long}@example.com").parse::<Jid>().is_err());
        assert!(format!("{}@example.com", &long[1..]).parse::<Jid>().is_ok());
    }

    /// RFC 5122 §2.x examples.
    #[test]
    fn rfc5122_examples() {
        for s in [
            "xmpp:node@example.com",
            "xmpp:romeo@montague.net",
            "xmpp:romeo@montague.net/orchard",
            "xmpp:romeo@montague.net?message",
            "xmpp:romeo@montague.net?message;subject=Test%20Message;body=Here%27s%20a%20test%20message",
            "xmpp://guest@example.com/support@example.com?message",
            "xmpp:example-node@example.com/some-resource",
            "xmpp:example.com",
            "xmpp:nasty!%23$%25()*+,-.;=%3F%5B%5C%5D%5E_%60%7B%7C%7D~node@example.com",
            "xmpp:node@example.com/repulsive%20!%23%22$%25&'()*+,-.%2F:;%3C=%3E%3F%40%5B%5C%5D%5E_%60%7B%7C%7D~resource",
            "xmpp:ji%C5%99i@%C4%8Dechy.example/v%20Praze",
        ] {
            let u: XmppUri = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            let again: XmppUri = u.to_string().parse().unwrap();
            assert_eq!(again, u, "{s}");
        }
        let u: XmppUri = "xmpp:ji%C5%99i@%C4%8Dechy.example/v%20Praze"
            .parse()
            .unwrap();
        assert_eq!(
            u.jid().to_string(),
            "ji\u{159}i@\u{10d}echy.example/v Praze"
        );
        let u: XmppUri = "xmpp:nasty!%23$%25()*+,-.;=%3F%5B%5C%5D%5E_%60%7B%7C%7D~node@example.com"
            .parse()
            .unwrap();
        assert_eq!(u.jid().node(), Some("nasty!#$%()*+,-.;=?[\\]^_`{|}~node"));
    }

    #[test]
    fn errors() {
        let e = |s: &str| s.parse::<XmppUri>().unwrap_err();
        assert!(matches!(e("xmpp:"), AddressError::Jid { offset: 5, .. }));
        assert!(matches!(e("xmpp:a%40b@c"), AddressError::Jid { .. }));
        assert_eq!(e("xmpp:a b@c").offset(), Some(6));
        assert_eq!(e("xmpp://guest@example.com").offset(), Some(24));
        assert_eq!(e("xmpp:a@b?x y").offset(), Some(10));
    }
}
