//! Framing SIP messages on stream and datagram transports (RFC 3261 §7.5,
//! §18.3) with the CRLF keep-alive of RFC 5626 §4.4.1.

use bytes::{Bytes, BytesMut};

use super::error::{ErrorKind, ParseError};
use super::headers::{HeaderName, TrimLws};
use super::message::{Limits, Message, parse_with};

/// What a stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// One whole message: header section and exactly Content-Length bytes
    /// of body. Parse it with [`parse_with`].
    Message(Bytes),
    /// A double CRLF between messages: the keep-alive "ping" of RFC 5626
    /// §4.4.1, which a server answers with one CRLF ("pong").
    Ping,
    /// A single CRLF between messages: a "pong", or a CRLF that RFC 3261
    /// §7.5 says to ignore before a start line.
    Pong,
}

/// Cuts a TCP or TLS byte stream into SIP messages (RFC 3261 §18.3).
///
/// Feed what the socket gives with [`StreamFramer::handle_data`], in reads
/// of any size, then call [`StreamFramer::poll_event`] until it returns
/// `None`. Each message is located by its Content-Length, which is
/// mandatory on a stream: a message without one is an error
/// ([`ErrorKind::MissingContentLength`], 400). After an error the stream
/// has lost its framing: `poll_event` returns `None` from then on,
/// [`StreamFramer::buffered`] starts with the offending message (so that a
/// driver can read its Via and answer), and the driver closes the
/// connection.
///
/// ```
/// use cpimgate_sip::codec::{StreamEvent, StreamFramer, Limits};
/// let mut f = StreamFramer::new(Limits::default());
/// f.handle_data(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nContent-Le");
/// assert_eq!(f.poll_event(), Some(Ok(StreamEvent::Ping)));
/// assert_eq!(f.poll_event(), None);
/// f.handle_data(b"ngth: 2\r\n\r\nhi");
/// let Some(Ok(StreamEvent::Message(m))) = f.poll_event() else { panic!() };
/// assert!(m.ends_with(b"\r\n\r\nhi"));
/// ```
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: Limits,
    /// Where the search for the end of the header section resumes.
    scanned: usize,
    failed: bool,
}

impl StreamFramer {
    /// A framer within `limits` (`max_message` bounds each message).
    pub fn new(limits: Limits) -> Self {
        StreamFramer {
            buf: BytesMut::new(),
            limits,
            scanned: 0,
            failed: false,
        }
    }

    /// Appends bytes read from the stream.
    pub fn handle_data(&mut self, data: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(data);
        }
    }

    /// What is buffered and not yet yielded.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Whether the stream has lost its framing after an error.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// The next event, `None` when more bytes are needed (or after an
    /// error).
    pub fn poll_event(&mut self) -> Option<Result<StreamEvent, ParseError>> {
        if self.failed {
            return None;
        }
        match self.next_event() {
            Ok(Some(ev)) => Some(Ok(ev)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn next_event(&mut self) -> Result<Option<StreamEvent>, ParseError> {
        if self.buf.starts_with(b"\r\n") {
            return Ok(match self.buf.get(2..4) {
                Some(b"\r\n") => {
                    let _ = self.buf.split_to(4);
                    Some(StreamEvent::Ping)
                }
                None | Some([b'\r']) => None,
                Some(_) => {
                    let _ = self.buf.split_to(2);
                    Some(StreamEvent::Pong)
                }
            });
        }
        let Some(head_end) = self.find_head_end() else {
            if self.buf.len() > self.limits.max_message {
                return Err(ParseError::new(
                    0,
                    ErrorKind::TooLarge {
                        len: self.buf.len(),
                        max: self.limits.max_message,
                    },
                ));
            }
            return Ok(None);
        };
        let head = self.buf.get(..head_end).unwrap_or_default();
        let body_len =
            content_length(head)?.ok_or(ParseError::new(0, ErrorKind::MissingContentLength))?;
        let total = head_end.saturating_add(body_len);
        if total > self.limits.max_message {
            return Err(ParseError::new(
                0,
                ErrorKind::TooLarge {
                    len: total,
                    max: self.limits.max_message,
                },
            ));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        self.scanned = 0;
        Ok(Some(StreamEvent::Message(
            self.buf.split_to(total).freeze(),
        )))
    }

    /// The index after the CRLFCRLF that ends the header section.
    fn find_head_end(&mut self) -> Option<usize> {
        let from = self.scanned;
        let found = self
            .buf
            .get(from..)
            .unwrap_or_default()
            .windows(4)
            .position(|w| w == b"\r\n\r\n");
        match found {
            Some(i) => Some(from + i + 4),
            None => {
                self.scanned = self.buf.len().saturating_sub(3);
                None
            }
        }
    }
}

/// The Content-Length of a header section (long or compact name), with an
/// error when it is not a number or two lines disagree.
fn content_length(head: &[u8]) -> Result<Option<usize>, ParseError> {
    let mut found: Option<usize> = None;
    let mut offset = 0;
    for line in head.split(|&b| b == b'\n') {
        let at = offset;
        offset += line.len() + 1;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if matches!(line.first(), Some(b' ' | b'\t')) {
            continue;
        }
        let name = std::str::from_utf8(line.get(..colon).unwrap_or_default()).unwrap_or_default();
        if HeaderName::parse(name.trim_lws_end()) != HeaderName::ContentLength {
            continue;
        }
        let value = line.get(colon + 1..).unwrap_or_default();
        let value = std::str::from_utf8(value)
            .unwrap_or_default()
            .trim_end_matches('\r')
            .trim_lws();
        let bad = |reason| ParseError::header(at, "Content-Length", reason);
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("not a decimal number"));
        }
        let n: usize = value.parse().map_err(|_| bad("number out of range"))?;
        if found.is_some_and(|f| f != n) {
            return Err(ParseError::new(
                at,
                ErrorKind::Duplicate {
                    header: "Content-Length",
                },
            ));
        }
        found = Some(n);
    }
    Ok(found)
}

/// Parses one UDP datagram (RFC 3261 §18.3): Content-Length may be absent
/// (the body runs to the end), bytes after the body it announces are
/// discarded, a body shorter than it announces is an error (400).
/// A datagram made only of CR and LF is a keep-alive: `Ok(None)`.
pub fn parse_datagram<'a>(
    data: &'a [u8],
    limits: &Limits,
) -> Result<Option<Message<'a>>, ParseError> {
    if data.iter().all(|&b| b == b'\r' || b == b'\n') {
        return Ok(None);
    }
    parse_with(data, limits).map(Some)
}
