//! A SIP message borrowed from its bytes, and its parser (RFC 3261 §7,
//! grammar in §25).
//!
//! ```text
//! SIP-message  = Request / Response
//! Request      = Request-Line *( message-header ) CRLF [ message-body ]
//! Request-Line = Method SP Request-URI SP SIP-Version CRLF
//! Status-Line  = SIP-Version SP Status-Code SP Reason-Phrase CRLF
//! message-header = header-name HCOLON header-value *(LWS header-value) CRLF
//! ```

use std::borrow::Cow;

use super::error::{ErrorKind, ParseError};
use super::headers::{Header, HeaderName, TrimLws, find_byte, is_token, is_token_byte, split_byte};

/// Limits that bound the work and memory one message can cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest message, header section and body together, in bytes.
    pub max_message: usize,
    /// Most header lines in one message.
    pub max_headers: usize,
    /// Longest line (the start line, or a header with its continuation
    /// lines), in bytes.
    pub max_line: usize,
}

impl Limits {
    /// Default longest message: 64 KiB, the most a UDP datagram holds.
    pub const MAX_MESSAGE: usize = 65_536;
    /// Default most header lines.
    pub const MAX_HEADERS: usize = 128;
    /// Default longest line.
    pub const MAX_LINE: usize = 8_192;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: Limits::MAX_MESSAGE,
            max_headers: Limits::MAX_HEADERS,
            max_line: Limits::MAX_LINE,
        }
    }
}

/// The first line of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// A Request-Line (RFC 3261 §7.1).
    Request {
        /// The method as written (case-sensitive, RFC 3261 §7.1); any token,
        /// so that a UAS can answer 405 to an extension method.
        method: &'a str,
        /// The Request-URI, unparsed.
        uri: &'a str,
    },
    /// A Status-Line (RFC 3261 §7.2).
    Response {
        /// The status code, 100 to 699.
        code: u16,
        /// The reason phrase (may be empty).
        reason: &'a str,
    },
}

/// A parsed SIP message that borrows every part from its input.
///
/// [`Message::to_bytes`] gives back the exact bytes that were parsed (less
/// what followed the body in a datagram, RFC 3261 §18.3). Typed accessors
/// parse their header on demand; see [`Message::via`], [`Message::from`],
/// [`Message::cseq`] and the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub(crate) start: StartLine<'a>,
    pub(crate) start_raw: &'a [u8],
    pub(crate) headers: Vec<Header<'a>>,
    /// The empty line and the body, raw.
    pub(crate) body: &'a [u8],
    pub(crate) len: usize,
    pub(crate) input: &'a [u8],
}

/// Parses one message as from a datagram, with the default [`Limits`].
///
/// Content-Length may be absent (the body is the rest of the input); when
/// present and smaller than the rest, the extra bytes are discarded; when
/// larger, that is an error (RFC 3261 §18.3). Extension methods and
/// unknown headers are accepted (RFC 3261 §8.2.1, §8.2.2: a UAS answers
/// 405 or ignores them). The mandatory headers are checked by
/// [`Message::validate_request`], not here.
///
/// ```
/// use cpimgate_sip::codec::parse;
/// let m = parse(b"OPTIONS sip:carol@chicago.com SIP/2.0\r\nCall-ID: a@b\r\n\r\n").unwrap();
/// assert_eq!(m.method(), Some("OPTIONS"));
/// assert_eq!(m.call_id().unwrap(), Some("a@b"));
/// ```
pub fn parse(input: &[u8]) -> Result<Message<'_>, ParseError> {
    parse_with(input, &Limits::default())
}

/// [`parse`] within the given limits.
pub fn parse_with<'a>(input: &'a [u8], limits: &Limits) -> Result<Message<'a>, ParseError> {
    if input.len() > limits.max_message {
        return Err(ParseError::new(
            0,
            ErrorKind::TooLarge {
                len: input.len(),
                max: limits.max_message,
            },
        ));
    }
    let (start_end, next) = line_end(input, 0, limits.max_line)?;
    let start_raw = input.get(..next).unwrap_or_default();
    let start = start_line(input.get(..start_end).unwrap_or_default())?;
    let mut headers = Vec::with_capacity(16);
    let mut pos = next;
    loop {
        match input.get(pos..pos + 2) {
            Some(b"\r\n") => {
                pos += 2;
                break;
            }
            None if input.len() <= pos => {
                return Err(ParseError::new(pos, ErrorKind::Incomplete));
            }
            _ => {}
        }
        if headers.len() >= limits.max_headers {
            return Err(ParseError::new(
                pos,
                ErrorKind::TooManyHeaders {
                    max: limits.max_headers,
                },
            ));
        }
        let (header, after) = header_line(input, pos, limits.max_line)?;
        headers.push(header);
        pos = after;
    }
    let rest = input.get(pos..).unwrap_or_default();
    let mut message = Message {
        start,
        start_raw,
        headers,
        body: rest,
        len: input.len(),
        input,
    };
    // RFC 3261 §18.3: on a datagram, Content-Length bounds the body.
    if let Some(declared) = message.content_length()? {
        if declared > rest.len() {
            let offset = message
                .header(HeaderName::ContentLength)
                .map_or(pos, Header::offset);
            return Err(ParseError::new(
                offset,
                ErrorKind::BodyTruncated {
                    declared,
                    available: rest.len(),
                },
            ));
        }
        message.body = rest.get(..declared).unwrap_or_default();
        message.len = pos + declared;
    }
    Ok(message)
}

