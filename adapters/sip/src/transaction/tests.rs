//! Two-peer-free tests of the transaction layer with fake time: every timer
//! of every state machine, retransmission handling, matching.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;

type Layer = TransactionLayer<&'static str>;
type Out = Output<&'static str>;

const PEER: &str = "peer";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Clock {
    base: Instant,
}

impl Clock {
    fn new() -> Self {
        Clock {
            base: Instant::now(),
        }
    }
    fn at(&self, n: u64) -> Instant {
        self.base + ms(n)
    }
    fn ms_of(&self, t: Instant) -> u64 {
        u64::try_from(t.duration_since(self.base).as_millis()).expect("test times are small")
    }
}

fn drain(layer: &mut Layer) -> Vec<Out> {
    std::iter::from_fn(|| layer.poll_output()).collect()
}

/// Fires every timer up to `end`, deadline by deadline, and records each
/// output with the millisecond it came out at.
fn run_until(layer: &mut Layer, clock: &Clock, end: u64) -> Vec<(u64, Out)> {
    let mut seen = Vec::new();
    while let Some(deadline) = layer.poll_timeout() {
        if deadline > clock.at(end) {
            break;
        }
        layer.handle_timeout(deadline);
        let when = clock.ms_of(deadline);
        seen.extend(drain(layer).into_iter().map(|o| (when, o)));
    }
    seen
}

fn transmit_times(outputs: &[(u64, Out)]) -> Vec<u64> {
    outputs
        .iter()
        .filter_map(|(t, o)| matches!(o, Output::Transmit(_)).then_some(*t))
        .collect()
}

fn events(outputs: &[Out]) -> Vec<&Event<&'static str>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn transmitted(outputs: &[Out]) -> Vec<Bytes> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(t) => Some(t.bytes.clone()),
            _ => None,
        })
        .collect()
}

fn request(method: Method, branch: &str) -> RequestSummary {
    RequestSummary {
        method,
        request_uri: "sip:bob@biloxi.example.com".into(),
        branch: Some(branch.into()),
        sent_by: "pc33.atlanta.example.com".into(),
        top_via: format!("SIP/2.0/UDP pc33.atlanta.example.com;branch={branch}"),
        call_id: "a84b4c76e66710".into(),
        from_tag: Some("1928301774".into()),
        to_tag: None,
        cseq: 314159,
    }
}

fn response(status: u16, branch: &str, method: Method) -> ResponseSummary {
    ResponseSummary {
        status,
        branch: Some(branch.into()),
        cseq_method: method,
        to_tag: Some("a6c85cf".into()),
    }
}

fn outgoing(method: Method, branch: &str, reliable: bool) -> OutgoingRequest<&'static str> {
    OutgoingRequest {
        bytes: Bytes::from(format!("{method} sip:bob@biloxi.example.com SIP/2.0\r\n")),
        method,
        branch: branch.into(),
        dest: PEER,
        reliable,
    }
}

fn incoming(summary: RequestSummary, reliable: bool) -> IncomingRequest<&'static str> {
    IncomingRequest {
        bytes: Bytes::from(format!(
            "{} {} SIP/2.0\r\n",
            summary.method, summary.request_uri
        )),
        summary,
        source: PEER,
        reliable,
    }
}

fn reply(status: u16) -> OutgoingResponse {
    OutgoingResponse {
        status,
        to_tag: Some("srv-tag".into()),
        bytes: Bytes::from(format!("SIP/2.0 {status} Reason\r\n")),
    }
}

fn is_terminated(outputs: &[(u64, Out)], tx: TxId) -> Option<u64> {
    outputs.iter().find_map(|(t, o)| {
        matches!(o, Output::Event(Event::Terminated { tx: id }) if *id == tx).then_some(*t)
    })
}

// ---------------------------------------------------------------------
// Non-INVITE client transaction (RFC 3261 §17.1.2)

