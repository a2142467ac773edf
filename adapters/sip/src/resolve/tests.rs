//! RFC 3263 §4 rule by rule, against fixture zones.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::IpAddr;

use super::*;
use crate::transport::TransportKind::{Tcp, Tls, Udp};

/// A fake zone: answers by query, and the queries asked, in order.
#[derive(Default)]
struct Zone {
    answers: HashMap<Query, Result<Answer, String>>,
    asked: Vec<Query>,
}

impl Zone {
    fn naptr(mut self, name: &str, records: &[(u16, u16, &str, &str, &str)]) -> Self {
        let records = records
            .iter()
            .map(
                |(order, preference, flags, services, replacement)| NaptrRecord {
                    order: *order,
                    preference: *preference,
                    flags: (*flags).into(),
                    services: (*services).into(),
                    replacement: (*replacement).into(),
                },
            )
            .collect();
        self.answers
            .insert(Query::Naptr(name.into()), Ok(Answer::Naptr(records)));
        self
    }

    fn srv(mut self, name: &str, records: &[(u16, u16, u16, &str)]) -> Self {
        let records = records
            .iter()
            .map(|(priority, weight, port, target)| SrvRecord {
                priority: *priority,
                weight: *weight,
                port: *port,
                target: (*target).into(),
            })
            .collect();
        self.answers
            .insert(Query::Srv(name.into()), Ok(Answer::Srv(records)));
        self
    }

    fn host(mut self, name: &str, ips: &[&str]) -> Self {
        let ips = ips.iter().map(|i| i.parse::<IpAddr>().unwrap()).collect();
        self.answers
            .insert(Query::Addresses(name.into()), Ok(Answer::Addresses(ips)));
        self
    }

    fn failing(mut self, q: Query) -> Self {
        self.answers.insert(q, Err("SERVFAIL".into()));
        self
    }

    /// Runs a resolution of `uri` the way the async driver does, step by
    /// step; absent names answer empty (NXDOMAIN).
    fn resolve(
        &mut self,
        uri: &str,
        transports: &[TransportKind],
        pick: &mut dyn FnMut(u32) -> u32,
    ) -> Result<Vec<Target>, ResolveError> {
        let uri = uri.parse().unwrap();
        let mut r = Resolution::new(&uri, transports)?;
        loop {
            let step: Vec<Query> = std::iter::from_fn(|| r.poll_query()).collect();
            if step.is_empty() {
                break;
            }
            for q in step {
                let a = self.answers.get(&q).cloned().unwrap_or(Ok(match &q {
                    Query::Naptr(_) => Answer::Naptr(Vec::new()),
                    Query::Srv(_) => Answer::Srv(Vec::new()),
                    Query::Addresses(_) => Answer::Addresses(Vec::new()),
                }));
                self.asked.push(q.clone());
                r.handle_answer(&q, a);
            }
        }
        assert!(r.is_finished());
        r.finish(pick)
    }
}

const ALL: &[TransportKind] = &[Tls, Tcp, Udp];
const PLAIN: &[TransportKind] = &[Tcp, Udp];

fn summary(targets: &[Target]) -> Vec<String> {
    targets
        .iter()
        .map(|t| format!("{} {}", t.transport, t.addr))
        .collect()
}

fn first(_: u32) -> u32 {
    0
}

