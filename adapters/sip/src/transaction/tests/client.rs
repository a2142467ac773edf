//! Client transactions: non-INVITE (RFC 3261 §17.1.2) and INVITE
//! (RFC 3261 §17.1.1, RFC 6026 §7.2).

use bytes::Bytes;

use super::*;

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
