//! A TCP forwarder the test can close: the gateway connects to a server
//! through it, and while it is closed, connections are dropped as soon as
//! they are accepted, so the gateway stays away (and keeps backing off)
//! while the test's own users are already back on the server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};

use crate::HarnessError;

/// The forwarder; it runs until the test ends.
#[derive(Debug)]
pub struct Gate {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
}

impl Gate {
    /// A gate on a free port of 127.0.0.1 forwarding to `to`, open.
    pub async fn new(to: SocketAddr) -> Result<Gate, HarnessError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::io("binding the gate", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::io("binding the gate", e))?;
        let open = Arc::new(AtomicBool::new(true));
        let is_open = open.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !is_open.load(Ordering::SeqCst) {
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Ok(Gate { addr, open })
    }

    /// Where the gateway connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Let new connections through, or drop them.
    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }
}
