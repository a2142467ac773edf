//! Owned messages to send: building, writing with a computed
//! Content-Length, and responses made from a request (RFC 3261 §7,
//! §8.2.6).

use bytes::Bytes;

use super::addr::NameAddrRef;
use super::headers::{HeaderName, is_token};
use super::message::{Message, StartLine, is_control};

/// Error building a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Happens when a header name is not a token (RFC 3261 §25.1).
    #[error("header name {0:?} is not a token")]
    HeaderName(String),
    /// Happens when a value holds CR, LF or another control character but
    /// HTAB: it would end the header line and start another (a header
    /// value is never folded on output).
    #[error("value of {0} holds a line break or a control character")]
    Value(String),
    /// Happens when a method is not a token.
    #[error("method {0:?} is not a token")]
    Method(String),
    /// Happens when a Request-URI is empty or holds white space or a
    /// control character.
    #[error("Request-URI {0:?} is not a URI")]
    Uri(String),
    /// Happens when a status code is not from 100 to 699.
    #[error("status code {0} is not from 100 to 699")]
    Status(u16),
    /// Happens when a response is asked for a message that is not a
    /// request.
    #[error("a response can only answer a request")]
    NotARequest,
}

/// The start line of an [`OwnedMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedStartLine {
    /// `METHOD uri SIP/2.0`.
    Request {
        /// The method.
        method: String,
        /// The Request-URI.
        uri: String,
    },
    /// `SIP/2.0 code reason`.
    Response {
        /// The status code.
        code: u16,
        /// The reason phrase.
        reason: String,
    },
}

/// A message to send: a start line, headers in order (unknown ones too)
/// and a body.
///
/// Header values are written as given after `Name: `; they may not hold
/// line breaks, so text from another protocol cannot become header syntax.
/// Content-Length is always written with the length of the body: in place
/// of the Content-Length header when there is one, after the last header
/// otherwise.
///
/// ```
/// use cpimgate_sip::codec::{parse, OwnedMessage};
/// let mut m = OwnedMessage::request("MESSAGE", "sip:user2@domain.com").unwrap();
/// m.push_header("Via", "SIP/2.0/TCP user1pc.domain.com;branch=z9hG4bK776sgdkse").unwrap();
/// m.push_header("Content-Type", "text/plain").unwrap();
/// m.set_body("Watson, come here.");
/// let bytes = m.to_bytes();
/// assert!(bytes.ends_with(b"Content-Length: 18\r\n\r\nWatson, come here."));
/// assert_eq!(parse(&bytes).unwrap().to_owned_message(), m.finalized());
/// assert!(m.push_header("Subject", "hi\r\nX-Evil: 1").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedMessage {
    start: OwnedStartLine,
    headers: Vec<(String, String)>,
    body: Bytes,
}

/// Refuses what the parser refuses in a header line (the same rule, so
/// that every value of a parsed message can be copied into a new one):
/// ASCII control characters but HTAB.
fn check_value(name: &str, value: &str) -> Result<(), BuildError> {
    if value.bytes().any(is_control) {
        return Err(BuildError::Value(name.to_owned()));
    }
    Ok(())
}

