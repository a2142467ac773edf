//! Property: whatever the order of timer ticks, responses, duplicates and
//! transport errors, the layer never panics, every client transaction
//! reports exactly one final outcome, and every transaction ends.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

type Layer = TransactionLayer<u8>;

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Response {
        client: usize,
        status: u16,
        twice: bool,
    },
    Stray(u16),
    TransportError {
        client: bool,
        index: usize,
    },
    AnswerAcks,
    Request {
        which: usize,
        reliable: bool,
    },
    Respond {
        server: usize,
        status: u16,
    },
}

const STATUSES: [u16; 7] = [100, 180, 200, 202, 486, 603, 999];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..40_000).prop_map(Op::Advance),
        (
            0usize..6,
            prop::sample::select(&STATUSES[..]),
            any::<bool>()
        )
            .prop_map(|(client, status, twice)| Op::Response {
                client,
                status,
                twice
            }),
        prop::sample::select(&STATUSES[..]).prop_map(Op::Stray),
        (any::<bool>(), 0usize..6).prop_map(|(client, index)| Op::TransportError { client, index }),
        Just(Op::AnswerAcks),
        (0usize..4, any::<bool>()).prop_map(|(which, reliable)| Op::Request { which, reliable }),
        (0usize..6, prop::sample::select(&STATUSES[..]))
            .prop_map(|(server, status)| Op::Respond { server, status }),
    ]
}

fn server_request(which: usize) -> RequestSummary {
    let (method, branch) = match which {
        0 => (Method::Invite, Some("z9hG4bKsi")),
        1 => (Method::Message, Some("z9hG4bKsm")),
        2 => (Method::Ack, Some("z9hG4bKsi")),
        _ => (Method::Invite, None),
    };
    RequestSummary {
        method,
        request_uri: "sip:b@example.com".into(),
        branch: branch.map(Into::into),
        sent_by: "a.example.com".into(),
        top_via: "SIP/2.0/UDP a.example.com".into(),
        call_id: "c".into(),
        from_tag: Some("f".into()),
        to_tag: None,
        cseq: 1,
    }
}

struct Harness {
    layer: Layer,
    now: Instant,
    clients: Vec<(TxId, Method, String)>,
    servers: Vec<TxId>,
    pending_acks: Vec<TxId>,
    log: Vec<Output<u8>>,
}

impl Harness {
    fn drain(&mut self) {
        while let Some(output) = self.layer.poll_output() {
            match &output {
                Output::BuildAck { tx, .. } => self.pending_acks.push(*tx),
                Output::Event(Event::Request { tx, .. }) => self.servers.push(*tx),
                _ => {}
            }
            self.log.push(output);
        }
    }

    fn answer_acks(&mut self) {
        for tx in std::mem::take(&mut self.pending_acks) {
            // May be gone already (transport error, timer D): an error then.
            let _ = self
                .layer
                .ack_built(self.now, tx, Bytes::from_static(b"ACK"));
        }
        self.drain();
    }

    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(deadline) = self.layer.poll_timeout() {
            if deadline > end {
                break;
            }
            self.now = self.now.max(deadline);
            self.layer.handle_timeout(deadline);
            self.drain();
            self.answer_acks();
        }
        self.now = end;
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Advance(ms) => self.advance(Duration::from_millis(ms)),
            Op::Response {
                client,
                status,
                twice,
            } => {
                let Some((_, method, branch)) = self.clients.get(client).cloned() else {
                    return;
                };
                let summary = ResponseSummary {
                    status,
                    branch: Some(branch),
                    cseq_method: method,
                    to_tag: Some("t".into()),
                };
                for _ in 0..if twice { 2 } else { 1 } {
                    self.layer
                        .handle_response(self.now, summary.clone(), Bytes::from_static(b"R"));
                }
                self.drain();
            }
            Op::Stray(status) => {
                let summary = ResponseSummary {
                    status,
                    branch: Some("z9hG4bKnobody".into()),
                    cseq_method: Method::Invite,
                    to_tag: None,
                };
                self.layer.handle_response(self.now, summary, Bytes::new());
                self.drain();
            }
            Op::TransportError { client, index } => {
                let tx = if client {
                    self.clients.get(index).map(|c| c.0)
                } else {
                    self.servers.get(index).copied()
                };
                if let Some(tx) = tx {
                    self.layer.handle_transport_error(self.now, tx);
                    self.drain();
                }
            }
            Op::AnswerAcks => self.answer_acks(),
            Op::Request { which, reliable } => {
                let incoming = IncomingRequest {
                    summary: server_request(which),
                    bytes: Bytes::from_static(b"Q"),
                    source: 2,
                    reliable,
                };
                self.layer.handle_request(self.now, incoming);
                self.drain();
            }
            Op::Respond { server, status } => {
                if let Some(&tx) = self.servers.get(server) {
                    let response = OutgoingResponse {
                        status,
                        to_tag: Some("s".into()),
                        bytes: Bytes::from_static(b"S"),
                    };
                    let _ = self.layer.respond(self.now, tx, response);
                    self.drain();
                }
            }
        }
    }
}

