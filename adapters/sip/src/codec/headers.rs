//! Header fields: names with their compact forms, and the splitting of
//! values into list elements and parameters (RFC 3261 §7.3, §20, §25.1).

use std::borrow::Cow;

/// A header name the codec knows, or [`HeaderName::Other`].
///
/// Known names compare without regard to case and include their compact
/// forms (RFC 3261 §7.3.3): `v` is [`HeaderName::Via`].
///
/// ```
/// use cpimgate_sip::codec::HeaderName;
/// assert_eq!(HeaderName::parse("v"), HeaderName::Via);
/// assert_eq!(HeaderName::parse("call-id"), HeaderName::CallId);
/// assert_eq!(HeaderName::CallId.as_str(), "Call-ID");
/// assert_eq!(HeaderName::parse("X-Foo"), HeaderName::Other);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the header of its name
pub enum HeaderName {
    Accept,
    AcceptContact,
    AcceptEncoding,
    AcceptLanguage,
    AlertInfo,
    Allow,
    AllowEvents,
    AuthenticationInfo,
    Authorization,
    CallId,
    CallInfo,
    Contact,
    ContentDisposition,
    ContentEncoding,
    ContentLanguage,
    ContentLength,
    ContentType,
    CSeq,
    Date,
    ErrorInfo,
    Event,
    Expires,
    From,
    InReplyTo,
    MaxForwards,
    MimeVersion,
    MinExpires,
    Organization,
    Priority,
    ProxyAuthenticate,
    ProxyAuthorization,
    ProxyRequire,
    RecordRoute,
    ReferTo,
    ReferredBy,
    RejectContact,
    ReplyTo,
    RequestDisposition,
    Require,
    RetryAfter,
    Route,
    Server,
    SessionExpires,
    Subject,
    Supported,
    Timestamp,
    To,
    Unsupported,
    UserAgent,
    Via,
    Warning,
    WwwAuthenticate,
    /// A header this codec does not know; its name is kept as written.
    Other,
}

use HeaderName as H;

/// Long forms, the most frequent first (RFC 3261 §20 unless noted).
const LONG: &[(HeaderName, &str)] = &[
    (H::Via, "Via"),
    (H::From, "From"),
    (H::To, "To"),
    (H::CallId, "Call-ID"),
    (H::CSeq, "CSeq"),
    (H::MaxForwards, "Max-Forwards"),
    (H::ContentLength, "Content-Length"),
    (H::ContentType, "Content-Type"),
    (H::Contact, "Contact"),
    (H::Route, "Route"),
    (H::RecordRoute, "Record-Route"),
    (H::Expires, "Expires"),
    (H::Allow, "Allow"),
    (H::Supported, "Supported"),
    (H::Require, "Require"),
    (H::Accept, "Accept"),
    (H::UserAgent, "User-Agent"),
    (H::Server, "Server"),
    (H::Date, "Date"),
    (H::Authorization, "Authorization"),
    (H::WwwAuthenticate, "WWW-Authenticate"),
    (H::ProxyAuthenticate, "Proxy-Authenticate"),
    (H::ProxyAuthorization, "Proxy-Authorization"),
    (H::AuthenticationInfo, "Authentication-Info"),
    (H::AcceptEncoding, "Accept-Encoding"),
    (H::AcceptLanguage, "Accept-Language"),
    (H::AlertInfo, "Alert-Info"),
    (H::CallInfo, "Call-Info"),
    (H::ContentDisposition, "Content-Disposition"),
    (H::ContentEncoding, "Content-Encoding"),
    (H::ContentLanguage, "Content-Language"),
    (H::ErrorInfo, "Error-Info"),
    (H::InReplyTo, "In-Reply-To"),
    (H::MimeVersion, "MIME-Version"),
    (H::MinExpires, "Min-Expires"),
    (H::Organization, "Organization"),
    (H::Priority, "Priority"),
    (H::ProxyRequire, "Proxy-Require"),
    (H::ReplyTo, "Reply-To"),
    (H::RetryAfter, "Retry-After"),
    (H::Subject, "Subject"),
    (H::Timestamp, "Timestamp"),
    (H::Unsupported, "Unsupported"),
    (H::Warning, "Warning"),
    // RFC 3265 §7.2
    (H::Event, "Event"),
    (H::AllowEvents, "Allow-Events"),
    // RFC 3515 §2.1
    (H::ReferTo, "Refer-To"),
    // RFC 3892 §3
    (H::ReferredBy, "Referred-By"),
    // RFC 4028 §4
    (H::SessionExpires, "Session-Expires"),
    // RFC 3841 §9
    (H::AcceptContact, "Accept-Contact"),
    (H::RejectContact, "Reject-Contact"),
    (H::RequestDisposition, "Request-Disposition"),
];

