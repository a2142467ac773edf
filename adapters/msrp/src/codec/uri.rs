//! MSRP URIs (RFC 4975 §6, grammar in §9) and the paths made of them.
//!
//! ```text
//! MSRP-URI    = msrp-scheme "://" authority
//!               ["/" session-id] ";" transport *( ";" URI-parameter)
//! msrp-scheme = "msrp" / "msrps"
//! session-id  = 1*( unreserved / "+" / "=" / "/" )
//! transport   = "tcp" / 1*ALPHANUM
//! URI-parameter = token ["=" token]
//! ```

use std::fmt;

use super::headers::is_token;

/// Why a string is not an MSRP URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an MSRP URI: {0}")]
pub struct UriError(pub &'static str);

/// The scheme of an MSRP URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `msrp:` — TCP without TLS.
    Msrp,
    /// `msrps:` — the connection to this hop MUST use TLS (RFC 4975 §6).
    Msrps,
}

impl Scheme {
    /// `msrp` or `msrps`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Msrp => "msrp",
            Scheme::Msrps => "msrps",
        }
    }
}

/// An MSRP URI, borrowed from the text it was read from.
///
/// `Display` writes the URI exactly as it was read.
///
/// ```
/// use cpimgate_msrp::codec::{MsrpUri, Scheme};
/// // RFC 4975 §6
/// let u = MsrpUri::parse("msrp://host.example.com:8493/asfd34;tcp").unwrap();
/// assert_eq!(u.scheme(), Scheme::Msrp);
/// assert_eq!((u.host(), u.port()), ("host.example.com", Some(8493)));
/// assert_eq!(u.session_id(), Some("asfd34"));
/// assert_eq!(u.transport(), "tcp");
/// // RFC 4976 §7.1: a relay, with userinfo and no session-id
/// let r = MsrpUri::parse("msrps://alice@intra.example.com;tcp").unwrap();
/// assert_eq!((r.userinfo(), r.host(), r.port(), r.session_id()),
///            (Some("alice"), "intra.example.com", None, None));
/// assert!(r.is_tls());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsrpUri<'a> {
    raw: &'a str,
    scheme: Scheme,
    userinfo: Option<&'a str>,
    host: &'a str,
    port: Option<u16>,
    session_id: Option<&'a str>,
    transport: &'a str,
    params: &'a str,
}

const fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// reg-name and IPv4 (RFC 3986 §3.2.2): unreserved, pct-encoded and
/// sub-delims but `;`, which starts the transport here.
const fn host_byte(b: u8) -> bool {
    unreserved(b)
        || matches!(
            b,
            b'%' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'='
        )
}

/// session-id = 1*( unreserved / "+" / "=" / "/" ) (RFC 4975 §9).
const fn session_byte(b: u8) -> bool {
    unreserved(b) || matches!(b, b'+' | b'=' | b'/')
}

const fn userinfo_byte(b: u8) -> bool {
    host_byte(b) || b == b':'
}

/// For each byte value, whether it belongs to a class.
struct ByteClass([bool; 256]);

/// The [`ByteClass`] of a `const fn(u8) -> bool`.
macro_rules! byte_class {
    ($f:ident) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = $f(i as u8);
            i += 1;
        }
        ByteClass(t)
    }};
}

impl ByteClass {
    fn all(&self, s: &str) -> bool {
        s.bytes().all(|b| self.0[usize::from(b)])
    }
}

static HOST: ByteClass = byte_class!(host_byte);
static USERINFO: ByteClass = byte_class!(userinfo_byte);
static SESSION: ByteClass = byte_class!(session_byte);

fn find(s: &str, c: u8) -> Option<usize> {
    memchr::memchr(c, s.as_bytes())
}

