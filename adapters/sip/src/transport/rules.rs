//! The decisions of the transport layer (RFC 3261 §18, RFC 3581 §4), as
//! pure functions: which transport a request takes, what the server
//! transport stamps on the top Via of a request it receives, and where a
//! response goes. The tokio driver and the layers above call them; nothing
//! here does IO.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::codec::Via;

use super::{ConnId, Source, TransportKind};

/// RFC 3261 §18.1.1: the size over which a request must leave UDP when
/// the path MTU is unknown.
pub const UNKNOWN_MTU_LIMIT: usize = 1300;

/// RFC 3261 §18.1.1: the room kept between a UDP request and the path MTU,
/// for responses that grow (Record-Route).
pub const MTU_HEADROOM: usize = 200;

/// The transport a request takes, by RFC 3261 §18.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportChoice {
    /// The transport to send on.
    pub transport: TransportKind,
    /// Whether that differs from the transport asked for: the sender must
    /// then rewrite the transport of its top Via before sending (RFC 3261
    /// §18.1.1: "the value in the top Via MUST be changed"), and the
    /// client transaction is a reliable one.
    pub switched: bool,
}

/// Picks the transport of a request of `request_len` bytes that the TU
/// wants to send over `wanted`, with the path MTU when it is known.
///
/// RFC 3261 §18.1.1: "If a request is within 200 bytes of the path MTU, or
/// if it is larger than 1300 bytes and the path MTU is unknown, the request
/// MUST be sent using an RFC 2914 congestion controlled transport protocol,
/// such as TCP." Only UDP ever changes, and it changes to TCP; 1300 is the
/// same rule with the 1500-byte Ethernet MTU assumed.
///
/// The request's top Via names its transport, so the switch happens before
/// the Via is written, or the caller rewrites the Via and serializes again
/// (its length barely changes: `UDP` and `TCP` are the same size). If the
/// TCP connection is refused (reset) the RFC lets the sender retry over UDP
/// for RFC 2543 peers; that retry is the caller's decision.
///
/// ```
/// use cpimgate_sip::transport::{TransportKind, request_transport};
/// assert_eq!(request_transport(TransportKind::Udp, 1300, None).transport, TransportKind::Udp);
/// assert_eq!(request_transport(TransportKind::Udp, 1301, None).transport, TransportKind::Tcp);
/// assert_eq!(request_transport(TransportKind::Udp, 900, Some(1000)).transport, TransportKind::Tcp);
/// ```
pub fn request_transport(
    wanted: TransportKind,
    request_len: usize,
    path_mtu: Option<usize>,
) -> TransportChoice {
    let limit = match path_mtu {
        // RFC 3261 §18.1.1: "within 200 bytes of the path MTU".
        Some(mtu) => mtu.saturating_sub(MTU_HEADROOM),
        None => UNKNOWN_MTU_LIMIT,
    };
    if wanted == TransportKind::Udp && request_len > limit {
        TransportChoice {
            transport: TransportKind::Tcp,
            switched: true,
        }
    } else {
        TransportChoice {
            transport: wanted,
            switched: false,
        }
    }
}

/// What the server transport adds to the top Via of a request it received
/// (RFC 3261 §18.2.1, RFC 3581 §4). Its [`Display`](fmt::Display) form is
/// the parameters to append: `;received=192.0.2.4;rport=5060`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ViaStamp {
    /// The `received` parameter to add: the packet's source address.
    pub received: Option<IpAddr>,
    /// The value to give the `rport` parameter that the client sent without
    /// one: the packet's source port.
    pub rport: Option<u16>,
}

impl ViaStamp {
    /// Whether nothing is to be added.
    pub fn is_empty(&self) -> bool {
        self.received.is_none() && self.rport.is_none()
    }
}

impl fmt::Display for ViaStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = self.received {
            // RFC 3261 §25: received = IPv4address / IPv6address, no brackets.
            write!(f, ";received={ip}")?;
        }
        if let Some(port) = self.rport {
            write!(f, ";rport={port}")?;
        }
        Ok(())
    }
}

