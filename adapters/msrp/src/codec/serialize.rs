//! Owned messages to send: building and writing them, responses (RFC 4975
//! §7.2) and REPORTs (§7.1.2 to §7.1.4) made from a request.

use bytes::Bytes;
use memchr::memmem;

use super::error::ParseError;
use super::headers::{ByteRange, FailureReport, HeaderName, SuccessReport, is_ident, is_token};
use super::message::{Continuation, Message, StartLine, is_control};
use super::uri::parse_path;

/// Error building a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Happens when a transaction id is not an ident (RFC 4975 §9: a
    /// letter or digit and 3 to 31 of letters, digits, `.-+%=`).
    #[error("transaction id {0:?} is not an ident")]
    TransactionId(String),
    /// Happens when a method is not upper-case letters (RFC 4975 §9).
    #[error("method {0:?} is not upper-case letters")]
    Method(String),
    /// Happens when a status code has more than three digits.
    #[error("status code {0} is not three digits")]
    Status(u16),
    /// Happens when a header name is not `ALPHA *token` (RFC 4975 §9).
    #[error("header name {0:?} is not a token starting with a letter")]
    HeaderName(String),
    /// Happens when a header value or a comment holds CR, LF or another
    /// control character but HTAB: it would end the line (MSRP has no
    /// folding).
    #[error("value of {0} holds a line break or a control character")]
    Value(String),
    /// Happens when a path or URI given to a builder is not made of MSRP
    /// URIs.
    #[error("{header} is not a path of MSRP URIs: {reason}")]
    Uri {
        /// The header it was meant for.
        header: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Happens when a body holds `-------<transact-id>`: the receiver
    /// would take it for the end-line (RFC 4975 §7.1). Choose another
    /// transaction id.
    #[error("the body holds the end-line of transaction {0}")]
    EndLineInBody(String),
    /// Happens when a body is given to a response (RFC 4975 §9).
    #[error("a response has no body")]
    ResponseBody,
    /// Happens when a response or REPORT is asked for a message that is
    /// not a request, or a response for a REPORT (RFC 4975 §7.1.2: REPORT
    /// requests are never answered).
    #[error("{0}")]
    NotAnswerable(&'static str),
    /// Happens when the request to answer lacks a header the answer is
    /// made from (From-Path, Message-ID), or it is malformed.
    #[error("the request cannot be answered: {0}")]
    Request(#[from] ParseError),
}

/// The start line of an [`OwnedMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedStartLine {
    /// `MSRP <tid> <method>`.
    Request {
        /// The method.
        method: String,
    },
    /// `MSRP <tid> <code> [comment]`.
    Response {
        /// The status code.
        code: u16,
        /// The comment.
        comment: Option<String>,
    },
}

/// A message to send: start line, headers in order (unknown ones too), an
/// optional body and the flag of its end-line.
///
/// Values are written after `Name: `; they may not hold line breaks, so
/// text from another protocol cannot become header syntax. White space
/// around a value is dropped (the parser drops it too).
///
/// ```
/// use cpimgate_msrp::codec::{parse, OwnedMessage};
/// let mut m = OwnedMessage::request("a786hjs2", "SEND").unwrap();
/// m.push_header("To-Path", "msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp").unwrap();
/// m.push_header("From-Path", "msrp://atlanta.example.com:7654/jshA7weztas;tcp").unwrap();
/// m.push_header("Message-ID", "87652491").unwrap();
/// m.push_header("Content-Type", "text/plain").unwrap();
/// m.set_body("Hey Bob, are you there?").unwrap();
/// let bytes = m.to_bytes();
/// assert!(bytes.ends_with(b"\r\n\r\nHey Bob, are you there?\r\n-------a786hjs2$\r\n"));
/// assert_eq!(parse(&bytes).unwrap().to_owned_message(), m);
/// assert!(m.push_header("Subject", "hi\r\nX-Evil: 1").is_err());
/// assert!(m.set_body("x\r\n-------a786hjs2$\r\n").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedMessage {
    transaction_id: String,
    start: OwnedStartLine,
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
    continuation: Continuation,
}

fn check_text(what: &str, value: &str) -> Result<(), BuildError> {
    if value.bytes().any(is_control) {
        return Err(BuildError::Value(what.to_owned()));
    }
    Ok(())
}

fn check_tid(tid: &str) -> Result<(), BuildError> {
    if !is_ident(tid) {
        return Err(BuildError::TransactionId(tid.to_owned()));
    }
    Ok(())
}

