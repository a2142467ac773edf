//! Errors of the `message/cpim` codec.

/// What went wrong reading or writing a `message/cpim` body, and where.
///
/// Offsets count bytes from the start of the `message/cpim` body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CpimError {
    /// Happens when the input ends before the message is complete: inside a
    /// header line, before the blank line that ends the CPIM headers or the
    /// MIME headers of the encapsulated part, or before as many body bytes
    /// as the part's `Content-Length` announces.
    #[error("message/cpim truncated at byte {offset}: expected {expected}")]
    Truncated {
        /// Where the input ended (its length).
        offset: usize,
        /// What was still missing.
        expected: &'static str,
    },
    /// Happens when a header block holds a line that is not a header (no
    /// `:`), which most often means the sender forgot the blank line
    /// between headers and content (RFC 3862 §2).
    #[error("message/cpim line at byte {offset} is not a header: missing blank line before it?")]
    MissingBlankLine {
        /// Start of the offending line.
        offset: usize,
    },
    /// Happens when a header line is malformed: bad name characters
    /// (RFC 3862 §3.1), leading whitespace, a control character (§2.2), a
    /// malformed `;param=` list (§3.6) or a continuation line where none
    /// can be.
    #[error("bad message/cpim header line {line} at byte {offset}: {reason}")]
    BadHeader {
        /// Byte offset of the problem.
        offset: usize,
        /// 1-based line number in the body.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Happens when a header block has more headers than
    /// [`Limits::max_headers`](super::Limits::max_headers).
    #[error("message/cpim has more than {limit} headers in one block (at byte {offset})")]
    TooManyHeaders {
        /// Start of the first header over the limit.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// Happens when a header line is longer than
    /// [`Limits::max_line_len`](super::Limits::max_line_len).
    #[error("message/cpim header line at byte {offset} longer than {limit} bytes")]
    LineTooLong {
        /// Start of the line.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// Happens when the encapsulated body (or its announced
    /// `Content-Length`) is larger than
    /// [`Limits::max_body`](super::Limits::max_body).
    #[error("message/cpim body of {size} bytes at byte {offset} exceeds {limit}")]
    BodyTooLarge {
        /// Start of the body.
        offset: usize,
        /// Its size (or announced size).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Happens when a header line is not valid UTF-8 (RFC 3862 §2.2).
    #[error("message/cpim header is not UTF-8 at byte {offset}")]
    InvalidUtf8 {
        /// First invalid byte.
        offset: usize,
    },
    /// Happens when a header is well-formed as a line but its value does not
    /// follow that header's syntax: a `From`/`To`/`cc` without a valid
    /// `<URI>`, a bad `DateTime`, a duplicated `From`, an `NS` without a
    /// URI, a non-numeric `Content-Length`.
    #[error("bad value of message/cpim header {header} at byte {offset}: {reason}")]
    BadValue {
        /// The header name as written.
        header: String,
        /// Byte offset of the value.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// Happens when a header the caller needs is absent (a `Message` needs
    /// a `From`).
    #[error("message/cpim has no {header} header")]
    MissingHeader {
        /// The header name.
        header: &'static str,
    },
    /// Happens when the builder is given a header name that is not a valid
    /// CPIM header name (RFC 3862 §3.1) or a reserved one.
    #[error("invalid message/cpim header name {name:?}")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
}
