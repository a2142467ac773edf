//! Two peers, a client layer and a server layer, joined by a lossy
//! datagram network with fake time: retransmissions make up for the losses
//! and the TUs on both sides see each message once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// A stand-in for the codec: `Q METHOD BRANCH` and `S STATUS BRANCH METHOD`.
fn parse(bytes: &Bytes) -> Option<Result<RequestSummary, ResponseSummary>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let fields: Vec<&str> = text.split(' ').collect();
    match fields[..] {
        ["Q", method, branch] => {
            let mut summary = request(Method::from(method), branch);
            if summary.method == Method::Ack {
                summary.to_tag = Some("srv-tag".into());
            }
            Some(Ok(summary))
        }
        ["S", status, branch, method] => Some(Err(ResponseSummary {
            status: status.parse().ok()?,
            branch: Some(branch.into()),
            cseq_method: Method::from(method),
            to_tag: Some("srv-tag".into()),
        })),
        _ => None,
    }
}

struct Sim {
    base: Instant,
    client: Layer,
    server: Layer,
    /// In flight: arrival, receiving side, bytes.
    wire: VecDeque<(Instant, Side, Bytes)>,
    /// Whether the n-th datagram sent is lost, cycling.
    losses: Vec<bool>,
    sent: usize,
    /// The final status the server TU answers with.
    final_status: u16,
    client_events: Vec<Event<&'static str>>,
    server_requests: usize,
    server_acks_to_tu: usize,
}

const LATENCY: Duration = Duration::from_millis(40);

impl Sim {
    fn send(&mut self, now: Instant, to: Side, bytes: Bytes) {
        let lost = self
            .losses
            .get(self.sent % self.losses.len().max(1))
            .copied()
            .unwrap_or(false);
        self.sent += 1;
        if !lost {
            self.wire.push_back((now + LATENCY, to, bytes));
        }
    }

    fn drain(&mut self, now: Instant, side: Side) {
        loop {
            let layer = match side {
                Side::Client => &mut self.client,
                Side::Server => &mut self.server,
            };
            let Some(output) = layer.poll_output() else {
                break;
            };
            let other = match side {
                Side::Client => Side::Server,
                Side::Server => Side::Client,
            };
            match output {
                Output::Transmit(t) => self.send(now, other, t.bytes),
                Output::BuildAck { tx, response, .. } => {
                    let branch = response.branch.unwrap_or_default();
                    let ack = Bytes::from(format!("Q ACK {branch}"));
                    self.client.ack_built(now, tx, ack).expect("asked just now");
                }
                Output::SendTrying { tx, .. } => {
                    let trying = OutgoingResponse {
                        status: 100,
                        to_tag: None,
                        bytes: Bytes::from("S 100 z9hG4bKsim INVITE"),
                    };
                    self.server.respond(now, tx, trying).expect("live");
                }
                Output::Event(Event::Request { tx, request, .. }) => {
                    self.server_requests += 1;
                    let status = self.final_status;
                    let bytes = format!(
                        "S {status} {} {}",
                        request.branch.unwrap_or_default(),
                        request.method
                    );
                    let response = OutgoingResponse {
                        status,
                        to_tag: Some("srv-tag".into()),
                        bytes: bytes.into(),
                    };
                    self.server.respond(now, tx, response).expect("live");
                }
                Output::Event(Event::Ack { .. }) => self.server_acks_to_tu += 1,
                Output::Event(event) if side == Side::Client => self.client_events.push(event),
                Output::Event(_) => {}
            }
        }
    }

