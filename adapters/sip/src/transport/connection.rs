//! One TCP or TLS connection: a task that reads and frames, writes what
//! [`Transport::send`](super::Transport::send) queues, and closes on end of
//! stream, errors, idleness, slow messages and lost framing.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};

use crate::codec::{StreamEvent, StreamFramer};

use super::admission::{Abortable, Ticket};
use super::driver::Shared;
use super::{CloseReason, ConnId, Source, TransportEvent, TransportKind};

/// Size of one read from the socket.
const READ_CHUNK: usize = 16 * 1024;

/// A message for the writer of a connection, and where to say how the
/// write went.
#[derive(Debug)]
pub(crate) struct WriteReq {
    pub bytes: Bytes,
    pub done: oneshot::Sender<io::Result<()>>,
}

/// What the table keeps of a connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    pub id: ConnId,
    pub kind: TransportKind,
    pub peer: SocketAddr,
    pub writer: mpsc::Sender<WriteReq>,
}

/// Registers a connection in the table and starts its task; returns its
/// handle.
pub(crate) fn start<S>(
    shared: &Arc<Shared>,
    stream: S,
    kind: TransportKind,
    peer: SocketAddr,
    local: SocketAddr,
    permit: Ticket,
) -> ConnHandle
where
    S: AsyncRead + AsyncWrite + Abortable + Send + Unpin + 'static,
{
    let (writer, rx) = mpsc::channel(shared.config.send_queue.max(1));
    let handle = ConnHandle {
        id: shared.next_conn_id(),
        kind,
        peer,
        writer,
    };
    shared.register(handle.clone());
    let source = Source {
        transport: kind,
        peer,
        local,
        conn: Some(handle.id),
    };
    tracing::debug!(conn = %handle.id, %kind, %peer, %local, "connection open");
    let shared = Arc::clone(shared);
    let id = handle.id;
    tokio::spawn(async move {
        let (reason, pending) = run(&shared, stream, source, rx).await;
        drop(permit);
        shared.unregister(source.conn, kind, peer);
        // What arrived before the close is still delivered, before the
        // close itself (not at shutdown, when nobody waits for it).
        if reason != CloseReason::Shutdown {
            for event in pending {
                if !shared.deliver(event).await {
                    break;
                }
            }
        }
        match &reason {
            CloseReason::Shutdown | CloseReason::Eof => {
                tracing::debug!(conn = %id, %kind, %peer, %reason, "connection closed")
            }
            _ => tracing::info!(conn = %id, %kind, %peer, %reason, "connection closed"),
        }
        let event = TransportEvent::Closed {
            conn: id,
            transport: kind,
            peer,
            reason,
        };
        shared.deliver(event).await;
    });
    handle
}