/// Whether `body` holds `-------<tid>` (RFC 4975 §7.1).
pub(crate) fn holds_end_line(body: &[u8], tid: &str) -> bool {
    let mut needle = [0u8; 7 + 32];
    let n = 7 + tid.len();
    let (head, id) = needle.split_at_mut(7);
    head.copy_from_slice(b"-------");
    match id.get_mut(..tid.len()) {
        Some(d) => d.copy_from_slice(tid.as_bytes()),
        None => return true,
    }
    memmem::find(body, needle.get(..n).unwrap_or_default()).is_some()
}

impl OwnedMessage {
    /// A request without headers, ended by `$`.
    pub fn request(transaction_id: &str, method: &str) -> Result<Self, BuildError> {
        check_tid(transaction_id)?;
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(BuildError::Method(method.to_owned()));
        }
        Ok(OwnedMessage {
            transaction_id: transaction_id.to_owned(),
            start: OwnedStartLine::Request {
                method: method.to_owned(),
            },
            headers: Vec::new(),
            body: None,
            continuation: Continuation::Complete,
        })
    }

    /// A response without headers (RFC 4975 §7.2).
    pub fn response(
        transaction_id: &str,
        code: u16,
        comment: Option<&str>,
    ) -> Result<Self, BuildError> {
        check_tid(transaction_id)?;
        if code > 999 {
            return Err(BuildError::Status(code));
        }
        if let Some(c) = comment {
            check_text("the comment", c)?;
        }
        Ok(OwnedMessage {
            transaction_id: transaction_id.to_owned(),
            start: OwnedStartLine::Response {
                code,
                comment: comment.map(str::to_owned),
            },
            headers: Vec::new(),
            body: None,
            continuation: Continuation::Complete,
        })
    }

    /// Appends a header.
    pub fn push_header(&mut self, name: &str, value: &str) -> Result<&mut Self, BuildError> {
        if !is_token(name) || !name.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
            return Err(BuildError::HeaderName(name.to_owned()));
        }
        check_text(name, value)?;
        self.headers
            .push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
        Ok(self)
    }

    /// Sets the body of a request (an empty body is still a body, RFC
    /// 4975 §7.1).
    pub fn set_body(&mut self, body: impl Into<Bytes>) -> Result<&mut Self, BuildError> {
        if matches!(self.start, OwnedStartLine::Response { .. }) {
            return Err(BuildError::ResponseBody);
        }
        let body = body.into();
        if holds_end_line(&body, &self.transaction_id) {
            return Err(BuildError::EndLineInBody(self.transaction_id.clone()));
        }
        self.body = Some(body);
        Ok(self)
    }

    /// Removes the body.
    pub fn clear_body(&mut self) -> &mut Self {
        self.body = None;
        self
    }

    /// Sets the flag of the end-line (`$` unless set).
    pub fn set_continuation(&mut self, c: Continuation) -> &mut Self {
        self.continuation = c;
        self
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    /// The start line.
    pub fn start_line(&self) -> &OwnedStartLine {
        &self.start
    }

    /// The headers, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first value of a header, without regard to the case of its
    /// name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body.
    pub fn body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }

    /// The flag of the end-line.
    pub fn continuation(&self) -> Continuation {
        self.continuation
    }

    /// Writes the head: start line and header lines, each with its CRLF.
    pub(crate) fn write_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"MSRP ");
        out.extend_from_slice(self.transaction_id.as_bytes());
        out.push(b' ');
        match &self.start {
            OwnedStartLine::Request { method } => out.extend_from_slice(method.as_bytes()),
            OwnedStartLine::Response { code, comment } => {
                out.extend_from_slice(format!("{code:03}").as_bytes());
                if let Some(c) = comment {
                    out.push(b' ');
                    out.extend_from_slice(c.as_bytes());
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Appends the message to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.write_head(out);
        if let Some(body) = &self.body {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        }
        write_end_line(out, &self.transaction_id, self.continuation);
    }

    /// The message as bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(
            128 + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>()
                + self.body.as_ref().map_or(0, Bytes::len),
        );
        self.write_to(&mut out);
        out.into()
    }

    /// A response to `request` (RFC 4975 §7.2): the same transaction id,
    /// To-Path the first URI of the request's From-Path for SEND (the
    /// previous hop) or all of it for other methods, From-Path `own_uri`.
    /// Whether to send it at all is [`Message::wants_response`].
    ///
    /// ```
    /// use cpimgate_msrp::codec::{parse, OwnedMessage};
    /// let req = parse(b"MSRP d93kswow SEND\r\n\
    /// To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
    /// From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n\
    /// Message-ID: 12339sdqwer\r\n\
    /// -------d93kswow$\r\n").unwrap();
    /// let ok = OwnedMessage::response_to(&req, 200, Some("OK"),
    ///     "msrp://bob.example.com:8888/9di4eae923wzd;tcp").unwrap();
    /// // RFC 4975 §11.1, message 5
    /// assert_eq!(ok.to_bytes(), &b"MSRP d93kswow 200 OK\r\n\
    /// To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n\
    /// From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
    /// -------d93kswow$\r\n"[..]);
    /// ```
    pub fn response_to(
        request: &Message<'_>,
        code: u16,
        comment: Option<&str>,
        own_uri: &str,
    ) -> Result<Self, BuildError> {
        let method = match request.start_line() {
            StartLine::Request { method } => method,
            StartLine::Response { .. } => {
                return Err(BuildError::NotAnswerable("a response answers a request"));
            }
        };
        if method == "REPORT" {
            return Err(BuildError::NotAnswerable(
                "REPORT requests get no response (RFC 4975 §7.1.2)",
            ));
        }
        let from = from_path_value(request)?;
        let to = if method == "SEND" {
            from.split([' ', '\t'])
                .find(|s| !s.is_empty())
                .unwrap_or(from)
        } else {
            from
        };
        check_path("From-Path", own_uri)?;
        let mut r = OwnedMessage::response(request.transaction_id(), code, comment)?;
        r.push_header("To-Path", to)?;
        r.push_header("From-Path", own_uri)?;
        Ok(r)
    }

    /// A REPORT on `send` (RFC 4975 §7.1.2, §7.1.3): To-Path the request's
    /// whole From-Path, From-Path `own_uri`, the request's Message-ID,
    /// Byte-Range `range` (by default the bytes that `send` carried, see
    /// [`Message::received_range`]), `Status: 000 <code> <comment>`.
    /// It is built whatever the request asked; see
    /// [`OwnedMessage::success_report`] and
    /// [`OwnedMessage::failure_report`] for reports that follow
    /// Success-Report and Failure-Report.
    pub fn report(
        send: &Message<'_>,
        transaction_id: &str,
        own_uri: &str,
        code: u16,
        comment: Option<&str>,
        range: Option<ByteRange>,
    ) -> Result<Self, BuildError> {
        if !send.is_request() {
            return Err(BuildError::NotAnswerable("a REPORT reports on a request"));
        }
        if send.method() == Some("REPORT") {
            return Err(BuildError::NotAnswerable(
                "a REPORT is never sent on a REPORT (RFC 4975 §7.1.2)",
            ));
        }
        if code > 999 {
            return Err(BuildError::Status(code));
        }
        let from = from_path_value(send)?;
        let message_id = send.message_id()?.ok_or(ParseError::new(
            0,
            super::ErrorKind::MissingHeader("Message-ID"),
        ))?;
        check_path("From-Path", own_uri)?;
        let range = match range {
            Some(r) => r,
            None => send.received_range()?,
        };
        let status = match comment {
            Some(c) => format!("000 {code:03} {c}"),
            None => format!("000 {code:03}"),
        };
        let mut r = OwnedMessage::request(transaction_id, "REPORT")?;
        r.push_header("To-Path", from)?;
        r.push_header("From-Path", own_uri)?;
        r.push_header("Message-ID", message_id)?;
        r.push_header("Byte-Range", &range.to_string())?;
        r.push_header("Status", &status)?;
        Ok(r)
    }

    /// The success REPORT for `send` with status 200 (RFC 4975 §7.1.3),
    /// or `None` when the request did not ask for one (Success-Report
    /// absent or `no`). Its Byte-Range is the one of `send` when that
    /// ends the message and gives range-end and total, otherwise
    /// [`Message::received_range`].
    ///
    /// ```
    /// use cpimgate_msrp::codec::{parse, OwnedMessage};
    /// let send = parse(b"MSRP d93kswow SEND\r\n\
    /// To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
    /// From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n\
    /// Message-ID: 12339sdqwer\r\n\
    /// Byte-Range: 1-4/4\r\n\
    /// Success-Report: yes\r\n\
    /// Content-Type: text/plain\r\n\
    /// \r\n\
    /// abcd\r\n\
    /// -------d93kswow$\r\n").unwrap();
    /// let r = OwnedMessage::success_report(&send, "dkei38sd",
    ///     "msrp://bob.example.com:8888/9di4eae923wzd;tcp").unwrap().unwrap();
    /// assert_eq!(r.header("Byte-Range"), Some("1-4/4"));
    /// assert_eq!(r.header("Status"), Some("000 200 OK"));
    /// ```
    pub fn success_report(
        send: &Message<'_>,
        transaction_id: &str,
        own_uri: &str,
    ) -> Result<Option<Self>, BuildError> {
        if send.success_report()? != SuccessReport::Yes {
            return Ok(None);
        }
        // §7.3.2: the sender matches the report to its SEND by Message-ID
        // and Byte-Range, so a range the SEND wrote out in full is echoed
        // (RFC 4975 §11.6 does so); otherwise the range is computed.
        let range = send.byte_range()?.filter(|r| {
            r.end.is_some() && r.total.is_some() && send.continuation() == Continuation::Complete
        });
        Self::report(send, transaction_id, own_uri, 200, Some("OK"), range).map(Some)
    }

    /// A failure REPORT for `send` (RFC 4975 §7.1.4) with an error code
    /// and its comment, or `None` when Failure-Report is `no`. The
    /// Byte-Range is what `send` carried.
    pub fn failure_report(
        send: &Message<'_>,
        transaction_id: &str,
        own_uri: &str,
        code: u16,
        comment: Option<&str>,
    ) -> Result<Option<Self>, BuildError> {
        if send.failure_report()? == FailureReport::No {
            return Ok(None);
        }
        Self::report(send, transaction_id, own_uri, code, comment, None).map(Some)
    }
}

