#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cpimgate_model::event::Participant;
use cpimgate_model::port::DeliveryOutcome;
use cpimgate_model::{Origin, World};
use tokio::sync::oneshot;

use super::*;
use crate::proto::session::Privmsg;

/// The mapping table's IRC nicks, shared with the test.
#[derive(Clone, Default)]
struct Book(Arc<Mutex<HashMap<String, String>>>);

impl Book {
    fn set(&self, who: &str, nick: &str) {
        self.0.lock().unwrap().insert(who.into(), nick.into());
    }
}

impl NickBook for Book {
    fn nick_of(&self, who: &str) -> Option<String> {
        self.0.lock().unwrap().get(who).cloned()
    }

    fn owner_of(&self, nick: &str) -> Option<String> {
        let map = self.0.lock().unwrap();
        map.iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(nick))
            .map(|(w, _)| w.clone())
    }
}

const ALICE: &str = "sip:alice@example.com";
const CAROL: &str = "sip:carol@example.com";

fn puppets(extra: &str, book: &Book, t0: Instant) -> Puppets {
    let cfg: IrcConfig = toml::from_str(&format!(
        r##"
        network = "irc.localhost"
        server = "127.0.0.1:6667"
        nick = "gw"
        channels = ["#test"]
        mode = "puppet"
        {extra}
        "##
    ))
    .unwrap();
    let mut p = Puppets::new(&cfg, Box::new(book.clone()), t0);
    p.set_isupport(&ISupport {
        nicklen: 30,
        ..ISupport::default()
    });
    p
}

fn join(who: &str, nick: &str) -> RoomEventKind {
    RoomEventKind::Join {
        who: Participant {
            address: who.parse().unwrap(),
            nick: nick.into(),
        },
    }
}

fn leave(who: &str, nick: &str) -> RoomEventKind {
    RoomEventKind::Leave {
        who: Participant {
            address: who.parse().unwrap(),
            nick: nick.into(),
        },
        reason: None,
    }
}

fn message(
    from: &str,
    name: &str,
    text: &str,
) -> (Box<Message>, oneshot::Receiver<DeliveryOutcome>, Reply) {
    let mut m = Message::text(
        Origin {
            world: World::Sip,
            adapter: "sip".into(),
            native_id: None,
        },
        NameAddr::new(from.parse().unwrap()),
        NameAddr::new("irc://irc.localhost/%23test".parse().unwrap()),
        text,
    );
    m.from.display = Some(name.into());
    let (tx, rx) = oneshot::channel();
    (Box::new(m), rx, tx)
}

fn send(p: &mut Puppets, now: Instant, from: &str, name: &str, text: &str, target: Target) {
    let (m, _rx, reply) = message(from, name, text);
    p.handle_deliver(now, m, reply, target);
}

fn chan() -> Target {
    Target::Channel("#test".into())
}

fn actions(p: &mut Puppets) -> Vec<Action> {
    std::iter::from_fn(|| p.poll_action()).collect()
}

/// A short, comparable form of an action.
fn short(a: &Action) -> String {
    match a {
        Action::Open { id, nick, .. } => format!("open {id} {nick}"),
        Action::Command { id, cmd } => match cmd {
            Cmd::Join(c) => format!("{id} join {c}"),
            Cmd::Part { channel, .. } => format!("{id} part {channel}"),
            Cmd::Nick(n) => format!("{id} nick {n}"),
            Cmd::Send { .. } => format!("{id} send"),
            Cmd::Quit(_) => format!("{id} quit"),
        },
        Action::Send {
            id, nick, message, ..
        } => {
            format!("{id} say {nick} {}", message.body.as_text().unwrap_or(""))
        }
        Action::Relay { message, .. } => format!("relay {}", message.body.as_text().unwrap_or("")),
        Action::StoreNick { who, nick } => format!("store {who} {nick}"),
        Action::Private { to, channel, .. } => format!("private to {} in {channel:?}", to.address),
        Action::Kicked {
            who,
            channel,
            by,
            reason,
        } => format!(
            "kicked {} from {channel} by {by}: {}",
            who.nick,
            reason.as_deref().unwrap_or("-")
        ),
    }
}

fn shorts(p: &mut Puppets) -> Vec<String> {
    actions(p).iter().map(short).collect()
}