/// Compact forms: RFC 3261 §7.3.3 and §20 define `i m e l c f s k t v`;
/// the extensions that the IANA SIP registry lists add `o u` (RFC 3265
/// §7.2), `r` (RFC 3515), `b` (RFC 3892), `x` (RFC 4028) and `a j d`
/// (RFC 3841).
const COMPACT: &[(u8, HeaderName)] = &[
    (b'v', H::Via),
    (b'f', H::From),
    (b't', H::To),
    (b'i', H::CallId),
    (b'm', H::Contact),
    (b'l', H::ContentLength),
    (b'c', H::ContentType),
    (b'e', H::ContentEncoding),
    (b's', H::Subject),
    (b'k', H::Supported),
    (b'o', H::Event),
    (b'u', H::AllowEvents),
    (b'r', H::ReferTo),
    (b'b', H::ReferredBy),
    (b'x', H::SessionExpires),
    (b'a', H::AcceptContact),
    (b'j', H::RejectContact),
    (b'd', H::RequestDisposition),
];

/// Whether a canonical name (letters and '-') equals `name` without regard
/// to case. Setting bit 0x20 lower-cases a letter and leaves '-' alone; the
/// only other bytes it would confuse with a letter or '-' are controls,
/// '@', '[', '\\', ']' and '^', none of which a token holds. Without an
/// early exit the loop stays branch-free.
fn same_token_ignoring_case(canonical: &[u8], name: &[u8]) -> bool {
    canonical.len() == name.len()
        && canonical
            .iter()
            .zip(name)
            .fold(0u8, |acc, (a, b)| acc | ((a | 0x20) ^ (b | 0x20)))
            == 0
}

impl HeaderName {
    /// The header of that name, long or compact, without regard to case.
    pub fn parse(name: &str) -> HeaderName {
        if !is_token(name) {
            return H::Other;
        }
        if let [c] = name.as_bytes() {
            let c = c.to_ascii_lowercase();
            return COMPACT
                .iter()
                .find(|(k, _)| *k == c)
                .map_or(H::Other, |(_, h)| *h);
        }
        // Grouped by length so that a name is compared with few others.
        let candidates: &[(HeaderName, &str)] = match name.len() {
            2 => &[(H::To, "To")],
            3 => &[(H::Via, "Via")],
            4 => &[(H::From, "From"), (H::CSeq, "CSeq"), (H::Date, "Date")],
            5 => &[
                (H::Route, "Route"),
                (H::Allow, "Allow"),
                (H::Event, "Event"),
            ],
            6 => &[(H::Accept, "Accept"), (H::Server, "Server")],
            7 => &[
                (H::CallId, "Call-ID"),
                (H::Contact, "Contact"),
                (H::Expires, "Expires"),
                (H::Require, "Require"),
                (H::Subject, "Subject"),
                (H::Warning, "Warning"),
            ],
            8 => &[
                (H::Priority, "Priority"),
                (H::ReplyTo, "Reply-To"),
                (H::ReferTo, "Refer-To"),
            ],
            9 => &[
                (H::Supported, "Supported"),
                (H::CallInfo, "Call-Info"),
                (H::Timestamp, "Timestamp"),
            ],
            10 => &[
                (H::UserAgent, "User-Agent"),
                (H::AlertInfo, "Alert-Info"),
                (H::ErrorInfo, "Error-Info"),
            ],
            11 => &[
                (H::InReplyTo, "In-Reply-To"),
                (H::MinExpires, "Min-Expires"),
                (H::RetryAfter, "Retry-After"),
                (H::Unsupported, "Unsupported"),
                (H::ReferredBy, "Referred-By"),
            ],
            12 => &[
                (H::MaxForwards, "Max-Forwards"),
                (H::ContentType, "Content-Type"),
                (H::RecordRoute, "Record-Route"),
                (H::MimeVersion, "MIME-Version"),
                (H::Organization, "Organization"),
                (H::AllowEvents, "Allow-Events"),
            ],
            13 => &[
                (H::Authorization, "Authorization"),
                (H::ProxyRequire, "Proxy-Require"),
            ],
            14 => &[
                (H::ContentLength, "Content-Length"),
                (H::AcceptContact, "Accept-Contact"),
                (H::RejectContact, "Reject-Contact"),
            ],
            15 => &[
                (H::AcceptEncoding, "Accept-Encoding"),
                (H::AcceptLanguage, "Accept-Language"),
                (H::SessionExpires, "Session-Expires"),
            ],
            16 => &[
                (H::WwwAuthenticate, "WWW-Authenticate"),
                (H::ContentEncoding, "Content-Encoding"),
                (H::ContentLanguage, "Content-Language"),
            ],
            18 => &[(H::ProxyAuthenticate, "Proxy-Authenticate")],
            19 => &[
                (H::ProxyAuthorization, "Proxy-Authorization"),
                (H::AuthenticationInfo, "Authentication-Info"),
                (H::ContentDisposition, "Content-Disposition"),
                (H::RequestDisposition, "Request-Disposition"),
            ],
            _ => &[],
        };
        candidates
            .iter()
            .find(|(_, n)| same_token_ignoring_case(n.as_bytes(), name.as_bytes()))
            .map_or(H::Other, |(h, _)| *h)
    }