#[test]
fn non_invite_client_retransmits_at_t1_doubling_to_t2_then_times_out_with_f() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let tx = layer
        .send_request(
            clock.at(0),
            outgoing(Method::Message, "z9hG4bKnashds8", false),
        )
        .expect("new branch");
    let first = drain(&mut layer);
    assert_eq!(transmitted(&first).len(), 1, "sent once at start");

    let seen = run_until(&mut layer, &clock, 40_000);
    // §17.1.2.2: "intervals of 500 ms, 1 s, 2 s, 4 s, 4 s, 4 s, etc."
    // up to timer F at 64*T1 = 32 s.
    let mut expected = Vec::new();
    let (mut t, mut interval) = (0, 500);
    while t + interval < 32_000 {
        t += interval;
        expected.push(t);
        interval = (interval * 2).min(4_000);
    }
    assert_eq!(transmit_times(&seen), expected);
    assert_eq!(&expected[..5], &[500, 1_500, 3_500, 7_500, 11_500]);
    let timeouts: Vec<_> = seen
        .iter()
        .filter_map(|(t, o)| match o {
            Output::Event(Event::Timeout { tx: id, timer }) => Some((*t, *id, *timer)),
            _ => None,
        })
        .collect();
    assert_eq!(timeouts, vec![(32_000, tx, Timer::F)]);
    assert_eq!(is_terminated(&seen, tx), Some(32_000));
    assert!(layer.is_empty());
    assert_eq!(layer.poll_timeout(), None);
}

#[test]
fn non_invite_client_on_reliable_transport_never_retransmits() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let tx = layer
        .send_request(clock.at(0), outgoing(Method::Message, "z9hG4bKrel", true))
        .expect("new branch");
    assert_eq!(transmitted(&drain(&mut layer)).len(), 1);
    let seen = run_until(&mut layer, &clock, 60_000);
    assert!(transmit_times(&seen).is_empty());
    assert!(seen.iter().any(|(t, o)| *t == 32_000
        && matches!(
            o,
            Output::Event(Event::Timeout {
                timer: Timer::F,
                ..
            })
        )));
    assert_eq!(is_terminated(&seen, tx), Some(32_000));
}

#[test]
fn non_invite_client_proceeding_retransmits_at_t2_and_completed_absorbs() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let branch = "z9hG4bKprog";
    let tx = layer
        .send_request(clock.at(0), outgoing(Method::Message, branch, false))
        .expect("new branch");
    drain(&mut layer);
    let seen = run_until(&mut layer, &clock, 600);
    assert_eq!(transmit_times(&seen), vec![500]);

    layer.handle_response(
        clock.at(600),
        response(100, branch, Method::Message),
        "100".into(),
    );
    let out = drain(&mut layer);
    assert!(
        matches!(events(&out)[..], [Event::Response { response, .. }] if response.status == 100)
    );

    // E was armed at 500 for 1 s: it fires at 1500, then every T2.
    let seen = run_until(&mut layer, &clock, 9_600);
    assert_eq!(transmit_times(&seen), vec![1_500, 5_500, 9_500]);

    layer.handle_response(
        clock.at(9_600),
        response(200, branch, Method::Message),
        "200".into(),
    );
    let out = drain(&mut layer);
    assert!(
        matches!(events(&out)[..], [Event::Response { response, .. }] if response.status == 200)
    );

    // A retransmitted 200 is absorbed in Completed.
    layer.handle_response(
        clock.at(9_700),
        response(200, branch, Method::Message),
        "200".into(),
    );
    assert!(drain(&mut layer).is_empty());

    // Timer K = T4 later it terminates; no more retransmissions.
    let seen = run_until(&mut layer, &clock, 60_000);
    assert!(transmit_times(&seen).is_empty());
    assert_eq!(is_terminated(&seen, tx), Some(9_600 + 5_000));
}

#[test]
fn non_invite_client_on_reliable_transport_terminates_on_final_response() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let branch = "z9hG4bKk0";
    let tx = layer
        .send_request(clock.at(0), outgoing(Method::Options, branch, true))
        .expect("new branch");
    drain(&mut layer);
    layer.handle_response(
        clock.at(10),
        response(404, branch, Method::Options),
        "404".into(),
    );
    let out = drain(&mut layer);
    let evs = events(&out);
    assert!(matches!(evs[0], Event::Response { response, .. } if response.status == 404));
    assert_eq!(evs[1], &Event::Terminated { tx });
    // Timer K is zero: a retransmission now finds no transaction.
    layer.handle_response(
        clock.at(11),
        response(404, branch, Method::Options),
        "404".into(),
    );
    assert!(matches!(
        events(&drain(&mut layer))[..],
        [Event::StrayResponse { .. }]
    ));
}