fn registered(nick: &str) -> Report {
    Report::Registered {
        nick: nick.into(),
        isupport: Box::new(ISupport {
            nicklen: 30,
            ..ISupport::default()
        }),
    }
}

#[test]
fn a_join_opens_a_puppet_that_speaks_once_in_the_channel() {
    let t0 = Instant::now();
    let book = Book::default();
    let mut p = puppets("", &book, t0);
    p.handle_event(t0, "#test", &join(ALICE, "Alice in wonderland"));
    assert_eq!(shorts(&mut p), ["open 1 Alice_in_wonderland"]);
    // Messages before the puppet is in the channel wait, in order.
    send(&mut p, t0, ALICE, "Alice in wonderland", "one", chan());
    send(&mut p, t0, ALICE, "Alice in wonderland", "two", chan());
    assert!(shorts(&mut p).is_empty());
    assert!(!p.is_puppet("Alice_in_wonderland"), "not registered yet");
    p.handle_report(t0, 1, registered("Alice_in_wonderland"));
    assert_eq!(
        shorts(&mut p),
        [
            "store sip:alice@example.com Alice_in_wonderland",
            "1 join #test"
        ]
    );
    p.handle_report(t0, 1, Report::Joined("#test".into()));
    assert_eq!(
        shorts(&mut p),
        [
            "1 say Alice_in_wonderland one",
            "1 say Alice_in_wonderland two"
        ]
    );
    send(&mut p, t0, ALICE, "Alice in wonderland", "three", chan());
    assert_eq!(shorts(&mut p), ["1 say Alice_in_wonderland three"]);
    // What the puppet says is not relayed back; case-folded by the
    // network's CASEMAPPING (rfc1459: `[` is `{`).
    assert!(p.is_puppet("alice_IN_wonderland"));
    assert!(!p.is_puppet("bob"));
}

#[test]
fn the_kept_nick_comes_first_and_nicks_of_others_are_skipped() {
    let t0 = Instant::now();
    let book = Book::default();
    book.set(ALICE, "Wonder[1]");
    book.set(CAROL, "Alice");
    let mut p = puppets("", &book, t0);
    p.handle_event(t0, "#test", &join(ALICE, "Alice in wonderland"));
    p.handle_event(t0, "#test", &join("sip:alice@other.example", "Alice"));
    assert_eq!(shorts(&mut p), ["open 1 Wonder[1]", "open 2 Alice_"]);
    // The server gave another nick (433): it is what is kept.
    p.handle_report(t0, 1, registered("Wonder[1]_"));
    assert!(shorts(&mut p).contains(&"store sip:alice@example.com Wonder[1]_".to_owned()));
    assert!(p.is_puppet("WONDER{1}_"), "rfc1459 folding");
}

#[test]
fn beyond_the_maximum_users_are_relayed_and_told_once() {
    let t0 = Instant::now();
    let book = Book::default();
    let mut p = puppets("puppet_max = 1", &book, t0);
    p.handle_event(t0, "#test", &join(ALICE, "Alice"));
    p.handle_event(t0, "#test", &join(CAROL, "Carol"));
    assert_eq!(shorts(&mut p), ["open 1 Alice"]);
    send(&mut p, t0, CAROL, "Carol", "hi", chan());
    assert_eq!(shorts(&mut p), ["relay hi"]);
    assert!(p.told_over_max.contains(CAROL));
    // A private message from someone without a puppet: relayed too.
    send(
        &mut p,
        t0,
        "sip:dan@example.com",
        "Dan",
        "psst",
        Target::Nick("bob".into()),
    );
    assert_eq!(shorts(&mut p), ["relay psst"]);
}

#[test]
fn openings_are_paced_by_the_rate() {
    let t0 = Instant::now();
    let book = Book::default();
    let mut p = puppets("puppet_rate = 1.0", &book, t0);
    for (who, nick) in [(ALICE, "Alice"), (CAROL, "Carol"), ("sip:dan@x.org", "Dan")] {
        p.handle_event(t0, "#test", &join(who, nick));
    }
    assert_eq!(shorts(&mut p), ["open 1 Alice"]);
    assert_eq!(p.poll_timeout(t0), Some(t0 + Duration::from_secs(1)));
    p.handle_timeout(t0 + Duration::from_millis(500));
    assert!(shorts(&mut p).is_empty());
    p.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(shorts(&mut p), ["open 2 Carol"]);
    p.handle_timeout(t0 + Duration::from_secs(2));
    assert_eq!(shorts(&mut p), ["open 3 Dan"]);
    assert_eq!(p.poll_timeout(t0 + Duration::from_secs(2)), None);
}