/// What the server transport must add to `via`, the top Via of a request
/// that arrived from `source`.
///
/// RFC 3261 §18.2.1: "If the host portion of the "sent-by" parameter
/// contains a domain name, or if it contains an IP address that differs
/// from the packet source address, the server MUST add a "received"
/// parameter". RFC 3581 §4: when the Via has `rport` without a value, the
/// server adds `rport` with the source port and adds `received` "even if
/// it is identical to the value of the sent-by component".
///
/// The transport does not rewrite the request: it hands the bytes up as
/// received, with the [`Source`]. The layer that copies the Via into a
/// response appends this stamp to it, and [`response_destination`] reads
/// the same values from the source when the response's Via lacks them.
///
/// ```
/// use cpimgate_sip::codec::Via;
/// use cpimgate_sip::transport::via_stamp;
/// // RFC 3261 §18.2.1 example.
/// let via = Via::parse("SIP/2.0/UDP bobspc.biloxi.com:5060").unwrap();
/// let stamp = via_stamp(&via, "192.0.2.4:5060".parse().unwrap());
/// assert_eq!(stamp.to_string(), ";received=192.0.2.4");
/// ```
pub fn via_stamp(via: &Via<'_>, source: SocketAddr) -> ViaStamp {
    let source_ip = source.ip().to_canonical();
    let rport_asked = via.rport() == Some(None);
    let same_ip = parse_host_ip(via.host()).is_some_and(|ip| ip.to_canonical() == source_ip);
    ViaStamp {
        received: (rport_asked || !same_ip).then_some(source_ip),
        rport: rport_asked.then_some(source.port()),
    }
}

/// A sent-by or maddr host as an IP address: IPv4 dotted, or an IPv6
/// reference with or without its brackets.
pub fn parse_host_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// Where a response goes: an address, or a host that RFC 3263 §5 resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseTarget {
    /// Send to this address.
    Addr(SocketAddr),
    /// Resolve this host name with the server procedures of RFC 3263 §5
    /// (the port is the one to use when the lookup gives none).
    Resolve {
        /// The host name, from sent-by or maddr.
        host: String,
        /// The port from sent-by, or the transport's default.
        port: u16,
    },
}

/// Where and how to send a response, by RFC 3261 §18.2.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseDestination {
    /// The transport of the top Via.
    pub transport: TransportKind,
    /// For a reliable transport: the connection the request came in on,
    /// to be used while it is open.
    pub conn: Option<ConnId>,
    /// Where to send (reliable transport: where to open a new connection
    /// if `conn` is gone).
    pub target: ResponseTarget,
    /// For a multicast `maddr`: the TTL to send with (`ttl`, or 1).
    pub multicast_ttl: Option<u8>,
}

/// Why a response has nowhere to go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DestinationError {
    /// Happens when the top Via names a transport this element does not
    /// implement (SCTP, WS...).
    #[error("Via transport {0} is not supported")]
    UnsupportedTransport(String),
    /// Happens when the `received` parameter is not an IP address.
    #[error("Via received={0} is not an IP address")]
    BadReceived(String),
}

