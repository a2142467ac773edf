//! An MSRP message borrowed from its bytes, and its parser (RFC 4975 §7,
//! grammar in §9).
//!
//! ```text
//! msrp-request  = req-start headers [content-stuff] end-line
//! msrp-response = resp-start headers end-line
//! req-start     = "MSRP" SP transact-id SP method CRLF
//! resp-start    = "MSRP" SP transact-id SP status-code [SP comment] CRLF
//! content-stuff = *(Other-Mime-header CRLF) Content-Type 2CRLF data CRLF
//! end-line      = "-------" transact-id continuation-flag CRLF
//! ```

use std::sync::LazyLock;

use memchr::memmem;

use super::error::{ErrorKind, ParseError};
use super::headers::{Header, HeaderName, is_ident, is_token_byte, three_digits};

/// Limits that bound the work and memory one message can cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest header section: the start line and the header lines, with
    /// their CRLFs, in bytes.
    pub max_head: usize,
    /// Most header lines in one message.
    pub max_headers: usize,
    /// Longest body of one message (one chunk), in bytes.
    pub max_chunk: usize,
}

impl Limits {
    /// Default longest header section: 16 KiB.
    pub const MAX_HEAD: usize = 16_384;
    /// Default most header lines.
    pub const MAX_HEADERS: usize = 64;
    /// Default longest body of one chunk: 1 MiB. RFC 4975 §7.1.1 wants a
    /// receiver to take chunks as large as the largest message it takes;
    /// larger messages arrive in several chunks.
    pub const MAX_CHUNK: usize = 1 << 20;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: Limits::MAX_HEAD,
            max_headers: Limits::MAX_HEADERS,
            max_chunk: Limits::MAX_CHUNK,
        }
    }
}

/// The continuation flag of an end-line (RFC 4975 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Continuation {
    /// `$`: this chunk ends the message (and every response ends so).
    Complete,
    /// `+`: more chunks follow; also a chunk interrupted early (§7.1.1).
    More,
    /// `#`: the sender aborts the message (§7.1, §7.3.2).
    Aborted,
}

impl Continuation {
    /// The flag byte: `$`, `+` or `#`.
    pub fn as_byte(self) -> u8 {
        match self {
            Continuation::Complete => b'$',
            Continuation::More => b'+',
            Continuation::Aborted => b'#',
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'$' => Some(Continuation::Complete),
            b'+' => Some(Continuation::More),
            b'#' => Some(Continuation::Aborted),
            _ => None,
        }
    }
}

/// The first line of a message, less `MSRP` and the transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `MSRP <transact-id> <method>` (RFC 4975 §9 req-start).
    Request {
        /// `SEND`, `REPORT` or an extension method such as `NICKNAME`
        /// (RFC 7701 §7.1) or `AUTH` (RFC 4976 §5): 1*UPALPHA.
        method: &'a str,
    },
    /// `MSRP <transact-id> <status-code> [comment]` (RFC 4975 §9
    /// resp-start).
    Response {
        /// The three-digit status code (RFC 4975 §10).
        code: u16,
        /// The comment after the code, if any.
        comment: Option<&'a str>,
    },
}

/// The longest end-line: `-------`, a 32-byte transact-id, the flag, CRLF.
pub(crate) const MAX_END_LINE: usize = 7 + 32 + 1 + 2;

/// A parsed MSRP message that borrows every part from its input.
///
/// [`Message::to_bytes`] writes the message back from its parts: the same
/// bytes that were parsed. Typed accessors read their header when asked;
/// [`Message::validate`] checks what RFC 4975 §7.1 makes mandatory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub(crate) input: &'a [u8],
    pub(crate) start: StartLine<'a>,
    pub(crate) transaction_id: &'a str,
    pub(crate) start_raw: &'a [u8],
    pub(crate) headers: Vec<Header<'a>>,
    pub(crate) body: Option<&'a [u8]>,
    pub(crate) body_offset: usize,
    pub(crate) continuation: Continuation,
}

