//! Header fields: names, and the typed values of the ones the codec
//! interprets (RFC 4975 §9, §15.2; RFC 4976 §7; RFC 7701 §7.1).

use std::borrow::Cow;
use std::fmt;

/// A header name the codec knows, or [`HeaderName::Other`].
///
/// Names compare without regard to case (RFC 4975 §9 quotes them in ABNF,
/// whose strings are case-insensitive).
///
/// ```
/// use cpimgate_msrp::codec::HeaderName;
/// assert_eq!(HeaderName::parse("to-path"), HeaderName::ToPath);
/// assert_eq!(HeaderName::ByteRange.as_str(), "Byte-Range");
/// assert_eq!(HeaderName::parse("X-Foo"), HeaderName::Other);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the header of its name
pub enum HeaderName {
    ToPath,
    FromPath,
    MessageId,
    ByteRange,
    SuccessReport,
    FailureReport,
    Status,
    ContentType,
    ContentId,
    ContentDescription,
    ContentDisposition,
    /// RFC 7701 §7.1.
    UseNickname,
    /// RFC 4976 §7.1.
    UsePath,
    /// RFC 4976 §7.1.
    Expires,
    /// RFC 4976 §7.1.
    MinExpires,
    /// RFC 4976 §7.1.
    MaxExpires,
    /// RFC 4976 §7.1.
    WwwAuthenticate,
    /// RFC 4976 §7.1.
    Authorization,
    /// RFC 4976 §7.1.
    AuthenticationInfo,
    /// A header this codec does not know; its name is kept as written.
    Other,
}

use HeaderName as H;

/// Every known name (RFC 4975 §15.2 unless noted), for the test that
/// `parse` and `as_str` agree.
#[cfg(test)]
const NAMES: &[(HeaderName, &str)] = &[
    (H::ToPath, "To-Path"),
    (H::FromPath, "From-Path"),
    (H::MessageId, "Message-ID"),
    (H::ByteRange, "Byte-Range"),
    (H::ContentType, "Content-Type"),
    (H::SuccessReport, "Success-Report"),
    (H::FailureReport, "Failure-Report"),
    (H::Status, "Status"),
    (H::ContentId, "Content-ID"),
    (H::ContentDescription, "Content-Description"),
    (H::ContentDisposition, "Content-Disposition"),
    (H::UseNickname, "Use-Nickname"),
    (H::UsePath, "Use-Path"),
    (H::Expires, "Expires"),
    (H::MinExpires, "Min-Expires"),
    (H::MaxExpires, "Max-Expires"),
    (H::WwwAuthenticate, "WWW-Authenticate"),
    (H::Authorization, "Authorization"),
    (H::AuthenticationInfo, "Authentication-Info"),
];

impl HeaderName {
    /// The known header of this name, without regard to case.
    pub fn parse(name: &str) -> HeaderName {
        // The candidates of the same length (none share length and first
        // letter but the Content-* and *-Report names).
        let candidates: &[HeaderName] = match name.len() {
            6 => &[H::Status],
            7 => &[H::ToPath, H::Expires],
            8 => &[H::UsePath],
            9 => &[H::FromPath],
            10 => &[H::MessageId, H::ByteRange, H::ContentId],
            11 => &[H::MinExpires, H::MaxExpires],
            12 => &[H::ContentType, H::UseNickname],
            13 => &[H::Authorization],
            14 => &[H::SuccessReport, H::FailureReport],
            16 => &[H::WwwAuthenticate],
            19 => &[
                H::ContentDescription,
                H::ContentDisposition,
                H::AuthenticationInfo,
            ],
            _ => &[],
        };
        candidates
            .iter()
            .copied()
            .find(|h| h.as_str().eq_ignore_ascii_case(name))
            .unwrap_or(H::Other)
    }

    /// The canonical spelling; `""` for [`HeaderName::Other`].
    pub fn as_str(self) -> &'static str {
        match self {
            H::ToPath => "To-Path",
            H::FromPath => "From-Path",
            H::MessageId => "Message-ID",
            H::ByteRange => "Byte-Range",
            H::ContentType => "Content-Type",
            H::SuccessReport => "Success-Report",
            H::FailureReport => "Failure-Report",
            H::Status => "Status",
            H::ContentId => "Content-ID",
            H::ContentDescription => "Content-Description",
            H::ContentDisposition => "Content-Disposition",
            H::UseNickname => "Use-Nickname",
            H::UsePath => "Use-Path",
            H::Expires => "Expires",
            H::MinExpires => "Min-Expires",
            H::MaxExpires => "Max-Expires",
            H::WwwAuthenticate => "WWW-Authenticate",
            H::Authorization => "Authorization",
            H::AuthenticationInfo => "Authentication-Info",
            H::Other => "",
        }
    }

    /// Whether this is a MIME header that belongs with a body (RFC 4975
    /// §9 content-stuff: Content-Type and Other-Mime-header).
    pub fn is_mime(self) -> bool {
        matches!(
            self,
            H::ContentType | H::ContentId | H::ContentDescription | H::ContentDisposition
        )
    }
}

