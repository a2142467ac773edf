//! Server transactions: INVITE (RFC 3261 §17.2.1, RFC 6026 §7.1) and
//! non-INVITE (RFC 3261 §17.2.2).

use super::*;

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

#[test]
fn invite_server_transport_error_informs_the_tu_and_stays() {
    // RFC 6026 §7.1, its INVITE server figure: self-loops in Proceeding, Completed and
    // Accepted.
    let clock = Clock::new();
    let mut layer = Layer::new(Config::default());
    let summary = request(Method::Invite, "z9hG4bKs8");
    let tx = start_server(&mut layer, &clock, summary.clone(), false);
    layer.handle_transport_error(clock.at(10), tx);
    assert_eq!(
        events(&drain(&mut layer)),
        vec![&Event::TransportError { tx }]
    );
    // Still there: the TU can answer, retransmissions are absorbed.
    layer.respond(clock.at(20), tx, reply(480)).expect("live");
    drain(&mut layer);
    layer.handle_transport_error(clock.at(30), tx);
    assert_eq!(
        events(&drain(&mut layer)),
        vec![&Event::TransportError { tx }]
    );
    layer.handle_request(clock.at(40), incoming(summary, false));
    assert_eq!(transmitted(&drain(&mut layer)), vec![reply(480).bytes]);
    // Timer H ends it as usual.
    let seen = run_until(&mut layer, &clock, 100_000);
    assert_eq!(is_terminated(&seen, tx), Some(20 + 32_000));
}
