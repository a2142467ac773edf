//! The hub with in-process adapters: fan-out across a bridge, loop
//! prevention, de-duplication, 1:1 routing, refusals, retries, and a queued
//! message that survives a restart over the same SQLite file.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use cpimgate_model::event::{Participant, RoomEventKind};
use cpimgate_model::port::{DeliveryOutcome, FailureKind, Inbound};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Hop, Message, MessageId, NameAddr, Origin, RoomEvent, World};

#[tokio::test]
async fn a_room_message_fans_out_to_every_other_room_and_never_back() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut gw = start(&cfg, true).await;

    let m = room_message(
        "irc",
        "irc://irc.example.org/%23lobby",
        "irc://irc.example.org/alice,isnick",
        "hello",
    );
    let id = m.id.clone();
    assert_eq!(send(&gw.irc, m).await, DeliveryOutcome::Accepted);

    let to_xmpp = next_delivery(&mut gw.xmpp).await;
    assert_eq!(to_xmpp.id, id);
    assert_eq!(
        to_xmpp.room,
        Some(room("xmpp", "xmpp:lobby@conference.example.org"))
    );
    assert_eq!(
        to_xmpp.to[0].address.to_string(),
        "xmpp:lobby@conference.example.org"
    );
    assert_eq!(to_xmpp.body.as_text(), Some("hello"));
    assert_eq!(
        to_xmpp.trail,
        vec![Hop {
            gateway: "gw-a".into(),
            adapter: "irc".into()
        }]
    );
    let to_sip = next_delivery(&mut gw.sip).await;
    assert_eq!(to_sip.room, Some(room("sip", "sip:lobby@chat.example.com")));

    // The origin gets one report per destination, and no copy of its own message.
    let mut reported = Vec::new();
    for _ in 0..2 {
        match next(&mut gw.irc).await {
            Seen::Report(m, dest, outcome) => {
                assert_eq!(m.id, id);
                assert_eq!(outcome, DeliveryOutcome::Delivered);
                reported.push(dest);
            }
            other => panic!("expected a report, got {other:?}"),
        }
    }
    reported.sort();
    assert_eq!(reported, vec!["sip".to_owned(), "xmpp".to_owned()]);
    quiet(&mut gw.irc).await;
    quiet(&mut gw.xmpp).await;
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn loops_and_duplicates_are_not_relayed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut gw = start(&cfg, true).await;

    // Came back through another gateway after this one relayed it.
    let mut looped = room_message(
        "xmpp",
        "xmpp:lobby@conference.example.org",
        "xmpp:bob@example.org",
        "loop",
    );
    looped.trail = vec![
        Hop {
            gateway: "gw-a".into(),
            adapter: "irc".into(),
        },
        Hop {
            gateway: "gw-b".into(),
            adapter: "xmpp".into(),
        },
    ];
    assert_eq!(send(&gw.xmpp, looped).await, DeliveryOutcome::Accepted);

    // Relayed by another gateway only: goes on.
    let mut foreign = room_message(
        "xmpp",
        "xmpp:lobby@conference.example.org",
        "xmpp:bob@example.org",
        "via b",
    );
    foreign.trail = vec![Hop {
        gateway: "gw-b".into(),
        adapter: "irc".into(),
    }];
    let foreign_id = foreign.id.clone();
    // The same message handed in twice (a retransmission): relayed once.
    assert_eq!(
        send(&gw.xmpp, foreign.clone()).await,
        DeliveryOutcome::Accepted
    );
    assert_eq!(send(&gw.xmpp, foreign).await, DeliveryOutcome::Accepted);

    let got = next_delivery(&mut gw.irc).await;
    assert_eq!(got.id, foreign_id);
    assert_eq!(got.trail.len(), 2);
    quiet(&mut gw.irc).await;
    let got = next_delivery(&mut gw.sip).await;
    assert_eq!(got.id, foreign_id);
    quiet(&mut gw.sip).await;
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn one_to_one_messages_follow_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut gw = start(&cfg, true).await;

    // A SIP user writes to an XMPP user through the gateway's domain.
    let origin = Origin {
        world: World::Sip,
        adapter: "sip".into(),
        native_id: None,
    };
    let m = Message::text(
        origin.clone(),
        NameAddr::new("sip:alice@atlanta.example.com".parse().unwrap()),
        NameAddr::new(
            "sip:juliet%40xmpp.example.org@gw.example.com"
                .parse()
                .unwrap(),
        ),
        "hi juliet",
    );
    assert_eq!(send(&gw.sip, m).await, DeliveryOutcome::Accepted);
    let got = next_delivery(&mut gw.xmpp).await;
    assert_eq!(got.to[0].address.to_string(), "im:juliet@xmpp.example.org");
    assert_eq!(got.room, None);

    // Nowhere to go: refused at once, nothing queued.
    let m = Message::text(
        origin.clone(),
        NameAddr::new("sip:alice@atlanta.example.com".parse().unwrap()),
        NameAddr::new("im:nobody@unknown.example".parse().unwrap()),
        "lost?",
    );
    match send(&gw.sip, m).await {
        DeliveryOutcome::Failed(f) => assert_eq!(f.kind, FailureKind::NotFound),
        other => panic!("expected not found, got {other:?}"),
    }

    // Already expired: refused, not queued.
    let mut m = Message::text(
        origin,
        NameAddr::new("sip:alice@atlanta.example.com".parse().unwrap()),
        NameAddr::new("im:juliet@xmpp.example.org".parse().unwrap()),
        "too late",
    );
    m.expires = Some(Timestamp {
        unix_micros: Timestamp::now().unix_micros - 1_000_000,
    });
    match send(&gw.sip, m).await {
        DeliveryOutcome::Failed(f) => assert_eq!(f.kind, FailureKind::Expired),
        other => panic!("expected expired, got {other:?}"),
    }
    quiet(&mut gw.xmpp).await;
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn room_events_fan_out_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut gw = start(&cfg, true).await;
    let event = RoomEvent {
        id: MessageId::random(),
        room: room("xmpp", "xmpp:lobby@conference.example.org"),
        origin: Origin {
            world: World::Xmpp,
            adapter: "xmpp".into(),
            native_id: None,
        },
        trail: Vec::new(),
        kind: RoomEventKind::Join {
            who: Participant {
                address: "xmpp:lobby@conference.example.org/juliet".parse().unwrap(),
                nick: "juliet".into(),
            },
        },
    };
    gw.xmpp
        .cmds
        .send(Inbound::RoomEvent(Box::new(event.clone())))
        .unwrap();
    gw.xmpp
        .cmds
        .send(Inbound::RoomEvent(Box::new(event)))
        .unwrap();
    for h in [&mut gw.irc, &mut gw.sip] {
        match next(h).await {
            Seen::Event(e) => assert!(matches!(e.kind, RoomEventKind::Join { .. })),
            other => panic!("expected a join, got {other:?}"),
        }
        quiet(h).await;
    }
    quiet(&mut gw.xmpp).await;
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn transient_failures_are_retried_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // One delivery at a time: a later entry already in flight when an
    // earlier one fails may be delivered first (that is what the window
    // allows); what is held back is everything not yet handed out.
    let cfg = config_with(dir.path(), "window = 1", "");
    let mut gw = start(&cfg, true).await;
    gw.irc.fail.store(true, Ordering::SeqCst);
    let mut ids = Vec::new();
    for i in 0..3 {
        let m = room_message(
            "xmpp",
            "xmpp:lobby@conference.example.org",
            "xmpp:bob@example.org",
            &format!("m{i}"),
        );
        ids.push(m.id.clone());
        assert_eq!(send(&gw.xmpp, m).await, DeliveryOutcome::Accepted);
    }
    // At least one failed attempt, then the network comes back.
    let first = next_delivery(&mut gw.irc).await;
    assert_eq!(first.id, ids[0]);
    gw.irc.fail.store(false, Ordering::SeqCst);
    let mut delivered = Vec::new();
    while delivered.len() < 3 {
        let m = next_delivery(&mut gw.irc).await;
        if !delivered.contains(&m.id) {
            delivered.push(m.id);
        }
    }
    assert_eq!(delivered, ids, "delivered out of order");
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn a_queued_message_survives_a_restart_over_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());

    // IRC is down: the message is accepted (on disk) but cannot go out.
    let mut gw = start(&cfg, false).await;
    let m = room_message(
        "xmpp",
        "xmpp:lobby@conference.example.org",
        "xmpp:bob@example.org",
        "while you were out",
    );
    let id = m.id.clone();
    assert_eq!(send(&gw.xmpp, m).await, DeliveryOutcome::Accepted);
    assert_eq!(next_delivery(&mut gw.sip).await.id, id);
    quiet(&mut gw.irc).await;
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();

    // A new hub over the same file, IRC up: the message goes out, once.
    let mut gw = start(&cfg, true).await;
    let got = next_delivery(&mut gw.irc).await;
    assert_eq!(got.id, id);
    assert_eq!(got.body.as_text(), Some("while you were out"));
    quiet(&mut gw.irc).await;
    quiet(&mut gw.sip).await;
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();

    // And it is gone from the queue: a third start delivers nothing.
    let mut gw = start(&cfg, true).await;
    quiet(&mut gw.irc).await;
    assert_eq!(gw.hub.queue().depth(), 0);
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// A private message in a bridged room goes to the room of the bridge its
/// recipient joined (as that room's adapter announced), even where no 1:1
/// route leads (none matches `im:` here); it stays private there.
#[tokio::test]
async fn a_private_message_goes_to_the_room_its_recipient_is_in() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut gw = start(&cfg, true).await;
    let joined = RoomEvent {
        id: MessageId::random(),
        room: room("sip", "sip:lobby@chat.example.com"),
        origin: Origin {
            world: World::Msrp,
            adapter: "sip".into(),
            native_id: None,
        },
        trail: Vec::new(),
        kind: RoomEventKind::Join {
            who: Participant {
                address: "im:bob@elsewhere.example".parse().unwrap(),
                nick: "Bob".into(),
            },
        },
    };
    gw.sip
        .cmds
        .send(Inbound::RoomEvent(Box::new(joined)))
        .unwrap();
    // The others see the join; then the private message follows it.
    let _ = next(&mut gw.xmpp).await;
    let _ = next(&mut gw.irc).await;
    let mut m = room_message(
        "xmpp",
        "xmpp:lobby@conference.example.org",
        "xmpp:zoe@example.org",
        "psst bob",
    );
    m.private = true;
    m.to = vec![NameAddr::new("im:bob@elsewhere.example".parse().unwrap())];
    assert_eq!(send(&gw.xmpp, m).await, DeliveryOutcome::Accepted);
    let got = next_delivery(&mut gw.sip).await;
    assert!(got.private);
    assert_eq!(got.room, Some(room("sip", "sip:lobby@chat.example.com")));
    assert_eq!(got.to[0].address.to_string(), "im:bob@elsewhere.example");
    quiet(&mut gw.irc).await;
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}
