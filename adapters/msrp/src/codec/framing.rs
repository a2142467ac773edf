//! Cutting a TCP or TLS byte stream into MSRP messages by their end-lines
//! (RFC 4975 §7.1, §7.3.1).

use bytes::{Bytes, BytesMut};

use super::error::{ErrorKind, ParseError};
use super::message::{
    Continuation, EndLineScan, Limits, MAX_END_LINE, check_prefix, end_line_at, first_control,
    line_end, scan_end_line, start_line,
};

/// Where the framer is in the message at the front of its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the CRLF of the start line; no control byte before
    /// `scanned`.
    Start { scanned: usize },
    /// The start line is read; the next header line starts at `pos`.
    Headers { tid_len: usize, pos: usize },
    /// The body starts at `body`; the end-line is searched from `from`.
    Body {
        tid_len: usize,
        body: usize,
        from: usize,
    },
}

/// Cuts an MSRP byte stream into messages (RFC 4975 §7.1).
///
/// Feed what the socket gives with [`StreamFramer::handle_data`], in reads
/// of any size, then call [`StreamFramer::poll_event`] until it returns
/// `None`; parse each message with [`parse_with`](super::parse_with).
/// The framer finds the end of a message by the end-line of *its*
/// transaction: `CRLF -------<transact-id><flag> CRLF`, so a body may
/// hold the end-lines of other transactions. It reads only the start
/// line and the line structure; a message whose headers are malformed is
/// still cut out whole, so that the driver can answer it 400 and go on.
///
/// The result does not depend on how the stream is split into reads.
/// Memory is bounded by [`Limits::max_head`] and [`Limits::max_chunk`]:
/// beyond them, or when the stream does not start with an MSRP start
/// line, `poll_event` gives an error and the stream has lost its framing:
/// `None` from then on, [`StreamFramer::buffered`] starts with the
/// offending message, and the driver closes the connection.
///
/// ```
/// use cpimgate_msrp::codec::{parse, Limits, StreamFramer};
/// let mut f = StreamFramer::new(Limits::default());
/// f.handle_data(b"MSRP a786hjs2 200 OK\r\nTo-Path: msrp://a.example.com:7654/jshA7weztas;tcp\r\n");
/// assert_eq!(f.poll_event(), None);
/// f.handle_data(b"From-Path: msrp://b.example.com:12763/kjhd37s2s20w2a;tcp\r\n-------a786hjs2$\r\nMSRP");
/// let m = f.poll_event().unwrap().unwrap();
/// assert_eq!(parse(&m).unwrap().status_code(), Some(200));
/// assert_eq!(f.buffered(), b"MSRP");
/// ```
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: Limits,
    state: State,
    failed: bool,
}