pub(crate) fn write_end_line(out: &mut Vec<u8>, tid: &str, c: Continuation) {
    out.extend_from_slice(b"-------");
    out.extend_from_slice(tid.as_bytes());
    out.push(c.as_byte());
    out.extend_from_slice(b"\r\n");
}

fn check_path(header: &'static str, value: &str) -> Result<(), BuildError> {
    parse_path(value).map(|_| ()).map_err(|e| BuildError::Uri {
        header,
        reason: e.0,
    })
}

/// The request's From-Path value, checked.
fn from_path_value<'a>(request: &Message<'a>) -> Result<&'a str, BuildError> {
    request.from_path()?.ok_or(ParseError::new(
        0,
        super::ErrorKind::MissingHeader("From-Path"),
    ))?;
    Ok(request
        .header(HeaderName::FromPath)
        .map(|h| h.value())
        .unwrap_or_default())
}

/// The comment RFC 4975 §10 and RFC 7701 §11 give each status code.
///
/// ```
/// assert_eq!(cpimgate_msrp::codec::reason_phrase(481), "No Such Session");
/// ```
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Message Too Large",
        415 => "Unsupported Media Type",
        423 => "Interval Out-of-Bounds",
        424 => "Nickname Syntax Error",
        425 => "Nickname reserved or already in use",
        428 => "Private messages not supported",
        481 => "No Such Session",
        501 => "Not Implemented",
        506 => "Wrong Session",
        _ => "",
    }
}

