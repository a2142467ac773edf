//! The [`Transport`] handle: listeners, the connection table, sends.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;

use crate::codec::parse_datagram;

use super::admission::{ACCEPT_BACKOFF, Admission, refuse};
use super::connection::{self, ConnHandle, WriteReq};
use super::tls::{self, TlsError};
use super::{ConnId, Destination, Source, TransportConfig, TransportEvent, TransportKind};

/// Largest UDP payload (RFC 3261 §18.1.1: 65,535 bytes with the IP and
/// UDP headers).
const MAX_DATAGRAM: usize = 65_507;

/// Why [`Transport::bind`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// Happens when a socket cannot be bound (address in use, no such
    /// address, no permission for a low port).
    #[error("cannot listen on {transport} {addr}: {source}")]
    Io {
        /// The listener's transport.
        transport: TransportKind,
        /// The address asked for.
        addr: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
    /// Happens when a TLS listener is configured without
    /// [`TransportConfig::tls`].
    #[error("a TLS listener needs the tls configuration")]
    NoTlsConfig,
    /// Happens when certificates or keys cannot be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Why [`Transport::send`] failed: the transaction layer reports it to its
/// TU as a transport error (RFC 3261 §18.4).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Happens when there is no UDP socket of the destination's address
    /// family (or none on the requested local address).
    #[error("no UDP socket to send to {0} from")]
    NoUdpSocket(SocketAddr),
    /// Happens when a message is larger than a UDP datagram can be.
    #[error("message of {0} bytes does not fit in a UDP datagram")]
    TooLarge(usize),
    /// Happens when a TLS destination is asked for without
    /// [`TransportConfig::tls`].
    #[error("TLS is not configured")]
    NoTlsConfig,
    /// Happens when the TLS name is not a DNS name or IP address.
    #[error("invalid TLS server name {0:?}")]
    BadTlsName(String),
    /// Happens when a new connection is needed and
    /// [`TransportConfig::max_connections`] are open.
    #[error("connection limit reached")]
    TooManyConnections,
    /// Happens when the connection cannot be opened (refused, timed out,
    /// TLS handshake or certificate check failed).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The destination.
        addr: SocketAddr,
        /// What failed.
        source: io::Error,
    },
    /// Happens when the connection closed before the message was written.
    #[error("connection closed")]
    ConnectionClosed,
    /// Happens when writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Happens after [`Transport::shutdown`].
    #[error("transport is shut down")]
    Shutdown,
}

type Key = (TransportKind, SocketAddr);

/// The connection table (RFC 3261 §18: indexed by the far end's address,
/// port and transport).
#[derive(Debug, Default)]
struct Table {
    by_id: HashMap<ConnId, ConnHandle>,
    by_key: HashMap<Key, ConnId>,
}

/// What the tasks share.
pub(crate) struct Shared {
    pub config: TransportConfig,
    pub events: mpsc::Sender<TransportEvent>,
    pub cancel: CancellationToken,
    table: Mutex<Table>,
    admission: Arc<Admission>,
    next_id: AtomicU64,
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    tls_client: Option<TlsConnector>,
    connect_locks: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("table", &self.table)
            .field("udp", &self.udp)
            .field("tls_client", &self.tls_client.is_some())
            .finish_non_exhaustive()
    }
}

/// Locks a std mutex, going on with the data if another thread panicked
/// while holding it (the table stays consistent: each change is one
/// insert or remove).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn next_conn_id(&self) -> ConnId {
        ConnId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Adds a connection. An existing entry for the same far end keeps the
    /// key (the new one is still reachable by its id).
    pub(crate) fn register(&self, handle: ConnHandle) {
        let mut t = lock(&self.table);
        t.by_key
            .entry((handle.kind, handle.peer))
            .or_insert(handle.id);
        t.by_id.insert(handle.id, handle);
    }

    pub(crate) fn unregister(&self, id: Option<ConnId>, kind: TransportKind, peer: SocketAddr) {
        let Some(id) = id else { return };
        let mut t = lock(&self.table);
        t.by_id.remove(&id);
        if t.by_key.get(&(kind, peer)) == Some(&id) {
            t.by_key.remove(&(kind, peer));
            // Another connection to the same far end takes the key.
            if let Some(other) = t.by_id.values().find(|h| h.kind == kind && h.peer == peer) {
                let other = other.id;
                t.by_key.insert((kind, peer), other);
            }
        }
    }

    /// Hands an event up; at shutdown, only if there is room at once (nobody
    /// may be reading any more). Returns whether it went.
    pub(crate) async fn deliver(&self, event: TransportEvent) -> bool {
        if self.cancel.is_cancelled() {
            return self.events.try_send(event).is_ok();
        }
        tokio::select! {
            () = self.cancel.cancelled() => false,
            sent = self.events.send(event) => sent.is_ok(),
        }
    }

    fn by_id(&self, id: ConnId) -> Option<ConnHandle> {
        lock(&self.table).by_id.get(&id).cloned()
    }

    fn by_key(&self, key: Key) -> Option<ConnHandle> {
        let t = lock(&self.table);
        t.by_key.get(&key).and_then(|id| t.by_id.get(id)).cloned()
    }
}