// §4.1: "if no transport protocol is specified, but the TARGET is a
// numeric IP address, the client SHOULD use UDP for a SIP URI, and TCP for
// a SIPS URI." §4.2: "If TARGET is a numeric IP address, the client uses
// that address. [...] If no port is specified, it uses the default port
// for the particular transport protocol."
#[test]
fn a_numeric_ip_asks_nothing() {
    let mut z = Zone::default();
    let t = z.resolve("sip:bob@192.0.2.1", ALL, &mut first).unwrap();
    assert_eq!(summary(&t), ["UDP 192.0.2.1:5060"]);
    assert_eq!(t[0].tls_name, None, "an IP literal checks the address");
    let t = z.resolve("sips:bob@192.0.2.1", ALL, &mut first).unwrap();
    assert_eq!(summary(&t), ["TLS 192.0.2.1:5061"]);
    let t = z
        .resolve("sip:bob@[2001:db8::1]:5070;transport=tcp", ALL, &mut first)
        .unwrap();
    assert_eq!(summary(&t), ["TCP [2001:db8::1]:5070"]);
    let t = z
        .resolve("sips:bob@192.0.2.1;transport=tcp", ALL, &mut first)
        .unwrap();
    assert_eq!(summary(&t), ["TLS 192.0.2.1:5061"], "SIPS over TCP is TLS");
    let t = z
        .resolve("sip:bob@localhost:5080", ALL, &mut first)
        .unwrap();
    assert_eq!(summary(&t), ["UDP 127.0.0.1:5080"]);
    assert!(z.asked.is_empty(), "no DNS for literals: {:?}", z.asked);
}

// §4.1: "If the URI specifies a transport protocol in the transport
// parameter, that transport protocol SHOULD be used."
#[test]
fn the_transport_parameter_is_used_or_refused() {
    let mut z = Zone::default();
    let t = z
        .resolve("sip:bob@192.0.2.1;transport=TLS", ALL, &mut first)
        .unwrap();
    assert_eq!(summary(&t), ["TLS 192.0.2.1:5061"]);
    let e = z
        .resolve("sip:bob@192.0.2.1;transport=sctp", ALL, &mut first)
        .unwrap_err();
    assert!(
        matches!(e, ResolveError::UnsupportedTransport { .. }),
        "{e}"
    );
    let e = z
        .resolve("sips:bob@192.0.2.1;transport=udp", ALL, &mut first)
        .unwrap_err();
    assert!(
        matches!(e, ResolveError::UnsupportedTransport { .. }),
        "{e}"
    );
    // The gateway without TLS settings cannot follow a sips: URI.
    let e = z
        .resolve("sips:bob@192.0.2.1", PLAIN, &mut first)
        .unwrap_err();
    assert_eq!(
        e,
        ResolveError::TransportUnavailable {
            uri: "sips:bob@192.0.2.1".into(),
            transport: Tls
        }
    );
    // Without a UDP listener, a default UDP becomes TCP ("another
    // transport, such as TCP, MAY be used").
    let t = z.resolve("sip:bob@192.0.2.1", &[Tcp], &mut first).unwrap();
    assert_eq!(summary(&t), ["TCP 192.0.2.1:5060"]);
    let e = z
        .resolve("sip:bob@192.0.2.1;transport=udp", &[Tcp], &mut first)
        .unwrap_err();
    assert!(
        matches!(e, ResolveError::TransportUnavailable { .. }),
        "{e}"
    );
}

// §4.2: "If the TARGET was not a numeric IP address, but a port is present
// in the URI, the client performs an A or AAAA record lookup of the domain
// name. The result will be a list of IP addresses, each of which can be
// contacted at the specific port from the URI and transport protocol
// determined previously."
#[test]
fn an_explicit_port_asks_only_for_addresses() {
    let mut z = Zone::default()
        .naptr(
            "example.com.",
            &[(10, 10, "s", "SIP+D2T", "_sip._tcp.example.com.")],
        )
        .srv("_sip._udp.example.com.", &[(0, 0, 9999, "x.example.com.")])
        .host("example.com.", &["192.0.2.1", "2001:db8::1"]);
    let t = z
        .resolve("sip:bob@Example.com.:5070", ALL, &mut first)
        .unwrap();
    assert_eq!(
        summary(&t),
        ["UDP 192.0.2.1:5070", "UDP [2001:db8::1]:5070"],
        "each address in turn, UDP by default"
    );
    assert_eq!(z.asked, [Query::Addresses("example.com.".into())]);
    assert_eq!(t[0].tls_name.as_deref(), Some("example.com"));
    let t = z
        .resolve("sips:bob@example.com:5071", ALL, &mut first)
        .unwrap();
    assert_eq!(t[0].transport, Tls);
}