    /// The canonical (long) name as RFC 3261 §20 writes it; `""` for
    /// [`HeaderName::Other`].
    pub fn as_str(self) -> &'static str {
        LONG.iter().find(|(h, _)| *h == self).map_or("", |(_, n)| n)
    }

    /// The compact form, when the header has one.
    pub fn compact(self) -> Option<char> {
        COMPACT
            .iter()
            .find(|(_, h)| *h == self)
            .map(|(c, _)| char::from(*c))
    }

    /// Whether several values of this header may be joined by commas on
    /// one line, and so must be split on commas to be read (RFC 3261
    /// §7.3.1). The authentication headers are the named exceptions; the
    /// single-valued headers are never split either (a Date holds a comma).
    pub fn is_list(self) -> bool {
        matches!(
            self,
            H::Via
                | H::Contact
                | H::Route
                | H::RecordRoute
                | H::Allow
                | H::Accept
                | H::AcceptEncoding
                | H::AcceptLanguage
                | H::AlertInfo
                | H::CallInfo
                | H::ContentEncoding
                | H::ContentLanguage
                | H::ErrorInfo
                | H::InReplyTo
                | H::ProxyRequire
                | H::ReplyTo
                | H::Require
                | H::Supported
                | H::Unsupported
                | H::Warning
                | H::AllowEvents
                | H::AcceptContact
                | H::RejectContact
                | H::RequestDisposition
        )
    }
}

/// One header line of a parsed message, borrowed from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    pub(crate) name: &'a str,
    pub(crate) kind: HeaderName,
    pub(crate) value: Cow<'a, str>,
    pub(crate) raw: &'a [u8],
    pub(crate) offset: usize,
}

impl<'a> Header<'a> {
    /// The name as written (`v`, `VIA`, `X-Foo`).
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The known header this is, or [`HeaderName::Other`].
    pub fn kind(&self) -> HeaderName {
        self.kind
    }

    /// The canonical name: the long form for a known header (RFC 3261
    /// §20), the name as written otherwise.
    pub fn canonical_name(&self) -> &'a str {
        match self.kind {
            H::Other => self.name,
            k => k.as_str(),
        }
    }

    /// The value with leading and trailing white space removed and each
    /// folded line break (CRLF and the white space after it) replaced by
    /// one SP (RFC 3261 §7.3.1). Borrowed unless the value was folded.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The value as a `Cow`: borrowed from the input unless it was folded.
    pub fn value_cow(&self) -> &Cow<'a, str> {
        &self.value
    }

    /// The whole header line as received, from the name to the final CRLF
    /// included (with its continuation lines).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Byte offset of the line in the message.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Whether the name is that header (long or compact form, any case).
    pub fn is(&self, name: &str) -> bool {
        match self.kind {
            H::Other => self.name.eq_ignore_ascii_case(name),
            k => k == HeaderName::parse(name),
        }
    }

    /// The elements of the value split on commas outside quoted strings and
    /// angle brackets (RFC 3261 §7.3.1), trimmed. Meaningful for list
    /// headers only ([`HeaderName::is_list`]).
    pub fn elements(&self) -> impl Iterator<Item = &str> {
        split_list(&self.value)
    }
}

/// Splits a header value on commas outside quoted strings and angle
/// brackets, trimming LWS around each element; empty elements are skipped
/// (RFC 3261 §7.3.1; §25.1 COMMA = SWS "," SWS).
///
/// ```
/// use cpimgate_sip::codec::split_list;
/// let v: Vec<_> = split_list(r#""Doe, John" <sip:j@x.com;a=1,2>, <sip:b@y.com> ,"#).collect();
/// assert_eq!(v, [r#""Doe, John" <sip:j@x.com;a=1,2>"#, "<sip:b@y.com>"]);
/// ```
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = value;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let end = find_outside(rest, b',').unwrap_or(rest.len());
            let item = rest.get(..end).unwrap_or_default().trim_lws();
            rest = rest.get(end + 1..).unwrap_or_default();
            if !item.is_empty() {
                return Some(item);
            }
        }
    })
}

