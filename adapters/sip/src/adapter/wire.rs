//! What the driver reads off the wire and where it sends: the transport
//! settings of a [`SipConfig`], the transports next hops may use, request
//! summaries for the transaction layer and response destinations
//! (RFC 3261 §18.2.2). The request and response helpers serve every
//! user agent built on this stack (the MSRP adapter's SIP side too).

use std::time::Duration;

use crate::codec::{self, HeaderName};
use crate::config::SipConfig;
use crate::transaction::{Method, RequestSummary, ResponseSummary};
use crate::transport::{
    Destination, ListenerConfig, ResponseTarget, Source, TlsConfig, TransportConfig, TransportKind,
    response_destination,
};

/// The transport layer's settings from the adapter's.
pub(super) fn transport_config(config: &SipConfig) -> TransportConfig {
    let mut listeners = Vec::new();
    for (kind, addrs) in [
        (TransportKind::Udp, &config.udp),
        (TransportKind::Tcp, &config.tcp),
        (TransportKind::Tls, &config.tls),
    ] {
        listeners.extend(addrs.iter().map(|a| ListenerConfig::new(kind, *a)));
    }
    let tls = (!config.tls.is_empty() || config.tls_ca.is_some() || config.tls_cert.is_some())
        .then(|| TlsConfig {
            cert_chain: config.tls_cert.clone(),
            private_key: config.tls_key.clone(),
            ca_file: config.tls_ca.clone(),
            use_system_roots: true,
            require_client_cert: config.tls_require_client_cert,
        });
    let mut limits = codec::Limits::default();
    // Room for the headers around the largest body taken, so that an
    // oversize body is answered 413 rather than cut by the transport.
    limits.max_message = limits.max_message.max(config.max_message_size + 16 * 1024);
    TransportConfig {
        listeners,
        tls,
        limits,
        max_connections: config.max_connections,
        max_connections_per_ip: config.max_connections_per_ip,
        idle_timeout: Duration::from_millis(config.idle_timeout_ms),
        message_timeout: Duration::from_millis(config.message_timeout_ms),
        write_timeout: Duration::from_millis(config.write_timeout_ms),
        send_queue: config.send_queue,
        ..TransportConfig::default()
    }
}

/// The transports the gateway can send requests over, preferred first
/// (the order of RFC 3263 §4.1 SRV queries without NAPTR records): TLS
/// when it has TLS settings, TCP always (it opens connections), UDP when
/// it has a UDP socket to send from.
pub(super) fn usable_transports(config: &TransportConfig) -> Vec<TransportKind> {
    let mut kinds = Vec::new();
    if config.tls.is_some() {
        kinds.push(TransportKind::Tls);
    }
    kinds.push(TransportKind::Tcp);
    if config
        .listeners
        .iter()
        .any(|l| l.transport == TransportKind::Udp)
    {
        kinds.push(TransportKind::Udp);
    }
    kinds
}

/// Where the responses of a request go (RFC 3261 §18.2.2), as a
/// transport destination; the packet's source when the Via names a host
/// to resolve.
pub fn reply_destination(via: &codec::Via<'_>, source: &Source) -> Destination {
    match response_destination(via, Some(source)) {
        Ok(d) => match d.target {
            ResponseTarget::Addr(addr) => Destination {
                transport: d.transport,
                addr,
                conn: d.conn,
                local: Some(source.local),
                tls_name: None,
            },
            _ => Destination::reply_to(source),
        },
        Err(_) => Destination::reply_to(source),
    }
}

/// The header section of `bytes` (up to the blank line, or to the last
/// complete line when there is none) without its Content-Length, ended
/// with `Content-Length: 0` and the blank line: what can still be read of
/// a message whose body or framing was wrong, to answer it.
pub fn readable_head(bytes: &[u8]) -> Option<Vec<u8>> {
    let end = match bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => i + 2,
        None => bytes.windows(2).rposition(|w| w == b"\r\n")? + 2,
    };
    let mut out = Vec::with_capacity(end + 24);
    let mut dropping = false;
    for line in bytes[..end].split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        // A folded continuation belongs to the header before it.
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if !dropping {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            continue;
        }
        let name = line
            .iter()
            .position(|&b| b == b':')
            .map(|i| line[..i].trim_ascii());
        dropping = name.is_some_and(|n| {
            n.eq_ignore_ascii_case(b"content-length") || n.eq_ignore_ascii_case(b"l")
        });
        if !dropping {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Some(out)
}