#[test]
fn a_lost_puppet_relays_what_waits_and_reopens_on_the_next_message() {
    let t0 = Instant::now();
    let book = Book::default();
    let mut p = puppets("", &book, t0);
    p.handle_event(t0, "#test", &join(ALICE, "Alice"));
    p.handle_report(t0, 1, registered("Alice"));
    book.set(ALICE, "Alice");
    send(&mut p, t0, ALICE, "Alice", "waiting", chan());
    let _ = actions(&mut p);
    p.handle_report(t0, 1, Report::Closed("connection reset".into()));
    assert_eq!(shorts(&mut p), ["relay waiting"]);
    // Its QUIT, seen later by the gateway's connection, is still left out.
    assert!(p.is_puppet("Alice"));
    // A report of the old connection changes nothing.
    p.handle_report(t0, 1, registered("Alice"));
    assert!(shorts(&mut p).is_empty());
    let t1 = t0 + Duration::from_millis(100);
    send(&mut p, t1, ALICE, "Alice", "again", chan());
    assert_eq!(shorts(&mut p), ["open 2 Alice"]);
    p.handle_report(t1, 2, registered("Alice"));
    p.handle_report(t1, 2, Report::Joined("#TEST".into()));
    assert_eq!(shorts(&mut p), ["2 join #test", "2 say Alice again"]);
    // Waiting too long: relayed.
    p.handle_report(
        t1,
        2,
        Report::Left {
            channel: "#test".into(),
            kicked: None,
        },
    );
    send(&mut p, t1, ALICE, "Alice", "slow", chan());
    let _ = actions(&mut p);
    p.handle_timeout(t1 + PENDING_WAIT);
    assert!(shorts(&mut p).contains(&"relay slow".to_owned()));
    assert!(p.retired.len() <= 1);
    p.handle_timeout(t1 + PENDING_WAIT + RETIRE);
    assert!(p.retired.is_empty());
}

#[test]
fn leaving_parts_and_quits_kicks_fall_back_and_idle_puppets_close() {
    let t0 = Instant::now();
    let book = Book::default();
    let mut p = puppets("puppet_idle_secs = 60", &book, t0);
    p.handle_event(t0, "#test", &join(ALICE, "Alice"));
    p.handle_report(t0, 1, registered("Alice"));
    p.handle_report(t0, 1, Report::Joined("#test".into()));
    let _ = actions(&mut p);
    p.handle_event(t0, "#test", &leave(ALICE, "Alice"));
    assert_eq!(shorts(&mut p), ["1 part #test", "1 quit"]);
    assert!(p.is_puppet("Alice"), "its PART and QUIT are not relayed");

    // Kicked: the hub is told (its user leaves the bridged rooms), and a
    // message still on its way goes through the gateway.
    p.handle_event(t0, "#test", &join(CAROL, "Carol"));
    p.handle_report(t0, 2, registered("Carol"));
    p.handle_report(t0, 2, Report::Joined("#test".into()));
    let _ = actions(&mut p);
    p.handle_report(
        t0,
        2,
        Report::Left {
            channel: "#TEST".into(),
            kicked: Some(("op".into(), Some("behave".into()))),
        },
    );
    assert_eq!(
        shorts(&mut p),
        ["kicked Carol from #TEST by op: behave"],
        "kept open for the user's return until idle"
    );
    // Back in the room: back in the channel.
    p.handle_event(t0, "#test", &join(CAROL, "Carol"));
    assert_eq!(shorts(&mut p), ["2 join #test"]);
    // Banned: refused entry, so what Carol says goes through the gateway.
    p.handle_report(
        t0,
        2,
        Report::JoinRefused {
            channel: "#test".into(),
            why: "474 Cannot join channel (you're banned)".into(),
        },
    );
    send(&mut p, t0, CAROL, "Carol", "after the ban", chan());
    assert_eq!(shorts(&mut p), ["relay after the ban"]);

    // Idle: closed after puppet_idle_secs without a message (the kicked
    // one too).
    let t1 = t0 + Duration::from_secs(1);
    p.handle_event(t1, "#test", &join("sip:dan@x.org", "Dan"));
    assert_eq!(shorts(&mut p), ["open 3 Dan"]);
    p.handle_report(t1, 3, registered("Dan"));
    let _ = actions(&mut p);
    p.handle_timeout(t1 + Duration::from_secs(58));
    assert_eq!(shorts(&mut p), Vec::<String>::new());
    p.handle_timeout(t1 + Duration::from_secs(59));
    assert_eq!(shorts(&mut p), ["2 quit"]);
    p.handle_timeout(t1 + Duration::from_secs(60));
    assert_eq!(shorts(&mut p), ["3 quit"]);
}