/// One header line, borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub(crate) name: &'a str,
    pub(crate) kind: HeaderName,
    pub(crate) value: &'a str,
    pub(crate) raw: &'a [u8],
    pub(crate) offset: usize,
}

impl<'a> Header<'a> {
    /// The name as written.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The known header this is, or [`HeaderName::Other`].
    pub fn kind(&self) -> HeaderName {
        self.kind
    }

    /// The value without the white space around it.
    pub fn value(&self) -> &'a str {
        self.value
    }

    /// The whole line without its CRLF.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Offset of the line in the message.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// A Byte-Range value, `range-start "-" range-end "/" total` (RFC 4975
/// §7.1.1, §9), with 1 as the position of the first byte.
///
/// ```
/// use cpimgate_msrp::codec::ByteRange;
/// let r: ByteRange = "1-*/8".parse().unwrap();
/// assert_eq!((r.start, r.end, r.total), (1, None, Some(8)));
/// assert_eq!(r.to_string(), "1-*/8");
/// assert!("0-3/3".parse::<ByteRange>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// Position of the first byte of the body in the message, from 1.
    pub start: u64,
    /// Position of the last byte, `None` for `*` (unknown, or the chunk
    /// may be interrupted).
    pub end: Option<u64>,
    /// Size of the whole message, `None` for `*` (unknown).
    pub total: Option<u64>,
}

impl ByteRange {
    /// `1-*/*`: the whole message from its first byte, end and size
    /// unknown.
    pub const UNKNOWN: ByteRange = ByteRange {
        start: 1,
        end: None,
        total: None,
    };
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.start)?;
        match self.end {
            Some(e) => write!(f, "{e}/")?,
            None => f.write_str("*/")?,
        }
        match self.total {
            Some(t) => write!(f, "{t}"),
            None => f.write_str("*"),
        }
    }
}

impl std::str::FromStr for ByteRange {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (start, rest) = s.split_once('-').ok_or("no \"-\" after range-start")?;
        let (end, total) = rest.split_once('/').ok_or("no \"/\" before total")?;
        let start = decimal(start).ok_or("range-start is not a number")?;
        let end = star_or_decimal(end).ok_or("range-end is not a number or *")?;
        let total = star_or_decimal(total).ok_or("total is not a number or *")?;
        // RFC 4975 §7.1.1: the first octet has position one; "1-0/0" is
        // the range of an empty message.
        if start == 0 {
            return Err("range-start is 0 (the first byte is 1)");
        }
        if end.is_some_and(|e| e.saturating_add(1) < start) {
            return Err("range-end is before range-start");
        }
        if let (Some(e), Some(t)) = (end, total) {
            if e > t {
                return Err("range-end is after total");
            }
        }
        if total.is_some_and(|t| start > t.saturating_add(1)) {
            return Err("range-start is after total");
        }
        Ok(ByteRange { start, end, total })
    }
}

/// 1*DIGIT that fits in a u64.
pub(crate) fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn star_or_decimal(s: &str) -> Option<Option<u64>> {
    if s == "*" {
        Some(None)
    } else {
        decimal(s).map(Some)
    }
}

/// The Success-Report value (RFC 4975 §7.1.1: absent means `no`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SuccessReport {
    /// `yes`: send success REPORTs (§7.1.3).
    Yes,
    /// `no`, or no header.
    #[default]
    No,
}

/// The Failure-Report value (RFC 4975 §7.1.1: absent means `yes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailureReport {
    /// `yes`, or no header: answer every request (§7.2) and report
    /// failures.
    #[default]
    Yes,
    /// `no`: no response and no failure REPORT (§7.1.4).
    No,
    /// `partial`: no 200 response, but errors are answered (§7.1.4).
    Partial,
}

impl SuccessReport {
    pub(crate) fn parse(v: &str) -> Option<Self> {
        match v {
            "yes" => Some(SuccessReport::Yes),
            "no" => Some(SuccessReport::No),
            _ => None,
        }
    }

    /// `yes` or `no`.
    pub fn as_str(self) -> &'static str {
        match self {
            SuccessReport::Yes => "yes",
            SuccessReport::No => "no",
        }
    }
}

impl FailureReport {
    pub(crate) fn parse(v: &str) -> Option<Self> {
        match v {
            "yes" => Some(FailureReport::Yes),
            "no" => Some(FailureReport::No),
            "partial" => Some(FailureReport::Partial),
            _ => None,
        }
    }

    /// `yes`, `no` or `partial`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReport::Yes => "yes",
            FailureReport::No => "no",
            FailureReport::Partial => "partial",
        }
    }
}