/// The least of `bytes` a response can be built from when even
/// [`readable_head`] does not parse (a NUL or bytes that are not UTF-8 in
/// some header): the start line and the headers a response copies
/// (RFC 3261 §8.2.6.2: Via, From, To, Call-ID, CSeq, and their compact
/// forms), with invalid UTF-8 replaced by U+FFFD and control characters
/// other than tab by spaces. The response can then tell the sender what
/// was wrong (400) rather than leave it to time out.
pub fn answerable_head(bytes: &[u8]) -> Option<Vec<u8>> {
    let head = readable_head(bytes)?;
    let text = String::from_utf8_lossy(&head);
    let mut out = String::with_capacity(text.len());
    let mut keeping = true;
    for (i, line) in text.split("\r\n").enumerate() {
        if line.is_empty() {
            break;
        }
        if i > 0 {
            if line.starts_with([' ', '\t']) {
                if !keeping {
                    continue;
                }
            } else {
                let name = line.split(':').next().unwrap_or_default().trim();
                keeping = ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"]
                    .iter()
                    .any(|n| name.eq_ignore_ascii_case(n));
                if !keeping {
                    continue;
                }
            }
        }
        out.extend(
            line.chars()
                .map(|c| if c.is_control() && c != '\t' { ' ' } else { c }),
        );
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

/// What the transaction layer needs of a response: its status and its
/// matching keys (RFC 3261 §17.1.3: the top Via's branch and the CSeq
/// method); `None` without a readable top Via or CSeq.
pub fn response_summary(m: &codec::Message<'_>) -> Option<ResponseSummary> {
    let via = m.top_via().ok()??;
    let cseq = m.cseq().ok()??;
    Some(ResponseSummary {
        status: m.status()?,
        branch: via.branch().map(str::to_owned),
        cseq_method: Method::from(cseq.method),
        to_tag: m
            .to()
            .ok()
            .flatten()
            .and_then(|t| t.tag())
            .map(str::to_owned),
    })
}

/// What the transaction layer needs of a request (its matching keys).
pub fn request_summary(m: &codec::Message<'_>) -> Option<RequestSummary> {
    let via = m.top_via().ok()??;
    let sent_by = match via.port() {
        Some(p) => format!("{}:{p}", via.host()),
        None => via.host().to_owned(),
    };
    let top_via = m.header(HeaderName::Via)?.value();
    let top_via = codec::split_list(top_via).next().unwrap_or(top_via);
    Some(RequestSummary {
        method: Method::from(m.method()?),
        request_uri: m.request_uri()?.to_owned(),
        branch: via.branch().map(str::to_owned),
        sent_by,
        top_via: top_via.to_owned(),
        call_id: m.call_id().ok()??.to_owned(),
        from_tag: m.from().ok()??.tag().map(str::to_owned),
        to_tag: m.to().ok()??.tag().map(str::to_owned),
        cseq: m.cseq().ok()??.seq,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_head_of_a_message_with_a_lying_content_length() {
        let bytes = b"MESSAGE sip:a@gw SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\nl: 999\r\nSubject: a\r\n b\r\n\r\nhello";
        let head = readable_head(bytes).expect("a head");
        assert_eq!(
            head,
            b"MESSAGE sip:a@gw SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\nSubject: a\r\n b\r\nContent-Length: 0\r\n\r\n"
        );
        assert!(readable_head(b"no line end at all").is_none());
    }

    #[test]
    fn the_answerable_head_of_a_message_with_a_nul_and_bad_utf8() {
        let bytes = b"MESSAGE sip:a@gw SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\nFrom: \"caf\xc3\x28\" <sip:b@h>;tag=1\r\nSubject: a\0b\r\n\r\nhello";
        assert!(codec::parse(&readable_head(bytes).unwrap()).is_err());
        let head = answerable_head(bytes).expect("a head");
        assert_eq!(
            String::from_utf8(head.clone()).unwrap(),
            "MESSAGE sip:a@gw SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\nFrom: \"caf\u{fffd}(\" <sip:b@h>;tag=1\r\nContent-Length: 0\r\n\r\n"
        );
        let m = codec::parse(&head).unwrap();
        assert_eq!(m.from().unwrap().unwrap().tag(), Some("1"));
    }

    #[test]
    fn transports_follow_the_settings() {
        let mut c = SipConfig::new("gw.example.com");
        c.tcp.push("127.0.0.1:5060".parse().unwrap());
        assert_eq!(
            usable_transports(&transport_config(&c)),
            [TransportKind::Tcp],
            "no UDP socket to send from, no TLS settings"
        );
        c.udp.push("127.0.0.1:5060".parse().unwrap());
        c.tls_ca = Some("/etc/ssl/ca.pem".into());
        assert_eq!(
            usable_transports(&transport_config(&c)),
            [TransportKind::Tls, TransportKind::Tcp, TransportKind::Udp]
        );
    }
}
