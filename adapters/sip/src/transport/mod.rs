//! SIP transports (RFC 3261 §18): UDP, TCP and TLS over tokio.
//!
//! A thin driver: it owns sockets, connections, timers and TLS, frames
//! what it reads with the [`codec`](crate::codec) and hands whole messages
//! up; it takes no protocol decision of its own. The decisions of §18 are
//! pure functions in this module, which the layers above call:
//! [`request_transport`] (§18.1.1, large requests leave UDP),
//! [`via_stamp`] (§18.2.1 `received`, RFC 3581 `rport`),
//! [`response_destination`] (§18.2.2) and [`sent_by_is_ours`] (§18.1.2).
//!
//! # Shape
//!
//! [`Transport::bind`] opens the listeners of a [`TransportConfig`] and
//! gives back the [`Transport`] handle and a bounded receiver of
//! [`TransportEvent`]s:
//!
//! * [`TransportEvent::Message`]: one whole message, with its [`Source`]
//!   (transport, peer and local address, and the [`ConnId`] of the
//!   connection it came on). A datagram carries one message (§18.3, bytes
//!   after the Content-Length body dropped); a stream is cut by
//!   Content-Length with [`StreamFramer`](crate::codec::StreamFramer).
//!   Stream messages are framed, not parsed: the layer above parses them.
//! * [`TransportEvent::Malformed`]: a datagram that does not parse, or a
//!   stream that lost its framing (no or bad Content-Length, a message
//!   over the size limit). A request deserves a 400 or 413, which the TU
//!   may send; a stream is then closed after
//!   [`TransportConfig::error_linger`].
//! * [`TransportEvent::Closed`]: a connection is gone, with why (end of
//!   stream, read error, idle, too slow, unframeable, limit). Transactions
//!   waiting on it get `handle_transport_error` from the layer above.
//!
//! [`Transport::send`] takes a [`Destination`] (transport, address, and
//! optionally the connection to answer on, §18.2.2) and resolves when the
//! bytes are written, or fails: that outcome is what
//! [`TransactionLayer::handle_transport_error`](crate::transaction::TransactionLayer::handle_transport_error)
//! needs (§18.4).
//!
//! # Connections
//!
//! TCP and TLS connections are shared by the client and server sides
//! (§18): a table indexes each by (transport, far-end address), set to the
//! destination for a connection this element opened and to the source for
//! one it accepted. A request to an address with an open connection
//! reuses it (§18.1.1); a response goes on the connection of its request
//! while it is open. Connections close after
//! [`TransportConfig::idle_timeout`] without traffic (§18 asks for at
//! least 64*T1, 32 s), when a message takes longer than
//! [`TransportConfig::message_timeout`] to arrive (slow senders that hold
//! a connection with a partial message), and past
//! [`TransportConfig::max_connections`] new ones are refused, as are
//! those past [`TransportConfig::max_connections_per_ip`] from one
//! address. A peer that does not read what it is sent is cut off when a
//! write has not finished after [`TransportConfig::write_timeout`]. Each
//! cut-off is logged (a warning naming the peer and the reason); accept
//! errors (out of file descriptors) are logged and accepting resumes
//! after [`ACCEPT_BACKOFF`].
//!
//! # With the transaction layer
//!
//! [`Destination`] serves as the transaction layer's destination key `D`:
//!
//! * A request received: its `IncomingRequest::source` is where its
//!   responses go, computed once with [`response_destination`] from the
//!   top Via and the [`Source`] (so retransmitted responses follow
//!   §18.2.2), and `reliable` is `source.transport.is_reliable()`.
//! * A request to send: [`request_transport`] first (§18.1.1), with the
//!   top Via written for the transport it picks, and `reliable` from it.
//! * Each `Output::Transmit` goes to [`Transport::send`]; a failure is
//!   `handle_transport_error` for that transaction. The connection `send`
//!   returns ties the transaction to it: a [`TransportEvent::Closed`] of
//!   that connection is a transport error too for a client transaction
//!   still waiting for its response (it cannot come on another one).
//! * `send` waits for the write: a driver that must not stall on one slow
//!   peer spawns it.
//!
//! # TLS
//!
//! rustls with the aws-lc-rs provider, given explicitly (no process-wide
//! default is assumed). The server presents the configured certificate
//! and, by default, asks for and checks a client certificate (mutual TLS
//! between SIP servers, RFC 5922 §7.2); the client checks the server
//! against the system roots and an optional CA file, and presents the same
//! certificate when the server asks.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use bytes::Bytes;
//! use cpimgate_sip::transport::{
//!     Destination, ListenerConfig, Transport, TransportConfig, TransportEvent, TransportKind,
//! };
//! let config = TransportConfig {
//!     listeners: vec![
//!         ListenerConfig::new(TransportKind::Udp, "0.0.0.0:5060".parse()?),
//!         ListenerConfig::new(TransportKind::Tcp, "0.0.0.0:5060".parse()?),
//!     ],
//!     ..TransportConfig::default()
//! };
//! let (transport, mut events) = Transport::bind(config).await?;
//! while let Some(event) = events.recv().await {
//!     if let TransportEvent::Message { bytes, source } = event {
//!         // parse, hand to the transaction layer, answer...
//!         let answer = Bytes::from_static(b"SIP/2.0 200 OK\r\n...");
//!         transport.send(&Destination::reply_to(&source), answer).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