/// The connection's loop; returns why it ended, and the events read that
/// the layer above has not taken yet.
async fn run<S>(
    shared: &Shared,
    stream: S,
    source: Source,
    mut rx: mpsc::Receiver<WriteReq>,
) -> (CloseReason, VecDeque<TransportEvent>)
where
    S: AsyncRead + AsyncWrite + Abortable + Send + Unpin,
{
    let cfg = &shared.config;
    let id = source.conn.unwrap_or(ConnId(0));
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut framer = StreamFramer::new(cfg.limits);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut last_activity = Instant::now();
    // When the message being received started to arrive.
    let mut partial_since: Option<Instant> = None;
    // After lost framing: when to close.
    let mut closing_at: Option<Instant> = None;

    // Events read but not yet taken by the layer above. While any wait,
    // the socket is not read (backpressure), but writes go on: a layer
    // above that sends a response before it reads the next event must
    // not deadlock against a full event channel.
    let mut pending: VecDeque<TransportEvent> = VecDeque::new();

    let reason = loop {
        let deadline = match closing_at {
            Some(at) => at,
            None => {
                let idle = last_activity + cfg.idle_timeout;
                match partial_since {
                    Some(t) => idle.min(t + cfg.message_timeout),
                    None => idle,
                }
            }
        };
        // Our own backpressure is not the peer's slowness: no timer then.
        let timed = closing_at.is_some() || pending.is_empty();
        tokio::select! {
            () = shared.cancel.cancelled() => break CloseReason::Shutdown,
            permit = shared.events.reserve(), if !pending.is_empty() => {
                let Ok(permit) = permit else { break CloseReason::Shutdown };
                if let Some(event) = pending.pop_front() {
                    permit.send(event);
                }
                if pending.is_empty() {
                    // The peer's clocks restart when we read again.
                    let now = Instant::now();
                    last_activity = now;
                    partial_since = partial_since.map(|_| now);
                }
            }
            req = rx.recv() => {
                let Some(req) = req else { break CloseReason::Shutdown };
                let res = write(&mut wr, &req.bytes, cfg.write_timeout).await;
                let failed = res.as_ref().err().map(|e| (e.kind(), e.to_string()));
                let _ = req.done.send(res);
                if let Some((kind, e)) = failed {
                    if kind == io::ErrorKind::TimedOut {
                        tracing::warn!(
                            conn = %id, transport = %source.transport, peer = %source.peer,
                            timeout = ?cfg.write_timeout,
                            "cutting connection: the peer does not read (a write not done in time)"
                        );
                    }
                    break CloseReason::WriteError(e);
                }
                last_activity = Instant::now();
            }
            read = rd.read(&mut chunk), if closing_at.is_none() && pending.is_empty() => {
                let n = match read {
                    Ok(0) => break CloseReason::Eof,
                    Ok(n) => n,
                    Err(e) => break CloseReason::ReadError(e.to_string()),
                };
                let now = Instant::now();
                last_activity = now;
                framer.handle_data(chunk.get(..n).unwrap_or_default());
                if let Err(reason) = drain(shared, &mut framer, &mut wr, source, &mut pending).await {
                    break reason;
                }
                if framer.is_failed() {
                    closing_at = Some(now + cfg.error_linger);
                    partial_since = None;
                } else if framer.buffered().is_empty() {
                    partial_since = None;
                } else if partial_since.is_none() {
                    partial_since = Some(now);
                }
            }
            () = sleep_until(deadline), if timed => {
                if closing_at.is_some() {
                    break CloseReason::Unframeable;
                }
                if partial_since.is_some_and(|t| t + cfg.message_timeout <= Instant::now()) {
                    tracing::warn!(
                        conn = %id, transport = %source.transport, peer = %source.peer,
                        buffered = framer.buffered().len(),
                        timeout = ?cfg.message_timeout,
                        "cutting connection: message not complete in time"
                    );
                    break CloseReason::TooSlow;
                }
                break CloseReason::Idle;
            }
        }
    };
    // Writers waiting on this connection learn at once that it is gone.
    drop(rx);
    if matches!(reason, CloseReason::WriteError(_)) {
        // A peer that does not read gets a reset: no goodbye that could
        // not be written anyway, and no unsent bytes kept by the kernel.
        rd.unsplit(wr).abort_on_close();
    } else {
        // Best effort: a TLS close_notify or a FIN, without waiting long.
        let _ = timeout(cfg.write_timeout, wr.shutdown()).await;
    }
    (reason, pending)
}

/// Writes one message whole, within `limit`.
async fn write<W: AsyncWrite + Unpin>(
    wr: &mut W,
    bytes: &[u8],
    limit: std::time::Duration,
) -> io::Result<()> {
    let fut = async {
        wr.write_all(bytes).await?;
        wr.flush().await
    };
    match timeout(limit, fut).await {
        Ok(res) => res,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    }
}

/// Queues every message the framer holds for the layer above; answers
/// keep-alive pings.
async fn drain<W: AsyncWrite + Unpin>(
    shared: &Shared,
    framer: &mut StreamFramer,
    wr: &mut W,
    source: Source,
    pending: &mut VecDeque<TransportEvent>,
) -> Result<(), CloseReason> {
    let id = source.conn.unwrap_or(ConnId(0));
    while let Some(event) = framer.poll_event() {
        match event {
            Ok(StreamEvent::Message(bytes)) => {
                pending.push_back(TransportEvent::Message { bytes, source });
            }
            // RFC 5626 §4.4.1: a double CRLF is answered with one CRLF.
            Ok(StreamEvent::Ping) => {
                write(wr, b"\r\n", shared.config.write_timeout)
                    .await
                    .map_err(|e| CloseReason::WriteError(e.to_string()))?;
            }
            Ok(StreamEvent::Pong) => {}
            Err(error) => {
                let buffered = framer.buffered();
                let cut = buffered.len().min(shared.config.limits.max_message);
                let bytes = Bytes::copy_from_slice(buffered.get(..cut).unwrap_or_default());
                tracing::warn!(
                    conn = %id, transport = %source.transport, peer = %source.peer,
                    %error,
                    "closing connection: stream cannot be framed"
                );
                pending.push_back(TransportEvent::Malformed {
                    bytes,
                    source,
                    error,
                });
            }
        }
    }
    Ok(())
}