#[test]
fn timer_values_are_configurable() {
    let clock = Clock::new();
    let config = Config {
        t1: ms(100),
        t2: ms(400),
        t4: ms(1_000),
        ..Config::default()
    };
    let mut layer = Layer::new(config);
    let tx = layer
        .send_request(clock.at(0), outgoing(Method::Message, "z9hG4bKcfg", false))
        .expect("new branch");
    drain(&mut layer);
    let seen = run_until(&mut layer, &clock, 10_000);
    let times = transmit_times(&seen);
    assert_eq!(&times[..5], &[100, 300, 700, 1_100, 1_500]);
    assert_eq!(is_terminated(&seen, tx), Some(6_400), "F = 64*T1");
}

// ---------------------------------------------------------------------
// INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §7.2)

#[test]
fn invite_client_retransmits_with_timer_a_doubling_until_timer_b() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let tx = layer
        .send_request(clock.at(0), outgoing(Method::Invite, "z9hG4bKinv", false))
        .expect("new branch");
    drain(&mut layer);
    let seen = run_until(&mut layer, &clock, 60_000);
    // §17.1.1.2: intervals double without a cap; "64*T1 is equal to the
    // amount of time required to send seven requests".
    assert_eq!(
        transmit_times(&seen),
        vec![500, 1_500, 3_500, 7_500, 15_500, 31_500]
    );
    let evs: Vec<_> = seen.iter().map(|(t, o)| (*t, o.clone())).collect();
    assert_eq!(
        evs[evs.len() - 2..],
        [
            (
                32_000,
                Output::Event(Event::Timeout {
                    tx,
                    timer: Timer::B
                })
            ),
            (32_000, Output::Event(Event::Terminated { tx })),
        ]
    );
    // No ACK is built on a timeout.
    assert!(
        !seen
            .iter()
            .any(|(_, o)| matches!(o, Output::BuildAck { .. }))
    );
}

#[test]
fn invite_client_provisional_stops_retransmissions() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let branch = "z9hG4bKprov";
    layer
        .send_request(clock.at(0), outgoing(Method::Invite, branch, false))
        .expect("new branch");
    drain(&mut layer);
    run_until(&mut layer, &clock, 600);
    layer.handle_response(
        clock.at(700),
        response(180, branch, Method::Invite),
        "180".into(),
    );
    drain(&mut layer);
    let seen = run_until(&mut layer, &clock, 120_000);
    assert!(transmit_times(&seen).is_empty());
    assert!(seen.is_empty(), "Proceeding has no timer: {seen:?}");
    assert_eq!(layer.len(), 1);
}

#[test]
fn invite_client_acks_non_2xx_and_re_sends_the_same_ack_on_retransmission() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let branch = "z9hG4bKbusy";
    let tx = layer
        .send_request(clock.at(0), outgoing(Method::Invite, branch, false))
        .expect("new branch");
    drain(&mut layer);
    layer.handle_response(
        clock.at(100),
        response(486, branch, Method::Invite),
        "486 a".into(),
    );
    let out = drain(&mut layer);
    assert!(
        matches!(events(&out)[..], [Event::Response { response, .. }] if response.status == 486)
    );
    let asked = out.iter().find_map(|o| match o {
        Output::BuildAck {
            tx: id,
            response_bytes,
            ..
        } => Some((*id, response_bytes.clone())),
        _ => None,
    });
    assert_eq!(asked, Some((tx, Bytes::from("486 a"))));

    let ack = Bytes::from("ACK sip:bob@biloxi.example.com SIP/2.0\r\n");
    layer
        .ack_built(clock.at(100), tx, ack.clone())
        .expect("live");
    let out = drain(&mut layer);
    assert_eq!(
        out,
        vec![Output::Transmit(Transmit {
            tx,
            dest: PEER,
            bytes: ack.clone()
        })]
    );

    // §17.1.1.2: a retransmitted final response re-sends the ACK and is
    // not passed up again.
    layer.handle_response(
        clock.at(1_000),
        response(486, branch, Method::Invite),
        "486 a".into(),
    );
    let out = drain(&mut layer);
    assert_eq!(transmitted(&out), vec![ack]);
    assert!(events(&out).is_empty());

    // Timer D: at least 32 s on unreliable transports.
    let seen = run_until(&mut layer, &clock, 100_000);
    assert_eq!(is_terminated(&seen, tx), Some(100 + 32_000));
}