impl<'a> MsrpUri<'a> {
    /// Reads one MSRP URI (RFC 4975 §9 MSRP-URI).
    pub fn parse(s: &'a str) -> Result<Self, UriError> {
        let b = s.as_bytes();
        let (scheme, rest) = if b
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"msrp://"))
        {
            (Scheme::Msrp, s.get(7..).unwrap_or_default())
        } else if b
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"msrps://"))
        {
            (Scheme::Msrps, s.get(8..).unwrap_or_default())
        } else if s.contains("://") {
            return Err(UriError("the scheme is not msrp or msrps"));
        } else {
            return Err(UriError("no \"://\" after the scheme"));
        };
        let auth_end = rest
            .bytes()
            .position(|c| c == b'/' || c == b';')
            .unwrap_or(rest.len());
        let authority = rest.get(..auth_end).unwrap_or_default();
        let rest = rest.get(auth_end..).unwrap_or_default();
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => {
                let u = authority.get(..i).unwrap_or_default();
                if u.is_empty() || !USERINFO.all(u) {
                    return Err(UriError("malformed userinfo"));
                }
                (Some(u), authority.get(i + 1..).unwrap_or_default())
            }
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport)?;
        let (session_id, rest) = match rest.strip_prefix('/') {
            Some(r) => {
                let end = find(r, b';').unwrap_or(r.len());
                let id = r.get(..end).unwrap_or_default();
                if id.is_empty() || !SESSION.all(id) {
                    return Err(UriError("malformed session-id"));
                }
                (Some(id), r.get(end..).unwrap_or_default())
            }
            None => (None, rest),
        };
        let Some(rest) = rest.strip_prefix(';') else {
            return Err(UriError("no transport parameter"));
        };
        let t_end = find(rest, b';').unwrap_or(rest.len());
        let transport = rest.get(..t_end).unwrap_or_default();
        if transport.is_empty() || !transport.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(UriError("malformed transport"));
        }
        let params = rest.get(t_end..).unwrap_or_default();
        let params = params.strip_prefix(';').unwrap_or(params);
        if t_end < rest.len() {
            for p in params.split(';') {
                let (name, value) = match p.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (p, None),
                };
                if !is_token(name) || value.is_some_and(|v| !is_token(v)) {
                    return Err(UriError("malformed URI parameter"));
                }
            }
        }
        Ok(MsrpUri {
            raw: s,
            scheme,
            userinfo,
            host,
            port,
            session_id,
            transport,
            params,
        })
    }

    /// The URI as read.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// `msrp` or `msrps`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Whether the hop is reached over TLS (`msrps`, RFC 4975 §6).
    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::Msrps
    }

    /// The userinfo before `@`, if any (RFC 4975 §6: an account, never a
    /// password).
    pub fn userinfo(&self) -> Option<&'a str> {
        self.userinfo
    }

    /// The host: a name, an IPv4 address or an IPv6 literal with its
    /// brackets.
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// The port, when written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The session-id; `None` for a URI that names a device, not a session
    /// (RFC 4975 §6, relays in RFC 4976).
    pub fn session_id(&self) -> Option<&'a str> {
        self.session_id
    }

    /// The transport parameter, `tcp` in RFC 4975.
    pub fn transport(&self) -> &'a str {
        self.transport
    }

    /// The URI parameters after the transport, as `name` and optional
    /// `value`.
    pub fn params(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + use<'a> {
        let raw = self.params;
        raw.split(';')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            })
    }

    /// Whether two URIs name the same session by the rules of RFC 4975
    /// §6.1: scheme and transport without regard to case, authority
    /// without userinfo and without regard to case, the same port or both
    /// none, session-id with regard to case.
    ///
    /// ```
    /// use cpimgate_msrp::codec::MsrpUri;
    /// let a = MsrpUri::parse("msrp://Bob.Example.com:8888/9di4eae923wzd;tcp").unwrap();
    /// let b = MsrpUri::parse("MSRP://u@bob.example.com:8888/9di4eae923wzd;TCP").unwrap();
    /// let c = MsrpUri::parse("msrp://bob.example.com:8888/9DI4EAE923WZD;tcp").unwrap();
    /// assert!(a.same_as(&b));
    /// assert!(!a.same_as(&c));
    /// ```
    pub fn same_as(&self, other: &MsrpUri<'_>) -> bool {
        self.scheme == other.scheme
            && self.host.eq_ignore_ascii_case(other.host)
            && self.port == other.port
            && self.session_id == other.session_id
            && self.transport.eq_ignore_ascii_case(other.transport)
    }
}

impl fmt::Display for MsrpUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

fn split_host_port(hostport: &str) -> Result<(&str, Option<u16>), UriError> {
    let (host, port) = if hostport.starts_with('[') {
        let Some(close) = hostport.find(']') else {
            return Err(UriError("IPv6 literal not closed by ]"));
        };
        let inner = hostport.get(1..close).unwrap_or_default();
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(UriError("malformed IPv6 literal"));
        }
        let after = hostport.get(close + 1..).unwrap_or_default();
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(UriError("bytes after the IPv6 literal")),
        };
        (hostport.get(..=close).unwrap_or_default(), port)
    } else {
        match find(hostport, b':').map(|i| (hostport.get(..i), hostport.get(i + 1..))) {
            Some((Some(h), Some(p))) => (h, Some(p)),
            Some(_) => return Err(UriError("malformed host")),
            None => (hostport, None),
        }
    };
    if !host.starts_with('[') && (host.is_empty() || !HOST.all(host)) {
        return Err(UriError("malformed host"));
    }
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(UriError("malformed port"));
            }
            Some(
                p.parse::<u16>()
                    .map_err(|_| UriError("port out of range"))?,
            )
        }
    };
    Ok((host, port))
}

/// Reads a path: one or more MSRP URIs separated by SP (RFC 4975 §9
/// To-Path, From-Path; the leftmost is the first hop, §7.1).
///
/// ```
/// use cpimgate_msrp::codec::parse_path;
/// // RFC 4976 §5
/// let p = parse_path("msrps://a.example.org:9000/kjfjan;tcp msrps://bob.example.net:8145/foo;tcp").unwrap();
/// assert_eq!(p.len(), 2);
/// assert_eq!(p[1].session_id(), Some("foo"));
/// ```
pub fn parse_path(value: &str) -> Result<Vec<MsrpUri<'_>>, UriError> {
    let mut out = Vec::with_capacity(1);
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            break;
        }
        let end = rest
            .bytes()
            .position(|b| b == b' ' || b == b'\t')
            .unwrap_or(rest.len());
        out.push(MsrpUri::parse(rest.get(..end).unwrap_or_default())?);
        rest = rest.get(end..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err(UriError("empty path"));
    }
    Ok(out)
}
