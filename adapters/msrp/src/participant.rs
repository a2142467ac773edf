//! The gateway as a participant of a chat room hosted elsewhere (RFC
//! 7701), sans-IO: what it offers, what it writes on the MSRP session,
//! which nickname it tries next, what a private message to it means, and
//! how long it waits before joining again. The driver
//! (`adapter/remote.rs`) owns the SIP dialog, the connection and the
//! timers.
//!
//! The join, as the driver runs it:
//!
//! ```text
//!  INVITE (offer: a=setup:active, a=chatroom)  --> focus     RFC 7701 §5.2, §8
//!  <-- 200 (answer: the focus's a=path)  ACK -->
//!  TCP connect to the answer's path; an empty SEND first     RFC 4975 §5.4, RFC 6135
//!  NICKNAME "gateway" -> 200, or 425 -> "gateway2" ...       RFC 7701 §7.1
//!  SUBSCRIBE Event: conference -> NOTIFYs (full, partial)    RFC 4575, RFC 6665
//!  SEND message/cpim both ways                               RFC 7701 §6
//! ```
//!
//! ```
//! use cpimgate_msrp::participant::{Nicknames, private_target};
//! let mut nicks = Nicknames::new("gateway", 3);
//! assert_eq!(nicks.current(), "gateway");
//! assert_eq!(nicks.next_after_taken().as_deref(), Some("gateway2"));
//! assert_eq!(nicks.next_after_taken().as_deref(), Some("gateway3"));
//! assert_eq!(nicks.next_after_taken(), None);
//! let members = ["zoe", "Bob Smith"];
//! let known = |n: &str| members.iter().find(|m| m.eq_ignore_ascii_case(n)).map(|m| m.to_string());
//! assert_eq!(private_target("zoe: hello", known), Some(("zoe".into(), "hello")));
//! assert_eq!(private_target("Bob Smith, hi", known), Some(("Bob Smith".into(), "hi")));
//! assert_eq!(private_target("nobody: hi", known), None);
//! ```

use std::time::Duration;

use bytes::Bytes;
use cpimgate_model::address::{Address, NameAddr};
use cpimgate_model::display::sender_name;
use cpimgate_model::event::{Participant, RoomEventKind};

use crate::codec::{BuildError, OwnedMessage};
use crate::conference::read::{Change, Known, Roster};
use crate::sdp::{self, Local, Setup};

/// The nicknames tried in turn (RFC 7701 §7.1: a 425 means taken; the
/// gateway then adds a number, as people do).
#[derive(Debug, Clone)]
pub struct Nicknames {
    base: String,
    tries: u32,
    n: u32,
}

impl Nicknames {
    /// `base` first, then `base2` ... up to `tries` nicknames in all.
    pub fn new(base: &str, tries: u32) -> Nicknames {
        Nicknames {
            base: base.to_owned(),
            tries: tries.max(1),
            n: 1,
        }
    }

    /// The nickname being tried.
    pub fn current(&self) -> String {
        if self.n == 1 {
            self.base.clone()
        } else {
            format!("{}{}", self.base, self.n)
        }
    }

    /// The next one after a 425, or `None` when all were tried.
    pub fn next_after_taken(&mut self) -> Option<String> {
        if self.n >= self.tries {
            return None;
        }
        self.n += 1;
        Some(self.current())
    }

    /// Back to the first (a new join).
    pub fn reset(&mut self) {
        self.n = 1;
    }
}

/// A private message to the gateway names its recipient first: `nick:
/// text` or `nick, text` (the way people address each other in chat
/// rooms). `member` says whether a nickname is one of the bridged rooms'
/// members and gives its spelling there; the longest nickname that fits
/// wins (a nickname may contain `:` or `,`). The text after the
/// separator is returned without its leading spaces.
pub fn private_target(
    text: &str,
    member: impl Fn(&str) -> Option<String>,
) -> Option<(String, &str)> {
    let mut best = None;
    for (i, c) in text.char_indices() {
        if c != ':' && c != ',' {
            continue;
        }
        let nick = text[..i].trim();
        if nick.is_empty() {
            continue;
        }
        if let Some(found) = member(nick) {
            best = Some((found, text[i + 1..].trim_start()));
        }
    }
    best
}

