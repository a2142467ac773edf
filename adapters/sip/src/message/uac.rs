//! The MESSAGE UAC (RFC 3428 §4, §8): the request a model message
//! becomes, what its final response means, and the per-destination queue
//! that keeps one transaction pending per Request-URI.

use std::collections::{HashMap, VecDeque};

use cpimgate_model::Message;
use cpimgate_model::address::Address;
use cpimgate_model::port::{DeliveryOutcome, Failure, FailureKind};
use cpimgate_model::time::Timestamp;

use super::date::format_sip_date;
use crate::codec::{BuildError, OwnedMessage};
use crate::transport::TransportKind;

/// Everything of a MESSAGE request but the model message.
#[derive(Debug, Clone)]
pub struct RequestParts<'a> {
    /// The Request-URI (and To).
    pub uri: &'a str,
    /// From, with its tag: the sender's gateway address.
    pub from: &'a str,
    /// The From tag.
    pub from_tag: &'a str,
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq number.
    pub cseq: u32,
    /// The transport the top Via names.
    pub transport: TransportKind,
    /// The Via sent-by, `host:port`.
    pub sent_by: &'a str,
    /// The Via branch.
    pub branch: &'a str,
    /// A Route to the outbound proxy (`<sip:...;lr>`), if any.
    pub route: Option<&'a str>,
    /// An Authorization or Proxy-Authorization header, if any.
    pub authorization: Option<(&'static str, &'a str)>,
    /// The current time, for Date and Expires.
    pub now: Timestamp,
}

/// The MESSAGE for `message` (RFC 3428 §4, RFC 3261 §8.1.1): no Contact;
/// a `message/cpim` body when the message came as CPIM (its bytes
/// unchanged, RFC 3428 §11.5), else the content as it is typed in the
/// model (text/plain from the chat worlds); Expires and Date when the
/// message has an expiry (RFC 3428 §4).
pub fn build_request(message: &Message, p: &RequestParts<'_>) -> Result<OwnedMessage, BuildError> {
    let mut r = OwnedMessage::request("MESSAGE", p.uri)?;
    r.push_header(
        "Via",
        &format!(
            "SIP/2.0/{} {};branch={};rport",
            p.transport.as_via_str(),
            p.sent_by,
            p.branch
        ),
    )?;
    r.push_header("Max-Forwards", "70")?;
    if let Some(route) = p.route {
        r.push_header("Route", route)?;
    }
    r.push_header("From", &format!("{};tag={}", p.from, p.from_tag))?;
    r.push_header("To", &format!("<{}>", p.uri))?;
    r.push_header("Call-ID", p.call_id)?;
    r.push_header("CSeq", &format!("{} MESSAGE", p.cseq))?;
    if let Some((name, value)) = p.authorization {
        r.push_header(name, value)?;
    }
    if let Some(expires) = message.expires {
        let left = (expires.unix_micros - p.now.unix_micros).max(0) / 1_000_000;
        r.push_header("Date", &format_sip_date(p.now))?;
        r.push_header("Expires", &left.to_string())?;
    }
    match &message.cpim {
        Some(cpim) => {
            r.push_header("Content-Type", "message/cpim")?;
            r.set_body(cpim.0.clone());
        }
        None => {
            r.push_header("Content-Type", &message.content_type)?;
            r.set_body(message.body.0.clone());
        }
    }
    Ok(r)
}

/// The gateway address of a sender of another world, as a From value:
/// `<sip:escaped@domain>` with its display name (DESIGN.md "Addressing").
/// A SIP sender keeps its own URI.
pub fn from_value(message: &Message, domain: &str) -> Result<String, Failure> {
    from_value_of(
        &message.from.address,
        message.from.display.as_deref(),
        domain,
    )
}

