#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn a(s: &str) -> Address {
    s.parse().unwrap()
}

const ROOM: &str = "sip:chatroom22@chat.example.com";

fn room() -> Room {
    Room::new(a(ROOM), Policy::default())
}

fn changes(r: &mut Room) -> Vec<RosterChange> {
    std::iter::from_fn(|| r.poll_change()).collect()
}

#[test]
fn joins_and_leaves_are_per_user_not_per_session() {
    let mut r = room();
    let alice1 = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    let alice2 = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    assert_ne!(alice1, alice2);
    assert_eq!(
        changes(&mut r),
        [RosterChange::Joined {
            who: a("sip:alice@example.com"),
            nick: None,
            remote: false
        }]
    );
    r.leave(alice1).unwrap();
    assert!(changes(&mut r).is_empty());
    r.leave(alice2).unwrap();
    assert!(matches!(changes(&mut r)[..], [RosterChange::Left { .. }]));
    assert!(r.leave(alice2).is_none());
}

/// RFC 7701 §7.1: 424 malformed, 425 taken (also by a member of a bridged
/// world), the same user may use its nickname from a second device, 403
/// when the policy has none; §7.2 the old one holds until the new is
/// taken; §7.3 an empty one drops it.
#[test]
fn nicknames_follow_7_1_to_7_3() {
    let mut r = room();
    let alice = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    let alice2 = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    let bob = r.join(Participant::new(a("sip:bob@example.com"))).unwrap();
    assert_eq!(
        r.set_nickname(alice, "Alice").unwrap().as_deref(),
        Some("Alice")
    );
    // Compared after RFC 7700 preparation: case and width fold.
    assert_eq!(r.check_nickname(bob, "ＡＬＩＣＥ").unwrap_err().code, 425);
    assert_eq!(r.check_nickname(bob, " alice ").unwrap_err().code, 425);
    assert_eq!(
        r.check_nickname(alice2, "ALICE").unwrap().as_deref(),
        Some("ALICE")
    );
    assert_eq!(r.check_nickname(bob, "a\u{7}b").unwrap_err().code, 424);
    assert_eq!(r.check_nickname(bob, "   ").unwrap_err().code, 424);
    assert_eq!(
        r.check_nickname(bob, &"x".repeat(1024)).unwrap_err().code,
        424
    );
    assert!(r.check_nickname(bob, &"x".repeat(1023)).is_ok());
    // Taken in a bridged world.
    assert!(r.remote_join(a("xmpp:carol@xmpp.example.org"), "Carol", true));
    assert_eq!(r.check_nickname(bob, "carol").unwrap_err().code, 425);
    // A failed change keeps the old nickname.
    r.set_nickname(bob, "Bob").unwrap();
    assert!(r.set_nickname(bob, "Alice").is_err());
    assert_eq!(r.nickname(bob), Some("Bob"));
    // Dropped, then free for another.
    changes(&mut r);
    assert_eq!(r.set_nickname(bob, "").unwrap(), None);
    assert_eq!(
        changes(&mut r),
        [RosterChange::Nick {
            who: a("sip:bob@example.com"),
            old: Some("Bob".into()),
            new: None,
            remote: false
        }]
    );
    assert!(r.check_nickname(alice, "bob").is_ok());
    assert_eq!(r.check_nickname(99, "x").unwrap_err().code, 481);

    let mut quiet = Room::new(
        a(ROOM),
        Policy {
            nicknames: false,
            ..Policy::default()
        },
    );
    let s = quiet
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    assert_eq!(quiet.check_nickname(s, "Alice").unwrap_err().code, 403);
}

/// A nickname is released when its user's last session leaves.
#[test]
fn a_nickname_is_released_with_the_last_session() {
    let mut r = room();
    let alice = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    let bob = r.join(Participant::new(a("sip:bob@example.com"))).unwrap();
    r.set_nickname(alice, "Alice").unwrap();
    r.leave(alice);
    assert!(r.check_nickname(bob, "Alice").is_ok());
    // A bridged member cannot take a nickname held here.
    r.set_nickname(bob, "Bob").unwrap();
    assert!(!r.remote_join(a("xmpp:bob@xmpp.example.org"), "BOB", true));
    assert!(r.remote_join(a("xmpp:bob@xmpp.example.org"), "bob_", true));
    assert!(!r.remote_rename(&a("xmpp:bob@xmpp.example.org"), "bob"));
    assert!(r.remote_rename(&a("xmpp:bob@xmpp.example.org"), "robert"));
    assert_eq!(r.check_nickname(bob, "Robert").unwrap_err().code, 425);
    r.remote_leave(&a("xmpp:bob@xmpp.example.org"));
    assert!(r.check_nickname(bob, "Robert").is_ok());
}