/// Where the response whose top Via is `via` goes (RFC 3261 §18.2.2,
/// RFC 3581 §4), for a request that came from `source`.
///
/// * Reliable transport (TCP, TLS): the connection the request came in on
///   (`source.conn`) while it is open; else a new connection to
///   `received` (or the source address) at the sent-by port, or to
///   sent-by itself.
/// * Otherwise with `maddr`: that address at the sent-by port, with `ttl`
///   for a multicast group.
/// * Otherwise with `received`: that address, at the `rport` port when the
///   client asked for it (RFC 3581 §4), else at the sent-by port.
/// * Otherwise sent-by.
///
/// A port absent from sent-by is the transport's default (5060, or 5061
/// for TLS, RFC 3261 §18.1.1, §19.1.2). The Via may lack `received` and
/// `rport` (the TU copied the request's Via unchanged): they are then
/// computed from `source` with [`via_stamp`].
///
/// ```
/// use cpimgate_sip::codec::Via;
/// use cpimgate_sip::transport::{response_destination, ResponseTarget};
/// let via = Via::parse("SIP/2.0/UDP 10.1.1.1:4540;received=192.0.2.1;rport=9988;branch=z9hG4bKkjshdyff").unwrap();
/// let d = response_destination(&via, None).unwrap();
/// assert_eq!(d.target, ResponseTarget::Addr("192.0.2.1:9988".parse().unwrap()));
/// ```
pub fn response_destination(
    via: &Via<'_>,
    source: Option<&Source>,
) -> Result<ResponseDestination, DestinationError> {
    let transport = TransportKind::from_via(via.transport())
        .ok_or_else(|| DestinationError::UnsupportedTransport(via.transport().to_owned()))?;
    let stamp = source.map(|s| via_stamp(via, s.peer)).unwrap_or_default();
    let received = match via.received() {
        Some(r) => Some(parse_host_ip(r).ok_or_else(|| DestinationError::BadReceived(r.into()))?),
        None => stamp.received,
    };
    let rport = match via.rport() {
        Some(Some(port)) => Some(port),
        Some(None) => stamp.rport,
        None => None,
    };
    let sent_by_port = via.port().unwrap_or(transport.default_port());
    let sent_by = || match parse_host_ip(via.host()) {
        Some(ip) => ResponseTarget::Addr(SocketAddr::new(ip, sent_by_port)),
        None => ResponseTarget::Resolve {
            host: via.host().to_owned(),
            port: sent_by_port,
        },
    };

    // RFC 3261 §18.2.2, first bullet: reliable transports answer on the
    // request's connection, else connect to received at the sent-by port.
    if transport.is_reliable() {
        let target = match received {
            Some(ip) => ResponseTarget::Addr(SocketAddr::new(ip, sent_by_port)),
            None => sent_by(),
        };
        return Ok(ResponseDestination {
            transport,
            conn: source.and_then(|s| s.conn),
            target,
            multicast_ttl: None,
        });
    }
    // Second bullet: maddr.
    if let Some(maddr) = via.maddr() {
        let port = via.port().unwrap_or(5060);
        let (target, ttl) = match parse_host_ip(maddr) {
            Some(ip) => (
                ResponseTarget::Addr(SocketAddr::new(ip, port)),
                ip.is_multicast().then(|| via.ttl().unwrap_or(1)),
            ),
            None => (
                ResponseTarget::Resolve {
                    host: maddr.to_owned(),
                    port,
                },
                None,
            ),
        };
        return Ok(ResponseDestination {
            transport,
            conn: None,
            target,
            multicast_ttl: ttl,
        });
    }
    // Third bullet, with RFC 3581 §4: received, at rport when asked for.
    let target = match received {
        Some(ip) => ResponseTarget::Addr(SocketAddr::new(
            ip,
            rport.unwrap_or(via.port().unwrap_or(5060)),
        )),
        // Fourth bullet: sent-by.
        None => sent_by(),
    };
    Ok(ResponseDestination {
        transport,
        conn: None,
        target,
        multicast_ttl: None,
    })
}

/// RFC 3261 §18.1.2: whether the top Via of a received response carries a
/// sent-by that this element puts in its requests; a response for which
/// this is false "MUST be silently discarded".
///
/// `ours` lists the (host, port) pairs this element writes; a port of
/// `None` there or in the Via stands for the transport's default. Hosts
/// compare without regard to case, IP addresses by value.
pub fn sent_by_is_ours(via: &Via<'_>, ours: &[(&str, Option<u16>)]) -> bool {
    let Some(kind) = TransportKind::from_via(via.transport()) else {
        return false;
    };
    let default = kind.default_port();
    let port = via.port().unwrap_or(default);
    let via_ip = parse_host_ip(via.host());
    ours.iter().any(|&(host, p)| {
        let host_matches = match (via_ip, parse_host_ip(host)) {
            (Some(a), Some(b)) => a.to_canonical() == b.to_canonical(),
            _ => host.eq_ignore_ascii_case(via.host()),
        };
        host_matches && p.unwrap_or(default) == port
    })
}

#[cfg(test)]
mod tests;