/// The wait before the `attempt`th join again (0 is the first retry):
/// exponential with full jitter, uniform in `[min/2, min(max, min *
/// 2^attempt)]`, as the IRC and XMPP adapters reconnect. `unit` is a
/// random number in `[0, 1)`.
pub fn backoff(attempt: u32, min: Duration, max: Duration, unit: f64) -> Duration {
    let cap = min
        .saturating_mul(1u32 << attempt.min(16))
        .min(max.max(min));
    let low = min / 2;
    low + cap.saturating_sub(low).mul_f64(unit.clamp(0.0, 1.0))
}

/// The SDP offer of the gateway joining a room (RFC 7701 §8, RFC 4975
/// §8): message/cpim with any wrapped text, our path, `a=setup:active`
/// (we connect: RFC 6135 §4.1, RFC 4145 §4) and `a=chatroom:nickname
/// private-messages`.
pub fn offer(host: &str, port: u16, path: &str) -> Vec<u8> {
    let mut local = Local::room(host, port, path);
    local.accept_wrapped_types = vec!["text/plain".to_owned(), "*".to_owned()];
    sdp::offer_as(&local, Setup::Active)
}

/// A request of the participant on its session: `method` with our
/// transaction id, To-Path the focus's path, From-Path ours.
pub fn request(tid: &str, method: &str, to: &str, from: &str) -> Result<OwnedMessage, BuildError> {
    let mut m = OwnedMessage::request(tid, method)?;
    m.push_header("To-Path", to)?
        .push_header("From-Path", from)?;
    Ok(m)
}

/// The empty SEND the connecting side sends first (RFC 4975 §5.4): it
/// binds the connection to the session.
pub fn bind_send(tid: &str, to: &str, from: &str, message_id: &str) -> Result<Bytes, BuildError> {
    let mut m = request(tid, "SEND", to, from)?;
    m.push_header("Message-ID", message_id)?;
    Ok(m.to_bytes())
}

/// NICKNAME with `Use-Nickname: "nick"` (RFC 7701 §7.1: a quoted
/// string).
pub fn nickname(tid: &str, to: &str, from: &str, nick: &str) -> Result<Bytes, BuildError> {
    let mut m = request(tid, "NICKNAME", to, from)?;
    let quoted = nick.replace('\\', "\\\\").replace('"', "\\\"");
    m.push_header("Use-Nickname", &format!("\"{quoted}\""))?;
    Ok(m.to_bytes())
}

/// A message/cpim SEND, whole (the driver cuts it with the codec's
/// `Chunker`): a failure report only (RFC 4975 §7.1.2 default `yes`: a
/// response for each chunk, which tells the hub the outcome), no success
/// report.
pub fn cpim_send(
    tid: &str,
    to: &str,
    from: &str,
    message_id: &str,
    cpim: Bytes,
) -> Result<OwnedMessage, BuildError> {
    let mut m = request(tid, "SEND", to, from)?;
    m.push_header("Message-ID", message_id)?
        .push_header("Success-Report", "no")?
        .push_header("Content-Type", "message/cpim")?
        .set_body(cpim)?;
    Ok(m)
}

/// The hub's room events for roster changes read from the room's
/// conference documents (RFC 4575 §4.6, nicknames of RFC 7701 §9.6):
/// joins, leaves and nick changes of the other participants, under their
/// nickname (else their display text, else their URI's user part); never
/// of the gateway itself (`is_self`), nor of an entity that is not an
/// address.
pub fn room_events(changes: Vec<Change>, is_self: impl Fn(&Address) -> bool) -> Vec<RoomEventKind> {
    let member = |entity: &str, known: &Known| -> Option<Participant> {
        let address: Address = entity.parse().ok()?;
        if is_self(&address) {
            return None;
        }
        let nick = known
            .name()
            .map(str::to_owned)
            .unwrap_or_else(|| sender_name(&NameAddr::new(address.clone())));
        Some(Participant { address, nick })
    };
    changes
        .into_iter()
        .filter_map(|c| match c {
            Change::Joined { entity, known } => {
                member(&entity, &known).map(|who| RoomEventKind::Join { who })
            }
            Change::Left { entity, known } => {
                member(&entity, &known).map(|who| RoomEventKind::Leave { who, reason: None })
            }
            Change::Renamed { entity, old, new } => {
                let new_nick = member(&entity, &new).map(|m| m.nick)?;
                member(&entity, &old).map(|who| RoomEventKind::NickChange { who, new_nick })
            }
        })
        .collect()
}