#[cfg(feature = "runtime")]
mod admission;
mod config;
#[cfg(feature = "runtime")]
mod connection;
#[cfg(feature = "runtime")]
mod driver;
mod rules;
#[cfg(feature = "runtime")]
mod tls;

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::codec::ParseError;

#[cfg(feature = "runtime")]
pub use self::admission::{ACCEPT_BACKOFF, Abortable, Admission, Refused, Ticket, refuse};
pub use self::config::{ListenerConfig, TlsConfig, TransportConfig};
#[cfg(feature = "runtime")]
pub use self::driver::{BindError, BoundListener, SendError, Transport};
pub use self::rules::{
    DestinationError, MTU_HEADROOM, ResponseDestination, ResponseTarget, TransportChoice,
    UNKNOWN_MTU_LIMIT, ViaStamp, parse_host_ip, request_transport, response_destination,
    sent_by_is_ours, via_stamp,
};
#[cfg(feature = "runtime")]
pub use self::tls::{TlsError, client_config, server_config};

/// A SIP transport protocol this element implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportKind {
    /// UDP (RFC 768), unreliable.
    Udp,
    /// TCP, reliable.
    Tcp,
    /// TLS over TCP, reliable.
    Tls,
}

impl TransportKind {
    /// Whether the transport is reliable (it selects the timers of RFC 3261
    /// §17 and the response rule of §18.2.2).
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    /// Whether the transport is a byte stream with connections.
    pub fn is_stream(self) -> bool {
        self.is_reliable()
    }

    /// The default port (RFC 3261 §18.1.1, §19.1.2): 5060, 5061 for TLS.
    pub fn default_port(self) -> u16 {
        match self {
            TransportKind::Tls => 5061,
            TransportKind::Udp | TransportKind::Tcp => 5060,
        }
    }

    /// The transport token of a Via (RFC 3261 §20.42): `UDP`, `TCP`, `TLS`.
    pub fn as_via_str(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
        }
    }

    /// Reads a Via transport token, without regard to case; `None` for
    /// the ones not implemented here (SCTP, WS, ...).
    pub fn from_via(token: &str) -> Option<Self> {
        [TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls]
            .into_iter()
            .find(|k| k.as_via_str().eq_ignore_ascii_case(token))
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_via_str())
    }
}

/// Identifies one TCP or TLS connection for as long as the transport
/// lives; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn{}", self.0)
    }
}

