//! The stanza namespace of a client stream when xmpp-parsers is built for
//! components.
//!
//! xmpp-parsers 0.23 puts `<message/>`, `<presence/>` and `<iq/>` in one
//! compile-time namespace, `ns::DEFAULT_NS`: `jabber:client`, or
//! `jabber:component:accept` when its `component` feature is on. Cargo
//! unifies features, and component mode needs that feature, so in this
//! build a client stream's stanzas (`jabber:client`, RFC 6120 §4.8.3)
//! would not parse, and ours would be sent in the component namespace.
//!
//! [`NsRewrite`] sits between TLS and the XML stream and swaps the stream
//! header's default namespace declaration: `'jabber:client'` coming in
//! becomes `DEFAULT_NS`, `DEFAULT_NS` going out becomes `'jabber:client'`.
//! Unprefixed stanzas inherit the declaration, so nothing else changes.
//! Only the quoted attribute-value form is matched: in character data
//! Prosody and rxml escape quotes, so text is not touched. When the
//! namespaces agree (no `component` feature), the stream is not wrapped.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const CLIENT: &str = xmpp_parsers::ns::JABBER_CLIENT;
const PARSED: &str = xmpp_parsers::ns::DEFAULT_NS;

/// Whether the stream needs [`NsRewrite`].
pub(crate) fn needed() -> bool {
    CLIENT != PARSED
}

/// Replaces quoted occurrences of one namespace by another, across chunk
/// boundaries.
#[derive(Debug)]
struct Rewriter {
    patterns: [(Vec<u8>, Vec<u8>); 2],
    tail: Vec<u8>,
}

impl Rewriter {
    fn new(from: &str, to: &str) -> Rewriter {
        let q = |s: &str, c: char| format!("{c}{s}{c}").into_bytes();
        Rewriter {
            patterns: [(q(from, '\''), q(to, '\'')), (q(from, '"'), q(to, '"'))],
            tail: Vec::new(),
        }
    }

    /// Feed `input`; returns what can be passed on. A suffix that may be
    /// the start of a pattern is held until more comes (or [`finish`]).
    fn push(&mut self, input: &[u8]) -> Vec<u8> {
        self.tail.extend_from_slice(input);
        let data = std::mem::take(&mut self.tail);
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        'outer: while i < data.len() {
            for (from, to) in &self.patterns {
                if data[i..].starts_with(from) {
                    out.extend_from_slice(to);
                    i += from.len();
                    continue 'outer;
                }
            }
            // A possible start of a pattern cut off by the chunk's end.
            let rest = &data[i..];
            if self
                .patterns
                .iter()
                .any(|(from, _)| rest.len() < from.len() && from.starts_with(rest))
            {
                self.tail = rest.to_vec();
                return out;
            }
            out.push(data[i]);
            i += 1;
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.tail)
    }
}

/// An I/O stream whose stanza namespace is rewritten both ways.
#[derive(Debug)]
pub(crate) struct NsRewrite<S> {
    inner: S,
    incoming: Rewriter,
    outgoing: Rewriter,
    /// Rewritten input not yet read.
    rbuf: Vec<u8>,
    rpos: usize,
    /// Rewritten output not yet written.
    wbuf: Vec<u8>,
}

impl<S> NsRewrite<S> {
    pub(crate) fn new(inner: S) -> NsRewrite<S> {
        NsRewrite {
            inner,
            incoming: Rewriter::new(CLIENT, PARSED),
            outgoing: Rewriter::new(PARSED, CLIENT),
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
        }
    }
}

impl<S: AsyncWrite + Unpin> NsRewrite<S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.wbuf.is_empty() {
            let n = match Pin::new(&mut self.inner).poll_write(cx, &self.wbuf) {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wbuf.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for NsRewrite<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.rpos < this.rbuf.len() {
                let n = (this.rbuf.len() - this.rpos).min(buf.remaining());
                buf.put_slice(&this.rbuf[this.rpos..this.rpos + n]);
                this.rpos += n;
                return Poll::Ready(Ok(()));
            }
            let mut tmp = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut tmp);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let got = rb.filled();
                    this.rbuf = if got.is_empty() {
                        let rest = this.incoming.finish();
                        if rest.is_empty() {
                            return Poll::Ready(Ok(()));
                        }
                        rest
                    } else {
                        this.incoming.push(got)
                    };
                    this.rpos = 0;
                }
                other => return other,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for NsRewrite<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Bounded: take more only once what we hold is written.
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        let out = this.outgoing.push(buf);
        this.wbuf.extend_from_slice(&out);
        // Best effort now; the rest goes on the next write or flush.
        let _ = this.poll_drain(cx);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let rest = this.outgoing.finish();
        this.wbuf.extend_from_slice(&rest);
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.as_mut().poll_flush(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_across_chunks_and_leaves_the_rest() {
        let mut r = Rewriter::new("jabber:client", "jabber:component:accept");
        let mut out = r.push(b"<stream:stream xmlns='jabber:cl");
        out.extend(r.push(b"ient' to=\"x\"><body>jabber:client</body>"));
        out.extend(r.finish());
        assert_eq!(
            String::from_utf8(out).unwrap_or_default(),
            "<stream:stream xmlns='jabber:component:accept' to=\"x\"><body>jabber:client</body>"
        );
        let mut r = Rewriter::new("a", "b");
        let mut out = r.push(b"x=\"a\" '");
        out.extend(r.finish());
        assert_eq!(out, b"x=\"b\" '");
    }
}