#[test]
fn invite_client_timer_d_is_at_least_32_s_even_if_configured_lower() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config {
        timer_d: ms(1_000),
        ..Config::default()
    });
    let branch = "z9hG4bKd";
    let tx = layer
        .send_request(clock.at(0), outgoing(Method::Invite, branch, false))
        .expect("new branch");
    layer.handle_response(
        clock.at(0),
        response(500, branch, Method::Invite),
        "500".into(),
    );
    drain(&mut layer);
    let seen = run_until(&mut layer, &clock, 100_000);
    assert_eq!(is_terminated(&seen, tx), Some(32_000));
}

#[test]
fn invite_client_on_reliable_transport_ends_once_the_ack_is_sent() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let branch = "z9hG4bKrack";
    let tx = layer
        .send_request(clock.at(0), outgoing(Method::Invite, branch, true))
        .expect("new branch");
    layer.handle_response(
        clock.at(50),
        response(603, branch, Method::Invite),
        "603".into(),
    );
    let out = drain(&mut layer);
    assert!(out.iter().any(|o| matches!(o, Output::BuildAck { .. })));
    layer
        .ack_built(clock.at(50), tx, "ACK".into())
        .expect("live");
    let out = drain(&mut layer);
    assert_eq!(transmitted(&out), vec![Bytes::from("ACK")]);
    assert_eq!(events(&out), vec![&Event::Terminated { tx }]);
}

#[test]
fn invite_client_2xx_enters_accepted_and_reports_further_2xx_until_timer_m() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let branch = "z9hG4bKok";
    let tx = layer
        .send_request(clock.at(0), outgoing(Method::Invite, branch, false))
        .expect("new branch");
    drain(&mut layer);
    layer.handle_response(
        clock.at(300),
        response(200, branch, Method::Invite),
        "200 a".into(),
    );
    let out = drain(&mut layer);
    assert!(
        matches!(events(&out)[..], [Event::Response { response, .. }] if response.status == 200)
    );
    assert!(
        !out.iter().any(|o| matches!(o, Output::BuildAck { .. })),
        "2xx ACK is the TU's"
    );

    // A 2xx from another fork, then a retransmission: both to the TU, as
    // AcceptedResponse, so the UAC core acknowledges them.
    let mut forked = response(200, branch, Method::Invite);
    forked.to_tag = Some("other-fork".into());
    layer.handle_response(clock.at(400), forked, "200 b".into());
    layer.handle_response(
        clock.at(500),
        response(200, branch, Method::Invite),
        "200 a".into(),
    );
    // A late non-2xx is absorbed.
    layer.handle_response(
        clock.at(600),
        response(486, branch, Method::Invite),
        "486".into(),
    );
    let out = drain(&mut layer);
    let evs = events(&out);
    assert_eq!(evs.len(), 2);
    assert!(
        evs.iter()
            .all(|e| matches!(e, Event::AcceptedResponse { tx: id, .. } if *id == tx))
    );

    let seen = run_until(&mut layer, &clock, 100_000);
    assert!(
        transmit_times(&seen).is_empty(),
        "no retransmission after a response"
    );
    assert_eq!(
        is_terminated(&seen, tx),
        Some(300 + 32_000),
        "timer M = 64*T1"
    );
    layer.handle_response(
        clock.at(40_000),
        response(200, branch, Method::Invite),
        "200 a".into(),
    );
    assert!(matches!(
        events(&drain(&mut layer))[..],
        [Event::StrayResponse { .. }]
    ));
}

// ---------------------------------------------------------------------
// INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §7.1)

fn start_server(layer: &mut Layer, clock: &Clock, summary: RequestSummary, reliable: bool) -> TxId {
    layer.handle_request(clock.at(0), incoming(summary, reliable));
    let out = drain(layer);
    match events(&out)[..] {
        [Event::Request { tx, .. }] => *tx,
        ref other => panic!("expected one new request, got {other:?}"),
    }
}