/// Where a received message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source {
    /// The transport it came over.
    pub transport: TransportKind,
    /// The far end: the packet's source address (RFC 3261 §18.2.1).
    pub peer: SocketAddr,
    /// The local address it arrived on.
    pub local: SocketAddr,
    /// The connection it came on (TCP, TLS); `None` for UDP.
    pub conn: Option<ConnId>,
}

/// Where to send a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// The transport to send over.
    pub transport: TransportKind,
    /// The far-end address.
    pub addr: SocketAddr,
    /// A connection to send on while it is open (the one a request came in
    /// on, RFC 3261 §18.2.2); when it is gone the message goes on a
    /// connection to `addr`, opened if needed.
    pub conn: Option<ConnId>,
    /// The local address to send from, for UDP: the socket the request came
    /// in on, so that the response comes from where the client sent to.
    /// `None`: the first UDP listener of the address family.
    pub local: Option<SocketAddr>,
    /// The name the server's TLS certificate must carry (the host of the
    /// SIPS URI, RFC 5922); `None`: the IP address of `addr`. Checked when
    /// a connection is opened: an open connection to `addr` is reused
    /// whatever name it was checked for.
    pub tls_name: Option<String>,
}

impl Destination {
    /// A destination on `transport` at `addr`.
    pub fn new(transport: TransportKind, addr: SocketAddr) -> Self {
        Destination {
            transport,
            addr,
            conn: None,
            local: None,
            tls_name: None,
        }
    }

    /// Straight back to where `source` came from, on its connection.
    pub fn reply_to(source: &Source) -> Self {
        Destination {
            transport: source.transport,
            addr: source.peer,
            conn: source.conn,
            local: Some(source.local),
            tls_name: None,
        }
    }

    /// The same destination with a TLS server name to check.
    pub fn with_tls_name(mut self, name: impl Into<String>) -> Self {
        self.tls_name = Some(name.into());
        self
    }
}

/// What the transport reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TransportEvent {
    /// One whole message.
    Message {
        /// The message's bytes, exactly as framed.
        bytes: Bytes,
        /// Where it came from.
        source: Source,
    },
    /// A datagram that does not parse, or a stream that lost its framing.
    /// For a stream, the connection closes [`TransportConfig::error_linger`]
    /// later (time enough for the TU to answer 400 or 413 on it).
    Malformed {
        /// The datagram, or the start of what the stream had buffered
        /// (the offending message, cut to the size limit).
        bytes: Bytes,
        /// Where it came from.
        source: Source,
        /// What was wrong, with the status a UAS answers
        /// ([`ParseError::response_status`]).
        error: ParseError,
    },
    /// A connection is gone: it is out of the table, and messages of
    /// transactions that were using it cannot be sent on it any more.
    Closed {
        /// The connection.
        conn: ConnId,
        /// Its transport.
        transport: TransportKind,
        /// Its far end.
        peer: SocketAddr,
        /// Why it closed.
        reason: CloseReason,
    },
}

/// Why a connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed it (end of stream).
    Eof,
    /// Reading failed (reset, TLS alert...).
    ReadError(String),
    /// Writing failed or timed out.
    WriteError(String),
    /// No traffic for [`TransportConfig::idle_timeout`].
    Idle,
    /// A message took longer than [`TransportConfig::message_timeout`] to
    /// arrive whole, or the TLS handshake did.
    TooSlow,
    /// The stream lost its framing (see [`TransportEvent::Malformed`]).
    Unframeable,
    /// The transport is shutting down.
    Shutdown,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Eof => f.write_str("closed by peer"),
            CloseReason::ReadError(e) => write!(f, "read error: {e}"),
            CloseReason::WriteError(e) => write!(f, "write error: {e}"),
            CloseReason::Idle => f.write_str("idle"),
            CloseReason::TooSlow => f.write_str("message too slow to arrive"),
            CloseReason::Unframeable => f.write_str("stream lost its framing"),
            CloseReason::Shutdown => f.write_str("shutdown"),
        }
    }
}
