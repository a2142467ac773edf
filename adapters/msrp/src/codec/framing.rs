//! Cutting a TCP or TLS byte stream into MSRP messages by their end-lines
//! (RFC 4975 §7.1, §7.3.1).

use bytes::{Buf, BufMut, Bytes, BytesMut};

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
    /// The rest of an oversized chunk is thrown away up to its end-line
    /// (of the transaction in `StreamFramer::skipping`).
    Skip,
}

/// What [`StreamFramer::poll_frame`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One whole message.
    Message(Bytes),
    /// A chunk whose body passed [`Limits::max_chunk`]: its start line and
    /// headers with an empty body, closed by the end-line
    /// `-------<transact-id>+`, so that [`parse`](super::parse) reads it.
    /// The rest of its body is skipped up to its real end-line, and the
    /// stream goes on: the receiver answers it 413 (RFC 4975 §10.5), which
    /// tells the sender to interrupt the chunk and send no more of the
    /// message.
    Oversized(Bytes),
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
    /// The transaction id of the oversized chunk being skipped.
    skipping: String,
}

impl StreamFramer {
    /// A framer within `limits`.
    pub fn new(limits: Limits) -> Self {
        StreamFramer {
            buf: BytesMut::new(),
            limits,
            state: State::Start { scanned: 0 },
            failed: false,
            skipping: String::new(),
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
    /// after an error). A chunk larger than [`Limits::max_chunk`] is an
    /// error that ends the stream; [`StreamFramer::poll_frame`] skips it
    /// instead.
    pub fn poll_event(&mut self) -> Option<Result<Bytes, ParseError>> {
        match self.poll(false)? {
            Ok(Frame::Message(m)) => Some(Ok(m)),
            // Not made without `skip`.
            Ok(Frame::Oversized(_)) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Like [`StreamFramer::poll_event`], but a chunk larger than
    /// [`Limits::max_chunk`] does not end the stream: its head is yielded
    /// as [`Frame::Oversized`] as soon as the limit is passed, and the
    /// rest of its body is dropped as it comes, until its end-line.
    ///
    /// ```
    /// use cpimgate_msrp::codec::{parse, Frame, Limits, StreamFramer};
    /// let mut f = StreamFramer::new(Limits { max_chunk: 8, ..Limits::default() });
    /// f.handle_data(b"MSRP tr01 SEND\r\nTo-Path: msrp://a.example.com/s;tcp\r\n\
    /// From-Path: msrp://b.example.com/s;tcp\r\nMessage-ID: msg01\r\n\
    /// Byte-Range: 1-*/*\r\nContent-Type: text/plain\r\n\r\n");
    /// // Past the limit, with room for an end-line that may still come:
    /// f.handle_data(&[b'x'; 60]);
    /// let Some(Ok(Frame::Oversized(head))) = f.poll_frame() else { panic!() };
    /// assert_eq!(parse(&head).unwrap().transaction_id(), "tr01");
    /// f.handle_data(b"more\r\n-------tr01+\r\nMSRP tr02 SEND\r\nTo-Path: msrp://a.example.com/s;tcp\r\n\
    /// From-Path: msrp://b.example.com/s;tcp\r\nMessage-ID: msg02\r\n-------tr02$\r\n");
    /// let Some(Ok(Frame::Message(m))) = f.poll_frame() else { panic!() };
    /// assert_eq!(parse(&m).unwrap().transaction_id(), "tr02");
    /// assert!(f.buffered().is_empty());
    /// ```
    pub fn poll_frame(&mut self) -> Option<Result<Frame, ParseError>> {
        self.poll(true)
    }

    fn poll(&mut self, skip: bool) -> Option<Result<Frame, ParseError>> {
        if self.failed {
            return None;
        }
        match self.next_message(skip) {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    /// The front of the buffer, `len` octets, as a frame; an emptied
    /// buffer lets go of its allocation (the frames own it), so that an
    /// idle connection holds none.
    fn split(&mut self, len: usize) -> Bytes {
        let frame = self.buf.split_to(len).freeze();
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
        frame
    }

    fn next_message(&mut self, skip: bool) -> Result<Option<Frame>, ParseError> {
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
                } => match self.body(tid_len, body, from) {
                    Ok(Some(len)) => len,
                    Ok(None) => return Ok(None),
                    Err(e) if skip && matches!(e.kind, ErrorKind::ChunkTooLarge { .. }) => {
                        return Ok(Some(self.oversized(tid_len, body)));
                    }
                    Err(e) => return Err(e),
                },
                State::Skip => {
                    if !self.skip() {
                        return Ok(None);
                    }
                    continue;
                }
            };
            self.state = State::Start { scanned: 0 };
            return Ok(Some(Frame::Message(self.split(len))));
        }
    }

    /// The head of the chunk at the front, whose body starts at `body`,
    /// as a message with an empty body; the body is skipped from here on.
    fn oversized(&mut self, tid_len: usize, body: usize) -> Frame {
        self.skipping = self.tid(tid_len).to_owned();
        let mut head = BytesMut::with_capacity(body + 2 + MAX_END_LINE);
        head.put_slice(self.buf.get(..body).unwrap_or_default());
        head.put_slice(b"\r\n-------");
        head.put_slice(self.skipping.as_bytes());
        head.put_slice(b"+\r\n");
        self.buf.advance(body);
        self.state = State::Skip;
        Frame::Oversized(head.freeze())
    }

    /// Drops the skipped body up to its end-line; true when the end-line
    /// is passed and the next message starts.
    fn skip(&mut self) -> bool {
        match scan_end_line(&self.buf, 0, &self.skipping) {
            EndLineScan::Found(i) => {
                self.buf.advance(i + 9 + self.skipping.len() + 3);
                if self.buf.is_empty() {
                    self.buf = BytesMut::new();
                }
                self.skipping.clear();
                self.state = State::Start { scanned: 0 };
                true
            }
            EndLineScan::Pending(i) | EndLineScan::NotYet(i) => {
                self.buf.advance(i);
                self.state = State::Skip;
                false
            }
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
