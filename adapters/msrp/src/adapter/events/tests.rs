//! The spacing of NOTIFYs (RFC 4575 §3.9) with fake time: a watcher of a
//! room, driven as the driver drives it, and a subscriber that applies
//! what it gets (§4.6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cpimgate_model::address::Address;
use cpimgate_sip::codec::parse;
use cpimgate_sip::transport::TransportKind;

use super::*;
use crate::conference::read::{self, Document, Roster};
use crate::room::{Participant, Policy, Room, SessionId};

/// A SUBSCRIBE as a participant sends it (RFC 4575 §3, RFC 6665 §4.1).
const SUBSCRIBE: &[u8] = b"SUBSCRIBE sip:chatroom22@chat.example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP bobpc.example.com;branch=z9hG4bKnashds7\r\n\
Max-Forwards: 70\r\n\
From: <sip:bob@example.com>;tag=ffd2\r\n\
To: <sip:chatroom22@chat.example.com>\r\n\
Call-ID: 4fd8e76a2d7@bobpc.example.com\r\n\
CSeq: 1 SUBSCRIBE\r\n\
Contact: <sip:bob@bobpc.example.com>\r\n\
Event: conference\r\n\
Accept: application/conference-info+xml\r\n\
Expires: 600\r\n\
Content-Length: 0\r\n\r\n";

const VIA: Via<'static> = Via {
    transport: "TCP",
    sent_by: "192.0.2.5",
    branch: "z9hG4bK776asdhds",
};

const SECOND: Duration = Duration::from_secs(1);

fn a(s: &str) -> Address {
    s.parse().unwrap()
}

/// A room, its log, one watcher of it, and what its subscriber sees.
struct Focus {
    room: Room,
    conference: Conference,
    log: Log,
    watcher: Watcher,
    /// The subscriber's view, fed with every NOTIFY.
    view: Roster,
    /// The documents the subscriber got, in order.
    got: Vec<Document>,
    /// The sessions of the members the room started with.
    members: Vec<SessionId>,
}

impl Focus {
    /// A room with `members` in it; bob subscribes at `t0` and gets the
    /// full document at once. NOTIFYs are spaced by `interval`.
    fn new(t0: Instant, interval: Duration, members: &[&str]) -> Focus {
        let mut room = Room::new(a("sip:chatroom22@chat.example.com"), Policy::default());
        let members = members
            .iter()
            .map(|m| room.join(Participant::new(a(m))).unwrap())
            .collect();
        while room.poll_change().is_some() {}
        let config = Config {
            min_notify_interval: interval,
            ..Config::conference("sip:chatroom22@192.0.2.5")
        };
        let mut sub = Subscription::new(config, "3kd9a", 1);
        sub.handle_subscribe(t0, &parse(SUBSCRIBE).unwrap())
            .unwrap();
        let log = Log::default();
        let peer = Destination::new(TransportKind::Tcp, "192.0.2.4:5060".parse().unwrap());
        let watcher = Watcher::new(sub, "chatroom22".into(), peer, log.head());
        let mut f = Focus {
            conference: Conference::new(room.uri()),
            room,
            log,
            watcher,
            view: Roster::new(),
            got: Vec::new(),
            members,
        };
        let full = f.poll(t0).expect("the full document at once");
        assert_eq!(full.state, read::State::Full);
        f.answer(200);
        f
    }

    /// The room's changes into the log, as the driver keeps them.
    fn changes(&mut self) {
        while let Some(c) = self.room.poll_change() {
            self.log.push(Update::from_change(&c, Vec::new()));
        }
    }

    fn join(&mut self, who: &str) -> SessionId {
        let id = self.room.join(Participant::new(a(who))).unwrap();
        self.changes();
        id
    }

    fn nick(&mut self, id: SessionId, nick: &str) {
        self.room.set_nickname(id, nick).unwrap();
        self.changes();
    }

    fn leave(&mut self, id: SessionId) {
        self.room.leave(id);
        self.changes();
    }

    /// What the driver does at `now`: the NOTIFY owed, if any, sent and
    /// read by the subscriber. Its response is left pending.
    fn poll(&mut self, now: Instant) -> Option<Document> {
        let version = self.watcher.sub.next_version();
        let body = match self.watcher.poll_owed(now, &self.log)? {
            Owed::Changes(updates) => self.conference.partial(&updates, version),
            Owed::State(_) => {
                let users = users_of(&self.room, |_| Vec::new());
                self.conference.full(&users, version)
            }
        };
        let notify = self.watcher.notify(now, &VIA, body).unwrap();
        self.watcher.sent();
        let doc = read::read(notify.body()).unwrap();
        self.view.apply(&doc);
        self.got.push(doc.clone());
        Some(doc)
    }

