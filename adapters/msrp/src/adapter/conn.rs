//! MSRP connections (RFC 4975 §6): the listener participants connect to,
//! and one reader and one writer task per connection. The reader cuts
//! the stream into messages with the codec's [`StreamFramer`] and hands
//! each to the driver; the writer writes what the driver queues, in
//! order. Neither parses more than framing: the driver owns the sessions.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use super::Internal;
use crate::codec::{Limits, StreamFramer};

/// How many messages may wait for one connection's writer; a peer that
/// reads slower than that is cut off (RFC 7701 §6.4, congestion).
pub(super) const WRITE_QUEUE: usize = 1024;

/// Connection ids, unique across the TCP and the TLS listener and the
/// connections to rooms elsewhere.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// A new connection id.
pub(super) fn next_id() -> u64 {
    NEXT_CONN.fetch_add(1, Ordering::Relaxed)
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
    first_within: std::time::Duration,
) {
    loop {
        // The listener goes with the driver (a gateway restarted in the
        // same process binds the port again).
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = internal.closed() => return,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
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
                Some(first_within),
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
                    start(conn, tls, peer, internal, limits, Some(first_within)).await;
                }
                Ok(Err(e)) => tracing::info!("MSRP TLS handshake from {peer} failed: {e}"),
                Err(_) => tracing::info!("MSRP TLS handshake from {peer} took too long"),
            }
        });
    }
}

/// The read buffer of a connection, in octets.
const READ_BUFFER: usize = 2048;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts the tasks of one connection; false when the driver is gone.
/// `first_within`: how soon the peer must send (RFC 4975 §5.4: the
/// connecting side sends first); `None` on a connection we opened.
pub(super) async fn start<S>(
    conn: u64,
    stream: S,
    peer: SocketAddr,
    internal: mpsc::Sender<Internal>,
    limits: Limits,
    first_within: Option<std::time::Duration>,
) -> bool
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut read, mut write) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    if internal
        .send(Internal::Accepted {
            conn,
            writer: tx,
            peer,
        })
        .await
        .is_err()
    {
        return false;
    }
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if write.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = write.shutdown().await;
    });
    tokio::spawn(async move {
        let mut framer = StreamFramer::new(limits);
        // Small: one per participant, and most of a participant's memory
        // (a room of 1,000 held 16 MB in 16 KiB buffers); a large chunk
        // takes a few more reads.
        let mut buf = vec![0u8; READ_BUFFER];
        // RFC 4975 §5.4: the connecting side sends first; a connection
        // that says nothing in time binds to no session and is closed.
        let mut first_by = first_within.map(|d| tokio::time::Instant::now() + d);
        let why = 'read: loop {
            let read = match first_by {
                Some(at) => match tokio::time::timeout_at(at, read.read(&mut buf)).await {
                    Ok(r) => r,
                    Err(_) => break 'read "no message in time after connecting".to_owned(),
                },
                None => read.read(&mut buf).await,
            };
            let n = match read {
                Ok(0) => break 'read "closed by the peer".to_owned(),
                Ok(n) => n,
                Err(e) => break 'read e.to_string(),
            };
            framer.handle_data(buf.get(..n).unwrap_or_default());
            while let Some(frame) = framer.poll_event() {
                match frame {
                    Ok(frame) => {
                        first_by = None;
                        if internal
                            .send(Internal::Frame { conn, frame })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    // RFC 4975 §6: a stream that lost its framing cannot
                    // be read on; the connection ends.
                    Err(e) => break 'read format!("framing lost: {e}"),
                }
            }
        };
        let _ = internal.send(Internal::Closed { conn, why }).await;
    });
    true
}