impl StreamFramer {
    /// A framer within `limits`.
    pub fn new(limits: Limits) -> Self {
        StreamFramer {
            buf: BytesMut::new(),
            limits,
            state: State::Start { scanned: 0 },
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

    /// The next whole message, `None` when more bytes are needed (or
    /// after an error).
    pub fn poll_event(&mut self) -> Option<Result<Bytes, ParseError>> {
        if self.failed {
            return None;
        }
        match self.next_message() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn next_message(&mut self) -> Result<Option<Bytes>, ParseError> {
        loop {
            let len = match self.state {
                State::Start { scanned } => {
                    if !self.start(scanned)? {
                        return Ok(None);
                    }
                    continue;
                }
                State::Headers { tid_len, pos } => match self.headers(tid_len, pos)? {
                    Some(len) => len,
                    None => {
                        if matches!(self.state, State::Body { .. }) {
                            continue;
                        }
                        return Ok(None);
                    }
                },
                State::Body {
                    tid_len,
                    body,
                    from,
                } => match self.body(tid_len, body, from)? {
                    Some(len) => len,
                    None => return Ok(None),
                },
            };
            self.state = State::Start { scanned: 0 };
            return Ok(Some(self.buf.split_to(len).freeze()));
        }
    }

    fn head_too_large(&self, offset: usize) -> ParseError {
        ParseError::new(
            offset,
            ErrorKind::HeadTooLarge {
                max: self.limits.max_head,
            },
        )
    }

    /// Reads the start line; `false` while it is not whole.
    fn start(&mut self, scanned: usize) -> Result<bool, ParseError> {
        check_prefix(&self.buf)?;
        let rest = self.buf.get(scanned..).unwrap_or_default();
        // The first control byte ends the line or is an error; past the
        // limit it is too late either way, however the bytes came.
        match first_control(rest) {
            Some(i) if scanned + i > self.limits.max_head => {
                return Err(self.head_too_large(0));
            }
            Some(_) => {}
            None => {
                if self.buf.len() > self.limits.max_head {
                    return Err(self.head_too_large(0));
                }
                self.state = State::Start {
                    scanned: self.buf.len(),
                };
                return Ok(false);
            }
        }
        let (end, next) = match line_end(&self.buf, 0) {
            Ok(e) => e,
            Err(e) if e.kind == ErrorKind::Incomplete => return Ok(false),
            Err(e) => return Err(e),
        };
        if next > self.limits.max_head {
            return Err(self.head_too_large(0));
        }
        let (tid, _) = start_line(self.buf.get(..end).unwrap_or_default())?;
        self.state = State::Headers {
            tid_len: tid.len(),
            pos: next,
        };
        Ok(true)
    }

    fn tid(&self, tid_len: usize) -> &str {
        // The start line was read as UTF-8 and the id is ASCII.
        std::str::from_utf8(self.buf.get(5..5 + tid_len).unwrap_or_default()).unwrap_or_default()
    }

    /// Walks the header lines; the message length when it ends with its
    /// end-line and no body, `None` when more bytes are needed or the body
    /// starts (the state says which).
    fn headers(&mut self, tid_len: usize, mut pos: usize) -> Result<Option<usize>, ParseError> {
        loop {
            let tid = self.tid(tid_len);
            let rest = self.buf.get(pos..).unwrap_or_default();
            // `-------<tid><flag>` not followed by CRLF is not an end-line
            // but a (malformed) header line, left to the parser.
            if let Some(flag_at) = end_line_at(rest, tid) {
                if rest.get(flag_at + 1..flag_at + 3) == Some(b"\r\n") {
                    return Ok(Some(pos + flag_at + 3));
                }
            }
            if rest.starts_with(b"\r\n") {
                self.state = State::Body {
                    tid_len,
                    body: pos + 2,
                    from: pos + 2,
                };
                return Ok(None);
            }
            match find_crlf(rest) {
                Some(i) => {
                    let next = pos + i + 2;
                    if next > self.limits.max_head {
                        return Err(self.head_too_large(pos));
                    }
                    pos = next;
                }
                None => {
                    let undecided = rest == b"\r" || could_be_end_line(rest, tid);
                    if !undecided && self.buf.len() >= self.limits.max_head {
                        return Err(self.head_too_large(pos));
                    }
                    self.state = State::Headers { tid_len, pos };
                    return Ok(None);
                }
            }
        }
    }

    /// Searches the end-line after a body; the message length when found.
    fn body(
        &mut self,
        tid_len: usize,
        body: usize,
        from: usize,
    ) -> Result<Option<usize>, ParseError> {
        let (found, at) = match scan_end_line(&self.buf, from, self.tid(tid_len)) {
            EndLineScan::Found(i) => (Some(i), from),
            EndLineScan::Pending(i) | EndLineScan::NotYet(i) => (None, i),
        };
        let n = 9 + tid_len;
        let too_large = || {
            ParseError::new(
                body,
                ErrorKind::ChunkTooLarge {
                    max: self.limits.max_chunk,
                },
            )
        };
        match found {
            Some(i) if i - body > self.limits.max_chunk => Err(too_large()),
            Some(i) => Ok(Some(i + n + 3)),
            None => {
                if self.buf.len() - body > self.limits.max_chunk.saturating_add(2 + MAX_END_LINE) {
                    return Err(too_large());
                }
                self.state = State::Body {
                    tid_len,
                    body,
                    from: at,
                };
                Ok(None)
            }
        }
    }
}

/// Whether `rest` (with no CRLF yet) may still become
/// `-------<tid><flag>CRLF`.
fn could_be_end_line(rest: &[u8], tid: &str) -> bool {
    let want = [b"-------".as_slice(), tid.as_bytes()];
    let mut i = 0;
    for part in want {
        for &b in part {
            match rest.get(i) {
                None => return true,
                Some(&c) if c == b => i += 1,
                Some(_) => return false,
            }
        }
    }
    match rest.get(i) {
        None => true,
        Some(&f) if Continuation::from_byte(f).is_some() => match rest.get(i + 1) {
            None => true,
            Some(b'\r') => rest.len() == i + 2,
            Some(_) => false,
        },
        Some(_) => false,
    }
}

/// The index of the first CRLF.
fn find_crlf(hay: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let i = from + memchr::memchr(b'\r', hay.get(from..)?)?;
        if hay.get(i + 1) == Some(&b'\n') {
            return Some(i);
        }
        from = i + 1;
    }
}