/// Finds the CRLF that ends the line starting at `from`: the index of the
/// CR and the index after the LF. Refuses a bare CR or LF, NUL and other
/// control characters but HTAB (RFC 3261 §25.1 allows none in a header).
fn line_end(input: &[u8], from: usize, max_line: usize) -> Result<(usize, usize), ParseError> {
    let rest = input.get(from..).unwrap_or_default();
    let window = rest.get(..max_line.saturating_add(1)).unwrap_or(rest);
    let Some(i) = first_control(window) else {
        return Err(if window.len() < rest.len() {
            ParseError::new(from, ErrorKind::LineTooLong { max: max_line })
        } else {
            ParseError::new(input.len(), ErrorKind::Incomplete)
        });
    };
    let at = from + i;
    match window.get(i).copied().unwrap_or(0) {
        b'\r' => match input.get(at + 1) {
            Some(b'\n') => Ok((at, at + 2)),
            None => Err(ParseError::new(at + 1, ErrorKind::Incomplete)),
            Some(_) => Err(ParseError::new(at, ErrorKind::BareLineEnd)),
        },
        b'\n' => Err(ParseError::new(at, ErrorKind::BareLineEnd)),
        byte => Err(ParseError::new(at, ErrorKind::ControlChar { byte })),
    }
}

/// Whether a byte ends a line or may not appear in one: a control
/// character other than HTAB. Only ASCII: the C1 controls (U+0080 to
/// U+009F) are UTF8-NONASCII, which RFC 3261 §25.1 allows in TEXT-UTF8.
pub(crate) fn is_control(c: u8) -> bool {
    (c < 0x20 && c != b'\t') || c == 0x7f
}

/// The first control byte. Eight bytes at a time: a word with no byte
/// below 0x20 and none equal to 0x7f is skipped whole (the usual
/// "has a byte less than n" bit trick); a word that may hold one, or an
/// HTAB, is looked at byte by byte.
fn first_control(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = b.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let x = u64::from_le_bytes(word);
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let y = x ^ (ONES * 0x7f);
        let del = y.wrapping_sub(ONES) & !y & HIGH;
        if below_space | del != 0 {
            if let Some(i) = chunk.iter().position(|&c| is_control(c)) {
                return Some(base + i);
            }
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| is_control(c))
        .map(|i| base + i)
}

fn start_line(line: &[u8]) -> Result<StartLine<'_>, ParseError> {
    let text = std::str::from_utf8(line)
        .map_err(|e| ParseError::new(e.valid_up_to(), ErrorKind::NotUtf8))?;
    let bad = |offset: usize, expected| ParseError::new(offset, ErrorKind::StartLine { expected });
    if text.len() >= 4
        && text
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let (version, rest) = split_byte(text, b' ').ok_or(bad(0, "SP after SIP-Version"))?;
        sip_version(version, 0)?;
        let code_at = version.len() + 1;
        let (code, reason) =
            split_byte(rest, b' ').ok_or(bad(code_at + 3, "SP after the Status-Code"))?;
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(code_at, "a three-digit Status-Code"));
        }
        let code: u16 = code.parse().map_err(|_| bad(code_at, "a Status-Code"))?;
        if !(100..=699).contains(&code) {
            return Err(bad(code_at, "a Status-Code from 100 to 699"));
        }
        return Ok(StartLine::Response { code, reason });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version
    let (method, rest) =
        split_byte(text, b' ').ok_or(bad(0, "Method SP Request-URI SP SIP-Version"))?;
    if !is_token(method) {
        return Err(bad(0, "a Method (a token)"));
    }
    let uri_at = method.len() + 1;
    let (uri, version) =
        split_byte(rest, b' ').ok_or(bad(uri_at, "SP between the Request-URI and SIP-Version"))?;
    if uri.is_empty() || find_byte(uri, b':').is_none() || find_byte(uri, b'\t').is_some() {
        return Err(bad(uri_at, "a Request-URI (an absolute URI)"));
    }
    sip_version(version, uri_at + uri.len() + 1)?;
    Ok(StartLine::Request { method, uri })
}

/// SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT (RFC 3261 §25.1; "SIP" is
/// case-insensitive, §7.1). Only 2.0 is supported: another well-formed
/// version is [`ErrorKind::Version`] (505, §21.5.6).
fn sip_version(v: &str, offset: usize) -> Result<(), ParseError> {
    let bad = || {
        ParseError::new(
            offset,
            ErrorKind::StartLine {
                expected: "SIP/2.0",
            },
        )
    };
    let nums = match v.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("SIP/") => v.get(4..).unwrap_or_default(),
        _ => return Err(bad()),
    };
    let (major, minor) = split_byte(nums, b'.').ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return Err(bad());
    }
    if major.trim_start_matches('0') != "2" || !minor.bytes().all(|b| b == b'0') {
        return Err(ParseError::new(offset, ErrorKind::Version));
    }
    Ok(())
}

/// One header line at `pos` with its continuation lines (RFC 3261 §7.3.1):
/// the header and the offset after its final CRLF.
fn header_line(
    input: &[u8],
    pos: usize,
    max_line: usize,
) -> Result<(Header<'_>, usize), ParseError> {
    let (mut end, mut next) = line_end(input, pos, max_line)?;
    let mut folded = false;
    // Continuation lines start with SP or HTAB.
    while matches!(input.get(next), Some(b' ' | b'\t')) {
        folded = true;
        (end, next) = line_end(input, next, max_line.saturating_sub(next - pos))?;
    }
    // One UTF-8 check for the whole line (RFC 3261 §25.1 TEXT-UTF8).
    let line = std::str::from_utf8(input.get(pos..end).unwrap_or_default())
        .map_err(|e| ParseError::new(pos + e.valid_up_to(), ErrorKind::NotUtf8))?;
    // header-name HCOLON: HCOLON = *( SP / HTAB ) ":" SWS
    let bytes = line.as_bytes();
    let name_len = bytes.iter().take_while(|&&b| is_token_byte(b)).count();
    let ws = bytes
        .get(name_len..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    if name_len == 0 || bytes.get(name_len + ws) != Some(&b':') {
        let reason = if bytes.contains(&b':') {
            "the header name is not a token"
        } else {
            "no colon after a header name"
        };
        let at = if name_len == 0 { pos } else { pos + name_len };
        return Err(ParseError::new(at, ErrorKind::HeaderLine { reason }));
    }
    let name = line.get(..name_len).unwrap_or_default();
    let value_str = line.get(name_len + ws + 1..).unwrap_or_default();
    let value = if folded {
        Cow::Owned(unfold(value_str))
    } else {
        Cow::Borrowed(value_str.trim_lws())
    };
    Ok((
        Header {
            name,
            kind: HeaderName::parse_token(name),
            value,
            raw: input.get(pos..next).unwrap_or_default(),
            offset: pos,
        },
        next,
    ))
}

/// Replaces each CRLF and the white space around it by one SP, and trims
/// (RFC 3261 §7.3.1, §25.1 LWS).
fn unfold(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, part) in v.split("\r\n").enumerate() {
        let part = if i == 0 {
            part
        } else {
            part.trim_start_matches([' ', '\t'])
        };
        if i > 0 {
            let trimmed = out.trim_end_matches([' ', '\t']).len();
            out.truncate(trimmed);
            out.push(' ');
        }
        out.push_str(part);
    }
    out.trim_matches([' ', '\t']).to_owned()
}

impl<'a> Message<'a> {
    /// The start line.
    pub fn start_line(&self) -> StartLine<'a> {
        self.start
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&'a str> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI of a request, unparsed; see
    /// [`Message::request_uri_address`].
    pub fn request_uri(&self) -> Option<&'a str> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase of a response.
    pub fn reason(&self) -> Option<&'a str> {
        match self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    /// Every header line in order.
    pub fn headers(&self) -> &[Header<'a>] {
        &self.headers
    }

    /// The first header line of that known name.
    pub fn header(&self, name: HeaderName) -> Option<&Header<'a>> {
        self.headers.iter().find(|h| h.kind == name)
    }

    /// Every header line of that known name, in order.
    pub fn headers_named(&self, name: HeaderName) -> impl Iterator<Item = &Header<'a>> {
        self.headers.iter().filter(move |h| h.kind == name)
    }

    /// The value of the first header of that name (long or compact form,
    /// any case; works for unknown names too).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| h.is(name)).map(Header::value)
    }

    /// The body (exactly Content-Length bytes when that header is present).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// How many bytes of the input the message took.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message took no bytes (never true for a parsed message).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes of the message exactly as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.input.get(..self.len).unwrap_or(self.input)
    }

    /// Writes the message from its parts: the start line, each header line
    /// as received (folding and compact names kept), the empty line and
    /// the body. For a parsed message that is the input byte for byte.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len);
        out.extend_from_slice(self.start_raw);
        for h in &self.headers {
            out.extend_from_slice(h.raw);
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body);
    }

    /// [`Message::write_to`] into a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        self.write_to(&mut out);
        out
    }
}