/// Parses exactly one message, with the default [`Limits`].
///
/// Extension methods and unknown headers are accepted (RFC 4975 §12: a
/// receiver answers 501 to a method it does not know); the headers a
/// method needs are checked by [`Message::validate`], not here.
///
/// ```
/// use cpimgate_msrp::codec::{parse, Continuation, StartLine};
/// // RFC 4975 §4, Figure 2
/// let bytes = b"MSRP a786hjs2 SEND\r\n\
/// To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n\
/// From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
/// Message-ID: 87652491\r\n\
/// Byte-Range: 1-25/25\r\n\
/// Content-Type: text/plain\r\n\
/// \r\n\
/// Hey Bob, are you there?\r\n\
/// -------a786hjs2$\r\n";
/// let m = parse(bytes).unwrap();
/// m.validate().unwrap();
/// assert_eq!(m.start_line(), StartLine::Request { method: "SEND" });
/// assert_eq!(m.transaction_id(), "a786hjs2");
/// assert_eq!(m.to_path().unwrap().unwrap()[0].session_id(), Some("kjhd37s2s20w2a"));
/// assert_eq!(m.byte_range().unwrap().unwrap().total, Some(25));
/// assert_eq!(m.body(), Some(&b"Hey Bob, are you there?"[..]));
/// assert_eq!(m.continuation(), Continuation::Complete);
/// assert_eq!(m.to_bytes(), bytes);
/// ```
pub fn parse(input: &[u8]) -> Result<Message<'_>, ParseError> {
    parse_with(input, &Limits::default())
}

/// [`parse`] within the given limits.
pub fn parse_with<'a>(input: &'a [u8], limits: &Limits) -> Result<Message<'a>, ParseError> {
    check_prefix(input)?;
    let (start_end, mut pos) = line_end(input, 0)?;
    if pos > limits.max_head {
        return Err(ParseError::new(
            0,
            ErrorKind::HeadTooLarge {
                max: limits.max_head,
            },
        ));
    }
    let start_raw = input.get(..start_end).unwrap_or_default();
    let (transaction_id, start) = start_line(start_raw)?;
    let mut headers = Vec::with_capacity(8);
    let (body, body_offset, end_at) = loop {
        let rest = input.get(pos..).unwrap_or_default();
        if let Some(flag_at) = end_line_at(rest, transaction_id) {
            if rest.get(flag_at + 1..flag_at + 3) == Some(b"\r\n") {
                break (None, pos, pos);
            }
        }
        if rest.starts_with(b"\r\n") {
            if matches!(start, StartLine::Response { .. }) {
                return Err(ParseError::new(pos, ErrorKind::ResponseBody));
            }
            let b = pos + 2;
            let at = find_end_line(input, b, transaction_id).ok_or_else(|| {
                let over = input.len().saturating_sub(b)
                    > limits.max_chunk.saturating_add(2 + MAX_END_LINE);
                if over {
                    ParseError::new(
                        b,
                        ErrorKind::ChunkTooLarge {
                            max: limits.max_chunk,
                        },
                    )
                } else {
                    ParseError::new(input.len(), ErrorKind::Incomplete)
                }
            })?;
            if at - b > limits.max_chunk {
                return Err(ParseError::new(
                    b,
                    ErrorKind::ChunkTooLarge {
                        max: limits.max_chunk,
                    },
                ));
            }
            break (input.get(b..at), b, at + 2);
        }
        if headers.len() >= limits.max_headers {
            return Err(ParseError::new(
                pos,
                ErrorKind::TooManyHeaders {
                    max: limits.max_headers,
                },
            ));
        }
        let (header, next) = header_line(input, pos)?;
        if next > limits.max_head {
            return Err(ParseError::new(
                pos,
                ErrorKind::HeadTooLarge {
                    max: limits.max_head,
                },
            ));
        }
        headers.push(header);
        pos = next;
    };
    // end_at points at the hyphens; the flag follows the id.
    let flag_at = end_at + 7 + transaction_id.len();
    let continuation = input
        .get(flag_at)
        .copied()
        .and_then(Continuation::from_byte)
        .ok_or(ParseError::new(flag_at, ErrorKind::Incomplete))?;
    let end = flag_at + 3;
    if input.len() > end {
        return Err(ParseError::new(end, ErrorKind::TrailingBytes));
    }
    Ok(Message {
        input,
        start,
        transaction_id,
        start_raw,
        headers,
        body,
        body_offset,
        continuation,
    })
}

/// Refuses at once a stream that does not start with `MSRP ` (so that the
/// framer need not wait for a whole line of garbage).
pub(crate) fn check_prefix(input: &[u8]) -> Result<(), ParseError> {
    let n = input.len().min(5);
    if input.get(..n) != b"MSRP ".get(..n) {
        return Err(ParseError::new(
            0,
            ErrorKind::StartLine {
                expected: "\"MSRP\" SP transact-id",
            },
        ));
    }
    Ok(())
}

/// When `rest` starts with `-------<tid><flag>`: the index of the flag.
pub(crate) fn end_line_at(rest: &[u8], tid: &str) -> Option<usize> {
    let after = rest
        .strip_prefix(b"-------")?
        .strip_prefix(tid.as_bytes())?;
    let flag = *after.first()?;
    Continuation::from_byte(flag).map(|_| 7 + tid.len())
}