#[test]
fn invite_server_asks_for_100_trying_after_200_ms_without_a_provisional() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let tx = start_server(
        &mut layer,
        &clock,
        request(Method::Invite, "z9hG4bKs1"),
        false,
    );
    assert!(run_until(&mut layer, &clock, 199).is_empty());
    let seen = run_until(&mut layer, &clock, 1_000);
    assert!(matches!(
        &seen[..],
        [(200, Output::SendTrying { tx: id, .. })] if *id == tx
    ));

    // When the TU answers first, no 100 is asked for.
    let tx2 = start_server(
        &mut layer,
        &clock,
        request(Method::Invite, "z9hG4bKs2"),
        false,
    );
    layer.respond(clock.at(100), tx2, reply(180)).expect("live");
    drain(&mut layer);
    let seen = run_until(&mut layer, &clock, 1_000);
    assert!(
        !seen
            .iter()
            .any(|(_, o)| matches!(o, Output::SendTrying { .. }))
    );
}

#[test]
fn invite_server_answers_retransmissions_with_the_last_provisional() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let summary = request(Method::Invite, "z9hG4bKs3");
    let tx = start_server(&mut layer, &clock, summary.clone(), false);
    // Before any response there is nothing to re-send; the INVITE is not
    // passed up twice.
    layer.handle_request(clock.at(50), incoming(summary.clone(), false));
    assert!(drain(&mut layer).is_empty());

    layer.respond(clock.at(60), tx, reply(100)).expect("live");
    layer.respond(clock.at(70), tx, reply(180)).expect("live");
    assert_eq!(transmitted(&drain(&mut layer)).len(), 2);
    layer.handle_request(clock.at(500), incoming(summary, false));
    assert_eq!(transmitted(&drain(&mut layer)), vec![reply(180).bytes]);
}

#[test]
fn invite_server_retransmits_non_2xx_with_timer_g_until_ack_then_lingers_with_timer_i() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let summary = request(Method::Invite, "z9hG4bKs4");
    let tx = start_server(&mut layer, &clock, summary.clone(), false);
    layer.respond(clock.at(0), tx, reply(486)).expect("live");
    assert_eq!(transmitted(&drain(&mut layer)), vec![reply(486).bytes]);

    // §17.2.1: G at T1, then doubling up to T2.
    let seen = run_until(&mut layer, &clock, 12_000);
    assert_eq!(
        transmit_times(&seen),
        vec![500, 1_500, 3_500, 7_500, 11_500]
    );
    // A retransmitted INVITE gets the final response again.
    layer.handle_request(clock.at(12_000), incoming(summary.clone(), false));
    assert_eq!(transmitted(&drain(&mut layer)), vec![reply(486).bytes]);

    let mut ack = summary.clone();
    ack.method = Method::Ack;
    layer.handle_request(clock.at(12_100), incoming(ack.clone(), false));
    assert!(drain(&mut layer).is_empty(), "ACK absorbed");
    // Confirmed: more ACKs and INVITEs absorbed, no retransmission.
    layer.handle_request(clock.at(12_200), incoming(ack, false));
    layer.handle_request(clock.at(12_300), incoming(summary, false));
    assert!(drain(&mut layer).is_empty());
    let seen = run_until(&mut layer, &clock, 100_000);
    assert!(transmit_times(&seen).is_empty());
    assert_eq!(
        is_terminated(&seen, tx),
        Some(12_100 + 5_000),
        "timer I = T4"
    );
}

#[test]
fn invite_server_reports_timer_h_when_no_ack_comes() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let tx = start_server(
        &mut layer,
        &clock,
        request(Method::Invite, "z9hG4bKs5"),
        true,
    );
    layer.respond(clock.at(0), tx, reply(404)).expect("live");
    drain(&mut layer);
    let seen = run_until(&mut layer, &clock, 100_000);
    assert!(
        transmit_times(&seen).is_empty(),
        "no timer G on reliable transports"
    );
    assert_eq!(
        seen,
        vec![
            (
                32_000,
                Output::Event(Event::Timeout {
                    tx,
                    timer: Timer::H
                })
            ),
            (32_000, Output::Event(Event::Terminated { tx })),
        ]
    );
}

#[test]
fn invite_server_reliable_ack_terminates_at_once() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let summary = request(Method::Invite, "z9hG4bKs6");
    let tx = start_server(&mut layer, &clock, summary.clone(), true);
    layer.respond(clock.at(0), tx, reply(404)).expect("live");
    drain(&mut layer);
    let mut ack = summary;
    ack.method = Method::Ack;
    layer.handle_request(clock.at(10), incoming(ack, true));
    assert_eq!(events(&drain(&mut layer)), vec![&Event::Terminated { tx }]);
}