impl<'a> Message<'a> {
    /// An owned copy: the start line, the headers with their names as
    /// written, the body and the flag.
    pub fn to_owned_message(&self) -> OwnedMessage {
        OwnedMessage {
            transaction_id: self.transaction_id.to_owned(),
            start: match self.start {
                StartLine::Request { method } => OwnedStartLine::Request {
                    method: method.to_owned(),
                },
                StartLine::Response { code, comment } => OwnedStartLine::Response {
                    code,
                    comment: comment.map(str::to_owned),
                },
            },
            headers: self
                .headers
                .iter()
                .map(|h| (h.name().to_owned(), h.value().to_owned()))
                .collect(),
            body: self.body.map(Bytes::copy_from_slice),
            continuation: self.continuation,
        }
    }

    /// The range of the message this request carried (RFC 4975 §7.1.4):
    /// range-start and total from its Byte-Range (1 and unknown without
    /// one), range-end from the body actually received; with the flag `$`
    /// the total is that end.
    pub fn received_range(&self) -> Result<ByteRange, ParseError> {
        let declared = self.byte_range()?.unwrap_or(ByteRange::UNKNOWN);
        let end = declared.start - 1 + self.body_len() as u64;
        let total = match (declared.total, self.continuation) {
            // A body that runs past the total it announced (miscounted)
            // still gets a range that reads back.
            (Some(t), _) => Some(t.max(end)),
            (None, Continuation::Complete) => Some(end),
            (None, _) => None,
        };
        Ok(ByteRange {
            start: declared.start,
            end: Some(end),
            total,
        })
    }
}