/// The index of the CRLF before the first end-line of `tid` at or after
/// `from`: `CRLF "-------" tid flag CRLF` (RFC 4975 §7.1). A body may hold
/// end-lines of other transactions, and `-------<tid>` followed by
/// anything else; only the whole end-line ends the body.
pub(crate) fn find_end_line(input: &[u8], from: usize, tid: &str) -> Option<usize> {
    match scan_end_line(input, from, tid) {
        EndLineScan::Found(i) => Some(i),
        EndLineScan::Pending(_) | EndLineScan::NotYet(_) => None,
    }
}

/// What a search for an end-line found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndLineScan {
    /// The end-line starts with the CRLF at this index.
    Found(usize),
    /// A candidate at this index waits for more bytes.
    Pending(usize),
    /// None before the input ends; searching again may start here.
    NotYet(usize),
}

/// Searches `CRLF "-------" tid flag CRLF` from `from`.
pub(crate) fn scan_end_line(input: &[u8], from: usize, tid: &str) -> EndLineScan {
    let id = tid.as_bytes();
    let mut at = from;
    loop {
        let Some(i) = input.get(at..).and_then(|r| END_LINE_START.find(r)) else {
            return EndLineScan::NotYet(at.max(input.len().saturating_sub(8)));
        };
        let i = at + i;
        let rest = input.get(i + 9..).unwrap_or_default();
        let fits = rest.iter().take(id.len() + 3).enumerate().all(|(j, &b)| {
            match j.checked_sub(id.len()) {
                None => id.get(j) == Some(&b),
                Some(0) => Continuation::from_byte(b).is_some(),
                Some(1) => b == b'\r',
                Some(_) => b == b'\n',
            }
        });
        if fits {
            if rest.len() >= id.len() + 3 {
                return EndLineScan::Found(i);
            }
            // Only what has not arrived yet can rule it out.
            return EndLineScan::Pending(i);
        }
        at = i + 2;
    }
}

/// The CRLF that ends the line starting at `from`: the index of the CR
/// and the index after the LF. Refuses a bare CR or LF and every control
/// character but HTAB (RFC 4975 §9 utf8text).
pub(crate) fn line_end(input: &[u8], from: usize) -> Result<(usize, usize), ParseError> {
    let rest = input.get(from..).unwrap_or_default();
    let Some(i) = first_control(rest) else {
        return Err(ParseError::new(input.len(), ErrorKind::Incomplete));
    };
    let at = from + i;
    match rest.get(i).copied().unwrap_or(0) {
        b'\r' => match input.get(at + 1) {
            Some(b'\n') => Ok((at, at + 2)),
            None => Err(ParseError::new(at + 1, ErrorKind::Incomplete)),
            Some(_) => Err(ParseError::new(at, ErrorKind::BareLineEnd)),
        },
        b'\n' => Err(ParseError::new(at, ErrorKind::BareLineEnd)),
        byte => Err(ParseError::new(at, ErrorKind::ControlChar { byte })),
    }
}

/// An ASCII control character but HTAB: ends a line or may not be in one.
pub(crate) fn is_control(c: u8) -> bool {
    (c < 0x20 && c != b'\t') || c == 0x7f
}

