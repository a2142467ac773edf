//! Sending one message in chunks (RFC 4975 §5.1, §7.1.1): SEND requests
//! with Byte-Range, ended by `+` until the last, which ends by `$`; a
//! chunk may be interrupted to let other traffic through, or aborted
//! with `#`.

use bytes::Bytes;

use super::headers::{ByteRange, HeaderName};
use super::message::Continuation;
use super::serialize::{BuildError, OwnedMessage, OwnedStartLine, holds_end_line, write_end_line};

/// Chunks larger than this must be interruptible, with `*` as range-end
/// (RFC 4975 §7.1.1).
pub const INTERRUPTIBLE_ABOVE: usize = 2048;

/// A chunk being written piece by piece.
#[derive(Debug, Clone)]
struct InFlight {
    tid: String,
    written: usize,
}

/// Cuts one outgoing message into SEND chunks.
///
/// Two ways to use it, which can be mixed between chunks:
///
/// * [`Chunker::next_chunk`] gives a whole chunk of up to `chunk_size`
///   bytes of body with its exact Byte-Range (range-end `*` above 2048
///   bytes, RFC 4975 §7.1.1).
/// * [`Chunker::start_chunk`], then [`Chunker::poll_body`] as the
///   connection has room, then [`Chunker::end_chunk`], write an
///   interruptible chunk (`start-*/total`): ending it before the whole
///   body is written ends it with `+`, and the next chunk resumes at the
///   first byte not written (§7.1.1 "A SEND request is interrupted ...").
///   Other messages can be sent on the connection between two chunks.
///   [`Chunker::abort`] ends the chunk with `#` instead (§7.1).
///
/// Each chunk needs its own transaction id, with 64 bits of randomness
/// (§7.1): the caller gives it, this codec has no random source. An id
/// whose end-line appears in the rest of the body is refused
/// ([`BuildError::EndLineInBody`]): pick another.
///
/// ```
/// use cpimgate_msrp::codec::{Chunker, OwnedMessage, parse};
/// let mut m = OwnedMessage::request("dkei38sd", "SEND").unwrap();
/// m.push_header("To-Path", "msrp://b.example.com:8888/9di4eae923wzd;tcp").unwrap();
/// m.push_header("From-Path", "msrp://a.example.com:7777/iau39soe2843z;tcp").unwrap();
/// m.push_header("Message-ID", "4564dpWd").unwrap();
/// m.push_header("Content-Type", "text/plain").unwrap();
/// m.set_body("abcdEFGH").unwrap();
/// let mut c = Chunker::new(&m, 4).unwrap();
/// let first = c.next_chunk("dkei38sd").unwrap().unwrap();
/// let p = parse(&first).unwrap();
/// assert_eq!(p.byte_range().unwrap().unwrap().to_string(), "1-4/8");
/// assert_eq!(p.body(), Some(&b"abcd"[..]));
/// let second = c.next_chunk("dkei38ia").unwrap().unwrap();
/// assert!(second.ends_with(b"Byte-Range: 5-8/8\r\nContent-Type: text/plain\r\n\r\nEFGH\r\n-------dkei38ia$\r\n"));
/// assert!(c.is_done());
/// ```
#[derive(Debug, Clone)]
pub struct Chunker {
    /// The headers of every chunk, Byte-Range excluded.
    headers: Vec<(String, String)>,
    /// Where Byte-Range goes among them: before the MIME headers, so that
    /// Content-Type stays last (§7.1).
    range_at: usize,
    body: Bytes,
    pos: usize,
    chunk_size: usize,
    in_flight: Option<InFlight>,
    started: bool,
    aborted: bool,
}

impl Chunker {
    /// Chunks `message`, a SEND request (its Byte-Range, if any, is
    /// replaced), with bodies of at most `chunk_size` bytes (at least 1)
    /// from [`Chunker::next_chunk`].
    pub fn new(message: &OwnedMessage, chunk_size: usize) -> Result<Self, BuildError> {
        match message.start_line() {
            OwnedStartLine::Request { method } if method == "SEND" => {}
            _ => return Err(BuildError::NotAnswerable("only SEND requests are chunked")),
        }
        let headers: Vec<(String, String)> = message
            .headers()
            .iter()
            .filter(|(n, _)| HeaderName::parse(n) != HeaderName::ByteRange)
            .cloned()
            .collect();
        let range_at = headers
            .iter()
            .position(|(n, _)| HeaderName::parse(n).is_mime())
            .unwrap_or(headers.len());
        Ok(Chunker {
            headers,
            range_at,
            body: message.body().cloned().unwrap_or_default(),
            pos: 0,
            chunk_size: chunk_size.max(1),
            in_flight: None,
            started: false,
            aborted: false,
        })
    }