/// A bound listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundListener {
    /// Its transport.
    pub transport: TransportKind,
    /// The address it is bound to (the actual port when 0 was asked).
    pub addr: SocketAddr,
}

/// The SIP transport layer: see the [module docs](super).
///
/// Dropping it (or [`Transport::shutdown`]) stops the listeners and closes
/// every connection.
#[derive(Debug)]
pub struct Transport {
    shared: Arc<Shared>,
    listeners: Vec<BoundListener>,
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

impl Transport {
    /// Binds every listener of `config` and starts their tasks; returns the
    /// handle and the receiver of what the transport reports.
    ///
    /// A listener with port 0 whose address (port 0 included) was already
    /// asked for by an earlier listener of another transport gets the port
    /// that one was given, when free: UDP and TCP on the same port, as
    /// RFC 3261 §18.2.1 asks.
    pub async fn bind(
        config: TransportConfig,
    ) -> Result<(Transport, mpsc::Receiver<TransportEvent>), BindError> {
        let tls_server = match (
            &config.tls,
            config
                .listeners
                .iter()
                .any(|l| l.transport == TransportKind::Tls),
        ) {
            (Some(t), true) => Some(TlsAcceptor::from(tls::server_config(t)?)),
            (None, true) => return Err(BindError::NoTlsConfig),
            (_, false) => None,
        };
        let tls_client = match &config.tls {
            Some(t) => Some(TlsConnector::from(tls::client_config(t)?)),
            None => None,
        };

        let mut bound = Vec::new();
        let mut udp = Vec::new();
        let mut streams = Vec::new();
        let mut given: HashMap<SocketAddr, u16> = HashMap::new();
        for l in &config.listeners {
            let io_err = |source| BindError::Io {
                transport: l.transport,
                addr: l.addr,
                source,
            };
            let mut addr = l.addr;
            let earlier = (addr.port() == 0)
                .then(|| given.get(&l.addr).copied())
                .flatten();
            if let Some(port) = earlier {
                addr.set_port(port);
            }
            let actual = match l.transport {
                TransportKind::Udp => {
                    let sock = match UdpSocket::bind(addr).await {
                        Err(e) if earlier.is_some() && e.kind() == io::ErrorKind::AddrInUse => {
                            UdpSocket::bind(l.addr).await
                        }
                        other => other,
                    }
                    .map_err(io_err)?;
                    let actual = sock.local_addr().map_err(io_err)?;
                    udp.push((actual, Arc::new(sock)));
                    actual
                }
                TransportKind::Tcp | TransportKind::Tls => {
                    let listener = match TcpListener::bind(addr).await {
                        Err(e) if earlier.is_some() && e.kind() == io::ErrorKind::AddrInUse => {
                            TcpListener::bind(l.addr).await
                        }
                        other => other,
                    }
                    .map_err(io_err)?;
                    let actual = listener.local_addr().map_err(io_err)?;
                    streams.push((l.transport, actual, listener));
                    actual
                }
            };
            given.entry(l.addr).or_insert(actual.port());
            tracing::info!(transport = %l.transport, addr = %actual, "listening");
            bound.push(BoundListener {
                transport: l.transport,
                addr: actual,
            });
        }
        for b in bound.iter().filter(|b| b.transport == TransportKind::Udp) {
            if !bound
                .iter()
                .any(|o| o.transport == TransportKind::Tcp && o.addr == b.addr)
            {
                // RFC 3261 §18.2.1: "For any port and interface that a
                // server listens on for UDP, it MUST listen on that same
                // port and interface for TCP."
                tracing::warn!(addr = %b.addr, "UDP listener without a TCP listener on the same address (RFC 3261 §18.2.1)");
            }
        }

        let (events, rx) = mpsc::channel(config.event_capacity.max(1));
        let shared = Arc::new(Shared {
            admission: Admission::new(config.max_connections, config.max_connections_per_ip),
            config,
            events,
            cancel: CancellationToken::new(),
            table: Mutex::new(Table::default()),
            next_id: AtomicU64::new(1),
            udp: udp.clone(),
            tls_client,
            connect_locks: Mutex::new(HashMap::new()),
        });
        for (local, sock) in udp {
            tokio::spawn(udp_loop(Arc::clone(&shared), sock, local));
        }
        for (kind, local, listener) in streams {
            let acceptor = match kind {
                TransportKind::Tls => tls_server.clone(),
                _ => None,
            };
            tokio::spawn(accept_loop(
                Arc::clone(&shared),
                listener,
                kind,
                local,
                acceptor,
            ));
        }
        Ok((
            Transport {
                shared,
                listeners: bound,
            },
            rx,
        ))
    }