#[test]
fn invite_server_accepted_passes_2xx_retransmissions_and_acks_until_timer_l() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let summary = request(Method::Invite, "z9hG4bKs7");
    let tx = start_server(&mut layer, &clock, summary.clone(), false);
    layer.respond(clock.at(0), tx, reply(200)).expect("live");
    assert_eq!(transmitted(&drain(&mut layer)), vec![reply(200).bytes]);
    // The transaction itself never retransmits the 2xx.
    assert!(transmit_times(&run_until(&mut layer, &clock, 10_000)).is_empty());
    // The TU does, through the transaction.
    layer
        .respond(clock.at(10_000), tx, reply(200))
        .expect("live");
    assert_eq!(transmitted(&drain(&mut layer)), vec![reply(200).bytes]);
    // Anything but a 2xx is refused.
    assert_eq!(
        layer.respond(clock.at(10_000), tx, reply(500)),
        Err(Error::NotAfter2xx { tx, status: 500 })
    );
    // INVITE retransmissions are absorbed.
    layer.handle_request(clock.at(10_100), incoming(summary.clone(), false));
    assert!(drain(&mut layer).is_empty());
    // An ACK that matches goes to the TU.
    let mut ack = summary;
    ack.method = Method::Ack;
    layer.handle_request(clock.at(10_200), incoming(ack, false));
    assert!(matches!(
        events(&drain(&mut layer))[..],
        [Event::Ack { tx: Some(id), .. }] if *id == tx
    ));
    let seen = run_until(&mut layer, &clock, 100_000);
    assert_eq!(is_terminated(&seen, tx), Some(32_000), "timer L = 64*T1");
}

// ---------------------------------------------------------------------
// Non-INVITE server transaction (RFC 3261 §17.2.2)

#[test]
fn non_invite_server_absorbs_then_re_sends_the_last_response() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let summary = request(Method::Message, "z9hG4bKn1");
    let tx = start_server(&mut layer, &clock, summary.clone(), false);
    // Trying: retransmissions are discarded.
    layer.handle_request(clock.at(100), incoming(summary.clone(), false));
    assert!(drain(&mut layer).is_empty());
    // Proceeding: the last provisional is re-sent.
    layer.respond(clock.at(200), tx, reply(100)).expect("live");
    drain(&mut layer);
    layer.handle_request(clock.at(300), incoming(summary.clone(), false));
    assert_eq!(transmitted(&drain(&mut layer)), vec![reply(100).bytes]);
    // Completed: the final response is re-sent; further finals dropped.
    layer.respond(clock.at(400), tx, reply(202)).expect("live");
    assert_eq!(transmitted(&drain(&mut layer)), vec![reply(202).bytes]);
    layer
        .respond(clock.at(450), tx, reply(500))
        .expect("discarded, not an error");
    assert!(drain(&mut layer).is_empty());
    layer.handle_request(clock.at(500), incoming(summary, false));
    assert_eq!(transmitted(&drain(&mut layer)), vec![reply(202).bytes]);
    // Timer J = 64*T1 on unreliable transports.
    let seen = run_until(&mut layer, &clock, 100_000);
    assert!(transmit_times(&seen).is_empty());
    assert_eq!(is_terminated(&seen, tx), Some(400 + 32_000));
    assert!(layer.is_empty());
}

#[test]
fn non_invite_server_on_reliable_transport_terminates_on_final_response() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let summary = request(Method::Message, "z9hG4bKn2");
    let tx = start_server(&mut layer, &clock, summary.clone(), true);
    layer.respond(clock.at(0), tx, reply(200)).expect("live");
    let out = drain(&mut layer);
    assert_eq!(transmitted(&out), vec![reply(200).bytes]);
    assert_eq!(events(&out), vec![&Event::Terminated { tx }]);
    assert_eq!(
        layer.respond(clock.at(1), tx, reply(200)),
        Err(Error::UnknownTransaction(tx))
    );
    // Timer J is zero: a retransmission is a new request.
    layer.handle_request(clock.at(2), incoming(summary, true));
    assert!(matches!(events(&drain(&mut layer))[..], [Event::Request { tx: id, .. }] if *id != tx));
}

// ---------------------------------------------------------------------
// Matching (RFC 3261 §17.1.3, §17.2.3)