    /// Whether every byte has been sent in a chunk ended by `$`, or the
    /// message was aborted.
    pub fn is_done(&self) -> bool {
        self.aborted || (self.started && self.in_flight.is_none() && self.pos >= self.body.len())
    }

    /// Bytes of the body sent in chunks that are ended.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Total size of the message body.
    pub fn total(&self) -> usize {
        self.body.len()
    }

    fn head(&self, tid: &str, range: ByteRange) -> Result<Vec<u8>, BuildError> {
        let mut m = OwnedMessage::request(tid, "SEND")?;
        let range = range.to_string();
        for (i, (n, v)) in self.headers.iter().enumerate() {
            if i == self.range_at {
                m.push_header("Byte-Range", &range)?;
            }
            m.push_header(n, v)?;
        }
        if self.range_at >= self.headers.len() {
            m.push_header("Byte-Range", &range)?;
        }
        let mut out = Vec::with_capacity(256);
        m.write_head(&mut out);
        out.extend_from_slice(b"\r\n");
        Ok(out)
    }

    fn check(&self, tid: &str) -> Result<(), BuildError> {
        if self.in_flight.is_some() {
            return Err(BuildError::NotAnswerable("a chunk is still being written"));
        }
        if holds_end_line(self.body.get(self.pos..).unwrap_or_default(), tid) {
            return Err(BuildError::EndLineInBody(tid.to_owned()));
        }
        Ok(())
    }

    /// The next whole chunk, `None` when the message is done.
    pub fn next_chunk(&mut self, transaction_id: &str) -> Result<Option<Bytes>, BuildError> {
        if self.is_done() {
            return Ok(None);
        }
        self.check(transaction_id)?;
        let end = self
            .pos
            .saturating_add(self.chunk_size)
            .min(self.body.len());
        let piece = self.body.get(self.pos..end).unwrap_or_default();
        let range = ByteRange {
            start: self.pos as u64 + 1,
            end: (piece.len() <= INTERRUPTIBLE_ABOVE).then_some(end as u64),
            total: Some(self.body.len() as u64),
        };
        let mut out = self.head(transaction_id, range)?;
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
        let flag = if end == self.body.len() {
            Continuation::Complete
        } else {
            Continuation::More
        };
        write_end_line(&mut out, transaction_id, flag);
        self.pos = end;
        self.started = true;
        Ok(Some(out.into()))
    }

    /// Starts an interruptible chunk (`start-*/total`): the start line,
    /// the headers and the empty line. `Ok(None)` when the message is
    /// done.
    pub fn start_chunk(&mut self, transaction_id: &str) -> Result<Option<Bytes>, BuildError> {
        if self.is_done() {
            return Ok(None);
        }
        self.check(transaction_id)?;
        let range = ByteRange {
            start: self.pos as u64 + 1,
            end: None,
            total: Some(self.body.len() as u64),
        };
        let out = self.head(transaction_id, range)?;
        self.in_flight = Some(InFlight {
            tid: transaction_id.to_owned(),
            written: 0,
        });
        self.started = true;
        Ok(Some(out.into()))
    }

    /// The next piece of body of the chunk in flight, at most `max` bytes;
    /// empty when the body is all written or no chunk is in flight.
    pub fn poll_body(&mut self, max: usize) -> Bytes {
        let Some(f) = self.in_flight.as_mut() else {
            return Bytes::new();
        };
        let from = self.pos + f.written;
        let to = from.saturating_add(max).min(self.body.len());
        f.written += to - from;
        self.body.slice(from..to)
    }

    /// Ends the chunk in flight: CRLF and the end-line, `$` when the body
    /// is all written, `+` when the chunk is interrupted (the next chunk
    /// starts at the first byte not written). Empty when no chunk is in
    /// flight.
    pub fn end_chunk(&mut self) -> Bytes {
        let Some(f) = self.in_flight.take() else {
            return Bytes::new();
        };
        self.pos += f.written;
        let flag = if self.pos >= self.body.len() {
            Continuation::Complete
        } else {
            Continuation::More
        };
        let mut out = Vec::with_capacity(2 + 7 + f.tid.len() + 3);
        out.extend_from_slice(b"\r\n");
        write_end_line(&mut out, &f.tid, flag);
        out.into()
    }

    /// Aborts the message (RFC 4975 §7.1, §7.3.2): ends the chunk in
    /// flight with `#`. No chunk in flight: `None`; start one to carry the
    /// `#` if the peer must learn of the abort.
    pub fn abort(&mut self) -> Option<Bytes> {
        let f = self.in_flight.take()?;
        self.pos += f.written;
        self.aborted = true;
        let mut out = Vec::with_capacity(2 + 7 + f.tid.len() + 3);
        out.extend_from_slice(b"\r\n");
        write_end_line(&mut out, &f.tid, Continuation::Aborted);
        Some(out.into())
    }
}