/// The first control byte. Eight bytes at a time: a word with no byte
/// below 0x20 and none equal to 0x7f is skipped whole (the "has a byte
/// less than n" bit trick); a word that may hold one, or an HTAB, is
/// looked at byte by byte.
pub(crate) fn first_control(b: &[u8]) -> Option<usize> {
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

/// `CRLF "-------"`, the start of every end-line after a body: a finder
/// built once (RFC 4975 §7.3.1: the seven hyphens are there to be found
/// fast).
static END_LINE_START: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\r\n-------"));

pub(crate) fn start_line(line: &[u8]) -> Result<(&str, StartLine<'_>), ParseError> {
    let text = std::str::from_utf8(line)
        .map_err(|e| ParseError::new(e.valid_up_to(), ErrorKind::NotUtf8))?;
    let bad = |offset: usize, expected| ParseError::new(offset, ErrorKind::StartLine { expected });
    let rest = text
        .strip_prefix("MSRP ")
        .ok_or(bad(0, "\"MSRP\" SP transact-id"))?;
    let (tid, rest) = rest
        .split_once(' ')
        .ok_or(bad(5, "SP after the transact-id"))?;
    if !is_ident(tid) {
        return Err(bad(5, "a transact-id (4 to 32 ident characters)"));
    }
    let at = 5 + tid.len() + 1;
    let r = rest.as_bytes();
    if r.first().is_some_and(u8::is_ascii_digit) {
        let code = r.get(..3).filter(|c| c.iter().all(u8::is_ascii_digit));
        let Some(code) = code else {
            return Err(bad(at, "a three-digit status-code"));
        };
        let comment = match r.get(3) {
            None => None,
            Some(b' ') => Some(rest.get(4..).unwrap_or_default()),
            Some(_) => {
                return Err(bad(
                    at + 3,
                    "SP or the end of the line after the status-code",
                ));
            }
        };
        return Ok((
            tid,
            StartLine::Response {
                code: three_digits(code),
                comment,
            },
        ));
    }
    if rest.is_empty() || !r.iter().all(u8::is_ascii_uppercase) {
        return Err(bad(at, "a method (upper-case letters) or a status-code"));
    }
    Ok((tid, StartLine::Request { method: rest }))
}

/// One header line at `pos` (RFC 4975 §9: `hname ":" SP hval CRLF`, no
/// folding): the header and the offset after its CRLF.
fn header_line(input: &[u8], pos: usize) -> Result<(Header<'_>, usize), ParseError> {
    let (end, next) = line_end(input, pos)?;
    let line = std::str::from_utf8(input.get(pos..end).unwrap_or_default())
        .map_err(|e| ParseError::new(pos + e.valid_up_to(), ErrorKind::NotUtf8))?;
    let bytes = line.as_bytes();
    let name_len = bytes.iter().take_while(|&&b| is_token_byte(b)).count();
    if !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return Err(ParseError::new(
            pos,
            ErrorKind::HeaderLine {
                reason: "the header name does not start with a letter",
            },
        ));
    }
    if bytes.get(name_len) != Some(&b':') {
        let reason = if bytes.contains(&b':') {
            "the header name is not a token"
        } else {
            "no colon after the header name"
        };
        return Err(ParseError::new(
            pos + name_len,
            ErrorKind::HeaderLine { reason },
        ));
    }
    let name = line.get(..name_len).unwrap_or_default();
    let value = line
        .get(name_len + 1..)
        .unwrap_or_default()
        .trim_matches([' ', '\t']);
    Ok((
        Header {
            name,
            kind: HeaderName::parse(name),
            value,
            raw: line.as_bytes(),
            offset: pos,
        },
        next,
    ))
}

impl<'a> Message<'a> {
    /// The bytes that were parsed.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.input
    }

    /// Writes the message back from its parts: start line, header lines as
    /// read, the body between its empty line and CRLF, the end-line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body_len = self.body.map_or(0, |b| b.len() + 4);
        let mut out = Vec::with_capacity(self.input.len().max(body_len));
        out.extend_from_slice(self.start_raw);
        out.extend_from_slice(b"\r\n");
        for h in &self.headers {
            out.extend_from_slice(h.raw);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(body) = self.body {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"-------");
        out.extend_from_slice(self.transaction_id.as_bytes());
        out.push(self.continuation.as_byte());
        out.extend_from_slice(b"\r\n");
        out
    }

    /// The start line less `MSRP` and the transaction id.
    pub fn start_line(&self) -> StartLine<'a> {
        self.start
    }

    /// The transaction id of the start line and the end-line.
    pub fn transaction_id(&self) -> &'a str {
        self.transaction_id
    }

    /// The method of a request, `None` for a response.
    pub fn method(&self) -> Option<&'a str> {
        match self.start {
            StartLine::Request { method } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The status code of a response, `None` for a request.
    pub fn status_code(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// Every header line, in order, unknown ones too.
    pub fn headers(&self) -> &[Header<'a>] {
        &self.headers
    }

    /// The first header of this name.
    pub fn header(&self, name: HeaderName) -> Option<&Header<'a>> {
        self.headers.iter().find(|h| h.kind == name)
    }

    /// The first header of this name as written (for unknown headers),
    /// without regard to case.
    pub fn header_named(&self, name: &str) -> Option<&Header<'a>> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
    }

    /// The body of a request: `None` when there is no body (no empty line
    /// after the headers), `Some(b"")` for an empty body (RFC 4975 §7.1
    /// tells the two apart).
    pub fn body(&self) -> Option<&'a [u8]> {
        self.body
    }

    /// Length of the body, 0 when there is none.
    pub fn body_len(&self) -> usize {
        self.body.map_or(0, <[u8]>::len)
    }

    /// Offset of the body in the message (where it would start when there
    /// is none).
    pub fn body_offset(&self) -> usize {
        self.body_offset
    }

    /// The flag of the end-line.
    pub fn continuation(&self) -> Continuation {
        self.continuation
    }
}
