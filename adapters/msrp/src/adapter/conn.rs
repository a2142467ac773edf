//! MSRP connections (RFC 4975 §6): the listener participants connect to,
//! and one task per connection that reads and writes. It cuts the
//! incoming stream into messages with the codec's [`StreamFramer`] and
//! hands each to the driver, and writes what the driver queues, in
//! order. It parses no more than framing: the driver owns the sessions.
//!
//! A room holds many idle connections, so what one costs while nothing
//! moves is kept small (a room of 1,000 is the benchmark,
//! `tests/benches/msrp_room.rs`):
//!
//! * one task, not a reader and a writer: it polls the socket for reads
//!   and writes in one future;
//! * reads go through a buffer on the stack of the poll, so an idle
//!   connection holds none; the framer keeps only a message not yet
//!   whole, and frees its buffer once everything is yielded;
//! * the write queue is a `VecDeque` behind a mutex ([`Writer`]), empty
//!   (no allocation) when idle, rather than a channel whose first block
//!   of 32 slots is allocated up front; the task takes the whole queue
//!   at once and writes it with vectored writes.
//!
//! What a peer may take before it is cut off ([`Bounds`], from the
//! adapter's configuration), each cut-off logged with the peer and why:
//!
//! * the listener takes `max_connections` in all and
//!   `max_connections_per_ip` from one address; more are reset at once;
//! * a new connection sends its first message within `connect_within_ms`
//!   (RFC 4975 §5.4), and every message arrives whole within
//!   `message_timeout_ms` of its first byte (slowloris);
//! * a connection with something to write makes progress within
//!   `write_timeout_ms`, and at most `write_queue` messages wait for it:
//!   a participant that does not read is reset, its session ends, and
//!   the room goes on for the others (RFC 7701 §6.4, congestion).

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use std::time::Duration;

use bytes::Bytes;
use cpimgate_sip::transport::{ACCEPT_BACKOFF, Abortable, Admission, Ticket, refuse};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

use super::Internal;
use crate::codec::{Frame, Limits, StreamFramer};

/// What one connection may take before it is cut off; see the
/// [module docs](self).
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// How soon the peer must send its first message (RFC 4975 §5.4: the
    /// connecting side sends first); `None` on a connection we opened.
    pub first_within: Option<Duration>,
    /// The longest one message may take from its first byte to its last.
    pub message: Duration,
    /// The longest a connection with something to write may make no
    /// progress.
    pub write: Duration,
    /// How many messages may wait for it; a peer that reads slower is
    /// cut off.
    pub queue: usize,
}

/// The most a read takes at once, in octets. The buffer is on the stack
/// of the poll only, never kept (see the module docs).
const READ_SIZE: usize = 8192;

/// How many slots an idle connection's queues keep: none (what a
/// message costs to allocate is less than what 1,000 idle queues of 4
/// slots hold).
const IDLE_SLOTS: usize = 0;

/// The most queued messages one vectored write takes.
const WRITE_BATCH: usize = 64;

/// Connection ids, unique across the TCP and the TLS listener and the
/// connections to rooms elsewhere.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// A new connection id.
pub(super) fn next_id() -> u64 {
    NEXT_CONN.fetch_add(1, Ordering::Relaxed)
}

/// The driver's end of a connection: where it queues what to write.
/// Dropping it closes the connection once what is queued is written;
/// [`Writer::cut_off`] closes it at once.
#[derive(Debug)]
pub(crate) struct Writer {
    shared: Arc<Shared>,
    /// The far end, for log lines.
    pub(super) peer: SocketAddr,
}

/// Why [`Writer::send`] did not queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WriteError {
    /// [`Bounds::queue`] messages wait already: the peer does not read.
    Full,
    /// The connection has ended.
    Closed,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// [`Bounds::queue`].
    max: usize,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Bytes>,
    /// The connection's task, when it waits for something to write.
    waker: Option<Waker>,
    /// The task has ended: nothing more is written.
    ended: bool,
    /// The driver is done with the connection.
    close: Option<Close>,
}