// §4.2: "If it was not [NAPTR processing], because a transport was
// specified explicitly, the client performs an SRV query for that specific
// transport, using the service identifier "_sips" for SIPS URIs."
#[test]
fn an_explicit_transport_asks_its_srv_name_only() {
    let mut z = Zone::default()
        .srv("_sip._tcp.example.com.", &[(0, 0, 5080, "a.example.com.")])
        .srv("_sips._tcp.example.com.", &[(0, 0, 5081, "a.example.com.")])
        .host("a.example.com.", &["192.0.2.2"]);
    let t = z
        .resolve("sip:bob@example.com;transport=tcp", ALL, &mut first)
        .unwrap();
    assert_eq!(summary(&t), ["TCP 192.0.2.2:5080"]);
    assert_eq!(
        z.asked,
        [
            Query::Srv("_sip._tcp.example.com.".into()),
            Query::Addresses("a.example.com.".into())
        ]
    );
    let t = z
        .resolve("sips:bob@example.com;transport=tcp", ALL, &mut first)
        .unwrap();
    assert_eq!(summary(&t), ["TLS 192.0.2.2:5081"]);
}

// §4.1, the example of the RFC: "This indicates that the server supports
// TLS over TCP, TCP, and UDP, in that order of preference. Since the
// client supports TCP and UDP, TCP will be used, targeted to a host
// determined by an SRV lookup of _sip._tcp.example.com."
fn rfc_example() -> Zone {
    Zone::default()
        .naptr(
            "example.com.",
            &[
                (90, 50, "s", "SIP+D2T", "_sip._tcp.example.com."),
                (100, 50, "s", "SIP+D2U", "_sip._udp.example.com."),
                (50, 50, "s", "SIPS+D2T", "_sips._tcp.example.com."),
            ],
        )
        .srv(
            "_sip._tcp.example.com.",
            &[
                (0, 1, 5060, "server1.example.com."),
                (0, 2, 5060, "server2.example.com."),
            ],
        )
        .srv(
            "_sip._udp.example.com.",
            &[(0, 0, 5060, "server3.example.com.")],
        )
        .srv(
            "_sips._tcp.example.com.",
            &[(0, 0, 5061, "server4.example.com.")],
        )
        .host("server1.example.com.", &["192.0.2.1"])
        .host("server2.example.com.", &["192.0.2.2"])
        .host("server3.example.com.", &["192.0.2.3"])
        .host("server4.example.com.", &["192.0.2.4"])
}

#[test]
fn naptr_records_in_order_filtered_to_the_gateways_transports() {
    let mut z = rfc_example();
    let t = z
        .resolve("sip:user@example.com", PLAIN, &mut first)
        .unwrap();
    // No TLS: SIPS+D2T is discarded; TCP (order 90) before UDP (100).
    assert_eq!(
        summary(&t),
        [
            "TCP 192.0.2.1:5060",
            "TCP 192.0.2.2:5060",
            "UDP 192.0.2.3:5060"
        ]
    );
    assert_eq!(z.asked[0], Query::Naptr("example.com.".into()));
    assert!(
        !z.asked
            .contains(&Query::Srv("_sips._tcp.example.com.".into()))
    );
    // With TLS, "a client resolving a SIP URI SHOULD retain records with
    // "SIPS" as the protocol".
    let t = z.resolve("sip:user@example.com", ALL, &mut first).unwrap();
    assert_eq!(t[0].transport, Tls);
    assert_eq!(t[0].addr, "192.0.2.4:5061".parse().unwrap());
    // Only UDP: just the D2U record.
    let t = z
        .resolve("sip:user@example.com", &[Udp], &mut first)
        .unwrap();
    assert_eq!(summary(&t), ["UDP 192.0.2.3:5060"]);
}

// §4.1: "a client resolving a SIPS URI MUST discard any services that do
// not contain "SIPS" as the protocol in the service field."
#[test]
fn a_sips_uri_keeps_only_sips_services() {
    let mut z = rfc_example();
    let t = z.resolve("sips:user@example.com", ALL, &mut first).unwrap();
    assert_eq!(summary(&t), ["TLS 192.0.2.4:5061"]);
    assert_eq!(
        t[0].tls_name.as_deref(),
        Some("example.com"),
        "RFC 5922 §4: the URI's domain, not server4"
    );
    assert_eq!(t[0].destination().tls_name.as_deref(), Some("example.com"));
}