#[test]
fn responses_match_on_branch_and_cseq_method() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let branch = "z9hG4bKm1";
    let invite = layer
        .send_request(clock.at(0), outgoing(Method::Invite, branch, false))
        .expect("new branch");
    let cancel = layer
        .send_request(clock.at(0), outgoing(Method::Cancel, branch, false))
        .expect("CANCEL shares the branch but is its own transaction");
    drain(&mut layer);
    layer.handle_response(
        clock.at(10),
        response(200, branch, Method::Cancel),
        "200 c".into(),
    );
    layer.handle_response(
        clock.at(20),
        response(487, branch, Method::Invite),
        "487".into(),
    );
    layer.handle_response(
        clock.at(30),
        response(200, "z9hG4bKother", Method::Invite),
        "x".into(),
    );
    let mut no_branch = response(200, branch, Method::Invite);
    no_branch.branch = None;
    layer.handle_response(clock.at(40), no_branch, "y".into());
    let out = drain(&mut layer);
    let evs: Vec<_> = events(&out)
        .into_iter()
        .filter(|e| !matches!(e, Event::Terminated { .. }))
        .collect();
    assert!(
        matches!(evs[0], Event::Response { tx, response, .. } if *tx == cancel && response.status == 200)
    );
    assert!(
        matches!(evs[1], Event::Response { tx, response, .. } if *tx == invite && response.status == 487)
    );
    assert!(matches!(evs[2], Event::StrayResponse { response, .. } if response.status == 200));
    assert!(matches!(evs[3], Event::StrayResponse { .. }));
    assert_eq!(evs.len(), 4);
}

#[test]
fn requests_match_on_branch_sent_by_and_method() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let invite = request(Method::Invite, "z9hG4bKm2");
    let tx = start_server(&mut layer, &clock, invite.clone(), false);

    // Same branch, sent-by in another case: the same transaction.
    let mut retransmission = invite.clone();
    retransmission.sent_by = "PC33.Atlanta.Example.COM".into();
    layer.handle_request(clock.at(10), incoming(retransmission, false));
    assert!(drain(&mut layer).is_empty());

    // Same branch from another sent-by: another transaction.
    let mut other = invite.clone();
    other.sent_by = "evil.example.org".into();
    layer.handle_request(clock.at(20), incoming(other, false));
    assert!(matches!(events(&drain(&mut layer))[..], [Event::Request { tx: id, .. }] if *id != tx));

    // CANCEL: its own transaction, and it finds the INVITE it cancels.
    let mut cancel = invite.clone();
    cancel.method = Method::Cancel;
    assert_eq!(layer.cancel_target(&cancel), Some(tx));
    let cancel_tx = start_server(&mut layer, &clock, cancel.clone(), false);
    assert_ne!(cancel_tx, tx);
    let mut stray_cancel = cancel;
    stray_cancel.branch = Some("z9hG4bKnothing".into());
    assert_eq!(layer.cancel_target(&stray_cancel), None);

    // An ACK with another branch (the ACK for a 2xx) matches nothing.
    let mut ack = invite;
    ack.method = Method::Ack;
    ack.branch = Some("z9hG4bKack2xx".into());
    layer.handle_request(clock.at(30), incoming(ack, false));
    assert!(matches!(
        events(&drain(&mut layer))[..],
        [Event::Ack { tx: None, .. }]
    ));
}

fn rfc2543(method: Method) -> RequestSummary {
    let mut summary = request(method, "");
    summary.branch = None;
    summary.top_via = "SIP/2.0/UDP old.example.com".into();
    summary.sent_by = "old.example.com".into();
    summary
}