/// The member of the room's roster that a nickname URI stands for. A
/// focus may send a member's messages From its nickname URI
/// (`sip:<nick>@<the room's domain>`, RFC 7701 §6.1) while its conference
/// documents name that member by its own URI (the entity of RFC 4575
/// §5.6): one member, known here by its entity, so that the bridged
/// worlds see one member and not two. `None` when `from` is itself an
/// entity of the roster or names no member's nickname.
pub fn entity_of(roster: &Roster, from: &Address, room: &Address) -> Option<String> {
    let (Address::Sip(f), Address::Sip(r)) = (from, room) else {
        return None;
    };
    if roster.get(&from.to_string()).is_some() || !f.host().eq_ignore_case(r.host()) {
        return None;
    }
    let nick = cpimgate_mappings::nick_key(f.user()?);
    roster
        .users()
        .iter()
        .find(|(_, k)| {
            k.nickname
                .as_deref()
                .is_some_and(|n| cpimgate_mappings::nick_key(n) == nick)
        })
        .map(|(entity, _)| entity.clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::codec;

    /// The offer has what RFC 7701 §8 and RFC 6135 ask of a participant
    /// that connects: compare RFC 7701 §9.1 F1, with a=setup:active.
    #[test]
    fn the_offer_is_f1_with_setup_active() {
        let path = "msrp://gw.example.com:2855/s1;tcp";
        let sdp = offer("gw.example.com", 2855, path);
        let text = String::from_utf8(sdp.clone()).unwrap();
        for line in [
            "m=message 2855 TCP/MSRP *\r\n",
            "a=accept-types:message/cpim\r\n",
            "a=accept-wrapped-types:text/plain *\r\n",
            "a=path:msrp://gw.example.com:2855/s1;tcp\r\n",
            "a=chatroom:nickname private-messages\r\n",
            "a=setup:active\r\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        // The focus of this crate answers passive, and we connect.
        let parsed = sdp::parse(&sdp).unwrap();
        let room = Local::room(
            "chat.example.com",
            12763,
            "msrp://chat.example.com:12763/kj;tcp",
        );
        let (answer, agreed) = sdp::answer(&parsed, &room).unwrap();
        assert!(!agreed.we_connect);
        let ours = sdp::agreed_by_answer(&sdp::parse(&answer).unwrap()).unwrap();
        assert!(ours.we_connect);
        assert_eq!(ours.remote_path, ["msrp://chat.example.com:12763/kj;tcp"]);
        assert!(ours.peer.accepts_private());
    }

    /// RFC 7701 §9.1 F2 as the answer (no a=setup): RFC 4975 §5.4, the
    /// offerer connects.
    #[test]
    fn the_answer_of_rfc7701_f2_reads() {
        let f2 = std::fs::read(format!(
            "{}/tests/fixtures/sdp/rfc7701-9.1-f2.sdp",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let agreed = sdp::agreed_by_answer(&sdp::parse(&f2).unwrap()).unwrap();
        assert!(agreed.we_connect);
        assert_eq!(
            agreed.remote_path,
            ["msrp://chat.example.com:12763/kjhd37s2s20w2a;tcp"]
        );
    }

    /// NICKNAME as RFC 7701 §9.2 writes it, and our SENDs, read back.
    #[test]
    fn requests_read_back() {
        let to = "msrp://chat.example.com:12763/kjhd37s2s20w2a;tcp";
        let from = "msrp://client.atlanta.example.com:7654/jshA7weztas;tcp";
        let n = nickname("dkei38sd", to, from, "Alice \"the\" great").unwrap();
        let m = codec::parse(&n).unwrap();
        m.validate().unwrap();
        assert_eq!(m.method(), Some("NICKNAME"));
        assert_eq!(m.use_nickname().unwrap().unwrap(), "Alice \"the\" great");
        let b = bind_send("tx000001", to, from, "msg00001").unwrap();
        let m = codec::parse(&b).unwrap();
        m.validate().unwrap();
        assert!(m.is_whole_message().unwrap());
        let s = cpim_send("tx000002", to, from, "msg00002", Bytes::from_static(b"x")).unwrap();
        let bytes = s.to_bytes();
        let m = codec::parse(&bytes).unwrap();
        m.validate().unwrap();
        assert!(m.wants_response(200));
    }

    /// RFC 7701 §9.6's document, then a partial one (RFC 4575 §4.4):
    /// the events name the participants by nickname, and the gateway's
    /// own entry gives none.
    #[test]
    fn conference_documents_become_room_events_without_the_gateway() {
        use crate::conference::read::{Roster, read};
        let fixture = std::fs::read(format!(
            "{}/tests/fixtures/conference/rfc7701-9.6-nickname.xml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let me: Address = "sip:bob@example.com".parse().unwrap();
        let is_self = |a: &Address| a.same_user(&me);
        let mut roster = Roster::new();
        let events = room_events(roster.apply(&read(&fixture).unwrap()), is_self);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(matches!(&events[0], RoomEventKind::Join { who }
            if who.nick == "Alice the great" && who.address.to_string() == "sip:alice@atlanta.example.com"));
        let partial = br#"<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"
          xmlns:xcon="urn:ietf:params:xml:ns:xcon-conference-info"
          entity="sip:chatroom22@chat.example.com" state="partial" version="2">
          <users state="partial">
            <user entity="sip:alice@atlanta.example.com" state="partial" xcon:nickname="Alice"/>
            <user entity="sip:bob@example.com" state="deleted"/>
            <user entity="sip:carol@example.com" state="full"/>
            <user entity="not a uri" state="full"/>
          </users></conference-info>"#;
        let events = room_events(roster.apply(&read(partial).unwrap()), is_self);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(
            matches!(&events[0], RoomEventKind::NickChange { who, new_nick }
            if who.nick == "Alice the great" && new_nick == "Alice")
        );
        assert!(matches!(&events[1], RoomEventKind::Join { who } if who.nick == "carol"));
    }

    /// A focus that lists a member of its bridged worlds by its own URI
    /// and sends its messages From its nickname URI (as this crate's
    /// focus does): the nickname URI names the listed member.
    #[test]
    fn a_nickname_uri_names_the_listed_member() {
        use crate::conference::read::{Roster, read};
        let doc = br#"<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"
          xmlns:xcon="urn:ietf:params:xml:ns:xcon-conference-info"
          entity="sip:room22@chat.example.com" state="full" version="1">
          <users>
            <user entity="xmpp:zoe@a.example.org" xcon:nickname="Zoe"/>
            <user entity="sip:bob@example.com"/>
          </users></conference-info>"#;
        let mut roster = Roster::new();
        let _ = roster.apply(&read(doc).unwrap());
        let room: Address = "sip:room22@chat.example.com".parse().unwrap();
        let of = |from: &str| entity_of(&roster, &from.parse().unwrap(), &room);
        assert_eq!(
            of("sip:zoe@CHAT.example.com").as_deref(),
            Some("xmpp:zoe@a.example.org")
        );
        // Listed as itself, another domain's user, nobody's nickname.
        assert_eq!(of("sip:bob@example.com"), None);
        assert_eq!(of("sip:zoe@elsewhere.example.com"), None);
        assert_eq!(of("sip:carol@chat.example.com"), None);
    }

    #[test]
    fn nicknames_run_out() {
        let mut n = Nicknames::new("gw", 1);
        assert_eq!(n.next_after_taken(), None);
        let mut n = Nicknames::new("gw", 2);
        assert_eq!(n.next_after_taken().as_deref(), Some("gw2"));
        n.reset();
        assert_eq!(n.current(), "gw");
    }

    #[test]
    fn a_private_message_names_its_recipient_first() {
        let known = |n: &str| (n == "a:b" || n == "a").then(|| n.to_owned());
        assert_eq!(private_target("a:b: hi", known), Some(("a:b".into(), "hi")));
        assert_eq!(
            private_target("a: hi: there", known),
            Some(("a".into(), "hi: there"))
        );
        assert_eq!(private_target("hello", known), None);
        assert_eq!(private_target(": a", known), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let (min, max) = (Duration::from_millis(1000), Duration::from_secs(60));
        assert_eq!(backoff(0, min, max, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(0, min, max, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff(3, min, max, 1.0), Duration::from_millis(8000));
        assert_eq!(backoff(30, min, max, 1.0), max);
        assert!(backoff(30, min, max, 0.5) <= max);
    }
}