    /// The bound listeners, in the order of the configuration.
    pub fn listeners(&self) -> &[BoundListener] {
        &self.listeners
    }

    /// The address of the first listener of `transport`.
    pub fn local_addr(&self, transport: TransportKind) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.transport == transport)
            .map(|l| l.addr)
    }

    /// How many TCP and TLS connections are open.
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.table).by_id.len()
    }

    /// The open connection to `addr` over `transport`, if any.
    pub fn connection_to(&self, transport: TransportKind, addr: SocketAddr) -> Option<ConnId> {
        self.shared.by_key((transport, addr)).map(|h| h.id)
    }

    /// Stops the listeners and closes every connection (each reports
    /// [`TransportEvent::Closed`] while the receiver lives).
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }

    /// Sends one serialized message and waits until it is written (UDP:
    /// handed to the socket). Returns the connection it went on, for TCP
    /// and TLS, so that the layer above can tie a transaction to it and
    /// learn from [`TransportEvent::Closed`] that it is gone.
    ///
    /// Over TCP and TLS: the connection `dest.conn` while it is open
    /// (RFC 3261 §18.2.2), else the open connection to `dest.addr`
    /// (§18.1.1: "it is RECOMMENDED that this connection be used"), else a
    /// new one.
    pub async fn send(
        &self,
        dest: &Destination,
        bytes: Bytes,
    ) -> Result<Option<ConnId>, SendError> {
        if self.shared.cancel.is_cancelled() {
            return Err(SendError::Shutdown);
        }
        if dest.transport == TransportKind::Udp {
            return self.send_udp(dest, &bytes).await.map(|()| None);
        }
        if let Some(h) = dest.conn.and_then(|id| self.shared.by_id(id)) {
            if h.kind == dest.transport {
                match write_on(&h, bytes.clone()).await {
                    // Gone before the write: open a new one (§18.2.2).
                    Err(SendError::ConnectionClosed) => {}
                    other => return other.map(|()| Some(h.id)),
                }
            }
        }
        let h = self.connection(dest).await?;
        write_on(&h, bytes).await.map(|()| Some(h.id))
    }

    async fn send_udp(&self, dest: &Destination, bytes: &[u8]) -> Result<(), SendError> {
        if bytes.len() > MAX_DATAGRAM {
            return Err(SendError::TooLarge(bytes.len()));
        }
        let udp = &self.shared.udp;
        let (local, sock) = udp
            .iter()
            .find(|(local, _)| dest.local == Some(*local))
            .or_else(|| {
                udp.iter()
                    .find(|(local, _)| local.is_ipv4() == dest.addr.is_ipv4())
            })
            // An IPv4 peer through a dual-stack socket bound to [::].
            .or_else(|| {
                udp.iter().find(|(local, _)| {
                    dest.addr.is_ipv4() && local.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                })
            })
            .ok_or(SendError::NoUdpSocket(dest.addr))?;
        let to = match dest.addr {
            SocketAddr::V4(v4) if local.is_ipv6() => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            other => other,
        };
        sock.send_to(bytes, to).await?;
        Ok(())
    }

    /// The connection to `dest`, opened if there is none. Opening is
    /// serialized per far end, so that two sends at once open one
    /// connection.
    async fn connection(&self, dest: &Destination) -> Result<ConnHandle, SendError> {
        let key = (dest.transport, dest.addr);
        if let Some(h) = self.shared.by_key(key) {
            return Ok(h);
        }
        let gate = Arc::clone(lock(&self.shared.connect_locks).entry(key).or_default());
        let result = {
            let _guard = gate.lock().await;
            match self.shared.by_key(key) {
                Some(h) => Ok(h),
                None => self.connect(dest).await,
            }
        };
        let mut locks = lock(&self.shared.connect_locks);
        // Ours and the map's: nobody else waits on this gate.
        if Arc::strong_count(&gate) <= 2 {
            locks.remove(&key);
        }
        result
    }

    async fn connect(&self, dest: &Destination) -> Result<ConnHandle, SendError> {
        let shared = &self.shared;
        if dest.transport == TransportKind::Tls && shared.tls_client.is_none() {
            return Err(SendError::NoTlsConfig);
        }
        let permit = shared
            .admission
            .admit_outgoing()
            .map_err(|_| SendError::TooManyConnections)?;
        let addr = dest.addr;
        let limit = shared.config.connect_timeout;
        let connect_err = |source| SendError::Connect { addr, source };
        let tcp = within(limit, TcpStream::connect(addr))
            .await
            .map_err(connect_err)?;
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_err(connect_err)?;
        match dest.transport {
            TransportKind::Tcp => Ok(connection::start(
                shared,
                tcp,
                TransportKind::Tcp,
                addr,
                local,
                permit,
            )),
            TransportKind::Tls => {
                let connector = shared.tls_client.as_ref().ok_or(SendError::NoTlsConfig)?;
                let name = match &dest.tls_name {
                    Some(n) => ServerName::try_from(n.clone())
                        .map_err(|_| SendError::BadTlsName(n.clone()))?,
                    None => ServerName::IpAddress(addr.ip().into()),
                };
                let tls = within(limit, connector.connect(name, tcp))
                    .await
                    .map_err(connect_err)?;
                Ok(connection::start(
                    shared,
                    tokio_rustls::TlsStream::Client(tls),
                    TransportKind::Tls,
                    addr,
                    local,
                    permit,
                ))
            }
            TransportKind::Udp => Err(SendError::NoUdpSocket(addr)),
        }
    }
}