impl OwnedMessage {
    /// A request without headers.
    pub fn request(method: &str, uri: &str) -> Result<Self, BuildError> {
        if !is_token(method) {
            return Err(BuildError::Method(method.to_owned()));
        }
        if uri.is_empty() || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(BuildError::Uri(uri.to_owned()));
        }
        Ok(OwnedMessage {
            start: OwnedStartLine::Request {
                method: method.to_owned(),
                uri: uri.to_owned(),
            },
            headers: Vec::new(),
            body: Bytes::new(),
        })
    }

    /// A response without headers.
    pub fn response(code: u16, reason: &str) -> Result<Self, BuildError> {
        if !(100..=699).contains(&code) {
            return Err(BuildError::Status(code));
        }
        check_value("the reason phrase", reason)?;
        Ok(OwnedMessage {
            start: OwnedStartLine::Response {
                code,
                reason: reason.to_owned(),
            },
            headers: Vec::new(),
            body: Bytes::new(),
        })
    }

    /// A response to `request` as RFC 3261 §8.2.6.2 says: the Via values in
    /// order, From, To, Call-ID and CSeq copied; a To without tag gets
    /// `to_tag` (except in a 100, which needs none); a 100 (Trying) also
    /// copies Timestamp (§8.2.6.1). What the request lacks is not
    /// invented, so that a 400 can answer a request missing a header.
    pub fn response_to(
        request: &Message<'_>,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Result<Self, BuildError> {
        if !request.is_request() {
            return Err(BuildError::NotARequest);
        }
        let mut r = OwnedMessage::response(code, reason)?;
        for h in request.headers_named(HeaderName::Via) {
            r.push_header("Via", h.value())?;
        }
        for name in [HeaderName::From, HeaderName::To] {
            let Some(h) = request.header(name) else {
                continue;
            };
            let mut value = h.value().to_owned();
            if name == HeaderName::To && code != 100 {
                let has_tag = NameAddrRef::parse(h.value()).is_ok_and(|a| a.tag().is_some());
                if let (false, Some(tag)) = (has_tag, to_tag) {
                    value.push_str(";tag=");
                    value.push_str(tag);
                }
            }
            r.push_header(name.as_str(), &value)?;
        }
        for name in [HeaderName::CallId, HeaderName::CSeq] {
            if let Some(h) = request.header(name) {
                r.push_header(name.as_str(), h.value())?;
            }
        }
        if code == 100 {
            if let Some(h) = request.header(HeaderName::Timestamp) {
                r.push_header("Timestamp", h.value())?;
            }
        }
        Ok(r)
    }

    /// Appends a header line.
    pub fn push_header(&mut self, name: &str, value: &str) -> Result<(), BuildError> {
        if !is_token(name) {
            return Err(BuildError::HeaderName(name.to_owned()));
        }
        check_value(name, value)?;
        self.headers.push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    /// [`OwnedMessage::push_header`], by value.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, BuildError> {
        self.push_header(name, value)?;
        Ok(self)
    }

    /// Removes every header of that name (long or compact form, any case).
    pub fn remove_header(&mut self, name: &str) {
        let kind = HeaderName::parse(name);
        self.headers.retain(|(n, _)| !same_name(n, name, kind));
    }

    /// Sets the body (Content-Type is a header of its own).
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = body.into();
    }

    /// The start line.
    pub fn start_line(&self) -> &OwnedStartLine {
        &self.start
    }

    /// The headers in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first value of that header (long or compact form, any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        let kind = HeaderName::parse(name);
        self.headers
            .iter()
            .find(|(n, _)| same_name(n, name, kind))
            .map(|(_, v)| v.as_str())
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The same message with its Content-Length header(s) set to the body
    /// length, or one added at the end: what [`OwnedMessage::to_bytes`]
    /// writes.
    pub fn finalized(&self) -> OwnedMessage {
        let mut m = self.clone();
        let len = m.body.len().to_string();
        let mut any = false;
        for (n, v) in &mut m.headers {
            if HeaderName::parse(n) == HeaderName::ContentLength {
                v.clone_from(&len);
                any = true;
            }
        }
        if !any {
            m.headers.push(("Content-Length".to_owned(), len));
        }
        m
    }

    /// Writes the message.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.start {
            OwnedStartLine::Request { method, uri } => {
                out.extend_from_slice(method.as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri.as_bytes());
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            OwnedStartLine::Response { code, reason } => {
                out.extend_from_slice(format!("SIP/2.0 {code} ").as_bytes());
                out.extend_from_slice(reason.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        let len = self.body.len().to_string();
        let mut wrote_len = false;
        for (n, v) in &self.headers {
            let v = if HeaderName::parse(n) == HeaderName::ContentLength {
                wrote_len = true;
                &len
            } else {
                v
            };
            header_line(out, n, v);
        }
        if !wrote_len {
            header_line(out, "Content-Length", &len);
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    /// [`OwnedMessage::write_to`] into a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        self.write_to(&mut out);
        out
    }
}

fn header_line(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn same_name(written: &str, asked: &str, kind: HeaderName) -> bool {
    match kind {
        HeaderName::Other => written.eq_ignore_ascii_case(asked),
        k => HeaderName::parse(written) == k,
    }
}

impl Message<'_> {
    /// An owned copy: start line, headers with their names as written and
    /// their values unfolded, body.
    pub fn to_owned_message(&self) -> OwnedMessage {
        OwnedMessage {
            start: match self.start_line() {
                StartLine::Request { method, uri } => OwnedStartLine::Request {
                    method: method.to_owned(),
                    uri: uri.to_owned(),
                },
                StartLine::Response { code, reason } => OwnedStartLine::Response {
                    code,
                    reason: reason.to_owned(),
                },
            },
            headers: self
                .headers()
                .iter()
                .map(|h| (h.name().to_owned(), h.value().to_owned()))
                .collect(),
            body: Bytes::copy_from_slice(self.body()),
        }
    }
}