// RFC 3403 §4.1: ORDER first, then PREFERENCE; unknown services (SCTP,
// WebSocket) and flags other than "s" are discarded (RFC 3263 §4.1: "the
// client discards any records whose services fields are not applicable").
#[test]
fn naptr_preference_within_an_order_and_unusable_records() {
    let mut z = Zone::default()
        .naptr(
            "example.net.",
            &[
                (10, 20, "s", "SIP+D2U", "_sip._udp.example.net."),
                (10, 10, "s", "SIP+D2T", "_sip._tcp.example.net."),
                (5, 10, "s", "SIP+D2S", "_sip._sctp.example.net."),
                (5, 10, "s", "SIPS+D2W", "_sips._ws.example.net."),
                (5, 10, "u", "SIP+D2T", "!^.*$!sip:x@example.org!"),
                (5, 10, "S", "E2U+sip", "_sip._udp.elsewhere.net."),
            ],
        )
        .srv("_sip._tcp.example.net.", &[(0, 0, 5062, "t.example.net.")])
        .srv("_sip._udp.example.net.", &[(0, 0, 5063, "u.example.net.")])
        .host("t.example.net.", &["192.0.2.10"])
        .host("u.example.net.", &["192.0.2.11"]);
    let t = z.resolve("sip:user@example.net", ALL, &mut first).unwrap();
    assert_eq!(summary(&t), ["TCP 192.0.2.10:5062", "UDP 192.0.2.11:5063"]);
    assert!(
        !z.asked
            .iter()
            .any(|q| matches!(q, Query::Srv(n) if n.contains("sctp") || n.contains("_ws"))),
        "{:?}",
        z.asked
    );
}

// NAPTR records equal in order and preference: the gateway's preference
// decides ("selected based on the combination of the Preference values
// and Services offered", RFC 3403 §4.1).
#[test]
fn equal_naptr_records_follow_the_gateways_preference() {
    let mut z = Zone::default()
        .naptr(
            "example.org.",
            &[
                (10, 10, "s", "SIP+D2U", "_sip._udp.example.org."),
                (10, 10, "s", "SIP+D2T", "_sip._tcp.example.org."),
            ],
        )
        .srv("_sip._tcp.example.org.", &[(0, 0, 5060, "h.example.org.")])
        .srv("_sip._udp.example.org.", &[(0, 0, 5060, "h.example.org.")])
        .host("h.example.org.", &["192.0.2.20"]);
    let t = z
        .resolve("sip:u@example.org", &[Tcp, Udp], &mut first)
        .unwrap();
    assert_eq!(summary(&t), ["TCP 192.0.2.20:5060", "UDP 192.0.2.20:5060"]);
    let t = z
        .resolve("sip:u@example.org", &[Udp, Tcp], &mut first)
        .unwrap();
    assert_eq!(summary(&t), ["UDP 192.0.2.20:5060", "TCP 192.0.2.20:5060"]);
}

// §4.1: "If no NAPTR records are found, the client constructs SRV queries
// for those transport protocols it supports, and does a query for each.
// [...] A particular transport is supported if the query is successful."
#[test]
fn without_naptr_srv_names_in_the_gateways_preference_order() {
    let mut z = Zone::default()
        .srv("_sip._udp.example.com.", &[(0, 0, 5090, "u.example.com.")])
        .srv("_sips._tcp.example.com.", &[(0, 0, 5091, "s.example.com.")])
        .host("u.example.com.", &["192.0.2.30"])
        .host("s.example.com.", &["192.0.2.31"]);
    let t = z.resolve("sip:bob@example.com", ALL, &mut first).unwrap();
    assert_eq!(summary(&t), ["TLS 192.0.2.31:5091", "UDP 192.0.2.30:5090"]);
    assert_eq!(
        &z.asked[..4],
        [
            Query::Naptr("example.com.".into()),
            Query::Srv("_sips._tcp.example.com.".into()),
            Query::Srv("_sip._tcp.example.com.".into()),
            Query::Srv("_sip._udp.example.com.".into()),
        ]
    );
    // A SIPS URI asks only "_sips".
    z.asked.clear();
    let t = z.resolve("sips:bob@example.com", ALL, &mut first).unwrap();
    assert_eq!(summary(&t), ["TLS 192.0.2.31:5091"]);
    assert_eq!(z.asked.len(), 3, "{:?}", z.asked);
}

