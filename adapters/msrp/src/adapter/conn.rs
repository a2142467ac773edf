//! MSRP connections (RFC 4975 §6): the listener participants connect to,
//! and one reader and one writer task per connection. The reader cuts
//! the stream into messages with the codec's [`StreamFramer`] and hands
//! each to the driver; the writer writes what the driver queues, in
//! order. Neither parses more than framing: the driver owns the sessions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::Internal;
use crate::codec::{Limits, StreamFramer};

/// How many messages may wait for one connection's writer; a peer that
/// reads slower than that is cut off (RFC 7701 §6.4, congestion).
pub(super) const WRITE_QUEUE: usize = 1024;

/// Accepts connections until `internal` is gone.
pub(super) async fn accept_loop(
    listener: TcpListener,
    internal: mpsc::Sender<Internal>,
    limits: Limits,
) {
    let next = Arc::new(AtomicU64::new(1));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = next.fetch_add(1, Ordering::Relaxed);
        if !start(conn, stream, peer, internal.clone(), limits).await {
            return;
        }
    }
}

/// Starts the tasks of one connection; false when the driver is gone.
async fn start(
    conn: u64,
    stream: TcpStream,
    peer: SocketAddr,
    internal: mpsc::Sender<Internal>,
    limits: Limits,
) -> bool {
    let (mut read, mut write) = stream.into_split();
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
        let mut buf = vec![0u8; 16 * 1024];
        let why = 'read: loop {
            let n = match read.read(&mut buf).await {
                Ok(0) => break 'read "closed by the peer".to_owned(),
                Ok(n) => n,
                Err(e) => break 'read e.to_string(),
            };
            framer.handle_data(buf.get(..n).unwrap_or_default());
            while let Some(frame) = framer.poll_event() {
                match frame {
                    Ok(frame) => {
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