/// Checks the events of one client transaction: provisional responses,
/// exactly one outcome (final response, timeout or transport error), then
/// only 2xx in Accepted or the ACK's transport error, then Terminated last.
fn check_client(tx: TxId, method: &Method, events: &[&Event<u8>]) -> Result<(), String> {
    let mut outcome = false;
    let mut late_error = false;
    let mut terminated = false;
    for event in events {
        if terminated {
            return Err(format!("{tx}: {event:?} after Terminated"));
        }
        match event {
            Event::Response { response, .. } if response.status < 200 => {
                if outcome {
                    return Err(format!("{tx}: provisional after the outcome"));
                }
            }
            Event::Response { .. } | Event::Timeout { .. } => {
                if outcome {
                    return Err(format!("{tx}: second outcome {event:?}"));
                }
                outcome = true;
            }
            Event::TransportError { .. } => {
                if !outcome {
                    outcome = true;
                } else if *method == Method::Invite && !late_error {
                    late_error = true;
                } else {
                    return Err(format!("{tx}: transport error after the outcome"));
                }
            }
            Event::AcceptedResponse { response, .. } => {
                if !outcome || *method != Method::Invite || response.status / 100 != 2 {
                    return Err(format!("{tx}: unexpected {event:?}"));
                }
            }
            Event::Terminated { .. } => terminated = true,
            other => return Err(format!("{tx}: unexpected {other:?}")),
        }
    }
    if !outcome {
        return Err(format!("{tx}: no outcome in {events:?}"));
    }
    if !terminated {
        return Err(format!("{tx}: never terminated"));
    }
    Ok(())
}

fn event_tx(event: &Event<u8>) -> Option<TxId> {
    match event {
        Event::Request { tx, .. }
        | Event::Response { tx, .. }
        | Event::AcceptedResponse { tx, .. }
        | Event::Timeout { tx, .. }
        | Event::TransportError { tx }
        | Event::Terminated { tx } => Some(*tx),
        Event::Ack { tx, .. } => *tx,
        Event::StrayResponse { .. } => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_client_transaction_has_exactly_one_outcome(
        kinds in prop::collection::vec((any::<bool>(), any::<bool>()), 1..6),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        let mut h = Harness {
            layer: Layer::new(Config::default()),
            now: Instant::now(),
            clients: Vec::new(),
            servers: Vec::new(),
            pending_acks: Vec::new(),
            log: Vec::new(),
        };
        for (i, (invite, reliable)) in kinds.into_iter().enumerate() {
            let method = if invite { Method::Invite } else { Method::Message };
            let branch = format!("z9hG4bKc{i}");
            let request = OutgoingRequest {
                method: method.clone(),
                branch: branch.clone(),
                bytes: Bytes::from_static(b"REQ"),
                dest: 1,
                reliable,
            };
            let tx = h.layer.send_request(h.now, request).expect("distinct branches");
            h.clients.push((tx, method, branch));
        }
        h.drain();
        for op in ops {
            h.apply(op);
        }
        // Wind down: give every client a final response and every server
        // one, then let all timers run out.
        for client in 0..h.clients.len() {
            h.apply(Op::Response { client, status: 486, twice: false });
        }
        for server in 0..h.servers.len() {
            h.apply(Op::Respond { server, status: 500 });
        }
        h.answer_acks();
        h.advance(Duration::from_secs(600));
        prop_assert!(h.layer.is_empty(), "transactions left: {}", h.layer.len());
        prop_assert_eq!(h.layer.poll_timeout(), None);

        let mut per_tx: HashMap<TxId, Vec<&Event<u8>>> = HashMap::new();
        let mut ended = HashSet::new();
        for output in &h.log {
            let tx = match output {
                Output::Event(event) => {
                    if let Some(tx) = event_tx(event) {
                        per_tx.entry(tx).or_default().push(event);
                    }
                    event_tx(event)
                }
                Output::Transmit(t) => Some(t.tx),
                Output::BuildAck { tx, .. } | Output::SendTrying { tx, .. } => Some(*tx),
            };
            if let Some(tx) = tx {
                prop_assert!(!ended.contains(&tx), "{:?} after {} ended", output, tx);
                if matches!(output, Output::Event(Event::Terminated { .. })) {
                    ended.insert(tx);
                }
            }
        }
        for (tx, method, _) in &h.clients {
            let events = per_tx.get(tx).map(Vec::as_slice).unwrap_or(&[]);
            if let Err(why) = check_client(*tx, method, events) {
                prop_assert!(false, "{}", why);
            }
        }
        for tx in &h.servers {
            prop_assert!(ended.contains(tx), "server {} never terminated", tx);
        }
    }
}
