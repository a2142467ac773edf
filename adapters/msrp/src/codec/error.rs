//! Errors of the MSRP codec, and the status a receiver answers to each.

/// Error reading an MSRP message: what is wrong and at which byte.
///
/// `offset` is a byte offset into the message given to the parser (for
/// the stream framer, into the message being framed, counted from its
/// first byte; for the typed accessors, the start of the header line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (at byte {offset})")]
pub struct ParseError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What is wrong with an MSRP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Happens when the start line and the header fields together are
    /// longer than [`Limits::max_head`](super::Limits::max_head).
    #[error("header section longer than {max} bytes")]
    HeadTooLarge {
        /// The limit.
        max: usize,
    },
    /// Happens when a body (one chunk, RFC 4975 §5.1) is longer than
    /// [`Limits::max_chunk`](super::Limits::max_chunk).
    #[error("body longer than {max} bytes")]
    ChunkTooLarge {
        /// The limit.
        max: usize,
    },
    /// Happens when a message has more header fields than
    /// [`Limits::max_headers`](super::Limits::max_headers).
    #[error("more than {max} header fields")]
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// Happens when the input ends before the end-line of the transaction
    /// (RFC 4975 §7.1: `-------` transact-id flag CRLF).
    #[error("the message is not closed by its end-line")]
    Incomplete,
    /// Happens when bytes follow the end-line of a message given to
    /// [`parse`](super::parse), which reads exactly one message.
    #[error("bytes after the end-line")]
    TrailingBytes,
    /// Happens when a line of the header section ends with a bare LF or CR
    /// instead of CRLF (RFC 4975 §9).
    #[error("line not ended by CRLF")]
    BareLineEnd,
    /// Happens when the start line is neither `MSRP <transact-id> <method>`
    /// nor `MSRP <transact-id> <status> [comment]` (RFC 4975 §9).
    #[error("malformed start line: expected {expected}")]
    StartLine {
        /// What the grammar expected.
        expected: &'static str,
    },
    /// Happens when a header line has no colon, or its name is not
    /// `ALPHA *token` (RFC 4975 §9 ext-header).
    #[error("malformed header line: {reason}")]
    HeaderLine {
        /// What is wrong.
        reason: &'static str,
    },
    /// Happens when the start line or a header value holds bytes that are
    /// not UTF-8 (RFC 4975 §9: MSRP text is UTF-8).
    #[error("text is not UTF-8")]
    NotUtf8,
    /// Happens when the start line or a header line holds a control
    /// character (NUL, DEL, ...) but HTAB (RFC 4975 §9 utf8text).
    #[error("control character 0x{byte:02x} in the header section")]
    ControlChar {
        /// The byte.
        byte: u8,
    },
    /// Happens when a response has a body (RFC 4975 §9: `msrp-response =
    /// resp-start headers end-line`).
    #[error("a response has no body")]
    ResponseBody,
    /// Happens when a response ends with `+` or `#` (RFC 4975 §7.2: a
    /// response is never chunked, its end-line flag is `$`).
    #[error("a response not ended by $")]
    ResponseNotComplete,
    /// Happens when the value of a header the codec interprets does not
    /// follow its grammar.
    #[error("malformed {header}: {reason}")]
    Header {
        /// Canonical name of the header.
        header: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Happens when a header that may appear once (To-Path, From-Path,
    /// Message-ID, Byte-Range, ...) appears several times.
    #[error("{header} appears more than once")]
    Duplicate {
        /// Canonical name of the header.
        header: &'static str,
    },
    /// Happens when a request lacks a header RFC 4975 §7.1 makes
    /// mandatory (To-Path, From-Path; Message-ID in SEND and REPORT;
    /// Content-Type when there is a body; Status in REPORT).
    #[error("missing {0}")]
    MissingHeader(&'static str),
    /// Happens when a header is present where RFC 4975 forbids it
    /// (Success-Report or Failure-Report in a REPORT, §7.1.2; MIME
    /// headers in a request without a body, §7.1).
    #[error("{header} not allowed here")]
    Forbidden {
        /// Canonical name of the header.
        header: &'static str,
    },
}

impl ParseError {
    pub(crate) fn new(offset: usize, kind: ErrorKind) -> Self {
        ParseError { offset, kind }
    }

    pub(crate) fn header(offset: usize, header: &'static str, reason: &'static str) -> Self {
        ParseError::new(offset, ErrorKind::Header { header, reason })
    }

    /// The status code a receiver answers to a request that failed this
    /// way (RFC 4975 §10): 413 for a body over the limits (§10.5), 400 for
    /// everything else (§10.2). The comment of the response can be the
    /// error's `Display`, which never holds a line break.
    ///
    /// ```
    /// use cpimgate_msrp::codec::{ErrorKind, ParseError};
    /// let e = ParseError { offset: 0, kind: ErrorKind::MissingHeader("To-Path") };
    /// assert_eq!(e.response_code(), 400);
    /// assert_eq!(e.kind.to_string(), "missing To-Path");
    /// ```
    pub fn response_code(&self) -> u16 {
        match self.kind {
            ErrorKind::ChunkTooLarge { .. } => 413,
            _ => 400,
        }
    }
}
