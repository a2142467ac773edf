#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use minidom::Element;
use proptest::prelude::*;

use super::*;
use crate::room::{Participant, Policy};

fn a(s: &str) -> Address {
    s.parse().unwrap()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/conference/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// What a subscriber reads of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReadEndpoint {
    state: String,
    status: Option<String>,
    media: Vec<String>,
}

/// What a subscriber reads of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReadUser {
    state: String,
    nickname: Option<String>,
    display: Option<String>,
    endpoints: BTreeMap<String, ReadEndpoint>,
}

/// What a subscriber reads of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReadDoc {
    entity: String,
    state: String,
    version: u32,
    subject: Option<String>,
    user_count: Option<usize>,
    users: Vec<(String, ReadUser)>,
}

/// The RFCs' figures carry comments, which the XMPP-minded parser does
/// not take; they say nothing, so they go.
fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("<!--") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("-->").unwrap();
        rest = &rest[i + end + 3..];
    }
    out.push_str(rest);
    out
}

fn child<'a>(e: &'a Element, name: &str) -> Option<&'a Element> {
    e.get_child(name, NAMESPACE)
}

/// A small reader of conference-info documents (RFC 4575 §5): the parts
/// this gateway writes.
fn read(doc: &str) -> ReadDoc {
    let root: Element = strip_comments(doc).trim().parse().unwrap();
    assert!(root.is("conference-info", NAMESPACE));
    let users = child(&root, "users")
        .map(|users| {
            users
                .children()
                .filter(|u| u.is("user", NAMESPACE))
                .map(|u| {
                    let endpoints = u
                        .children()
                        .filter(|e| e.is("endpoint", NAMESPACE))
                        .map(|e| {
                            let media = e
                                .children()
                                .filter(|m| m.is("media", NAMESPACE))
                                .map(|m| child(m, "type").map(Element::text).unwrap_or_default())
                                .collect();
                            (
                                e.attr("entity").unwrap().to_owned(),
                                ReadEndpoint {
                                    state: e.attr("state").unwrap_or("full").to_owned(),
                                    status: child(e, "status").map(Element::text),
                                    media,
                                },
                            )
                        })
                        .collect();
                    (
                        u.attr("entity").unwrap().to_owned(),
                        ReadUser {
                            state: u.attr("state").unwrap_or("full").to_owned(),
                            nickname: u.attr_ns(XCON_NAMESPACE, "nickname").map(str::to_owned),
                            display: child(u, "display-text").map(Element::text),
                            endpoints,
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ReadDoc {
        entity: root.attr("entity").unwrap().to_owned(),
        state: root.attr("state").unwrap_or("full").to_owned(),
        version: root.attr("version").unwrap().parse().unwrap(),
        subject: child(&root, "conference-description")
            .and_then(|d| child(d, "subject"))
            .map(Element::text),
        user_count: child(&root, "conference-state")
            .and_then(|s| child(s, "user-count"))
            .map(|c| c.text().parse().unwrap()),
        users,
    }
}

/// RFC 7701 §9.6, Figure 7: the same room built here gives the same
/// users, states and nicknames.
#[test]
fn the_nickname_document_of_rfc7701_9_6() {
    let theirs = read(&fixture("rfc7701-9.6-nickname.xml"));
    let mut room = Room::new(a("sip:chatroom22@chat.example.com"), Policy::default());
    let bob = room
        .join(Participant::new(a("sip:bob@example.com")))
        .unwrap();
    let alice = room
        .join(Participant::new(a("sip:alice@atlanta.example.com")))
        .unwrap();
    room.set_nickname(bob, "Dopey Donkey").unwrap();
    room.set_nickname(alice, "Alice the great").unwrap();
    let conf = Conference::new(room.uri()).with_subject("MSRP nickname example");
    let ours = read(&conf.full(&users_of(&room, |_| Vec::new()), 1));

    assert_eq!(ours.entity, theirs.entity);
    assert_eq!((ours.state.as_str(), ours.version), ("full", 1));
    assert_eq!((theirs.state.as_str(), theirs.version), ("full", 1));
    assert_eq!(ours.subject, theirs.subject);
    assert_eq!(ours.user_count, theirs.user_count);
    let key = |d: &ReadDoc| -> Vec<(String, String, Option<String>)> {
        d.users
            .iter()
            .map(|(e, u)| (e.clone(), u.state.clone(), u.nickname.clone()))
            .collect()
    };
    assert_eq!(key(&ours), key(&theirs));
    // The display text is the nickname here: the room knows no real names.
    assert_eq!(ours.users[0].1.display.as_deref(), Some("Dopey Donkey"));
}

/// RFC 4575 §7.1: users with endpoints; ours have the same users and
/// endpoint keys, each endpoint connected with a `message` medium.
#[test]
fn the_basic_example_of_rfc4575_7_1() {
    let theirs = read(&fixture("rfc4575-7.1-basic.xml"));
    assert_eq!(theirs.entity, "sips:conf233@example.com");
    assert_eq!(theirs.user_count, Some(33));
    let mut room = Room::new(a("sips:conf233@example.com"), Policy::default());
    room.join(Participant::new(a("sip:bob@example.com")))
        .unwrap();
    room.join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    let users = users_of(&room, |who| {
        theirs
            .users
            .iter()
            .filter(|(e, _)| *e == who.to_string())
            .flat_map(|(_, u)| u.endpoints.keys().map(|k| Endpoint::new(k.clone())))
            .collect()
    });
    let conf = Conference::new(room.uri()).with_subject("Agenda: This month's goals");
    let ours = read(&conf.full(&users, 1));
    assert_eq!(ours.entity, theirs.entity);
    assert_eq!(ours.subject, theirs.subject);
    let shape = |d: &ReadDoc| -> Vec<(String, String, Vec<String>)> {
        d.users
            .iter()
            .map(|(e, u)| {
                (
                    e.clone(),
                    u.state.clone(),
                    u.endpoints.keys().cloned().collect(),
                )
            })
            .collect()
    };
    assert_eq!(shape(&ours), shape(&theirs));
    for (_, u) in &ours.users {
        for e in u.endpoints.values() {
            assert_eq!(e.status.as_deref(), Some("connected"));
            assert_eq!(e.media, vec!["message".to_owned()]);
        }
    }
}

/// RFC 4575 §7.2 is a partial document: the reader takes it, and ours
/// have the same root shape.
#[test]
fn the_rich_partial_example_of_rfc4575_7_2() {
    let theirs = read(&fixture("rfc4575-7.2-rich.xml"));
    assert_eq!((theirs.state.as_str(), theirs.version), ("partial", 5));
    assert_eq!(theirs.users.len(), 1);
    assert_eq!(theirs.users[0].0, "sip:bob@example.com");
    let conf = Conference::new(&a("sips:conf233@example.com"));
    let ours = read(&conf.partial(
        &[Update::Deleted {
            entity: "sip:bob@example.com".into(),
        }],
        5,
    ));
    assert_eq!(
        (ours.entity, ours.state, ours.version),
        (theirs.entity, theirs.state, 5)
    );
    assert_eq!(ours.users[0].0, "sip:bob@example.com");
    assert_eq!(ours.users[0].1.state, "deleted");
}

/// Members of bridged worlds are users too, under their address.
#[test]
fn bridged_members_are_users_with_their_address() {
    let mut room = Room::new(a("sip:chatroom22@chat.example.com"), Policy::default());
    room.join(Participant::new(a("sip:bob@example.com")))
        .unwrap();
    assert!(room.remote_join(a("xmpp:alice@example.org"), "alice", true));
    let doc = read(&Conference::new(room.uri()).full(&users_of(&room, |_| Vec::new()), 3));
    let (entity, alice) = &doc.users[1];
    assert_eq!(entity, "xmpp:alice@example.org");
    assert_eq!(alice.nickname.as_deref(), Some("alice"));
    assert!(alice.endpoints.contains_key("xmpp:alice@example.org"));
    assert_eq!(doc.user_count, Some(2));
}

#[test]
fn partial_documents_for_each_roster_change() {
    let mut room = Room::new(a("sip:chatroom22@chat.example.com"), Policy::default());
    let conf = Conference::new(room.uri());
    let bob = room
        .join(Participant::new(a("sip:bob@example.com")))
        .unwrap();
    let joined = room.poll_change().unwrap();
    let doc = read(&conf.partial(
        &[Update::from_change(
            &joined,
            vec![Endpoint::new("sip:bob@pc33.example.com")],
        )],
        2,
    ));
    assert_eq!(doc.state, "partial");
    assert_eq!(doc.users[0].1.state, "full");
    assert!(
        doc.users[0]
            .1
            .endpoints
            .contains_key("sip:bob@pc33.example.com")
    );

    room.set_nickname(bob, "Bob & \"Co\"").unwrap();
    let nick = room.poll_change().unwrap();
    let doc = read(&conf.partial(&[Update::from_change(&nick, Vec::new())], 3));
    let u = &doc.users[0].1;
    assert_eq!(u.state, "partial");
    assert_eq!(u.nickname.as_deref(), Some("Bob & \"Co\""));
    assert_eq!(u.display.as_deref(), Some("Bob & \"Co\""));

    // RFC 7701 §7.3: given up, written empty.
    room.set_nickname(bob, "").unwrap();
    let dropped = room.poll_change().unwrap();
    let doc = read(&conf.partial(&[Update::from_change(&dropped, Vec::new())], 4));
    assert_eq!(doc.users[0].1.nickname.as_deref(), Some(""));
    assert_eq!(
        doc.users[0].1.display.as_deref(),
        Some("sip:bob@example.com")
    );

    room.leave(bob);
    let left = room.poll_change().unwrap();
    let doc = read(&conf.partial(&[Update::from_change(&left, Vec::new())], 5));
    assert_eq!(doc.users[0].1.state, "deleted");
}

#[test]
fn endpoints_come_and_go_in_partial_users() {
    let conf = Conference::new(&a("sip:chatroom22@chat.example.com"));
    let doc = read(&conf.partial(
        &[
            Update::EndpointAdded {
                user: "sip:bob@example.com".into(),
                endpoint: Endpoint::new("sip:bob@phone.example.com"),
            },
            Update::EndpointDeleted {
                user: "sip:carol@example.com".into(),
                endpoint: "sip:carol@pc.example.com".into(),
            },
        ],
        7,
    ));
    assert_eq!(doc.users[0].1.state, "partial");
    assert_eq!(
        doc.users[0].1.endpoints["sip:bob@phone.example.com"].state,
        "full"
    );
    assert_eq!(
        doc.users[1].1.endpoints["sip:carol@pc.example.com"].state,
        "deleted"
    );
}

/// The entities of a document's users, in order: RFC 4575 §4.5 keys
/// them, so none comes twice.
fn entities(doc: &ReadDoc) -> Vec<&str> {
    doc.users.iter().map(|(e, _)| e.as_str()).collect()
}

/// Changes held for one subscriber (RFC 4575 §3.9) come out as one
/// document with each user once, in its latest state (§4.6).
#[test]
fn held_changes_come_out_once_per_user_in_their_latest_state() {
    let mut room = Room::new(a("sip:chatroom22@chat.example.com"), Policy::default());
    let conf = Conference::new(room.uri());
    let carol = room
        .join(Participant::new(a("sip:carol@example.com")))
        .unwrap();
    room.set_nickname(carol, "Carol").unwrap();
    let dave = room
        .join(Participant::new(a("sip:dave@example.com")))
        .unwrap();
    // What the subscriber knows: carol and dave, in a full document.
    let mut view = BTreeMap::new();
    let endpoint = |who: &Address| vec![Endpoint::new(format!("{who};session"))];
    apply(&mut view, &read(&conf.full(&users_of(&room, endpoint), 1)));
    while room.poll_change().is_some() {}

    // Then, within one interval: alice joins and takes two nicknames,
    // bob joins and leaves, carol is renamed twice, dave leaves.
    let alice = room
        .join(Participant::new(a("sip:alice@example.com")))
        .unwrap();
    room.set_nickname(alice, "Al").unwrap();
    room.set_nickname(alice, "Alice").unwrap();
    let bob = room
        .join(Participant::new(a("sip:bob@example.com")))
        .unwrap();
    room.leave(bob);
    room.set_nickname(carol, "Caroline").unwrap();
    room.set_nickname(carol, "Lina").unwrap();
    room.leave(dave);
    let held: Vec<Update> = std::iter::from_fn(|| room.poll_change())
        .map(|c| {
            let eps = match &c {
                RosterChange::Joined { who, .. } => endpoint(who),
                _ => Vec::new(),
            };
            Update::from_change(&c, eps)
        })
        .collect();
    assert_eq!(held.len(), 8);
    let doc = read(&conf.partial(&coalesce(&held), 2));

    assert_eq!(
        entities(&doc),
        [
            "sip:alice@example.com",
            "sip:carol@example.com",
            "sip:dave@example.com"
        ],
        "bob came and went unseen"
    );
    let (alice, carol, dave) = (&doc.users[0].1, &doc.users[1].1, &doc.users[2].1);
    assert_eq!(alice.state, "full");
    assert_eq!(alice.nickname.as_deref(), Some("Alice"));
    assert_eq!(alice.display.as_deref(), Some("Alice"));
    assert!(
        alice
            .endpoints
            .contains_key("sip:alice@example.com;session")
    );
    assert_eq!(carol.state, "partial");
    assert_eq!(carol.nickname.as_deref(), Some("Lina"));
    assert_eq!(dave.state, "deleted");

    apply(&mut view, &doc);
    let fresh = read(&conf.full(&users_of(&room, endpoint), 3));
    let mut expected = BTreeMap::new();
    apply(&mut expected, &fresh);
    assert_eq!(normal(&view), normal(&expected));
}

/// A user who leaves and comes back within the interval is written
/// whole (§4.6 step 1), one who is renamed and leaves is deleted.
#[test]
fn a_user_back_again_is_written_whole() {
    let e = "sip:bob@example.com";
    let nick = |n: &str| Update::Nickname {
        entity: e.into(),
        nickname: Some(n.into()),
        display_text: n.into(),
    };
    let back = User::member(&a(e), Some("Bob"), false, Vec::new());
    let out = coalesce(&[
        nick("B"),
        Update::Deleted { entity: e.into() },
        Update::Added(back.clone()),
    ]);
    assert_eq!(out, [Update::Added(back)]);
    let out = coalesce(&[nick("B"), Update::Deleted { entity: e.into() }]);
    assert_eq!(out, [Update::Deleted { entity: e.into() }]);
    assert_eq!(coalesce(&[nick("B"), nick("C")]), [nick("C")]);
    // Changes that undo each other leave nothing to send.
    let fresh = User::member(&a("sip:zed@example.com"), None, false, Vec::new());
    let gone = Update::Deleted {
        entity: fresh.entity.clone(),
    };
    assert!(coalesce(&[Update::Added(fresh), gone]).is_empty());
}

/// Endpoint changes of one user: merged into a user written whole, or
/// into one partial `<user>` with the latest change of each endpoint.
#[test]
fn endpoint_changes_of_one_user_go_in_one_element() {
    let conf = Conference::new(&a("sip:chatroom22@chat.example.com"));
    let user = "sip:bob@example.com";
    let added = |ep: &str| Update::EndpointAdded {
        user: user.into(),
        endpoint: Endpoint::new(ep),
    };
    let deleted = |ep: &str| Update::EndpointDeleted {
        user: user.into(),
        endpoint: ep.into(),
    };
    let held = [
        added("sip:bob@phone.example.com"),
        Update::Nickname {
            entity: user.into(),
            nickname: Some("Bob".into()),
            display_text: "Bob".into(),
        },
        added("sip:bob@pc.example.com"),
        deleted("sip:bob@phone.example.com"),
    ];
    let doc = read(&conf.partial(&coalesce(&held), 4));
    assert_eq!(entities(&doc), [user]);
    let bob = &doc.users[0].1;
    assert_eq!(bob.state, "partial");
    assert_eq!(bob.nickname.as_deref(), Some("Bob"));
    assert_eq!(bob.endpoints.len(), 2);
    assert_eq!(bob.endpoints["sip:bob@phone.example.com"].state, "deleted");
    assert_eq!(bob.endpoints["sip:bob@pc.example.com"].state, "full");

    // Came with one endpoint, opened another, closed the first: whole.
    let came = User::member(
        &a(user),
        None,
        false,
        vec![Endpoint::new("sip:bob@phone.example.com")],
    );
    let out = coalesce(&[
        Update::Added(came),
        added("sip:bob@pc.example.com"),
        deleted("sip:bob@phone.example.com"),
    ]);
    let doc = read(&conf.partial(&out, 5));
    assert_eq!(entities(&doc), [user]);
    assert_eq!(doc.users[0].1.state, "full");
    assert_eq!(
        doc.users[0].1.endpoints.keys().collect::<Vec<_>>(),
        ["sip:bob@pc.example.com"]
    );
}

#[test]
fn a_deleted_conference() {
    let doc = read(&Conference::new(&a("sip:chatroom22@chat.example.com")).deleted(9));
    assert_eq!((doc.state.as_str(), doc.version), ("deleted", 9));
}

#[test]
fn text_that_is_not_xml_does_not_become_markup() {
    let conf = Conference::new(&a("sip:chatroom22@chat.example.com"))
        .with_subject("</subject><evil/>\r\n]]> & \u{1}\u{FFFF}")
        .with_display_text("a'b\"c");
    let users = [User {
        entity: "sip:x@example.com".into(),
        display_text: Some("\t<b>\n".into()),
        nickname: Some("\"'><&\t\r\n".into()),
        endpoints: Vec::new(),
    }];
    let doc = read(&conf.full(&users, 1));
    assert_eq!(
        doc.subject.as_deref(),
        Some("</subject><evil/>\r\n]]> & \u{FFFD}\u{FFFD}")
    );
    assert_eq!(doc.users[0].1.nickname.as_deref(), Some("\"'><&\t\r\n"));
    assert_eq!(doc.users[0].1.display.as_deref(), Some("\t<b>\n"));
}

/// Applies a document to a subscriber's view as RFC 4575 §4.6 says
/// (users and their endpoints; the nickname and display text of a
/// partial user replace the old ones when present).
fn apply(view: &mut BTreeMap<String, ReadUser>, doc: &ReadDoc) {
    if doc.state == "full" {
        view.clear();
    }
    for (entity, u) in &doc.users {
        match u.state.as_str() {
            "deleted" => {
                view.remove(entity);
            }
            "partial" => {
                let Some(old) = view.get_mut(entity) else {
                    view.insert(entity.clone(), u.clone());
                    continue;
                };
                if u.nickname.is_some() {
                    old.nickname.clone_from(&u.nickname);
                }
                if u.display.is_some() {
                    old.display.clone_from(&u.display);
                }
                for (k, e) in &u.endpoints {
                    if e.state == "deleted" {
                        old.endpoints.remove(k);
                    } else {
                        old.endpoints.insert(k.clone(), e.clone());
                    }
                }
            }
            _ => {
                view.insert(entity.clone(), u.clone());
            }
        }
    }
}

/// The view without what only says how it was learned.
fn normal(view: &BTreeMap<String, ReadUser>) -> BTreeMap<String, (Option<String>, Vec<String>)> {
    view.iter()
        .map(|(k, u)| {
            let nick = u.nickname.clone().filter(|n| !n.is_empty());
            (k.clone(), (nick, u.endpoints.keys().cloned().collect()))
        })
        .collect()
}

fn nickname() -> impl Strategy<Value = String> {
    // Characters that need escaping, non-ASCII, spaces; at least one
    // visible character so the room takes it.
    "[a-zA-Z0-9<>&\"' éß日本\u{1F600}]{0,12}[a-z<>&\"'é]"
}

#[derive(Debug, Clone)]
enum Op {
    Join(usize),
    Leave(usize),
    Nick(usize, String),
    RemoteJoin(usize, String),
    RemoteLeave(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize).prop_map(Op::Join),
        (0..4usize).prop_map(Op::Leave),
        (0..4usize, nickname()).prop_map(|(i, n)| Op::Nick(i, n)),
        (0..4usize, nickname()).prop_map(|(i, n)| Op::RemoteJoin(i, n)),
        (0..4usize).prop_map(Op::RemoteLeave),
    ]
}

const LOCAL: [&str; 4] = [
    "sip:alice@example.com",
    "sip:b%3Cob%3E@example.com",
    "sip:carol@example.com",
    "sip:dave@example.com",
];
const REMOTE: [&str; 4] = [
    "xmpp:alice@example.org",
    "xmpp:bob@example.org",
    "im:carol@example.net",
    "xmpp:dave@example.org",
];

proptest! {
    /// Any roster gives a well-formed document that reads back to the
    /// same users and nicknames.
    #[test]
    fn any_roster_reads_back(members in proptest::collection::vec(
        ("[a-z<>&\"'é日]{1,8}", proptest::option::of(nickname()), any::<bool>()), 0..8)
    ) {
        let users: Vec<User> = members
            .iter()
            .enumerate()
            .map(|(i, (local, nick, remote))| {
                let entity = format!("sip:u{i}-{local}@example.com");
                User {
                    display_text: nick.clone(),
                    nickname: nick.clone(),
                    endpoints: if *remote { vec![Endpoint::new(entity.clone())] } else { Vec::new() },
                    entity,
                }
            })
            .collect();
        let doc = read(&Conference::new(&a("sip:room@example.com")).with_subject("s<&>").full(&users, 1));
        prop_assert_eq!(doc.users.len(), users.len());
        for ((entity, u), user) in doc.users.iter().zip(&users) {
            prop_assert_eq!(entity, &user.entity);
            prop_assert_eq!(&u.nickname, &user.nickname);
            prop_assert_eq!(&u.display, &user.display_text);
            prop_assert_eq!(u.endpoints.len(), user.endpoints.len());
        }
    }

    /// The changes held over any windows, one coalesced partial document
    /// per window (RFC 4575 §3.9), keep a subscriber coherent (§4.6): it
    /// sees what a new full document says, and no document names a
    /// user twice.
    #[test]
    fn coalesced_documents_keep_a_subscriber_coherent(
        ops in proptest::collection::vec((op(), any::<bool>()), 0..32)
    ) {
        let mut room = Room::new(a("sip:room@chat.example.com"), Policy::default());
        let conf = Conference::new(room.uri());
        let endpoint = |who: &Address| vec![Endpoint::new(format!("{who};session"))];
        let mut sessions: [Option<u64>; 4] = [None; 4];
        let mut version = 1;
        let mut view = BTreeMap::new();
        apply(&mut view, &read(&conf.full(&users_of(&room, endpoint), version)));
        let mut held = Vec::new();
        let last = ops.len();
        for (step, (op, send)) in ops.into_iter().enumerate() {
            match op {
                Op::Join(i) if sessions[i].is_none() => {
                    sessions[i] = room.join(Participant::new(a(LOCAL[i]))).ok();
                }
                Op::Leave(i) => {
                    if let Some(id) = sessions[i].take() {
                        room.leave(id);
                    }
                }
                Op::Nick(i, n) => {
                    if let Some(id) = sessions[i] {
                        let _ = room.set_nickname(id, &n);
                    }
                }
                // The same bridged member each time, so that one entity
                // comes, is renamed and goes within a window.
                Op::RemoteJoin(_, n) => {
                    room.remote_join(a(REMOTE[0]), &n, true);
                }
                Op::RemoteLeave(_) => room.remote_leave(&a(REMOTE[0])),
                Op::Join(_) => {}
            }
            while let Some(change) = room.poll_change() {
                let eps = match &change {
                    RosterChange::Joined { who, remote: false, .. } => endpoint(who),
                    _ => Vec::new(),
                };
                held.push(Update::from_change(&change, eps));
            }
            if send || step + 1 == last {
                let updates = coalesce(&held);
                held.clear();
                if updates.is_empty() {
                    continue;
                }
                version += 1;
                let doc = read(&conf.partial(&updates, version));
                let mut seen = entities(&doc);
                seen.sort_unstable();
                let n = seen.len();
                seen.dedup();
                prop_assert_eq!(seen.len(), n, "a user twice");
                apply(&mut view, &doc);
            }
        }
        let mut fresh = BTreeMap::new();
        apply(&mut fresh, &read(&conf.full(&users_of(&room, endpoint), version + 1)));
        prop_assert_eq!(normal(&view), normal(&fresh));
    }

    /// A subscriber that applies the full document and then the partial
    /// ones (RFC 4575 §4.6) sees what a new full document says.
    #[test]
    fn partial_documents_keep_a_subscriber_coherent(ops in proptest::collection::vec(op(), 0..24)) {
        let mut room = Room::new(a("sip:room@chat.example.com"), Policy::default());
        let conf = Conference::new(room.uri());
        let endpoint = |who: &Address| vec![Endpoint::new(format!("{who};session"))];
        let mut sessions: [Option<u64>; 4] = [None; 4];
        let mut remote_nicks: [Option<String>; 4] = Default::default();
        let mut version = 1;
        let mut view = BTreeMap::new();
        apply(&mut view, &read(&conf.full(&users_of(&room, endpoint), version)));
        for op in ops {
            match op {
                Op::Join(i) if sessions[i].is_none() => {
                    sessions[i] = room.join(Participant::new(a(LOCAL[i]))).ok();
                }
                Op::Leave(i) => {
                    if let Some(id) = sessions[i].take() {
                        room.leave(id);
                    }
                }
                Op::Nick(i, n) => {
                    if let Some(id) = sessions[i] {
                        let _ = room.set_nickname(id, &n);
                    }
                }
                Op::RemoteJoin(i, n) => {
                    // Room::remote_join lets a second bridged member take
                    // the nickname key of another one, which leaves the
                    // room without a Left change: not what is tested here.
                    let key = cpimgate_mappings::nick_key(&n);
                    let clash = remote_nicks
                        .iter()
                        .enumerate()
                        .any(|(j, k)| j != i && k.as_deref() == Some(key.as_str()));
                    if !clash && room.remote_join(a(REMOTE[i]), &n, true) {
                        remote_nicks[i] = Some(key);
                    }
                }
                Op::RemoteLeave(i) => {
                    room.remote_leave(&a(REMOTE[i]));
                    remote_nicks[i] = None;
                }
                Op::Join(_) => {}
            }
            while let Some(change) = room.poll_change() {
                let eps = match &change {
                    RosterChange::Joined { who, remote: false, .. } => endpoint(who),
                    _ => Vec::new(),
                };
                version += 1;
                let doc = read(&conf.partial(&[Update::from_change(&change, eps)], version));
                prop_assert_eq!(doc.version, version);
                apply(&mut view, &doc);
            }
        }
        let mut fresh = BTreeMap::new();
        apply(&mut fresh, &read(&conf.full(&users_of(&room, endpoint), version + 1)));
        prop_assert_eq!(normal(&view), normal(&fresh));
    }
}