// NAPTR records none of which the gateway can use count as none: the SRV
// names of its transports are asked.
#[test]
fn unusable_naptr_records_fall_back_to_srv() {
    let mut z = Zone::default()
        .naptr(
            "example.com.",
            &[(10, 10, "s", "SIP+D2S", "_sip._sctp.example.com.")],
        )
        .srv("_sip._udp.example.com.", &[(0, 0, 5090, "u.example.com.")])
        .host("u.example.com.", &["192.0.2.30"]);
    let t = z.resolve("sip:bob@example.com", PLAIN, &mut first).unwrap();
    assert_eq!(summary(&t), ["UDP 192.0.2.30:5090"]);
}

// §4.2: "If no SRV records were found, the client performs an A or AAAA
// record lookup of the domain name. The result will be a list of IP
// addresses, each of which can be contacted using the transport protocol
// determined previously, at the default port for that transport."
// §4.1: "If no SRV records are found, the client SHOULD use TCP for a SIPS
// URI, and UDP for a SIP URI."
#[test]
fn without_srv_the_addresses_at_the_default_port() {
    let mut z = Zone::default().host("example.com.", &["192.0.2.40"]);
    let t = z.resolve("sip:bob@example.com", ALL, &mut first).unwrap();
    assert_eq!(summary(&t), ["UDP 192.0.2.40:5060"]);
    let t = z.resolve("sips:bob@example.com", ALL, &mut first).unwrap();
    assert_eq!(summary(&t), ["TLS 192.0.2.40:5061"]);
    // The transport determined previously: the NAPTR's, whose SRV name has
    // no records.
    let mut z = Zone::default()
        .naptr(
            "example.com.",
            &[(10, 10, "s", "SIP+D2T", "_sip._tcp.example.com.")],
        )
        .host("example.com.", &["192.0.2.40"]);
    let t = z.resolve("sip:bob@example.com", ALL, &mut first).unwrap();
    assert_eq!(summary(&t), ["TCP 192.0.2.40:5060"]);
}

// RFC 2782: 'A Target of "." means that the service is decidedly not
// available at this domain.'
#[test]
fn a_dot_target_means_no_service() {
    let mut z = Zone::default()
        .srv("_sip._udp.example.com.", &[(0, 0, 0, ".")])
        .host("example.com.", &["192.0.2.40"]);
    let e = z
        .resolve("sip:bob@example.com", &[Udp], &mut first)
        .unwrap_err();
    assert_eq!(
        e,
        ResolveError::NoRecords {
            domain: "example.com".into()
        }
    );
}

#[test]
fn nothing_at_all_is_no_records_and_a_failed_lookup_says_so() {
    let mut z = Zone::default();
    let e = z
        .resolve("sip:bob@nowhere.test", ALL, &mut first)
        .unwrap_err();
    assert_eq!(
        e,
        ResolveError::NoRecords {
            domain: "nowhere.test".into()
        }
    );
    assert!(!e.is_transient());
    assert!(e.to_string().contains("nowhere.test"), "{e}");
    let mut z = Zone::default().failing(Query::Addresses("down.test.".into()));
    let e = z
        .resolve("sip:bob@down.test:5060", ALL, &mut first)
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains("SERVFAIL"), "{e}");
    // A failed NAPTR query does not stop the SRV queries.
    let mut z = Zone::default()
        .failing(Query::Naptr("example.com.".into()))
        .srv("_sip._udp.example.com.", &[(0, 0, 5090, "u.example.com.")])
        .host("u.example.com.", &["192.0.2.30"]);
    let t = z.resolve("sip:bob@example.com", PLAIN, &mut first).unwrap();
    assert_eq!(summary(&t), ["UDP 192.0.2.30:5090"]);
}