/// The first `sep` outside quoted strings and angle brackets.
pub(crate) fn find_outside(s: &str, sep: u8) -> Option<usize> {
    let b = s.as_bytes();
    // Most values hold no quote and no '<' before the separator.
    let first = b.iter().position(|&c| c == sep || c == b'"' || c == b'<')?;
    if b.get(first) == Some(&sep) {
        return Some(first);
    }
    let mut quoted = false;
    let mut angle = false;
    let mut i = first;
    while let Some(&c) = b.get(i) {
        if quoted {
            match c {
                b'\\' => i += 1,
                b'"' => quoted = false,
                _ => {}
            }
        } else if angle {
            if c == b'>' {
                angle = false;
            }
        } else if c == sep {
            return Some(i);
        } else if c == b'"' {
            quoted = true;
        } else if c == b'<' {
            angle = true;
        }
        i += 1;
    }
    None
}

pub(crate) fn is_lws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Trimming of SP and HTAB (RFC 3261 §25.1 LWS once unfolded), with byte
/// loops: the parser trims every value and parameter.
pub(crate) trait TrimLws {
    /// Without SP and HTAB at either end.
    fn trim_lws(&self) -> &str;
    /// Without SP and HTAB at the start.
    fn trim_lws_start(&self) -> &str;
    /// Without SP and HTAB at the end.
    fn trim_lws_end(&self) -> &str;
}

impl TrimLws for str {
    fn trim_lws(&self) -> &str {
        self.trim_lws_start().trim_lws_end()
    }

    fn trim_lws_start(&self) -> &str {
        let n = self
            .as_bytes()
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        self.get(n..).unwrap_or_default()
    }

    fn trim_lws_end(&self) -> &str {
        let n = self
            .as_bytes()
            .iter()
            .rev()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        self.get(..self.len() - n).unwrap_or_default()
    }
}

/// `;name[=value]` parameters (RFC 3261 §25.1 generic-param), borrowed.
///
/// Values are returned as written: a quoted-string value keeps its quotes
/// (see [`unquote`]). Empty parameters (`;;`, seen in RFC 3428 §10 F3 and
/// F4) are skipped rather than refused, since RFC 3261 §16.3 asks not to
/// reject what is not needed to process the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

impl<'a> Params<'a> {
    /// Parameters from the text after the value, starting with `;` (or
    /// empty).
    pub fn new(raw: &'a str) -> Self {
        Params { raw }
    }

    /// The text the parameters were read from.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Every parameter in order: name and value (`None` without `=`).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + use<'a> {
        let mut rest = self.raw;
        std::iter::from_fn(move || {
            loop {
                let t = rest.trim_lws_start();
                let t = t.strip_prefix(';').unwrap_or(t);
                if t.trim_lws().is_empty() {
                    rest = "";
                    return None;
                }
                let end = find_outside(t, b';').unwrap_or(t.len());
                let p = t.get(..end).unwrap_or_default().trim_lws();
                rest = t.get(end..).unwrap_or_default();
                if p.is_empty() {
                    continue;
                }
                return Some(match split_byte(p, b'=') {
                    Some((n, v)) => (n.trim_lws_end(), Some(v.trim_lws_start())),
                    None => (p, None),
                });
            }
        })
    }

    /// The first parameter of that name (names compare without regard to
    /// case, RFC 3261 §7.3.1): `Some(None)` for a parameter without value.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// The content of a quoted string with its escapes resolved, or the text
/// unchanged when it is not quoted (RFC 3261 §25.1 quoted-string).
pub fn unquote(s: &str) -> Cow<'_, str> {
    let Some(inner) = s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return Cow::Borrowed(s);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `token` characters of RFC 3261 §25.1, as a table: the parser asks for
/// every byte of every header name.
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        c += 1;
    }
    t
};

/// Whether `c` is a `token` character (RFC 3261 §25.1).
pub(crate) fn is_token_byte(c: u8) -> bool {
    TOKEN[usize::from(c)]
}

/// Whether `s` is a non-empty token (RFC 3261 §25.1).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// The first `b` in `s`: a plain loop, quicker than `str::find` on the
/// short strings of header values.
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.as_bytes().iter().position(|&c| c == b)
}

/// `s` cut around the first `b`.
pub(crate) fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = find_byte(s, b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}