/// The Status header of a REPORT, `namespace SP status-code [SP comment]`
/// (RFC 4975 §7.1.3, §9), e.g. `000 200 OK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status<'a> {
    /// `000` for the codes of RFC 4975, read as a transaction response code.
    pub namespace: u16,
    /// The three-digit code.
    pub code: u16,
    /// The comment, if any.
    pub comment: Option<&'a str>,
}

impl Status<'_> {
    pub(crate) fn parse(v: &str) -> Option<Status<'_>> {
        let b = v.as_bytes();
        let digits3 = |s: &[u8]| s.len() == 3 && s.iter().all(u8::is_ascii_digit);
        let ns = b.get(..3)?;
        let code = b.get(4..7)?;
        if !digits3(ns) || b.get(3) != Some(&b' ') || !digits3(code) {
            return None;
        }
        let comment = match b.get(7) {
            None => None,
            Some(b' ') => Some(v.get(8..)?),
            Some(_) => return None,
        };
        Some(Status {
            namespace: three_digits(ns),
            code: three_digits(code),
            comment,
        })
    }
}

impl fmt::Display for Status<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.namespace, self.code)?;
        if let Some(c) = self.comment {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

pub(crate) fn three_digits(d: &[u8]) -> u16 {
    d.iter()
        .fold(0u16, |n, &c| n * 10 + u16::from(c.wrapping_sub(b'0') % 10))
}

/// A Content-Type value, `type "/" subtype *( ";" gen-param )` (RFC 4975
/// §9).
///
/// ```
/// use cpimgate_msrp::codec::ContentType;
/// let c = ContentType::parse("text/plain; charset=utf-8").unwrap();
/// assert_eq!((c.media_type(), c.subtype()), ("text", "plain"));
/// assert!(c.is("TEXT/Plain"));
/// assert_eq!(c.params().collect::<Vec<_>>(), [("charset", Some("utf-8"))]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentType<'a> {
    media_type: &'a str,
    subtype: &'a str,
    params: &'a str,
}

impl<'a> ContentType<'a> {
    /// Reads a media-type; `None` when type or subtype is not a token.
    pub fn parse(v: &'a str) -> Option<Self> {
        let (essence, params) = v.split_once(';').unwrap_or((v, ""));
        let (t, s) = essence.trim().split_once('/')?;
        if !is_token(t) || !is_token(s) {
            return None;
        }
        Some(ContentType {
            media_type: t,
            subtype: s,
            params,
        })
    }

    /// The type, e.g. `message`.
    pub fn media_type(&self) -> &'a str {
        self.media_type
    }

    /// The subtype, e.g. `cpim`.
    pub fn subtype(&self) -> &'a str {
        self.subtype
    }

    /// Whether the type is `type/subtype`, without regard to case.
    pub fn is(&self, essence: &str) -> bool {
        essence.split_once('/').is_some_and(|(t, s)| {
            t.eq_ignore_ascii_case(self.media_type) && s.eq_ignore_ascii_case(self.subtype)
        })
    }

    /// The parameters as `name` and optional value (quotes kept).
    pub fn params(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + use<'a> {
        self.params
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (p, None),
            })
    }
}

/// Reads the nickname of a Use-Nickname value (RFC 7701 §7.1: `nickname
/// = DQUOTE 1*1023(qdtext / qd-esc) DQUOTE`), unescaping `\\` and `\"`.
/// The draft that RFC 7701 grew from wrote a SIP URI in angle brackets
/// instead (draft-ietf-simple-chat-00 §9.2): that form is given back
/// without its brackets.
pub(crate) fn nickname(v: &str) -> Option<Cow<'_, str>> {
    if let Some(uri) = v.strip_prefix('<').and_then(|r| r.strip_suffix('>')) {
        return (!uri.is_empty()).then_some(Cow::Borrowed(uri));
    }
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    if inner.is_empty() || inner.len() > 1023 {
        return None;
    }
    if !inner.contains('\\') && !inner.contains('"') {
        return Some(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | '"')) => out.push(e),
                _ => return None,
            },
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(Cow::Owned(out))
}

/// token (RFC 4975 §9).
pub(crate) fn is_token_byte(c: u8) -> bool {
    matches!(c, 0x21 | 0x23..=0x27 | 0x2a..=0x2b | 0x2d..=0x2e | 0x30..=0x39 | 0x41..=0x5a | 0x5e..=0x7e)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// ident = ALPHANUM 3*31ident-char (RFC 4975 §9), the form of transact-id
/// and Message-ID.
pub fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    (4..=32).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'%' | b'='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for (h, n) in NAMES {
            assert_eq!(h.as_str(), *n);
            assert_eq!(HeaderName::parse(n), *h);
            assert_eq!(HeaderName::parse(&n.to_ascii_lowercase()), *h);
            assert_eq!(HeaderName::parse(&n.to_ascii_uppercase()), *h);
        }
        assert_eq!(NAMES.len(), 19);
    }
}