// RFC 2782: lowest priority first; within a priority, weighted random
// order with the weight-0 records first in line.
#[test]
fn srv_order_by_priority_then_weight() {
    let rec = |priority, weight, target: &str| SrvRecord {
        priority,
        weight,
        port: 5060,
        target: target.into(),
    };
    let names = |v: Vec<SrvRecord>| v.into_iter().map(|r| r.target).collect::<Vec<_>>();
    let set = vec![
        rec(20, 5, "backup."),
        rec(10, 60, "big."),
        rec(10, 0, "zero."),
        rec(10, 40, "small."),
    ];
    // Running sums in the order zero(0), big(60), small(100).
    let mut draws = Vec::new();
    let order = order_srv(set.clone(), &mut |total| {
        draws.push(total);
        0
    });
    assert_eq!(names(order), ["zero.", "big.", "small.", "backup."]);
    assert_eq!(draws, [100, 100, 40, 5], "sums of what is left to order");
    // A draw of 61 passes zero and big: small first, then zero (the draw
    // of 0 on the rest picks the first in line), big.
    let mut picks = vec![61, 0, 0, 0].into_iter();
    let order = order_srv(set.clone(), &mut |_| picks.next().unwrap());
    assert_eq!(names(order), ["small.", "zero.", "big.", "backup."]);
    // A draw of the whole sum lands on the last record.
    let order = order_srv(set, &mut |total| total);
    assert_eq!(names(order), ["small.", "big.", "zero.", "backup."]);
}

#[test]
fn srv_weights_pick_targets_in_proportion() {
    // Running sums: light 1, heavy 4. Of the draws 0..=4, 0 and 1 pick
    // light and 2, 3, 4 heavy: proportional to the weights but for the
    // inclusive 0, as RFC 2782 has it.
    let set = vec![
        SrvRecord {
            priority: 0,
            weight: 1,
            port: 1,
            target: "light.".into(),
        },
        SrvRecord {
            priority: 0,
            weight: 3,
            port: 2,
            target: "heavy.".into(),
        },
    ];
    let firsts: Vec<String> = (0..=4)
        .map(|d| {
            let mut first_draw = Some(d);
            order_srv(set.clone(), &mut |_| first_draw.take().unwrap_or(0))[0]
                .target
                .clone()
        })
        .collect();
    assert_eq!(firsts, ["light.", "light.", "heavy.", "heavy.", "heavy."]);
}

#[test]
fn srv_targets_expand_to_their_addresses_in_srv_order() {
    let mut z = Zone::default()
        .srv(
            "_sip._tcp.example.com.",
            &[
                (20, 0, 5072, "second.example.com."),
                (10, 0, 5071, "first.example.com."),
                (30, 0, 5073, "gone.example.com."),
            ],
        )
        .host("first.example.com.", &["192.0.2.50", "192.0.2.51"])
        .host("second.example.com.", &["192.0.2.52"]);
    let t = z
        .resolve("sip:bob@example.com;transport=tcp", ALL, &mut first)
        .unwrap();
    assert_eq!(
        summary(&t),
        [
            "TCP 192.0.2.50:5071",
            "TCP 192.0.2.51:5071",
            "TCP 192.0.2.52:5072"
        ],
        "a target without addresses is skipped"
    );
    assert!(
        t.iter()
            .all(|t| t.tls_name.as_deref() == Some("example.com"))
    );
}

#[test]
fn answers_to_unasked_queries_are_ignored() {
    let uri = "sip:bob@example.com:5060".parse().unwrap();
    let mut r = Resolution::new(&uri, ALL).unwrap();
    r.handle_answer(
        &Query::Addresses("example.com.".into()),
        Ok(Answer::Addresses(vec!["192.0.2.1".parse().unwrap()])),
    );
    let q = r.poll_query().unwrap();
    assert!(!r.is_finished(), "asked, not answered");
    r.handle_answer(&q, Ok(Answer::Addresses(Vec::new())));
    assert!(r.is_finished());
    assert!(r.finish(&mut first).is_err());
}