    fn answer(&mut self, status: u16) {
        self.watcher.handle_notify_response(status);
    }

    /// The subscriber's view, as (entity, nickname) pairs.
    fn seen(&self) -> Vec<(String, Option<String>)> {
        self.view
            .users()
            .iter()
            .map(|(e, k)| (e.clone(), k.nickname.clone().filter(|n| !n.is_empty())))
            .collect()
    }

    /// The room's roster, the same way.
    fn truth(&self) -> Vec<(String, Option<String>)> {
        let mut r: Vec<_> = self
            .room
            .roster()
            .into_iter()
            .map(|(who, nick, _)| (who.to_string(), nick))
            .collect();
        r.sort();
        r
    }

    fn versions(&self) -> Vec<Option<u32>> {
        self.got.iter().map(|d| d.version).collect()
    }
}

/// RFC 4575 §3.9: three changes within five seconds of the full NOTIFY
/// go out together five seconds after it, in one partial document
/// whose version is one up.
#[test]
fn changes_within_the_interval_go_out_together_when_it_has_passed() {
    let t0 = Instant::now();
    let mut f = Focus::new(t0, 5 * SECOND, &["sip:carol@example.com"]);
    let alice = f.join("sip:alice@example.com");
    f.join("sip:bob@example.com");
    f.nick(alice, "Alice");
    assert_eq!(f.poll(t0 + SECOND), None, "held");
    assert_eq!(f.watcher.poll_timeout(&f.log), Some(t0 + 5 * SECOND));
    assert_eq!(f.poll(t0 + 4 * SECOND), None, "still held");

    let doc = f.poll(t0 + 5 * SECOND).expect("due after 5 s");
    assert_eq!(doc.state, read::State::Partial);
    let users: Vec<_> = doc
        .users
        .iter()
        .map(|u| (u.entity.as_str(), u.state, u.nickname.as_deref()))
        .collect();
    assert_eq!(
        users,
        [
            ("sip:alice@example.com", read::State::Full, Some("Alice")),
            ("sip:bob@example.com", read::State::Full, None),
        ]
    );
    assert_eq!(f.versions(), [Some(1), Some(2)]);
    assert_eq!(f.seen(), f.truth());
    assert_eq!(f.poll(t0 + 6 * SECOND), None, "nothing more held");
    assert_eq!(f.watcher.poll_timeout(&f.log), Some(t0 + 600 * SECOND));
}

/// A change after a quiet spell goes out at once; the next one within
/// the interval waits for it.
#[test]
fn a_change_after_a_quiet_spell_goes_at_once() {
    let t0 = Instant::now();
    let mut f = Focus::new(t0, 5 * SECOND, &[]);
    let t1 = t0 + 60 * SECOND;
    let alice = f.join("sip:alice@example.com");
    assert!(f.poll(t1).is_some(), "no NOTIFY for a minute: at once");
    f.answer(200);
    f.nick(alice, "Al");
    assert_eq!(f.poll(t1 + 2 * SECOND), None);
    assert_eq!(f.watcher.poll_timeout(&f.log), Some(t1 + 5 * SECOND));
    let doc = f.poll(t1 + 5 * SECOND).unwrap();
    assert_eq!(doc.users[0].state, read::State::Partial);
    assert_eq!(doc.users[0].nickname.as_deref(), Some("Al"));
    assert_eq!(f.versions(), [Some(1), Some(2), Some(3)]);
    assert_eq!(f.seen(), f.truth());
}

/// A user who joins and leaves within the interval is never shown; one
/// known before who leaves is deleted. Changes that cancel out owe no
/// NOTIFY, and the version does not move.
#[test]
fn a_join_and_leave_within_the_interval() {
    let t0 = Instant::now();
    let mut f = Focus::new(t0, 5 * SECOND, &["sip:carol@example.com"]);
    let zed = f.join("sip:zed@example.com");
    f.leave(zed);
    assert_eq!(f.poll(t0 + 5 * SECOND), None, "nothing to tell");
    assert_eq!(f.watcher.poll_timeout(&f.log), Some(t0 + 600 * SECOND));

    let zed = f.join("sip:zed@example.com");
    let carol = f.members[0];
    f.leave(carol);
    f.leave(zed);
    let doc = f.poll(t0 + 6 * SECOND).unwrap();
    let users: Vec<_> = doc
        .users
        .iter()
        .map(|u| (u.entity.as_str(), u.state))
        .collect();
    assert_eq!(users, [("sip:carol@example.com", read::State::Deleted)]);
    assert_eq!(f.versions(), [Some(1), Some(2)]);
    assert_eq!(f.seen(), f.truth());
}

