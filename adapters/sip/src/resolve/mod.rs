//! Locating SIP servers (RFC 3263 §4): from a SIP or SIPS URI to the
//! ordered list of (transport, address, port) to send a request to.
//!
//! Two layers, like the rest of the stack:
//!
//! * [`Resolution`], sans-IO: it takes the URI and the transports this
//!   element can use, asks for DNS records ([`Resolution::poll_query`]),
//!   takes the answers ([`Resolution::handle_answer`]) and, once nothing
//!   is left to ask, gives the [`Target`]s in the order to try them
//!   ([`Resolution::finish`], with the random choice of RFC 2782 injected).
//! * [`Resolver`], the async driver on hickory-resolver: it asks the
//!   queries of a resolution (those of one step at once), with hickory's
//!   TTL-respecting cache, and is what the MESSAGE UAC (and a REGISTER
//!   client, INVITE dialogs) call: [`Resolver::resolve`].
//!
//! # The rules
//!
//! | the URI | transport (§4.1) | address and port (§4.2) |
//! | --- | --- | --- |
//! | numeric IP (or `localhost`) | `transport` param, else UDP (TLS for `sips:`) | that address, the URI's port or the transport's default; no DNS |
//! | a name with a port | `transport` param, else UDP (TLS for `sips:`) | A/AAAA of the name, at that port |
//! | a name, a `transport` param, no port | that transport | SRV `_sip._udp`, `_sip._tcp` or `_sips._tcp` of the name, else A/AAAA at the default port |
//! | a name alone | NAPTR of the name: `SIP+D2U`, `SIP+D2T`, `SIPS+D2T` kept when the gateway has the transport (only `SIPS+D2T` for `sips:`), by order then preference, each `s` record naming an SRV name | SRV of each kept NAPTR, else (no usable NAPTR) SRV `_sips._tcp`, `_sip._tcp`, `_sip._udp` in the gateway's preference order; else A/AAAA at the default port of UDP (TLS for `sips:`) |
//!
//! Within one SRV set, records are ordered by priority, and by the
//! weighted random choice of RFC 2782 within a priority; each SRV target
//! gives its A/AAAA addresses in turn. Every address is a [`Target`], and
//! the caller tries them in order, moving on after a transport error, a
//! timeout (timer B or F) or a 503 (§4.3), with a new transaction.
//!
//! The name a TLS server's certificate must carry is the domain of the
//! URI, not the host an SRV or NAPTR record names (RFC 5922 §4: the
//! identity checked is the SIP domain the request is for).
//!
//! ```
//! use cpimgate_sip::resolve::{Answer, Query, Resolution, SrvRecord};
//! use cpimgate_sip::transport::TransportKind;
//! let uri = "sip:bob@example.com;transport=tcp".parse().unwrap();
//! let mut r = Resolution::new(&uri, &[TransportKind::Tcp, TransportKind::Udp]).unwrap();
//! // An explicit transport: no NAPTR, the SRV name of that transport.
//! let q = r.poll_query().unwrap();
//! assert_eq!(q, Query::Srv("_sip._tcp.example.com.".into()));
//! let srv = SrvRecord { priority: 0, weight: 0, port: 5070, target: "sip1.example.com.".into() };
//! r.handle_answer(&q, Ok(Answer::Srv(vec![srv])));
//! let q = r.poll_query().unwrap();
//! assert_eq!(q, Query::Addresses("sip1.example.com.".into()));
//! r.handle_answer(&q, Ok(Answer::Addresses(vec!["192.0.2.7".parse().unwrap()])));
//! assert!(r.poll_query().is_none());
//! let targets = r.finish(&mut |_| 0).unwrap();
//! assert_eq!(targets[0].addr, "192.0.2.7:5070".parse().unwrap());
//! assert_eq!(targets[0].tls_name.as_deref(), Some("example.com"));
//! ```

mod dns;
mod select;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use crate::transport::{Destination, TransportKind};

pub use self::dns::Resolver;
pub use self::select::{Answer, NaptrRecord, Query, Resolution, SrvRecord, order_srv};

/// One place to send a request to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The transport to use.
    pub transport: TransportKind,
    /// The address and port.
    pub addr: SocketAddr,
    /// The name the server's certificate must carry when the transport is
    /// TLS: the domain of the URI (RFC 5922 §4); `None` for a URI with a
    /// numeric IP address (the address is checked).
    pub tls_name: Option<String>,
}

impl Target {
    /// The transport destination of this target.
    pub fn destination(&self) -> Destination {
        let d = Destination::new(self.transport, self.addr);
        match (&self.tls_name, self.transport) {
            (Some(name), TransportKind::Tls) => d.with_tls_name(name.clone()),
            _ => d,
        }
    }
}

/// Why a URI has no target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// Happens when the `transport` parameter names a transport this
    /// element does not implement (SCTP, WS...), or one that cannot carry
    /// a `sips:` URI (UDP).
    #[error("{uri}: transport {transport} is not supported")]
    UnsupportedTransport {
        /// The URI.
        uri: String,
        /// The transport it names.
        transport: String,
    },
    /// Happens when the URI asks for a transport the gateway is not set up
    /// for: UDP without a UDP listener, TLS without TLS settings
    /// (`tls_ca`, `tls_cert` or a TLS listener).
    #[error("{uri}: the gateway is not set up for {transport}")]
    TransportUnavailable {
        /// The URI.
        uri: String,
        /// The transport it needs.
        transport: TransportKind,
    },
    /// Happens when DNS knows the domain by no NAPTR, SRV, A or AAAA record
    /// the gateway can use (the name does not exist, or has no address,
    /// or its SRV records say the service is not available there).
    #[error("{domain}: no SIP server found in DNS (no usable NAPTR, SRV, A or AAAA records)")]
    NoRecords {
        /// The domain of the URI.
        domain: String,
    },
    /// Happens when the DNS servers could not be asked or failed to
    /// answer (timeout, SERVFAIL, REFUSED) and no target was found
    /// otherwise: worth trying again later.
    #[error("{domain}: DNS lookup failed: {reason}")]
    Lookup {
        /// The domain of the URI.
        domain: String,
        /// What failed, query by query.
        reason: String,
    },
    /// Happens when a name must be resolved but the resolver could not be
    /// set up (the system's `/etc/resolv.conf` unreadable and no
    /// `dns_servers` configured).
    #[error("no DNS resolver: {reason}")]
    NoResolver {
        /// Why it could not be set up.
        reason: String,
    },
}

impl ResolveError {
    /// Whether trying again later may succeed (a DNS server that did not
    /// answer), as opposed to an answer that says there is no server.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ResolveError::Lookup { .. } | ResolveError::NoResolver { .. }
        )
    }
}