/// §6.1: copies to every other session that takes the wrapped type (its
/// accept-wrapped-types), not to the sending one; §6.1/§6.3: a From that
/// is not the sender's is 403, and so is anything but one To.
#[test]
fn regular_messages_follow_6_1() {
    let mut r = room();
    let alice = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    let alice2 = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    let bob = r
        .join(Participant {
            wrapped_types: vec!["text/*".into()],
            ..Participant::new(a("sip:bob@example.com"))
        })
        .unwrap();
    let carol = r
        .join(Participant {
            wrapped_types: vec!["text/plain".into()],
            ..Participant::new(a("sip:carol@example.com"))
        })
        .unwrap();
    let to_room = [a(ROOM)];
    let from = a("sip:alice@example.com");
    assert_eq!(
        r.route(alice, &from, &to_room, "text/plain; charset=utf-8")
            .unwrap(),
        Route::Room {
            sessions: vec![alice2, bob, carol]
        }
    );
    assert_eq!(
        r.route(alice, &from, &to_room, "text/html").unwrap(),
        Route::Room {
            sessions: vec![alice2, bob]
        }
    );
    assert_eq!(
        r.route(alice, &from, &to_room, "image/png").unwrap(),
        Route::Room {
            sessions: vec![alice2]
        }
    );
    // The room URI compares as a SIP URI (RFC 3261 §19.1.4: host case).
    assert!(
        r.route(
            alice,
            &from,
            &[a("sip:chatroom22@CHAT.example.com")],
            "text/plain"
        )
        .is_ok()
    );
    let spoof = r.route(bob, &from, &to_room, "text/plain").unwrap_err();
    assert_eq!(spoof.code, 403);
    assert_eq!(
        r.route(alice, &from, &[], "text/plain").unwrap_err().code,
        403
    );
    assert_eq!(
        r.route(alice, &from, &[a(ROOM), a(ROOM)], "text/plain")
            .unwrap_err()
            .code,
        403
    );
    // The sender's nickname URI is the sender too.
    r.set_nickname(bob, "Bob").unwrap();
    assert!(
        r.route(bob, &a("sip:bob@chat.example.com"), &to_room, "text/plain")
            .is_ok()
    );
    assert_eq!(
        r.route(
            carol,
            &a("sip:bob@chat.example.com"),
            &to_room,
            "text/plain"
        )
        .unwrap_err()
        .code,
        403
    );
    assert_eq!(
        r.route(77, &from, &to_room, "text/plain").unwrap_err().code,
        481
    );
}