/// No partial NOTIFY while another waits for its response: the changes
/// go once it comes (in order over UDP); a failure ends nothing but a
/// 481 ends the subscription.
#[test]
fn a_pending_notify_holds_the_next_one() {
    let t0 = Instant::now();
    let mut f = Focus::new(t0, Duration::ZERO, &[]);
    let alice = f.join("sip:alice@example.com");
    assert!(f.poll(t0).is_some(), "no spacing: at once");
    f.nick(alice, "A");
    f.nick(alice, "Alice");
    f.join("sip:bob@example.com");
    assert_eq!(f.poll(t0 + SECOND), None, "the last NOTIFY has no response");
    assert_eq!(f.watcher.poll_timeout(&f.log), Some(t0 + 600 * SECOND));
    f.answer(500);
    let doc = f.poll(t0 + SECOND).expect("sent once answered");
    assert_eq!(doc.users.len(), 2);
    assert_eq!(doc.users[0].nickname.as_deref(), Some("Alice"));
    assert_eq!(f.versions(), [Some(1), Some(2), Some(3)]);
    assert_eq!(f.seen(), f.truth());
    f.answer(481);
    assert!(f.watcher.sub.is_terminated());
    f.join("sip:carol@example.com");
    assert_eq!(f.poll(t0 + 2 * SECOND), None);
}

/// The full NOTIFY of a refresh and the last NOTIFY are never held, not
/// even by a NOTIFY waiting for its response: they carry the whole
/// roster, so what was held is not sent again.
#[test]
fn full_and_last_notifies_are_not_held() {
    let t0 = Instant::now();
    let mut f = Focus::new(t0, 5 * SECOND, &[]);
    f.join("sip:alice@example.com");
    assert!(f.poll(t0 + 5 * SECOND).is_some());
    f.join("sip:bob@example.com");
    // A refresh (RFC 6665 §4.2.1.4) while that NOTIFY has no response.
    let refresh = String::from_utf8(SUBSCRIBE.to_vec())
        .unwrap()
        .replace("CSeq: 1", "CSeq: 2")
        .replace(
            "To: <sip:chatroom22@chat.example.com>",
            "To: <sip:chatroom22@chat.example.com>;tag=3kd9a",
        );
    let t1 = t0 + 6 * SECOND;
    f.watcher
        .sub
        .handle_subscribe(t1, &parse(refresh.as_bytes()).unwrap())
        .unwrap();
    let doc = f.poll(t1).expect("full state at once");
    assert_eq!(doc.state, read::State::Full);
    assert_eq!(doc.users.len(), 2);
    f.answer(200);
    f.answer(200);
    assert_eq!(f.poll(t1 + 5 * SECOND), None, "bob is in the full one");

    // A change held, then expiry: the last NOTIFY has the roster.
    f.join("sip:carol@example.com");
    assert_eq!(f.watcher.poll_timeout(&f.log), Some(t1 + 5 * SECOND));
    let end = t1 + 600 * SECOND;
    let doc = f.poll(end).expect("the last NOTIFY");
    assert_eq!(doc.state, read::State::Full);
    assert_eq!(doc.users.len(), 3);
    assert!(f.watcher.sub.is_terminated());
    assert_eq!(f.versions(), [Some(1), Some(2), Some(3), Some(4)]);
}

/// The log keeps what a watcher has not had, and forgets the rest.
#[test]
fn the_log_forgets_what_was_sent() {
    let mut log = Log::default();
    let u = |e: &str| Update::Deleted { entity: e.into() };
    log.push(u("sip:a@x"));
    log.push(u("sip:b@x"));
    log.push(u("sip:c@x"));
    assert_eq!(log.head(), 3);
    log.forget_before(2);
    assert_eq!(log.head(), 3);
    assert_eq!(log.since(0).count(), 1);
    assert_eq!(log.since(2).collect::<Vec<_>>(), [&u("sip:c@x")]);
    log.forget_before(3);
    log.push(u("sip:d@x"));
    assert_eq!(log.since(3).collect::<Vec<_>>(), [&u("sip:d@x")]);
    assert_eq!(log.since(4).count(), 0);
}