/// How a connection the driver is done with ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// Once what is queued is written (the driver's last words, e.g. the
    /// notice of a shutdown).
    Drain,
    /// At once, whatever is queued (a peer that does not read).
    Now,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding it leaves a queue that is still whole.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Writer {
    /// Queues `bytes` to be written after what is queued already.
    pub(super) fn send(&self, bytes: Bytes) -> Result<(), WriteError> {
        let waker = {
            let mut q = self.shared.lock();
            if q.ended {
                return Err(WriteError::Closed);
            }
            if q.items.len() >= self.shared.max {
                return Err(WriteError::Full);
            }
            q.items.push_back(bytes);
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl Writer {
    /// Closes the connection without writing what waits.
    pub(super) fn cut_off(self) {
        self.close(Close::Now);
    }

    fn close(&self, how: Close) {
        let waker = {
            let mut q = self.shared.lock();
            q.close.get_or_insert(how);
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close(Close::Drain);
    }
}

/// Accepts connections until the driver is gone (`internal` closed);
/// over TLS when `tls` is given (the handshake runs in a task of its
/// own, so that a slow one holds nobody up; one that fails is closed
/// with a log line).
pub(super) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    internal: mpsc::Sender<Internal>,
    limits: Limits,
    bounds: Bounds,
    admission: Arc<Admission>,
) {
    loop {
        // The listener goes with the driver (a gateway restarted in the
        // same process binds the port again).
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = internal.closed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: the error lasts
                // until connections close; pause rather than spin.
                if let Some(more) = admission.should_log() {
                    tracing::warn!(
                        error = %e, more, backoff = ?ACCEPT_BACKOFF,
                        "MSRP accept failed; accepting again after a pause"
                    );
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let ticket = match admission.admit(peer.ip()) {
            Ok(t) => t,
            Err(why) => {
                refuse(stream);
                if let Some(more) = admission.should_log() {
                    tracing::warn!(%peer, more, "refusing MSRP connection: {why}");
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = next_id();
        let Some(acceptor) = tls.clone() else {
            if !start(
                conn,
                stream,
                peer,
                internal.clone(),
                limits,
                bounds,
                Some(ticket),
            )
            .await
            {
                return;
            }
            continue;
        };
        let internal = internal.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            match handshake {
                Ok(Ok(tls)) => {
                    start(conn, tls, peer, internal, limits, bounds, Some(ticket)).await;
                }
                Ok(Err(e)) => tracing::info!("MSRP TLS handshake from {peer} failed: {e}"),
                Err(_) => tracing::warn!(
                    "cutting MSRP connection from {peer}: TLS handshake not done in {HANDSHAKE_TIMEOUT:?}"
                ),
            }
        });
    }
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts the task of one connection; false when the driver is gone.
/// `ticket`: its place among the listener's connections, given back when
/// it ends.
pub(super) async fn start<S>(
    conn: u64,
    stream: S,
    peer: SocketAddr,
    internal: mpsc::Sender<Internal>,
    limits: Limits,
    bounds: Bounds,
    ticket: Option<Ticket>,
) -> bool
where
    S: AsyncRead + AsyncWrite + Abortable + Unpin + Send + 'static,
{
    let shared = Arc::new(Shared {
        queue: Mutex::default(),
        max: bounds.queue.max(1),
    });
    let writer = Writer {
        shared: Arc::clone(&shared),
        peer,
    };
    if internal
        .send(Internal::Accepted { conn, writer, peer })
        .await
        .is_err()
    {
        return false;
    }
    let mut task = Conn {
        conn,
        stream,
        shared,
        internal,
        io: Io {
            framer: StreamFramer::new(limits),
            out: VecDeque::new(),
            offset: 0,
            // RFC 4975 §5.4: the connecting side sends first; a
            // connection that says nothing in time binds to no session
            // and is closed. Boxed: only until the first message.
            first_by: bounds
                .first_within
                .map(|d| (d, Box::pin(tokio::time::sleep(d)))),
            partial_by: None,
            stall_by: None,
            message_limit: bounds.message,
            write_limit: bounds.write,
        },
        handing: None,
        closing: false,
    };
    tokio::spawn(async move {
        let ended = poll_fn(|cx| task.poll(cx)).await;
        task.shared.lock().ended = true;
        let why = ended.map(|e| match e {
            Step::Cut(why) => {
                // A reset: the peer learns at once, and the kernel keeps
                // nothing for one that does not read.
                task.stream.abort_on_close();
                tracing::warn!(%peer, conn, "cutting MSRP connection: {why}");
                why
            }
            Step::End(why) => why,
            Step::Frames | Step::Dropped => "closed".to_owned(),
        });
        drop(ticket);
        if let Some(why) = why {
            // Boxed, like the other waits on the driver (see `Conn`).
            let _ = Box::pin(task.internal.send(Internal::Closed { conn, why })).await;
        }
    });
    true
}

/// A frame being handed to a busy driver.
type Handing = Pin<Box<dyn Future<Output = bool> + Send>>;

/// One connection's task, written as a state machine rather than an
/// `async fn`: its size is what every idle connection costs, and an
/// `async fn` keeps room for the largest future it awaits (a channel
/// send is 376 bytes) in every state. About 300 bytes over TCP, where a
/// reader and a writer task took 1,150.
struct Conn<S> {
    conn: u64,
    stream: S,
    shared: Arc<Shared>,
    internal: mpsc::Sender<Internal>,
    io: Io,
    /// A frame waiting for room in the driver's channel: nothing more is
    /// read meanwhile (the driver is behind), writes go on.
    handing: Option<Handing>,
    /// The driver dropped its end and all is written: shutting down.
    closing: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Ready when the connection ends, with the reason to tell the
    /// driver ([`Step::End`] or [`Step::Cut`]; `None` when the driver is
    /// gone: nobody to tell).
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Step>> {
        loop {
            if self.closing {
                return Pin::new(&mut self.stream)
                    .poll_shutdown(cx)
                    .map(|_| Some(Step::End("closed by the gateway".to_owned())));
            }
            if let Some(handing) = self.handing.as_mut() {
                match handing.as_mut().poll(cx) {
                    Poll::Ready(true) => {
                        self.handing = None;
                        // Our own backpressure is not the peer's
                        // slowness: the message's clock starts again.
                        let limit = self.io.message_limit;
                        if let Some(at) = self.io.partial_by.as_mut() {
                            at.as_mut().reset(Instant::now() + limit);
                        }
                    }
                    Poll::Ready(false) => return Poll::Ready(None),
                    Poll::Pending => {
                        return match self.io.poll_write(
                            cx,
                            Pin::new(&mut self.stream),
                            &self.shared,
                        ) {
                            Poll::Ready(Step::Dropped) => {
                                self.closing = true;
                                continue;
                            }
                            Poll::Ready(end @ (Step::End(_) | Step::Cut(_))) => {
                                Poll::Ready(Some(end))
                            }
                            Poll::Ready(Step::Frames) | Poll::Pending => Poll::Pending,
                        };
                    }
                }
            }
            while let Some(frame) = self.io.framer.poll_frame() {
                self.io.first_by = None;
                let frame = match frame {
                    Ok(Frame::Message(frame)) => Internal::Frame {
                        conn: self.conn,
                        frame,
                    },
                    Ok(Frame::Oversized(head)) => Internal::Oversized {
                        conn: self.conn,
                        head,
                    },
                    // RFC 4975 §6: a stream that lost its framing cannot
                    // be read on; the connection ends.
                    Err(e) => return Poll::Ready(Some(Step::End(format!("framing lost: {e}")))),
                };
                match self.internal.try_send(frame) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(f)) => {
                        let tx = self.internal.clone();
                        self.handing = Some(Box::pin(async move { tx.send(f).await.is_ok() }));
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return Poll::Ready(None),
                }
            }
            if self.handing.is_some() {
                continue;
            }
            // The clock of a message runs from its first byte to its last.
            if self.io.framer.buffered().is_empty() {
                self.io.partial_by = None;
            } else if self.io.partial_by.is_none() {
                self.io.partial_by = Some(Box::pin(tokio::time::sleep(self.io.message_limit)));
            }
            match self.io.poll(cx, Pin::new(&mut self.stream), &self.shared) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Step::Frames) => {}
                Poll::Ready(end @ (Step::End(_) | Step::Cut(_))) => return Poll::Ready(Some(end)),
                Poll::Ready(Step::Dropped) => self.closing = true,
            }
        }
    }
}

/// What one poll of a connection's socket found.
enum Step {
    /// Bytes for the framer.
    Frames,
    /// The connection ends, for this reason.
    End(String),
    /// The gateway cuts the peer off, for this reason (a limit or a
    /// timeout): the connection is reset.
    Cut(String),
    /// The driver dropped its end and everything queued is written.
    Dropped,
}

/// A connection's state between polls.
struct Io {
    framer: StreamFramer,
    /// What is being written: taken from the queue at once.
    out: VecDeque<Bytes>,
    /// How much of the front of `out` is written.
    offset: usize,
    /// When the first message is due, and how long it was given.
    first_by: Option<(Duration, Pin<Box<Sleep>>)>,
    /// When the message being received is due ([`Bounds::message`]);
    /// boxed, and only while one is partly here.
    partial_by: Option<Pin<Box<Sleep>>>,
    /// When a blocked write cuts the peer off ([`Bounds::write`]); only
    /// while something waits to be written.
    stall_by: Option<Pin<Box<Sleep>>>,
    message_limit: Duration,
    write_limit: Duration,
}

impl Io {
    /// Writes what it can, then reads what there is; ready with frames,
    /// the end, or when the driver's end is dropped and all is written.
    fn poll<S>(
        &mut self,
        cx: &mut Context<'_>,
        mut stream: Pin<&mut S>,
        shared: &Shared,
    ) -> Poll<Step>
    where
        S: AsyncRead + AsyncWrite,
    {
        match self.poll_write(cx, stream.as_mut(), shared) {
            Poll::Ready(step) => return Poll::Ready(step),
            Poll::Pending => {}
        }
        if let Some((within, at)) = self.first_by.as_mut() {
            if Future::poll(at.as_mut(), cx).is_ready() {
                return Poll::Ready(Step::Cut(format!(
                    "no whole message within {within:?} of connecting ({} octets of one)",
                    self.framer.buffered().len()
                )));
            }
        }
        if let Some(at) = self.partial_by.as_mut() {
            if Future::poll(at.as_mut(), cx).is_ready() {
                return Poll::Ready(Step::Cut(format!(
                    "a message not complete within {:?} of its first byte ({} octets of it)",
                    self.message_limit,
                    self.framer.buffered().len()
                )));
            }
        }
        // On the stack of this poll only: an idle connection keeps no
        // read buffer.
        let mut buf = [0u8; READ_SIZE];
        let mut rb = ReadBuf::new(&mut buf);
        match stream.as_mut().poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Step::End(e.to_string())),
            Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                Poll::Ready(Step::End("closed by the peer".to_owned()))
            }
            Poll::Ready(Ok(())) => {
                self.framer.handle_data(rb.filled());
                Poll::Ready(Step::Frames)
            }
        }
    }

    /// Writes until the queue is empty or the socket full; ready when
    /// writing failed, or when the driver dropped its end and all is
    /// written.
    fn poll_write<S>(
        &mut self,
        cx: &mut Context<'_>,
        mut stream: Pin<&mut S>,
        shared: &Shared,
    ) -> Poll<Step>
    where
        S: AsyncWrite,
    {
        loop {
            {
                let mut q = shared.lock();
                if q.close == Some(Close::Now) {
                    return Poll::Ready(Step::Cut(format!(
                        "the peer does not read: more than {} messages wait for it",
                        shared.max
                    )));
                }
                // Registered at every poll, so that a cut-off wakes a
                // task that waits on a full socket.
                if !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    q.waker = Some(cx.waker().clone());
                }
                if self.out.is_empty() {
                    if q.items.is_empty() {
                        // Nothing to write: no peer to wait for.
                        self.stall_by = None;
                        if q.close.is_some() {
                            return Poll::Ready(Step::Dropped);
                        }
                        // An idle connection keeps little: what a few
                        // messages at a time need.
                        if q.items.capacity() > IDLE_SLOTS {
                            q.items = VecDeque::new();
                        }
                        drop(q);
                        if self.out.capacity() > IDLE_SLOTS {
                            self.out = VecDeque::new();
                        }
                        return Poll::Pending;
                    }
                    std::mem::swap(&mut q.items, &mut self.out);
                    self.offset = 0;
                }
            }
            let written = if stream.is_write_vectored() && self.out.len() > 1 {
                let mut slices = [IoSlice::new(&[]); WRITE_BATCH];
                let mut n = 0;
                for (i, b) in self.out.iter().take(WRITE_BATCH).enumerate() {
                    let from = if i == 0 { self.offset } else { 0 };
                    if let (Some(slot), Some(rest)) = (slices.get_mut(i), b.get(from..)) {
                        *slot = IoSlice::new(rest);
                        n = i + 1;
                    }
                }
                stream
                    .as_mut()
                    .poll_write_vectored(cx, slices.get(..n).unwrap_or_default())
            } else {
                let front = self
                    .out
                    .front()
                    .and_then(|b| b.get(self.offset..))
                    .unwrap_or_default();
                stream.as_mut().poll_write(cx, front)
            };
            let mut n = match written {
                Poll::Pending => {
                    let limit = self.write_limit;
                    let at = self
                        .stall_by
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                    if Future::poll(at.as_mut(), cx).is_ready() {
                        let waiting: usize = self.out.iter().map(Bytes::len).sum::<usize>()
                            - self.offset
                            + shared.lock().items.iter().map(Bytes::len).sum::<usize>();
                        return Poll::Ready(Step::Cut(format!(
                            "the peer does not read: nothing written for {limit:?} \
                             ({waiting} octets wait)"
                        )));
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Step::End(e.to_string())),
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Step::End("the connection takes no more".to_owned()));
                }
                Poll::Ready(Ok(n)) => {
                    // Progress: the peer reads, however slowly.
                    if let Some(at) = self.stall_by.as_mut() {
                        at.as_mut().reset(Instant::now() + self.write_limit);
                    }
                    n
                }
            };
            // Drops what is written whole; the rest of a message stays
            // at the front with its offset.
            while n > 0 {
                let Some(front) = self.out.front() else {
                    break;
                };
                let left = front.len() - self.offset;
                if n >= left {
                    n -= left;
                    self.offset = 0;
                    self.out.pop_front();
                } else {
                    self.offset += n;
                    n = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A connection's task on the accepted end of a loopback pair; the
    /// driver's channel, the writer, and the peer's end.
    async fn connection(bounds: Bounds) -> (mpsc::Receiver<Internal>, Writer, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, from) = listener.accept().await.unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        assert!(start(1, ours, from, tx, Limits::default(), bounds, None).await);
        let Some(Internal::Accepted { writer, .. }) = rx.recv().await else {
            panic!("the connection is announced first");
        };
        (rx, writer, peer)
    }

    async fn closed(rx: &mut mpsc::Receiver<Internal>) -> String {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(Internal::Closed { why, .. })) => why,
            other => panic!("the connection ends: {other:?}"),
        }
    }

    const BOUNDS: Bounds = Bounds {
        first_within: None,
        message: Duration::from_secs(30),
        write: Duration::from_secs(30),
        queue: 100_000,
    };

    #[tokio::test]
    async fn a_peer_that_does_not_read_is_cut_off() {
        let (mut rx, writer, mut peer) = connection(Bounds {
            write: Duration::from_millis(300),
            ..BOUNDS
        })
        .await;
        // More than the sockets' buffers hold.
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        for _ in 0..400 {
            writer.send(chunk.clone()).unwrap();
        }
        let why = closed(&mut rx).await;
        assert!(why.contains("does not read: nothing written for"), "{why}");
        // The peer finds its connection ended (after what was on the way).
        let mut buf = vec![0; 1 << 20];
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            while peer.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        })
        .await;
        assert!(ended.is_ok(), "the peer's end is closed");
        assert_eq!(writer.send(chunk), Err(WriteError::Closed));
    }

    #[tokio::test]
    async fn a_full_queue_cuts_the_peer_off() {
        let (mut rx, writer, _peer) = connection(Bounds { queue: 4, ..BOUNDS }).await;
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let mut sent = 0;
        while writer.send(chunk.clone()).is_ok() {
            sent += 1;
            assert!(sent < 10_000, "the queue fills");
            tokio::task::yield_now().await;
        }
        assert_eq!(writer.send(chunk), Err(WriteError::Full));
        writer.cut_off();
        let why = closed(&mut rx).await;
        assert!(why.contains("more than 4 messages wait"), "{why}");
    }

    #[tokio::test]
    async fn a_slow_reader_is_not_cut_off() {
        let (mut rx, writer, mut peer) = connection(Bounds {
            write: Duration::from_millis(500),
            ..BOUNDS
        })
        .await;
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        for _ in 0..100 {
            writer.send(chunk.clone()).unwrap();
        }
        // 6.4 MB read in pieces, a pause below the write timeout
        // between them: progress, however slow, keeps it.
        let mut buf = vec![0; 256 * 1024];
        let mut got = 0;
        while got < 100 * chunk.len() {
            let n = peer.read(&mut buf).await.unwrap();
            assert!(n > 0, "cut off while reading");
            got += n;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(rx.try_recv().is_err(), "still open");
    }

    #[tokio::test]
    async fn a_message_that_never_ends_is_cut_off() {
        let (mut rx, _writer, mut peer) = connection(Bounds {
            message: Duration::from_millis(300),
            ..BOUNDS
        })
        .await;
        peer.write_all(b"MSRP a786hjs2 SEND\r\nTo-Path: msrp://")
            .await
            .unwrap();
        let why = closed(&mut rx).await;
        assert!(why.contains("a message not complete within"), "{why}");
        assert!(why.contains("36 octets"), "{why}");
    }

    #[tokio::test]
    async fn whole_messages_restart_the_clock() {
        let (mut rx, _writer, mut peer) = connection(Bounds {
            message: Duration::from_millis(300),
            ..BOUNDS
        })
        .await;
        let frame = b"MSRP a786hjs2 SEND\r\nTo-Path: msrp://a.example.com/s;tcp\r\n\
            From-Path: msrp://b.example.com/s;tcp\r\n-------a786hjs2$\r\n";
        // Each message whole within the limit, for longer than the limit.
        for _ in 0..5 {
            let (head, tail) = frame.split_at(20);
            peer.write_all(head).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            peer.write_all(tail).await.unwrap();
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some(Internal::Frame { .. })) => {}
                other => panic!("a frame: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn silence_after_connecting_is_cut_off() {
        let (mut rx, _writer, _peer) = connection(Bounds {
            first_within: Some(Duration::from_millis(300)),
            ..BOUNDS
        })
        .await;
        let why = closed(&mut rx).await;
        assert!(why.contains("no whole message within"), "{why}");
    }
}