/// §6.2: one To, by nickname URI or participant URI or the address of a
/// bridged member; 404 when it resolves to nobody, 428 when the recipient
/// takes no private messages; every session of the recipient gets it.
#[test]
fn private_messages_follow_6_2() {
    let mut r = room();
    let alice = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    let bob1 = r.join(Participant::new(a("sip:bob@example.com"))).unwrap();
    let bob2 = r.join(Participant::new(a("sip:bob@example.com"))).unwrap();
    let dave = r
        .join(Participant {
            accepts_private: false,
            ..Participant::new(a("sip:dave@example.com"))
        })
        .unwrap();
    r.set_nickname(bob1, "Bob").unwrap();
    r.set_nickname(dave, "Dave").unwrap();
    r.remote_join(a("irc://irc.example.org/carol,isnick"), "carol", true);
    r.remote_join(a("xmpp:eve@xmpp.example.org"), "eve", false);
    let from = a("sip:alice@example.com");
    let send = |to: &str| r.route(alice, &from, &[a(to)], "text/plain");
    let both = Route::Private {
        sessions: vec![bob1, bob2],
    };
    assert_eq!(send("sip:bob@chat.example.com").unwrap(), both);
    assert_eq!(send("sip:BOB@chat.example.com").unwrap(), both);
    assert_eq!(send("sip:bob@example.com").unwrap(), both);
    assert_eq!(
        send("sip:carol@chat.example.com").unwrap(),
        Route::PrivateRemote {
            address: a("irc://irc.example.org/carol,isnick")
        }
    );
    assert_eq!(
        send("irc://irc.example.org/carol,isnick").unwrap(),
        Route::PrivateRemote {
            address: a("irc://irc.example.org/carol,isnick")
        }
    );
    assert_eq!(send("sip:nobody@chat.example.com").unwrap_err().code, 404);
    assert_eq!(send("sip:bob@elsewhere.example.com").unwrap_err().code, 404);
    assert_eq!(send("sip:dave@chat.example.com").unwrap_err().code, 428);
    assert_eq!(send("sip:eve@chat.example.com").unwrap_err().code, 428);

    let mut closed = Room::new(
        a(ROOM),
        Policy {
            private_messages: false,
            ..Policy::default()
        },
    );
    let x = closed
        .join(Participant::new(a("sip:x@example.com")))
        .unwrap();
    closed
        .join(Participant::new(a("sip:y@example.com")))
        .unwrap();
    assert_eq!(
        closed
            .route(
                x,
                &a("sip:x@example.com"),
                &[a("sip:y@example.com")],
                "text/plain"
            )
            .unwrap_err()
            .code,
        403
    );
}

#[test]
fn the_roster_lists_users_once_and_remote_members() {
    let mut r = room();
    let alice = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    let alice2 = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    r.set_nickname(alice2, "Alice").unwrap();
    let _ = alice;
    r.remote_join(a("xmpp:bob@xmpp.example.org"), "bob", true);
    assert_eq!(
        r.roster(),
        [
            (a("sip:alice@example.com"), Some("Alice".into()), false),
            (a("xmpp:bob@xmpp.example.org"), Some("bob".into()), true),
        ]
    );
    assert_eq!(
        r.nick_uri("Alice in wonderland").unwrap().to_string(),
        "sip:Alice%20in%20wonderland@chat.example.com"
    );
}

#[test]
fn a_full_room_refuses_a_join() {
    let mut r = Room::new(
        a(ROOM),
        Policy {
            max_participants: 1,
            ..Policy::default()
        },
    );
    r.join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    assert_eq!(
        r.join(Participant::new(a("sip:bob@example.com")))
            .unwrap_err()
            .code,
        403
    );
}

/// A bridged member never replaces another unseen: a nickname held by
/// one is refused to the next; the same member joining again under a new
/// nickname is a rename.
#[test]
fn bridged_members_keep_their_nicknames_apart() {
    let mut r = room();
    assert!(r.remote_join(a("xmpp:bob@xmpp.example.org"), "bob", true));
    assert!(!r.remote_join(a("irc://irc.example.org/bob,isnick"), "Bob", true));
    assert!(r.remote_join(a("xmpp:bob@xmpp.example.org"), "bob", true));
    changes(&mut r);
    assert!(r.remote_join(a("xmpp:bob@xmpp.example.org"), "robert", true));
    assert_eq!(
        changes(&mut r),
        [RosterChange::Nick {
            who: a("xmpp:bob@xmpp.example.org"),
            old: Some("bob".into()),
            new: Some("robert".into()),
            remote: true
        }]
    );
    assert_eq!(r.roster().len(), 1);
}

fn anonymous_room() -> Room {
    Room::new(
        a(ROOM),
        Policy {
            anonymous: true,
            ..Policy::default()
        },
    )
}

fn shown(who: &str, nick: &str) -> RosterChange {
    RosterChange::Joined {
        who: a(who),
        nick: Some(nick.into()),
        remote: false,
    }
}

