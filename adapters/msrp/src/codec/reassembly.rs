//! Putting incoming chunks back together (RFC 4975 §7.3.1): by
//! Message-ID, in any order, with `*` for unknown ends and totals,
//! overlaps and duplicates, and aborted messages (`#`).

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::error::{ErrorKind, ParseError};
use super::headers::ByteRange;
use super::message::{Continuation, Message};

/// One received SEND chunk, as the reassembler needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// The Message-ID shared by every chunk of a message.
    pub message_id: &'a str,
    /// The Byte-Range; `None` reads as `1-*/*`.
    pub byte_range: Option<ByteRange>,
    /// The end-line flag: `$` ends the message, `#` aborts it.
    pub continuation: Continuation,
    /// The Content-Type (of the whole message, §11.4).
    pub content_type: Option<&'a str>,
    /// The body (empty when there is none).
    pub body: &'a [u8],
}

impl<'a> Chunk<'a> {
    /// The chunk a parsed SEND request carries: it needs a Message-ID and
    /// a readable Byte-Range.
    pub fn from_message(m: &Message<'a>) -> Result<Self, ParseError> {
        let message_id = m
            .message_id()?
            .ok_or(ParseError::new(0, ErrorKind::MissingHeader("Message-ID")))?;
        Ok(Chunk {
            message_id,
            byte_range: m.byte_range()?,
            continuation: m.continuation(),
            content_type: m.header(super::HeaderName::ContentType).map(|h| h.value()),
            body: m.body().unwrap_or_default(),
        })
    }
}

/// Bounds on what reassembly may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Largest message, in bytes (by its total, or the end of any chunk).
    pub max_message: usize,
    /// Most messages being reassembled at once.
    pub max_partial: usize,
}

impl Default for ReassemblyLimits {
    /// 16 MiB per message, 16 messages at once.
    fn default() -> Self {
        ReassemblyLimits {
            max_message: 16 << 20,
            max_partial: 16,
        }
    }
}

/// What reassembly yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReassemblyEvent {
    /// Every byte of a message has arrived.
    Complete {
        /// Its Message-ID.
        message_id: String,
        /// The Content-Type of its first chunk.
        content_type: Option<String>,
        /// The whole message.
        body: Bytes,
    },
    /// The sender aborted the message with `#` (RFC 4975 §7.1); what was
    /// received of it is dropped.
    Aborted {
        /// Its Message-ID.
        message_id: String,
        /// How many distinct bytes of it had arrived before the chunk
        /// that aborts it (whose body is not counted).
        received: u64,
    },
}

/// A chunk that reassembly refuses; the message it belongs to is
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReassemblyError {
    /// Happens when the total, or the end of a chunk, is beyond
    /// [`ReassemblyLimits::max_message`] (the receiver answers 413, RFC
    /// 4975 §10.5).
    #[error("message {message_id} is larger than {max} bytes")]
    TooLarge {
        /// Its Message-ID.
        message_id: String,
        /// The limit.
        max: usize,
    },
    /// Happens when a chunk would start one message more than
    /// [`ReassemblyLimits::max_partial`] (answered 413).
    #[error("more than {max} messages being reassembled")]
    TooManyPartial {
        /// The limit.
        max: usize,
    },
    /// Happens when chunks disagree on the size of a message: two
    /// different totals, two `$` chunks that end apart, a body past the
    /// total or the `$` end, or longer than its range-end (answered 400).
    #[error("chunk of message {message_id} inconsistent: {reason}")]
    Inconsistent {
        /// Its Message-ID.
        message_id: String,
        /// What disagrees.
        reason: &'static str,
    },
}

impl ReassemblyError {
    /// The status code to answer the SEND with (RFC 4975 §10).
    pub fn response_code(&self) -> u16 {
        match self {
            ReassemblyError::Inconsistent { .. } => 400,
            _ => 413,
        }
    }
}

#[derive(Debug, Default)]
struct Partial {
    buf: Vec<u8>,
    /// Received ranges, 0-based, half-open, sorted and disjoint.
    have: Vec<(u64, u64)>,
    /// The total of the Byte-Range headers.
    declared: Option<u64>,
    /// The end of the chunk ended by `$`.
    fin: Option<u64>,
    content_type: Option<String>,
}

impl Partial {
    fn received(&self) -> u64 {
        self.have.iter().map(|(a, b)| b - a).sum()
    }

    fn insert(&mut self, a: u64, b: u64) {
        if a == b {
            return;
        }
        let mut merged = (a, b);
        self.have.retain(|&(x, y)| {
            if y < merged.0 || x > merged.1 {
                true
            } else {
                merged = (merged.0.min(x), merged.1.max(y));
                false
            }
        });
        let at = self.have.partition_point(|&(x, _)| x < merged.0);
        self.have.insert(at, merged);
    }

    fn total(&self) -> Option<u64> {
        self.fin.or(self.declared)
    }

    fn is_complete(&self) -> bool {
        match self.total() {
            Some(0) => true,
            Some(t) => self.have.as_slice() == [(0, t)],
            None => false,
        }
    }
}