/// `fut` within `limit`, a timeout being an I/O error.
async fn within<T>(limit: Duration, fut: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    timeout(limit, fut)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")))
}

/// Queues `bytes` on a connection and waits for the write.
async fn write_on(h: &ConnHandle, bytes: Bytes) -> Result<(), SendError> {
    let (done, wait) = oneshot::channel();
    h.writer
        .send(WriteReq { bytes, done })
        .await
        .map_err(|_| SendError::ConnectionClosed)?;
    match wait.await {
        Ok(res) => res.map_err(SendError::Io),
        Err(_) => Err(SendError::ConnectionClosed),
    }
}

/// An IPv4 peer seen through a dual-stack socket as `[::ffff:a.b.c.d]`
/// shows as `a.b.c.d`, so that it compares equal to the address the layers
/// above know (Via, the connection table).
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Reads datagrams: one message each (RFC 3261 §18.3).
async fn udp_loop(shared: Arc<Shared>, sock: Arc<UdpSocket>, local: SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, peer) = tokio::select! {
            () = shared.cancel.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    // An ICMP error of an earlier send, on some systems.
                    tracing::debug!(%local, error = %e, "UDP receive error");
                    continue;
                }
            },
        };
        let data = buf.get(..n).unwrap_or_default();
        let peer = canonical(peer);
        let source = Source {
            transport: TransportKind::Udp,
            peer,
            local,
            conn: None,
        };
        let event = match parse_datagram(data, &shared.config.limits) {
            // A keep-alive (RFC 5626 §4.4.1 over UDP uses STUN; bare CRLFs
            // are ignored, RFC 3261 §7.5).
            Ok(None) => continue,
            Ok(Some(m)) => TransportEvent::Message {
                bytes: Bytes::copy_from_slice(m.as_bytes()),
                source,
            },
            Err(error) => {
                tracing::debug!(%peer, %error, "malformed datagram");
                TransportEvent::Malformed {
                    bytes: Bytes::copy_from_slice(data),
                    source,
                    error,
                }
            }
        };
        if !shared.deliver(event).await {
            return;
        }
    }
}

/// Accepts TCP connections (and runs the TLS handshake of each).
async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    kind: TransportKind,
    listen_addr: SocketAddr,
    acceptor: Option<TlsAcceptor>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            () = shared.cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    // Out of file descriptors and the like: the error
                    // lasts until connections close; wait a little rather
                    // than spin, and keep going.
                    if let Some(more) = shared.admission.should_log() {
                        tracing::warn!(
                            %kind, addr = %listen_addr, error = %e, more,
                            backoff = ?ACCEPT_BACKOFF,
                            "accept failed; accepting again after a pause"
                        );
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let permit = match shared.admission.admit(peer.ip()) {
            Ok(p) => p,
            Err(why) => {
                refuse(tcp);
                if let Some(more) = shared.admission.should_log() {
                    tracing::warn!(
                        %kind, peer = %canonical(peer), more,
                        "refusing connection: {why}"
                    );
                }
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let peer = canonical(peer);
        let local = tcp.local_addr().unwrap_or(listen_addr);
        match &acceptor {
            None => {
                connection::start(&shared, tcp, kind, peer, local, permit);
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let limit = shared.config.message_timeout;
                    match timeout(limit, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            connection::start(
                                &shared,
                                tokio_rustls::TlsStream::Server(tls),
                                kind,
                                peer,
                                local,
                                permit,
                            );
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            tracing::warn!(%peer, timeout = ?limit, "cutting connection: TLS handshake not complete in time");
                        }
                    }
                });
            }
        }
    }
}