    /// Runs until nothing is in flight and no timer is armed.
    fn run(&mut self) {
        for _ in 0..10_000 {
            let next_wire = self.wire.iter().map(|(at, _, _)| *at).min();
            let next_timer = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(now) = [next_wire, next_timer].into_iter().flatten().min() else {
                return;
            };
            if next_wire == Some(now) {
                let index = self
                    .wire
                    .iter()
                    .position(|(at, _, _)| *at == now)
                    .expect("found above");
                let (_, to, bytes) = self.wire.remove(index).expect("in range");
                match (to, parse(&bytes).expect("our own format")) {
                    (Side::Server, Ok(summary)) => {
                        let incoming = IncomingRequest {
                            summary,
                            bytes,
                            source: "client",
                            reliable: false,
                        };
                        self.server.handle_request(now, incoming);
                    }
                    (Side::Client, Err(summary)) => {
                        self.client.handle_response(now, summary, bytes);
                    }
                    (side, message) => panic!("{message:?} sent to {side:?}"),
                }
                self.drain(now, to);
            } else {
                self.client.handle_timeout(now);
                self.server.handle_timeout(now);
                self.drain(now, Side::Client);
                self.drain(now, Side::Server);
            }
        }
        panic!("the simulation did not settle");
    }
}

fn simulate(method: Method, final_status: u16, losses: Vec<bool>) -> Sim {
    let base = Instant::now();
    let mut sim = Sim {
        base,
        client: Layer::new(Config::default()),
        server: Layer::new(Config::default()),
        wire: VecDeque::new(),
        losses,
        sent: 0,
        final_status,
        client_events: Vec::new(),
        server_requests: 0,
        server_acks_to_tu: 0,
    };
    let branch = "z9hG4bKsim";
    let request = OutgoingRequest {
        bytes: Bytes::from(format!("Q {method} {branch}")),
        method,
        branch: branch.into(),
        dest: "server",
        reliable: false,
    };
    sim.client
        .send_request(sim.base, request)
        .expect("first transaction");
    sim.drain(sim.base, Side::Client);
    sim.run();
    sim
}

fn outcome(events: &[Event<&'static str>]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Response { response, .. } if response.status >= 200 => {
                Some(format!("{}", response.status))
            }
            Event::Timeout { timer, .. } => Some(format!("timeout {timer:?}")),
            Event::TransportError { .. } => Some("transport error".into()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_message_gets_through_when_the_first_request_and_response_are_lost() {
    // Lost: the request, then the 200; the second retransmission of the
    // request makes the server transaction re-send its 200.
    let sim = simulate(
        Method::Message,
        200,
        vec![true, false, true, false, false, false],
    );
    assert_eq!(outcome(&sim.client_events), vec!["200"]);
    assert_eq!(sim.server_requests, 1, "the server TU sees it once");
    assert!(sim.client.is_empty() && sim.server.is_empty());
    assert_eq!(sim.sent, 5, "two retransmissions made up for the losses");
}

#[test]
fn a_rejected_invite_is_acknowledged_across_losses() {
    let sim = simulate(Method::Invite, 486, vec![false, true, true]);
    assert_eq!(outcome(&sim.client_events), vec!["486"]);
    assert_eq!(sim.server_requests, 1);
    assert_eq!(
        sim.server_acks_to_tu, 0,
        "the ACK for a non-2xx stays in the layer"
    );
    assert!(sim.client.is_empty() && sim.server.is_empty());
}

#[test]
fn a_dead_network_ends_in_a_timeout() {
    let sim = simulate(Method::Message, 200, vec![true]);
    assert_eq!(outcome(&sim.client_events), vec!["timeout F"]);
    assert_eq!(sim.server_requests, 0);
    let sim = simulate(Method::Invite, 200, vec![true]);
    assert_eq!(outcome(&sim.client_events), vec!["timeout B"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_loss_pattern_gives_one_outcome_and_one_delivery(
        invite in any::<bool>(),
        final_status in prop::sample::select(&[200u16, 202, 404, 486, 603][..]),
        losses in prop::collection::vec(any::<bool>(), 1..12),
    ) {
        let method = if invite { Method::Invite } else { Method::Message };
        let sim = simulate(method, final_status, losses);
        let outcomes = outcome(&sim.client_events);
        prop_assert_eq!(outcomes.len(), 1, "{:?}", sim.client_events);
        prop_assert!(sim.server_requests <= 1);
        if outcomes[0] == final_status.to_string() {
            prop_assert_eq!(sim.server_requests, 1);
        }
        prop_assert!(sim.client.is_empty() && sim.server.is_empty());
    }
}