/// Reassembles the chunks of incoming messages (RFC 4975 §7.3.1).
///
/// Give it each SEND chunk with [`Reassembler::handle_chunk`], then call
/// [`Reassembler::poll_event`] until `None`. Chunks may come in any order,
/// overlap or repeat; where they overlap the last received wins (§7.3.1).
/// The chunk ended by `$` fixes the size of a message when no Byte-Range
/// did. A refused chunk ([`ReassemblyError`], with the status to answer)
/// drops its message. Memory is bounded by
/// [`ReassemblyLimits`]: `max_message` bytes for each of `max_partial`
/// messages.
///
/// ```
/// use cpimgate_msrp::codec::{ByteRange, Chunk, Continuation, Reassembler,
///     ReassemblyEvent, ReassemblyLimits};
/// let mut r = Reassembler::new(ReassemblyLimits::default());
/// // RFC 4975 §5.1, Figure 3, second chunk first
/// let chunk = |range: &str, c, body: &'static [u8]| Chunk {
///     message_id: "4564dpWd", byte_range: Some(range.parse().unwrap()),
///     continuation: c, content_type: Some("text/plain"), body,
/// };
/// r.handle_chunk(&chunk("5-8/8", Continuation::Complete, b"EFGH")).unwrap();
/// assert_eq!(r.poll_event(), None);
/// r.handle_chunk(&chunk("1-*/8", Continuation::More, b"abcd")).unwrap();
/// let Some(ReassemblyEvent::Complete { body, .. }) = r.poll_event() else { panic!() };
/// assert_eq!(&body[..], b"abcdEFGH");
/// ```
#[derive(Debug)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    partial: HashMap<String, Partial>,
    events: VecDeque<ReassemblyEvent>,
}

impl Reassembler {
    /// A reassembler within `limits`.
    pub fn new(limits: ReassemblyLimits) -> Self {
        Reassembler {
            limits,
            partial: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    /// How many messages are partly received.
    pub fn partial_count(&self) -> usize {
        self.partial.len()
    }

    /// Drops what was received of a message (its session ended, or the
    /// driver gave up on it).
    pub fn forget(&mut self, message_id: &str) {
        self.partial.remove(message_id);
    }

    /// The next event, `None` when there is none.
    pub fn poll_event(&mut self) -> Option<ReassemblyEvent> {
        self.events.pop_front()
    }

    /// Takes one chunk.
    pub fn handle_chunk(&mut self, chunk: &Chunk<'_>) -> Result<(), ReassemblyError> {
        let id = chunk.message_id;
        let result = self.place(chunk);
        if result.is_err() {
            self.partial.remove(id);
        }
        result
    }

    fn place(&mut self, chunk: &Chunk<'_>) -> Result<(), ReassemblyError> {
        let id = chunk.message_id;
        let inconsistent = |reason| ReassemblyError::Inconsistent {
            message_id: id.to_owned(),
            reason,
        };
        if chunk.continuation == Continuation::Aborted {
            let received = self.partial.remove(id).map_or(0, |p| p.received());
            self.events.push_back(ReassemblyEvent::Aborted {
                message_id: id.to_owned(),
                received,
            });
            return Ok(());
        }
        let range = chunk.byte_range.unwrap_or(ByteRange::UNKNOWN);
        let start = range.start.saturating_sub(1);
        let end = start.saturating_add(chunk.body.len() as u64);
        let declared = range.total;
        // §7.3.1: "the chunk that has a termination character of "$"
        // defines the total length of the message", even against a total
        // counted otherwise (RFC 4975 §4 and §11.1 count 2 bytes more).
        let fin = (chunk.continuation == Continuation::Complete).then_some(end);
        let max = self.limits.max_message as u64;
        if end > max || declared.is_some_and(|t| t > max) {
            return Err(ReassemblyError::TooLarge {
                message_id: id.to_owned(),
                max: self.limits.max_message,
            });
        }
        // §7.3.1: no Byte-Range or range-start 1, and `$`: the whole
        // message in one request, whatever its total says (RFC 4975
        // §11.2 and §11.6 count fewer bytes than they print).
        if start == 0 && fin.is_some() && !self.partial.contains_key(id) {
            self.events.push_back(ReassemblyEvent::Complete {
                message_id: id.to_owned(),
                content_type: chunk.content_type.map(str::to_owned),
                body: Bytes::copy_from_slice(chunk.body),
            });
            return Ok(());
        }
        if declared.is_some_and(|t| end > t) {
            return Err(inconsistent("the body goes past the total"));
        }
        // §7.3.1: the body may be shorter than range-end says (an
        // interrupted chunk), never longer.
        if range.end.is_some_and(|e| e < end) {
            return Err(inconsistent("the body is longer than its Byte-Range"));
        }
        if !self.partial.contains_key(id) && self.partial.len() >= self.limits.max_partial {
            return Err(ReassemblyError::TooManyPartial {
                max: self.limits.max_partial,
            });
        }
        let p = self.partial.entry(id.to_owned()).or_default();
        if let (Some(a), Some(b)) = (p.declared, declared) {
            if a != b {
                return Err(inconsistent("the total differs from an earlier chunk"));
            }
        }
        if let (Some(a), Some(b)) = (p.fin, fin) {
            if a != b {
                return Err(inconsistent("two chunks ended by $ end apart"));
            }
        }
        p.declared = p.declared.or(declared);
        p.fin = p.fin.or(fin);
        if let Some(t) = p.total() {
            if end > t || p.have.last().is_some_and(|&(_, e)| e > t) {
                return Err(inconsistent("a chunk goes past the end of the message"));
            }
        }
        // Both fit in usize: they are at most max_message.
        let (s, e) = (start as usize, end as usize);
        if p.buf.len() < e {
            p.buf.resize(e, 0);
        }
        if let Some(dst) = p.buf.get_mut(s..e) {
            dst.copy_from_slice(chunk.body);
        }
        p.insert(start, end);
        if start == 0 && p.content_type.is_none() {
            p.content_type = chunk.content_type.map(str::to_owned);
        }
        if p.is_complete() {
            if let Some(mut p) = self.partial.remove(id) {
                p.buf.truncate(p.total().unwrap_or(0) as usize);
                self.events.push_back(ReassemblyEvent::Complete {
                    message_id: id.to_owned(),
                    content_type: p.content_type,
                    body: p.buf.into(),
                });
            }
        }
        Ok(())
    }
}
