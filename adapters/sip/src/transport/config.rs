//! Configuration of the transports.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::codec::Limits;

use super::TransportKind;

/// What the transport layer listens on and how it treats connections.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// The sockets to listen on. RFC 3261 §18.2.1: for every UDP listener
    /// there should be a TCP one on the same address and port, since a
    /// large request may come over TCP.
    pub listeners: Vec<ListenerConfig>,
    /// Certificates for TLS: needed by a TLS listener, and by outgoing TLS
    /// connections (the trust anchors).
    pub tls: Option<TlsConfig>,
    /// Size limits of one message; `max_message` bounds what a stream may
    /// buffer before its message is whole.
    pub limits: Limits,
    /// Most TCP and TLS connections open at once, both directions; past
    /// it accepted connections are closed at once and sends that need a
    /// new connection fail.
    pub max_connections: usize,
    /// Most accepted connections from one IP address at once (0: no cap
    /// per address): past it that address's new connections are closed
    /// at once, so that one host cannot take every slot of
    /// `max_connections`.
    pub max_connections_per_ip: usize,
    /// A connection with no traffic this long is closed. RFC 3261 §18:
    /// at least the longest a transaction lives, 64*T1 (32 s).
    pub idle_timeout: Duration,
    /// Longest time from the first byte of a message on a stream to its
    /// last (and longest TLS handshake): a slower peer is cut off, so that
    /// partial messages cannot hold connections open.
    pub message_timeout: Duration,
    /// Longest time to open a TCP connection (and for a TLS handshake when
    /// connecting).
    pub connect_timeout: Duration,
    /// Longest time one write may take before the connection is dropped:
    /// a peer that does not read what it is sent is cut off (with a
    /// reset) once the socket's buffers are full this long.
    pub write_timeout: Duration,
    /// After a stream lost its framing, how long the connection stays
    /// open for writing (so that a 400 or 413 can go out) before it
    /// closes.
    pub error_linger: Duration,
    /// Capacity of the channel of [`TransportEvent`](super::TransportEvent)s:
    /// when the layer above falls behind, sockets stop being read.
    pub event_capacity: usize,
    /// Capacity of each connection's queue of messages to write.
    pub send_queue: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            listeners: Vec::new(),
            tls: None,
            limits: Limits::default(),
            max_connections: 1024,
            max_connections_per_ip: 0,
            idle_timeout: Duration::from_secs(120),
            message_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            error_linger: Duration::from_secs(1),
            event_capacity: 1024,
            send_queue: 64,
        }
    }
}

/// One socket to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Its transport.
    pub transport: TransportKind,
    /// The address, IPv4 or IPv6; port 0 picks a free one (see
    /// [`Transport::listeners`](super::Transport::listeners)).
    pub addr: SocketAddr,
}

impl ListenerConfig {
    /// A listener on `transport` at `addr`.
    pub fn new(transport: TransportKind, addr: SocketAddr) -> Self {
        ListenerConfig { transport, addr }
    }
}

/// Certificates and checks for TLS.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM file with this element's certificate chain, leaf first: shown
    /// by a TLS listener, and as the client certificate when a server
    /// asks. Needed for a TLS listener.
    pub cert_chain: Option<PathBuf>,
    /// PEM file with the private key of `cert_chain` (PKCS#8, PKCS#1 or
    /// SEC1).
    pub private_key: Option<PathBuf>,
    /// PEM file of extra CA certificates trusted to sign peers'
    /// certificates, servers' and clients'.
    pub ca_file: Option<PathBuf>,
    /// Whether the system's root certificates are trusted too.
    pub use_system_roots: bool,
    /// Whether a TLS listener asks for a client certificate and refuses
    /// clients without a valid one (mutual TLS between SIP servers). On by
    /// default.
    pub require_client_cert: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_chain: None,
            private_key: None,
            ca_file: None,
            use_system_roots: true,
            require_client_cert: true,
        }
    }
}
