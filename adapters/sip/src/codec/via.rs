//! The Via header field (RFC 3261 §20.42, §18.2.1) with the `rport`
//! parameter of RFC 3581 §4.
//!
//! ```text
//! via-parm      = sent-protocol LWS sent-by *( SEMI via-params )
//! sent-protocol = protocol-name SLASH protocol-version SLASH transport
//! sent-by       = host [ COLON port ]
//! response-port = "rport" [EQUAL 1*DIGIT]                 ; RFC 3581 §4
//! ```

use super::headers::{Params, TrimLws, find_byte, split_byte};

/// One Via value, borrowed.
///
/// ```
/// use cpimgate_sip::codec::Via;
/// // RFC 3261 §20.42: LWS around '/' and ':' is allowed.
/// let v = Via::parse("SIP / 2.0 / UDP first.example.com: 4000;ttl=16 ;maddr=224.2.0.1 ;branch=z9hG4bKa7c6a8dlze.1").unwrap();
/// assert_eq!(v.transport(), "UDP");
/// assert_eq!((v.host(), v.port()), ("first.example.com", Some(4000)));
/// assert_eq!(v.branch(), Some("z9hG4bKa7c6a8dlze.1"));
/// assert_eq!(v.params().get("maddr"), Some(Some("224.2.0.1")));
/// // RFC 3581 §4: rport without a value in a request, with one once filled.
/// let v = Via::parse("SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff").unwrap();
/// assert_eq!(v.rport(), Some(None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    protocol: &'a str,
    version: &'a str,
    transport: &'a str,
    host: &'a str,
    port: Option<u16>,
    params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Reads one via-parm (not a comma-separated list).
    pub fn parse(value: &'a str) -> Result<Self, &'static str> {
        let t = value.trim_lws();
        let (protocol, rest) = split_byte(t, b'/').ok_or("no '/' in sent-protocol")?;
        let (version, rest) = split_byte(rest, b'/').ok_or("no transport in sent-protocol")?;
        let protocol = protocol.trim_lws();
        let version = version.trim_lws();
        if !super::headers::is_token(protocol) || !super::headers::is_token(version) {
            return Err("sent-protocol is not name/version/transport");
        }
        let rest = rest.trim_lws_start();
        let tlen = rest
            .bytes()
            .take_while(|&b| super::headers::is_token_byte(b))
            .count();
        if tlen == 0 {
            return Err("no transport in sent-protocol");
        }
        let (transport, rest) = rest.split_at(tlen);
        let after = rest.trim_lws_start();
        if after.len() == rest.len() {
            return Err("no white space before sent-by");
        }
        let end = find_byte(after, b';').unwrap_or(after.len());
        let (sent_by, params) = after.split_at(end);
        let sent_by = sent_by.trim_lws();
        let (host, port) = split_host_port(sent_by)?;
        Ok(Via {
            protocol,
            version,
            transport,
            host,
            port,
            params: Params::new(params),
        })
    }

    /// protocol-name, `SIP`.
    pub fn protocol(&self) -> &'a str {
        self.protocol
    }

    /// protocol-version, `2.0`.
    pub fn version(&self) -> &'a str {
        self.version
    }

    /// The transport as written: `UDP`, `TCP`, `TLS`, `SCTP` or an
    /// extension (compare without regard to case).
    pub fn transport(&self) -> &'a str {
        self.transport
    }

    /// The host of sent-by: a name, an IPv4 address or an IPv6 reference
    /// with its brackets.
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// The port of sent-by when written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Every parameter.
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// The `branch` parameter (RFC 3261 §8.1.1.7).
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch").flatten()
    }

    /// The `received` parameter (RFC 3261 §18.2.1).
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").flatten()
    }

    /// The `rport` parameter of RFC 3581 §4: `None` when absent,
    /// `Some(None)` when present without value (a request asking for
    /// it), `Some(Some(port))` when filled in. A value that is not a port
    /// reads as absent.
    pub fn rport(&self) -> Option<Option<u16>> {
        match self.params.get("rport")? {
            None => Some(None),
            Some(v) => v.parse().ok().map(Some),
        }
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.get("maddr").flatten()
    }

    /// The `ttl` parameter.
    pub fn ttl(&self) -> Option<u8> {
        self.params
            .get("ttl")
            .flatten()
            .and_then(|v| v.parse().ok())
    }
}

/// host [ COLON port ], with LWS allowed around the colon (RFC 3261
/// §20.42).
fn split_host_port(s: &str) -> Result<(&str, Option<u16>), &'static str> {
    let (host, port) = if s.starts_with('[') {
        let close = find_byte(s, b']').ok_or("no ']' closing an IPv6 reference")?;
        let (h, rest) = s.split_at(close + 1);
        let rest = rest.trim_lws_start();
        match rest.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if rest.is_empty() => (h, None),
            None => return Err("text after the IPv6 reference"),
        }
    } else {
        match split_byte(s, b':') {
            Some((h, p)) => (h.trim_lws_end(), Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
    {
        return Err("sent-by host is not a host name or address");
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.trim_lws_start()
                .parse::<u16>()
                .map_err(|_| "sent-by port is not a number from 0 to 65535")?,
        ),
    };
    Ok((host, port))
}