/// [`from_value`] for an address and display name.
pub fn from_value_of(
    address: &Address,
    display: Option<&str>,
    domain: &str,
) -> Result<String, Failure> {
    let uri = match address {
        a @ Address::Sip(_) => a.to_string(),
        a => a
            .to_gateway_sip(domain)
            .map_err(|e| {
                Failure::new(
                    FailureKind::Rejected,
                    format!("{a} has no SIP address on {domain}: {e}"),
                )
            })?
            .to_string(),
    };
    Ok(match display {
        Some(d) if !d.is_empty() => {
            let quoted: String = d
                .chars()
                .filter(|c| !c.is_control())
                .flat_map(|c| match c {
                    '"' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            format!("\"{quoted}\" <{uri}>")
        }
        _ => format!("<{uri}>"),
    })
}

/// What a final response to a MESSAGE means (RFC 3428 §4, §7): 200 that
/// it reached its recipient, 202 that a relay took it; 4xx/5xx/6xx a
/// failure whose kind the origin world is told. 408, 480 and 503 are
/// worth trying again later.
pub fn outcome_of(code: u16, reason: &str) -> DeliveryOutcome {
    let kind = match code {
        202 => return DeliveryOutcome::Accepted,
        200..=299 => return DeliveryOutcome::Delivered,
        404 | 410 | 484 | 604 => FailureKind::NotFound,
        401 | 403 | 407 | 603 => FailureKind::Forbidden,
        413 | 513 => FailureKind::TooLarge,
        415 => FailureKind::UnsupportedType,
        408 => FailureKind::Timeout,
        480 | 502 | 504 => FailureKind::Unreachable,
        503 => FailureKind::Overloaded,
        _ => FailureKind::Rejected,
    };
    DeliveryOutcome::Failed(Failure::new(kind, format!("SIP {code} {reason}")))
}

/// One queue per Request-URI, so that never two out-of-dialog MESSAGE
/// transactions are pending for the same URI (RFC 3428 §8), and messages
/// to one URI leave in the order the hub gave them.
///
/// ```
/// use cpimgate_sip::message::DestinationQueues;
/// let mut q = DestinationQueues::default();
/// assert_eq!(q.push("sip:a@x", 1), Some(1)); // nothing pending: send now
/// assert_eq!(q.push("sip:a@x", 2), None);    // waits behind 1
/// assert_eq!(q.push("sip:b@x", 3), Some(3)); // another URI
/// assert_eq!(q.finish("sip:a@x"), Some(2));  // 1 is done: 2 goes
/// assert_eq!(q.finish("sip:a@x"), None);
/// assert_eq!(q.pending(), 1);
/// ```
#[derive(Debug)]
pub struct DestinationQueues<T> {
    queues: HashMap<String, VecDeque<T>>,
}

impl<T> Default for DestinationQueues<T> {
    fn default() -> Self {
        DestinationQueues {
            queues: HashMap::new(),
        }
    }
}

impl<T> DestinationQueues<T> {
    /// Queues `item` for `uri`; gives it back when nothing is pending for
    /// that URI (send it now, then [`finish`](Self::finish) when its
    /// transaction ends).
    pub fn push(&mut self, uri: &str, item: T) -> Option<T> {
        match self.queues.get_mut(uri) {
            Some(waiting) => {
                waiting.push_back(item);
                None
            }
            None => {
                self.queues.insert(uri.to_owned(), VecDeque::new());
                Some(item)
            }
        }
    }

    /// The pending transaction for `uri` ended: the next item to send, if
    /// any (it is now the pending one).
    pub fn finish(&mut self, uri: &str) -> Option<T> {
        let waiting = self.queues.get_mut(uri)?;
        match waiting.pop_front() {
            Some(next) => Some(next),
            None => {
                self.queues.remove(uri);
                None
            }
        }
    }

    /// The pending transaction for `uri` ended in a failure that will be
    /// retried: everything waiting behind it, which must fail the same way
    /// so that the retries keep their order.
    pub fn fail_all(&mut self, uri: &str) -> Vec<T> {
        self.queues.remove(uri).map(Vec::from).unwrap_or_default()
    }

    /// How many URIs have a pending transaction.
    pub fn pending(&self) -> usize {
        self.queues.len()
    }

    /// Everything waiting, for shutdown.
    pub fn drain(&mut self) -> Vec<T> {
        self.queues.drain().flat_map(|(_, q)| q).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cpimgate_model::address::NameAddr;
    use cpimgate_model::{Origin, World};

    fn message() -> Message {
        let origin = Origin {
            world: World::Xmpp,
            adapter: "xmpp".into(),
            native_id: None,
        };
        Message::text(
            origin,
            NameAddr::new("im:alice@xmpp.example.org".parse().unwrap()),
            NameAddr::new("sip:bob@192.0.2.4".parse().unwrap()),
            "hello",
        )
    }

    fn parts<'a>(now: Timestamp) -> RequestParts<'a> {
        RequestParts {
            uri: "sip:bob@192.0.2.4",
            from: "<sip:alice%40xmpp.example.org@gw.example.com>",
            from_tag: "t1",
            call_id: "c1@gw.example.com",
            cseq: 1,
            transport: TransportKind::Udp,
            sent_by: "192.0.2.1:5060",
            branch: "z9hG4bKabc",
            route: None,
            authorization: None,
            now,
        }
    }

    #[test]
    fn a_text_message_without_contact() {
        let m = message();
        let from = from_value(&m, "gw.example.com").unwrap();
        assert_eq!(from, "<sip:alice%40xmpp.example.org@gw.example.com>");
        let r = build_request(&m, &parts(Timestamp::now())).unwrap();
        let bytes = r.to_bytes();
        let parsed = crate::codec::parse(&bytes).unwrap();
        parsed.validate_request().unwrap();
        assert!(parsed.contact().unwrap().is_none(), "RFC 3428 §4");
        assert_eq!(parsed.body(), b"hello");
        assert_eq!(r.get("Content-Type"), Some("text/plain;charset=utf-8"));
        assert!(r.get("Expires").is_none());
    }

    #[test]
    fn cpim_goes_through_unchanged_and_expiry_is_written() {
        let mut m = message();
        let raw = "From: <im:alice@xmpp.example.org>\r\nTo: <sip:bob@192.0.2.4>\r\n\r\nContent-Type: text/plain\r\n\r\nhi";
        m.cpim = Some(raw.into());
        let now = Timestamp::parse_rfc3339("2010-11-13T23:29:00Z").unwrap();
        m.expires = Some(now.plus(std::time::Duration::from_secs(60)));
        let r = build_request(&m, &parts(now)).unwrap();
        assert_eq!(r.get("Content-Type"), Some("message/cpim"));
        assert_eq!(r.body().as_ref(), raw.as_bytes());
        assert_eq!(r.get("Expires"), Some("60"));
        assert_eq!(r.get("Date"), Some("Sat, 13 Nov 2010 23:29:00 GMT"));
    }

    #[test]
    fn display_names_are_quoted() {
        let mut m = message();
        m.from.display = Some("Al \"the\" ice".into());
        assert_eq!(
            from_value(&m, "gw").unwrap(),
            r#""Al \"the\" ice" <sip:alice%40xmpp.example.org@gw>"#
        );
    }

    #[test]
    fn outcomes() {
        assert_eq!(outcome_of(200, "OK"), DeliveryOutcome::Delivered);
        assert_eq!(outcome_of(202, "Accepted"), DeliveryOutcome::Accepted);
        let kind = |c| match outcome_of(c, "x") {
            DeliveryOutcome::Failed(f) => f.kind,
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(404), FailureKind::NotFound);
        assert_eq!(kind(603), FailureKind::Forbidden);
        assert_eq!(kind(415), FailureKind::UnsupportedType);
        assert_eq!(kind(503), FailureKind::Overloaded);
        assert_eq!(kind(486), FailureKind::Rejected);
        assert_eq!(kind(600), FailureKind::Rejected);
    }

    #[test]
    fn queues_fail_behind_a_transient_failure() {
        let mut q = DestinationQueues::default();
        assert_eq!(q.push("u", 1), Some(1));
        assert_eq!(q.push("u", 2), None);
        assert_eq!(q.push("u", 3), None);
        assert_eq!(q.fail_all("u"), vec![2, 3]);
        assert_eq!(q.push("u", 4), Some(4));
    }
}