#[test]
fn rfc2543_requests_match_on_uri_tags_call_id_cseq_and_via() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let invite = rfc2543(Method::Invite);
    let tx = start_server(&mut layer, &clock, invite.clone(), false);

    // The same INVITE again is a retransmission.
    layer.handle_request(clock.at(10), incoming(invite.clone(), false));
    assert!(drain(&mut layer).is_empty());
    // A branch without the cookie is RFC 2543 too: the branch is ignored.
    let mut cookieless = invite.clone();
    cookieless.branch = Some("oldbranch".into());
    layer.handle_request(clock.at(15), incoming(cookieless, false));
    assert!(drain(&mut layer).is_empty());
    // Any field that differs makes a new request.
    let mut other = invite.clone();
    other.cseq += 1;
    layer.handle_request(clock.at(20), incoming(other, false));
    assert!(matches!(events(&drain(&mut layer))[..], [Event::Request { tx: id, .. }] if *id != tx));
    let mut other = invite.clone();
    other.top_via = "SIP/2.0/UDP other.example.com".into();
    layer.handle_request(clock.at(20), incoming(other, false));
    assert!(matches!(
        events(&drain(&mut layer))[..],
        [Event::Request { .. }]
    ));

    layer.respond(clock.at(30), tx, reply(486)).expect("live");
    drain(&mut layer);
    // An ACK matches with the To tag of the response sent...
    let mut wrong_ack = invite.clone();
    wrong_ack.method = Method::Ack;
    wrong_ack.to_tag = Some("not-ours".into());
    layer.handle_request(clock.at(40), incoming(wrong_ack, false));
    assert!(matches!(
        events(&drain(&mut layer))[..],
        [Event::Ack { tx: None, .. }]
    ));
    let mut ack = invite;
    ack.method = Method::Ack;
    ack.to_tag = reply(486).to_tag;
    layer.handle_request(clock.at(50), incoming(ack, false));
    assert!(drain(&mut layer).is_empty(), "absorbed by the transaction");
    // ...which is now Confirmed: G no longer fires.
    let seen = run_until(&mut layer, &clock, 3_000);
    assert!(transmit_times(&seen).is_empty());
}

#[test]
fn rfc2543_non_invite_matches_including_the_to_tag() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let mut bye = rfc2543(Method::Bye);
    bye.to_tag = Some("dialog-tag".into());
    let tx = start_server(&mut layer, &clock, bye.clone(), false);
    layer.respond(clock.at(0), tx, reply(200)).expect("live");
    drain(&mut layer);
    layer.handle_request(clock.at(10), incoming(bye.clone(), false));
    assert_eq!(transmitted(&drain(&mut layer)), vec![reply(200).bytes]);
    bye.to_tag = Some("another".into());
    layer.handle_request(clock.at(20), incoming(bye, false));
    assert!(matches!(events(&drain(&mut layer))[..], [Event::Request { tx: id, .. }] if *id != tx));
}

// ---------------------------------------------------------------------
// Transport errors and refusals

#[test]
fn transport_errors_inform_the_tu_and_terminate() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let client = layer
        .send_request(clock.at(0), outgoing(Method::Message, "z9hG4bKt1", false))
        .expect("new branch");
    let server = start_server(
        &mut layer,
        &clock,
        request(Method::Invite, "z9hG4bKt2"),
        false,
    );
    drain(&mut layer);
    layer.handle_transport_error(clock.at(5), client);
    layer.handle_transport_error(clock.at(5), server);
    assert_eq!(
        events(&drain(&mut layer)),
        vec![
            &Event::TransportError { tx: client },
            &Event::Terminated { tx: client },
            &Event::TransportError { tx: server },
            &Event::Terminated { tx: server },
        ]
    );
    // A late report about a gone transaction is ignored.
    layer.handle_transport_error(clock.at(6), client);
    assert!(drain(&mut layer).is_empty());
    assert!(run_until(&mut layer, &clock, 100_000).is_empty());
}

#[test]
fn refused_calls() {
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    assert_eq!(
        layer.send_request(clock.at(0), outgoing(Method::Ack, "z9hG4bKa", false)),
        Err(Error::AckHasNoTransaction)
    );
    assert_eq!(
        layer.send_request(clock.at(0), outgoing(Method::Message, "nocookie", false)),
        Err(Error::BranchWithoutCookie("nocookie".into()))
    );
    layer
        .send_request(clock.at(0), outgoing(Method::Message, "z9hG4bKdup", false))
        .expect("new branch");
    assert!(matches!(
        layer.send_request(clock.at(0), outgoing(Method::Message, "z9hG4bKdup", false)),
        Err(Error::DuplicateBranch { .. })
    ));
    assert_eq!(
        layer.respond(clock.at(0), TxId(999), reply(200)),
        Err(Error::UnknownTransaction(TxId(999)))
    );
    let server = start_server(
        &mut layer,
        &clock,
        request(Method::Options, "z9hG4bKo"),
        false,
    );
    assert_eq!(
        layer.respond(clock.at(0), server, reply(99)),
        Err(Error::InvalidStatus(99))
    );
    assert_eq!(layer.terminate(server), Ok(()));
    assert_eq!(
        layer.terminate(server),
        Err(Error::UnknownTransaction(server))
    );
}