#[test]
fn anonymous_room_lists_a_participant_by_nickname_uri_once_it_has_one() {
    let mut r = anonymous_room();
    let alice = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    // No nickname yet: in no roster, announced to nobody.
    assert!(changes(&mut r).is_empty());
    assert!(r.roster().is_empty());
    r.set_nickname(alice, "Rabbit").unwrap();
    assert_eq!(
        changes(&mut r),
        [shown("sip:Rabbit@chat.example.com", "Rabbit")]
    );
    assert_eq!(
        r.roster(),
        [(
            a("sip:Rabbit@chat.example.com"),
            Some("Rabbit".into()),
            false
        )]
    );
    // A second device under the same URI: still one user.
    let alice2 = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    assert!(changes(&mut r).is_empty());
    assert_eq!(r.roster().len(), 1);
    // A new nickname: the old nickname URI leaves, the new one joins.
    r.set_nickname(alice, "Hare").unwrap();
    assert_eq!(
        changes(&mut r),
        [
            RosterChange::Left {
                who: a("sip:Rabbit@chat.example.com"),
                nick: Some("Rabbit".into()),
                remote: false
            },
            shown("sip:Hare@chat.example.com", "Hare"),
        ]
    );
    r.leave(alice2).unwrap();
    assert!(changes(&mut r).is_empty());
    r.leave(alice).unwrap();
    assert_eq!(
        changes(&mut r),
        [RosterChange::Left {
            who: a("sip:Hare@chat.example.com"),
            nick: Some("Hare".into()),
            remote: false
        }]
    );
    // No change ever named the real URI.
    assert!(r.roster().is_empty());
}

#[test]
fn anonymous_room_needs_a_nickname_before_sending_and_shows_its_uri() {
    let mut r = anonymous_room();
    let alice = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    let bob = r.join(Participant::new(a("sip:bob@example.com"))).unwrap();
    let to_room = [a(ROOM)];
    // Without a nickname: 403, and nothing to show it by.
    let refused = r
        .route(alice, &a("sip:alice@example.com"), &to_room, "text/plain")
        .unwrap_err();
    assert_eq!(refused.code, 403);
    assert_eq!(r.shown_sender(alice), None);
    r.set_nickname(alice, "Rabbit").unwrap();
    // The real URI or the nickname URI as From: routed, shown by nickname URI.
    for from in ["sip:alice@example.com", "sip:Rabbit@chat.example.com"] {
        assert_eq!(
            r.route(alice, &a(from), &to_room, "text/plain").unwrap(),
            Route::Room {
                sessions: vec![bob]
            },
            "From {from}"
        );
    }
    assert_eq!(
        r.shown_sender(alice),
        Some(NameAddr {
            display: Some("Rabbit".into()),
            address: a("sip:Rabbit@chat.example.com"),
        })
    );
    // Someone else's URI or nickname URI as From: still 403.
    r.set_nickname(bob, "Bob").unwrap();
    for from in ["sip:bob@example.com", "sip:Bob@chat.example.com"] {
        let e = r
            .route(alice, &a(from), &to_room, "text/plain")
            .unwrap_err();
        assert_eq!(e.code, 403, "From {from}");
    }
    // A room that is not anonymous sends as written.
    let mut open = room();
    let carol = open
        .join(Participant::new(a("sip:carol@example.com")))
        .unwrap();
    open.set_nickname(carol, "Carol").unwrap();
    assert_eq!(open.shown_sender(carol), None);
}

#[test]
fn anonymous_room_reaches_a_participant_by_nickname_uri_only() {
    let mut r = anonymous_room();
    let alice = r
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    let bob = r.join(Participant::new(a("sip:bob@example.com"))).unwrap();
    r.set_nickname(alice, "Rabbit").unwrap();
    r.set_nickname(bob, "Bob").unwrap();
    let from = a("sip:bob@example.com");
    assert_eq!(
        r.route(
            bob,
            &from,
            &[a("sip:Rabbit@chat.example.com")],
            "text/plain"
        )
        .unwrap(),
        Route::Private {
            sessions: vec![alice]
        }
    );
    // The real URI names nobody: 404, as a stranger's would.
    let e = r
        .route(bob, &from, &[a("sip:alice@example.com")], "text/plain")
        .unwrap_err();
    assert_eq!(e.code, 404);
    assert_eq!(r.sessions_of(&a("sip:Rabbit@chat.example.com")), [alice]);
    assert!(r.sessions_of(&a("sip:alice@example.com")).is_empty());
}
