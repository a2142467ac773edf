//! Writing a new `message/cpim` body, in canonical form: CRLF line endings
//! (RFC 3862 §2.2), one space after each colon (§3), values escaped per
//! §2.3.1, display names always quoted (§3.6 `Formal-name = ... / String`).

use bytes::{BufMut, Bytes, BytesMut};

use super::value::{escape_into, is_header_name, is_mime_name_char, is_name_char};
use super::{CpimError, IMDN_NS};
use crate::address::NameAddr;
use crate::time::Timestamp;

/// Builds a new `message/cpim` body.
///
/// ```
/// # use cpimgate_model::cpim::{Cpim, CpimBuilder, Limits};
/// # use cpimgate_model::NameAddr;
/// let from: NameAddr = "<im:piglet@100akerwood.com>".parse().unwrap();
/// let to: NameAddr = "<im:eeyore@100akerwood.com>".parse().unwrap();
/// let bytes = CpimBuilder::new()
///     .from(&from)
///     .to(&to)
///     .subject("the weather", Some("en"))
///     .content_type("text/plain; charset=utf-8")
///     .body("Hello")
///     .build();
/// let cpim = Cpim::parse(bytes, &Limits::default()).unwrap();
/// assert_eq!(cpim.from().unwrap(), Some(from));
/// ```
#[derive(Clone, Debug, Default)]
pub struct CpimBuilder {
    head: String,
    mime: String,
    has_content_type: bool,
    body: Bytes,
}

/// Writes a URI, percent-encoding what cannot stand between angle brackets
/// in a header (RFC 3986 §2.1), so that no address can break the line.
fn push_uri(uri: &str, out: &mut String) {
    use std::fmt::Write as _;
    for c in uri.chars() {
        if c.is_ascii_control() || matches!(c, ' ' | '<' | '>' | '"' | '\\') {
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
}

fn push_name_addr(n: &NameAddr, out: &mut String) {
    if let Some(d) = n.display.as_deref().filter(|d| !d.is_empty()) {
        out.push('"');
        escape_into(d, true, out);
        out.push_str("\" ");
    }
    out.push('<');
    push_uri(&n.address.to_string(), out);
    out.push('>');
}

impl CpimBuilder {
    /// An empty message.
    pub fn new() -> Self {
        Self::default()
    }

    fn line(mut self, name: &str, f: impl FnOnce(&mut String)) -> Self {
        self.head.push_str(name);
        self.head.push_str(": ");
        f(&mut self.head);
        self.head.push_str("\r\n");
        self
    }

    /// Adds `From` (RFC 3862 §4.1).
    pub fn from(self, n: &NameAddr) -> Self {
        self.line("From", |o| push_name_addr(n, o))
    }

    /// Adds one `To` (RFC 3862 §4.2).
    pub fn to(self, n: &NameAddr) -> Self {
        self.line("To", |o| push_name_addr(n, o))
    }

    /// Adds one `cc` (RFC 3862 §4.3).
    pub fn cc(self, n: &NameAddr) -> Self {
        self.line("cc", |o| push_name_addr(n, o))
    }

    /// Adds `DateTime` (RFC 3862 §4.4), in UTC.
    pub fn datetime(self, t: Timestamp) -> Self {
        self.line("DateTime", |o| o.push_str(&t.to_rfc3339()))
    }

    /// Adds a `Subject` (RFC 3862 §4.5). A `lang` that is not a language
    /// tag (letters, digits, `-`) is left out rather than written broken.
    ///
    /// Trailing spaces of this and every other value are dropped: §2.2
    /// forbids whitespace at the end of a line and §2.3.1 forbids escaping
    /// a space, so they cannot be carried.
    pub fn subject(mut self, text: &str, lang: Option<&str>) -> Self {
        self.head.push_str("Subject:");
        if let Some(l) = lang
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            self.head.push_str(";lang=");
            self.head.push_str(l);
        }
        self.head.push(' ');
        escape_into(text.trim_end_matches(' '), false, &mut self.head);
        self.head.push_str("\r\n");
        self
    }

    /// Declares a name space (`NS`, RFC 3862 §4.6); `None` declares the
    /// default one.
    pub fn ns(self, prefix: Option<&str>, uri: &str) -> Result<Self, CpimError> {
        if let Some(p) = prefix
            && (p.is_empty() || !p.bytes().all(is_name_char))
        {
            return Err(CpimError::InvalidName { name: p.to_owned() });
        }
        Ok(self.line("NS", |o| {
            if let Some(p) = prefix {
                o.push_str(p);
                o.push(' ');
            }
            o.push('<');
            push_uri(uri, o);
            o.push('>');
        }))
    }

    /// Adds `NS: imdn <urn:ietf:params:imdn>` and `imdn.Message-ID`
    /// (RFC 5438 §6.3).
    pub fn imdn_message_id(self, id: &str) -> Self {
        self.line("NS", |o| {
            o.push_str("imdn <");
            o.push_str(IMDN_NS);
            o.push('>');
        })
        .line("imdn.Message-ID", |o| {
            escape_into(id.trim_end_matches(' '), false, o)
        })
    }

    /// Adds any header; the value is escaped (RFC 3862 §2.3.1).
    pub fn header(self, name: &str, value: &str) -> Result<Self, CpimError> {
        if !is_header_name(name) {
            return Err(CpimError::InvalidName {
                name: name.to_owned(),
            });
        }
        Ok(self.line(name, |o| escape_into(value.trim_end_matches(' '), false, o)))
    }

    /// Sets the encapsulated part's `Content-Type`. Control characters
    /// become spaces: MIME headers have no escapes.
    pub fn content_type(mut self, ct: &str) -> Self {
        self.has_content_type = true;
        self.push_mime("Content-Type", ct);
        self
    }

    fn push_mime(&mut self, name: &str, value: &str) {
        self.mime.push_str(name);
        self.mime.push_str(": ");
        self.mime
            .extend(value.chars().map(|c| if c.is_control() { ' ' } else { c }));
        self.mime.push_str("\r\n");
    }

    /// Adds a MIME header to the encapsulated part (`Content-ID`, ...).
    pub fn mime_header(mut self, name: &str, value: &str) -> Result<Self, CpimError> {
        if name.is_empty() || !name.bytes().all(is_mime_name_char) {
            return Err(CpimError::InvalidName {
                name: name.to_owned(),
            });
        }
        if name.eq_ignore_ascii_case("Content-Type") {
            self.has_content_type = true;
        }
        self.push_mime(name, value);
        Ok(self)
    }

    /// Sets the body of the encapsulated part.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Writes the message. Without a content type, the part says
    /// `Content-Type: text/plain; charset=utf-8`, since RFC 3862 §2.4 wants
    /// one.
    pub fn build(self) -> Bytes {
        let mut out =
            BytesMut::with_capacity(self.head.len() + self.mime.len() + self.body.len() + 48);
        out.put_slice(self.head.as_bytes());
        out.put_slice(b"\r\n");
        if !self.has_content_type {
            out.put_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
        }
        out.put_slice(self.mime.as_bytes());
        out.put_slice(b"\r\n");
        out.put_slice(&self.body);
        out.freeze()
    }
}