#[test]
fn a_puppet_refused_entry_relays_at_once() {
    let t0 = Instant::now();
    let book = Book::default();
    let mut p = puppets("", &book, t0);
    p.handle_event(t0, "#test", &join(ALICE, "Alice"));
    p.handle_report(t0, 1, registered("Alice"));
    send(&mut p, t0, ALICE, "Alice", "waiting", chan());
    // One JOIN, however many messages wait for it.
    assert_eq!(
        shorts(&mut p),
        [
            "open 1 Alice",
            "store sip:alice@example.com Alice",
            "1 join #test"
        ]
    );
    p.handle_report(
        t0,
        1,
        Report::JoinRefused {
            channel: "#test".into(),
            why: "474 Cannot join channel (you're banned)".into(),
        },
    );
    assert_eq!(shorts(&mut p), ["relay waiting"]);
    send(&mut p, t0, ALICE, "Alice", "later", chan());
    assert_eq!(shorts(&mut p), ["relay later"]);
    // A new join from her world tries again.
    p.handle_event(t0, "#test", &join(ALICE, "Alice"));
    assert_eq!(shorts(&mut p), ["1 join #test"]);
}

#[test]
fn nick_changes_and_private_messages() {
    let t0 = Instant::now();
    let book = Book::default();
    let mut p = puppets("", &book, t0);
    p.handle_event(t0, "#test", &join(ALICE, "Alice"));
    p.handle_report(t0, 1, registered("Alice"));
    let _ = actions(&mut p);
    p.handle_event(
        t0,
        "#test",
        &RoomEventKind::NickChange {
            who: Participant {
                address: ALICE.parse().unwrap(),
                nick: "Alice".into(),
            },
            new_nick: "Queen".into(),
        },
    );
    assert_eq!(shorts(&mut p), ["1 nick Queen"]);
    assert!(p.is_puppet("Queen"), "its NICK is not relayed");
    p.handle_report(t0, 1, Report::NickRefused("Queen".into()));
    assert_eq!(shorts(&mut p), ["1 nick Queen_"]);
    p.handle_report(t0, 1, Report::NickChanged("Queen_".into()));
    assert_eq!(shorts(&mut p), ["store sip:alice@example.com Queen_"]);

    let privmsg = Privmsg::plain("bob", "Queen_", "psst");
    p.handle_report(
        t0,
        1,
        Report::Private {
            message: Box::new(privmsg.clone()),
            shared: vec!["#test".into()],
        },
    );
    assert_eq!(
        shorts(&mut p),
        ["private to sip:alice@example.com in Some(\"#test\")"]
    );
    p.handle_report(
        t0,
        1,
        Report::Private {
            message: Box::new(privmsg),
            shared: Vec::new(),
        },
    );
    assert_eq!(shorts(&mut p), ["private to sip:alice@example.com in None"]);
    // A 1:1 message from her to an IRC nick goes from her puppet.
    send(
        &mut p,
        t0,
        ALICE,
        "Queen",
        "hi bob",
        Target::Nick("bob".into()),
    );
    assert_eq!(shorts(&mut p), ["1 say Queen_ hi bob"]);
}

#[test]
fn shutdown_quits_every_puppet() {
    let t0 = Instant::now();
    let book = Book::default();
    let mut p = puppets("", &book, t0);
    p.handle_event(t0, "#test", &join(ALICE, "Alice"));
    p.handle_event(t0, "#test", &join(CAROL, "Carol"));
    let _ = actions(&mut p);
    let mut ids = p.shutdown(t0);
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
    let mut quits = shorts(&mut p);
    quits.sort();
    assert_eq!(quits, ["1 quit", "2 quit"]);
}
