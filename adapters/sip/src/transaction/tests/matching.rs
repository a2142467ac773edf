//! Matching (RFC 3261 §17.1.3, §17.2.3), transport errors and refused
//! calls.

use super::*;

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
        request(Method::Message, "z9hG4bKt2"),
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
