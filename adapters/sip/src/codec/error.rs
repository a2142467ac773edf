//! Errors of the SIP codec, and the response a UAS answers to each.

use std::fmt;

/// Error reading a SIP message: what is wrong and at which byte.
///
/// `offset` is a byte offset into the input given to the parser (for the
/// typed accessors, into the message the header belongs to, at the start
/// of the header line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (at byte {offset})")]
pub struct ParseError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What is wrong with a SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Happens when a message is longer than [`Limits::max_message`](super::Limits::max_message).
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Length of the message, or of what was buffered of it.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Happens when a message has more header lines than
    /// [`Limits::max_headers`](super::Limits::max_headers).
    #[error("more than {max} header fields")]
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// Happens when one line (a header line with its continuations, or the
    /// start line) is longer than [`Limits::max_line`](super::Limits::max_line).
    #[error("line longer than {max} bytes")]
    LineTooLong {
        /// The limit.
        max: usize,
    },
    /// Happens when the input is empty or ends before the empty line that
    /// closes the header section (RFC 3261 §7).
    #[error("the header section is not closed by an empty line")]
    Incomplete,
    /// Happens when a line ends with a bare LF or CR instead of CRLF
    /// (RFC 3261 §7: every line ends with CRLF).
    #[error("line not ended by CRLF")]
    BareLineEnd,
    /// Happens when the start line is neither a Request-Line nor a
    /// Status-Line (RFC 3261 §7.1, §7.2).
    #[error("malformed start line: expected {expected}")]
    StartLine {
        /// What the grammar expected.
        expected: &'static str,
    },
    /// Happens when the SIP-Version is well formed but is not `SIP/2.0`
    /// (RFC 3261 §7.1; the UAS answers 505, §21.5.6).
    #[error("SIP version not supported")]
    Version,
    /// Happens when a header line has no colon or its name is not a token
    /// (RFC 3261 §7.3.1, §25.1).
    #[error("malformed header line: {reason}")]
    HeaderLine {
        /// What is wrong.
        reason: &'static str,
    },
    /// Happens when a header value holds bytes that are not UTF-8
    /// (RFC 3261 §25.1 TEXT-UTF8).
    #[error("header value is not UTF-8")]
    NotUtf8,
    /// Happens when a line holds a control character (NUL, a bare CR, ...)
    /// that the grammar never allows outside the body.
    #[error("control character 0x{byte:02x} in the header section")]
    ControlChar {
        /// The byte.
        byte: u8,
    },
    /// Happens when the value of a header the gateway interprets does not
    /// follow its grammar.
    #[error("malformed {header}: {reason}")]
    Header {
        /// Canonical name of the header.
        header: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Happens when a header that may appear once appears several times
    /// with different values (Content-Length, Call-ID, CSeq, ...).
    #[error("{header} appears more than once")]
    Duplicate {
        /// Canonical name of the header.
        header: &'static str,
    },
    /// Happens when a datagram ends before the body that Content-Length
    /// announces (RFC 3261 §18.3: a request gets 400).
    #[error("Content-Length {declared} is larger than the body of {available} bytes")]
    BodyTruncated {
        /// Content-Length.
        declared: usize,
        /// Bytes left after the header section.
        available: usize,
    },
    /// Happens when a message on a stream transport has no Content-Length
    /// (RFC 3261 §18.3, §20.14: mandatory on streams).
    #[error("Content-Length is mandatory on a stream transport")]
    MissingContentLength,
    /// Happens when a request lacks one of To, From, CSeq, Call-ID,
    /// Max-Forwards, Via (RFC 3261 §8.1.1).
    #[error("missing {0}")]
    MissingHeader(&'static str),
    /// Happens when the method of CSeq differs from the request method
    /// (RFC 3261 §8.1.1.5).
    #[error("CSeq method {cseq} does not match the request method {request}")]
    CSeqMethodMismatch {
        /// Method in CSeq.
        cseq: String,
        /// Method of the Request-Line.
        request: String,
    },
}

/// The status a UAS answers to a malformed request: code and reason phrase.
///
/// A malformed *response* gets no answer: it is discarded (RFC 3261 §18.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorStatus {
    /// Status code, 400, 505 or 513.
    pub code: u16,
    /// Reason phrase naming the problem, e.g. `Bad Request: missing Call-ID`.
    /// It never holds CR, LF or other control characters.
    pub reason: String,
}

impl fmt::Display for ErrorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.reason)
    }
}

impl ParseError {
    pub(crate) fn new(offset: usize, kind: ErrorKind) -> Self {
        ParseError { offset, kind }
    }

    pub(crate) fn header(offset: usize, header: &'static str, reason: &'static str) -> Self {
        ParseError::new(offset, ErrorKind::Header { header, reason })
    }

    /// The status a UAS answers to a request that failed this way:
    /// 505 for another SIP version (RFC 3261 §21.5.6), 513 for a message
    /// over the limits (§21.5.7), 400 with a reason naming the problem for
    /// everything else (§21.4.1).
    ///
    /// ```
    /// use cpimgate_sip::codec::{ErrorKind, ParseError};
    /// let e = ParseError { offset: 0, kind: ErrorKind::MissingHeader("Call-ID") };
    /// let s = e.response_status();
    /// assert_eq!((s.code, s.reason.as_str()), (400, "Bad Request: missing Call-ID"));
    /// ```
    pub fn response_status(&self) -> ErrorStatus {
        let (code, reason) = match &self.kind {
            ErrorKind::Version => (505, "Version Not Supported".to_owned()),
            ErrorKind::TooLarge { .. }
            | ErrorKind::TooManyHeaders { .. }
            | ErrorKind::LineTooLong { .. } => (513, "Message Too Large".to_owned()),
            kind => (400, format!("Bad Request: {kind}")),
        };
        // Reason-Phrase (RFC 3261 §25.1) has no control characters; the
        // messages above never produce one, but a method in
        // CSeqMethodMismatch comes from the wire (a token, so safe) —
        // filter anyway so that no caller can be made to inject a line.
        let reason = reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        ErrorStatus { code, reason }
    }
}
