//! Relay mode's translation between IRC and the model, without I/O.
//!
//! Channel traffic becomes room messages and room events of
//! `irc://NETWORK/%23chan`; a sender is `irc://NETWORK/nick,isnick` with
//! the nick as display name. Messages of other worlds are posted by the
//! gateway's one connection as `<Nick> text` (config `format`); a `/me`
//! action as `* Nick does` (config `action_format`), and an IRC CTCP ACTION
//! becomes a `/me ` text, the convention XMPP clients show as an action
//! (XEP-0245). Formatting codes are removed on the way in (Modern IRC
//! "Formatting"); text is cut into lines that fit the 512-byte limit with
//! the prefix the server adds, at most `max_lines` of them.

use std::collections::HashMap;

use cpimgate_mappings::casefold;
use cpimgate_model::address::{IrcAddress, IrcTarget};
use cpimgate_model::display::{body_text, render, sender_name};
use cpimgate_model::event::{Participant, RoomEventKind};
use cpimgate_model::port::{Failure, FailureKind};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Address, Message, MessageId, NameAddr, Origin, RoomEvent, RoomRef, World};

use crate::config::IrcConfig;
use crate::proto::session::{Event, Privmsg};
use crate::proto::text::{self, Ctcp};
use crate::proto::{ISupport, nick};

/// The prefix of an action in the model's text (XEP-0245 `/me`).
pub const ME: &str = "/me ";

/// The longest sender name shown, in characters.
const MAX_NAME: usize = 64;

/// One line to send: target and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// A channel or a nick.
    pub target: String,
    /// The text of one PRIVMSG.
    pub text: String,
}

/// Relay mode's view of one network.
#[derive(Debug)]
pub struct Relay {
    adapter: String,
    network: String,
    /// Folded channel name → the name as configured.
    channels: HashMap<String, String>,
    format: String,
    action_format: String,
    max_lines: usize,
}

impl Relay {
    /// From the adapter's name and config.
    pub fn new(adapter: &str, cfg: &IrcConfig) -> Relay {
        let channels = cfg
            .channels
            .iter()
            .map(|c| (casefold(Default::default(), c), c.clone()))
            .collect();
        Relay {
            adapter: adapter.to_owned(),
            network: cfg.network.to_ascii_lowercase(),
            channels,
            format: cfg.format.clone(),
            action_format: cfg.action_format.clone(),
            max_lines: cfg.max_lines,
        }
    }

    /// The channels to join, as configured.
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        self.channels.values().map(String::as_str)
    }

    fn configured(&self, isupport: &ISupport, channel: &str) -> Option<&str> {
        let key = casefold(isupport.casemapping, channel);
        self.channels
            .iter()
            .find(|(k, _)| casefold(isupport.casemapping, k) == key)
            .map(|(_, v)| v.as_str())
    }

    /// The hub's reference of a configured channel.
    pub fn room(&self, isupport: &ISupport, channel: &str) -> Option<RoomRef> {
        let name = self.configured(isupport, channel)?;
        let address = IrcAddress::channel(&self.network, name).ok()?;
        Some(RoomRef {
            adapter: self.adapter.clone(),
            address: Address::Irc(address),
        })
    }

    /// The address of a nick; `None` for a source that is no nick (a
    /// server name).
    fn person(&self, nick: &str) -> Option<NameAddr> {
        let a = IrcAddress::nick(&self.network, nick).ok()?;
        Some(NameAddr {
            display: Some(nick.to_owned()),
            address: Address::Irc(a),
        })
    }

    fn participant(&self, nick: &str) -> Option<Participant> {
        Some(Participant {
            address: self.person(nick)?.address,
            nick: nick.to_owned(),
        })
    }

    fn origin(&self, native_id: Option<String>) -> Origin {
        Origin {
            world: World::Irc,
            adapter: self.adapter.clone(),
            native_id,
        }
    }

    /// A channel message for the hub; `None` for our own echoes, history
    /// replays, CTCP queries, and channels not configured. Private
    /// messages to the gateway are not relayed in relay mode (nobody to
    /// address them to): the driver answers them with a notice.
    pub fn inbound(&self, p: &Privmsg, isupport: &ISupport) -> Option<Message> {
        if p.echo || p.history {
            return None;
        }
        let room = self.room(isupport, &p.target)?;
        let text = inbound_text(&p.text)?;
        let datetime = datetime_of(p);
        let mut m = Message::text(
            self.origin(p.msgid.clone()),
            self.person(&p.from)?,
            NameAddr::new(room.address.clone()),
            &text,
        );
        m.id = self.id_of(p);
        m.datetime = Some(datetime);
        m.room = Some(room);
        Some(m)
    }

    /// A channel message of a history replay (`chathistory` batch) the
    /// gateway may have missed: said at `since` or later (less a second:
    /// servers replay times cut to whole seconds), with a `msgid`, and
    /// not by the gateway itself (`own`). The id comes from the msgid, as
    /// for the live copy, so the hub drops the copies it already took
    /// (`queue_seen`). `None` otherwise.
    pub fn recovered(
        &self,
        p: &Privmsg,
        isupport: &ISupport,
        since: Timestamp,
        own: impl Fn(&str) -> bool,
    ) -> Option<Message> {
        let said = Timestamp::parse_rfc3339(p.time.as_deref()?).ok()?;
        if !p.history || p.echo || p.msgid.is_none() || own(&p.from) {
            return None;
        }
        if said.plus(std::time::Duration::from_secs(1)) <= since {
            return None;
        }
        let live = Privmsg {
            history: false,
            ..p.clone()
        };
        self.inbound(&live, isupport)
    }

    /// The gateway-wide id of an IRC message: from its IRCv3 `msgid`
    /// (unique per network), so that a copy seen again (a history replay)
    /// is known as such; random without one.
    fn id_of(&self, p: &Privmsg) -> MessageId {
        match &p.msgid {
            Some(id) => MessageId(format!("irc:{}:{id}", self.network)),
            None => MessageId::random(),
        }
    }

    pub(crate) fn event(&self, room: RoomRef, kind: RoomEventKind) -> RoomEvent {
        RoomEvent {
            id: MessageId::random(),
            room,
            origin: self.origin(None),
            trail: Vec::new(),
            kind,
        }
    }

    /// The room events of a session event, for the hub. Our own joins and
    /// parts are not room events (the roster that follows a join is).
    /// Netsplit QUITs come out here too; the driver holds them back.
    pub fn room_events(&self, ev: &Event, me: &str, isupport: &ISupport) -> Vec<RoomEvent> {
        let mine = |n: &str| isupport.same(n, me);
        let mut out = Vec::new();
        let kind_for = |nick: &str, kind: &dyn Fn(Participant) -> RoomEventKind| {
            self.participant(nick).map(kind)
        };
        match ev {
            Event::Join { channel, nick, .. } if !mine(nick) => {
                let kind = kind_for(nick, &|who| RoomEventKind::Join { who });
                out.extend(self.in_rooms(isupport, [channel], kind));
            }
            Event::Part {
                channel,
                nick,
                reason,
            } if !mine(nick) => {
                let kind = kind_for(nick, &|who| RoomEventKind::Leave {
                    who,
                    reason: reason.clone(),
                });
                out.extend(self.in_rooms(isupport, [channel], kind));
            }
            Event::Kick {
                channel,
                nick,
                by,
                reason,
            } if !mine(nick) => {
                let kind = kind_for(nick, &|who| RoomEventKind::Kick {
                    who,
                    by: Some(by.clone()),
                    reason: reason.clone(),
                });
                out.extend(self.in_rooms(isupport, [channel], kind));
            }
            Event::Quit {
                nick,
                reason,
                channels,
                ..
            } if !mine(nick) => {
                let kind = kind_for(nick, &|who| RoomEventKind::Leave {
                    who,
                    reason: reason.clone(),
                });
                out.extend(self.in_rooms(isupport, channels, kind));
            }
            Event::Nick { old, new, channels } if !mine(old) => {
                let kind = kind_for(old, &|who| RoomEventKind::NickChange {
                    who,
                    new_nick: new.clone(),
                });
                out.extend(self.in_rooms(isupport, channels, kind));
            }
            Event::Topic { channel, topic, by } => {
                if let Some(room) = self.room(isupport, channel) {
                    out.push(self.event(
                        room,
                        RoomEventKind::Topic {
                            by: by.clone(),
                            topic: text::strip_formatting(topic),
                        },
                    ));
                }
            }
            Event::Names { channel, members } => {
                if let Some(room) = self.room(isupport, channel) {
                    let participants = members
                        .iter()
                        .filter(|(n, _)| !mine(n))
                        .filter_map(|(n, _)| self.participant(n))
                        .collect();
                    out.push(self.event(room, RoomEventKind::Roster { participants }));
                }
            }
            _ => {}
        }
        out
    }

    /// One event of `kind` for each of `channels` that is configured.
    fn in_rooms<'a>(
        &self,
        isupport: &ISupport,
        channels: impl IntoIterator<Item = &'a String>,
        kind: Option<RoomEventKind>,
    ) -> Vec<RoomEvent> {
        let Some(kind) = kind else { return Vec::new() };
        channels
            .into_iter()
            .filter_map(|c| self.room(isupport, c))
            .map(|room| self.event(room, kind.clone()))
            .collect()
    }

    /// The lines that post `m` from another world: into a configured
    /// channel, or privately to a nick. The gateway's connection puts the
    /// sender's name in front (`format`, `action_format`); a puppet sends
    /// the text as it is (its nick is the sender), a `/me` action as CTCP
    /// ACTION. `user_len`/`host_len` are the lengths of the poster's
    /// `user@host` as the server shows them (for the line budget).
    pub fn outbound(
        &self,
        m: &Message,
        poster: Poster<'_>,
        isupport: &ISupport,
        user_len: usize,
        host_len: usize,
    ) -> Result<Vec<Line>, Failure> {
        let ((format, action_format), me) = match poster {
            Poster::Gateway(me) => ((self.format.as_str(), self.action_format.as_str()), me),
            Poster::Puppet(me) => (("{text}", "\x01ACTION {text}\x01"), me),
        };
        let target = self.target_of(m, isupport)?;
        let name = sender_name(&m.from);
        // A name of any length still leaves room for text on each line.
        let name: String = text::strip_formatting(&name)
            .replace(['\r', '\n'], " ")
            .chars()
            .take(MAX_NAME)
            .collect();
        let body = body_text(m);
        let (template, body) = match body.strip_prefix(ME) {
            Some(action) => (action_format, action.to_owned()),
            None => (format, body.into_owned()),
        };
        // Every line of a multi-line message carries the sender's name.
        let budget =
            text::text_budget(isupport.linelen, me, user_len, host_len, "PRIVMSG", &target);
        let mut lines = Vec::new();
        for raw in body.split('\n') {
            let raw = raw.trim_end_matches('\r');
            if raw.trim().is_empty() {
                continue;
            }
            // Every piece of a long line carries the sender's name too.
            let overhead = render(template, &name, "").len();
            for piece in text::split_lines(raw, budget.saturating_sub(overhead)) {
                lines.push(Line {
                    target: target.clone(),
                    text: strip_controls(&render(template, &name, &piece)),
                });
            }
        }
        if lines.is_empty() {
            return Err(Failure::new(
                FailureKind::Rejected,
                "an empty message cannot be sent on IRC",
            ));
        }
        if lines.len() > self.max_lines {
            let cut = lines.len() - (self.max_lines - 1).max(1);
            lines.truncate((self.max_lines - 1).max(1));
            lines.push(Line {
                target: target.clone(),
                text: format!("[{cut} more lines from {name} not shown]"),
            });
        }
        Ok(lines)
    }

    /// Where `m` goes on this network: a configured channel or a nick.
    pub fn destination(&self, m: &Message, isupport: &ISupport) -> Result<Target, Failure> {
        let t = self.target_of(m, isupport)?;
        Ok(if isupport.is_channel(&t) {
            Target::Channel(t)
        } else {
            Target::Nick(t)
        })
    }

    /// The configured channel an `irc://` room address of this network
    /// names, as configured.
    pub fn channel_of(&self, room: &Address, isupport: &ISupport) -> Option<String> {
        match room {
            Address::Irc(a) if a.network().to_string().eq_ignore_ascii_case(&self.network) => {
                match a.target() {
                    IrcTarget::Channel(c) => self.configured(isupport, c).map(str::to_owned),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// A private message to a puppet (an IRC user writing to a user of
    /// another world) as a model message to `to`. With `room` (the
    /// channel where the sender met the puppet), it is a private message
    /// in that room (the model's "PRIVMSG to a nick met in a channel");
    /// without, a 1:1 message. `None` for what [`Relay::inbound`] drops.
    pub fn private_inbound(
        &self,
        p: &Privmsg,
        to: NameAddr,
        room: Option<RoomRef>,
    ) -> Option<Message> {
        if p.echo || p.history || p.notice {
            return None;
        }
        let text = inbound_text(&p.text)?;
        let mut m = Message::text(
            self.origin(p.msgid.clone()),
            self.person(&p.from)?,
            to,
            &text,
        );
        m.id = self.id_of(p);
        m.datetime = Some(datetime_of(p));
        m.private = room.is_some();
        m.room = room;
        Some(m)
    }

    fn target_of(&self, m: &Message, isupport: &ISupport) -> Result<String, Failure> {
        let to = m.to.first().map(|t| &t.address);
        match to {
            Some(Address::Irc(a))
                if a.network().to_string().eq_ignore_ascii_case(&self.network) =>
            {
                match a.target() {
                    IrcTarget::Channel(c) => self
                        .configured(isupport, c)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            Failure::new(
                                FailureKind::NotFound,
                                format!("channel {c} is not one the gateway joins"),
                            )
                        }),
                    IrcTarget::Nick(n) if nick::is_valid(n, isupport.nicklen.max(n.len())) => {
                        Ok(n.clone())
                    }
                    _ => Err(Failure::new(
                        FailureKind::NotFound,
                        format!("{a} is not a channel or a nick"),
                    )),
                }
            }
            Some(other) => Err(Failure::new(
                FailureKind::NotFound,
                format!("{other} is not an address on IRC network {}", self.network),
            )),
            None => Err(Failure::new(FailureKind::NotFound, "no recipient")),
        }
    }
}

/// Who posts a message from another world, by nick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poster<'a> {
    /// The gateway's connection (relay mode's way).
    Gateway(&'a str),
    /// The sender's puppet.
    Puppet(&'a str),
}

/// Where a model message goes on IRC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A configured channel, as configured.
    Channel(String),
    /// A nick.
    Nick(String),
}

/// The model's text of an IRC message: formatting removed, CTCP ACTION as
/// `/me `; `None` for other CTCP and for blank text.
fn inbound_text(raw: &str) -> Option<String> {
    let text = match text::ctcp(raw) {
        Ctcp::Text(t) => text::strip_formatting(t),
        Ctcp::Action(a) => format!("{ME}{}", text::strip_formatting(a)),
        Ctcp::Other(..) => return None,
    };
    (!text.trim().is_empty()).then_some(text)
}

/// The server's time of a message (server-time), else now.
fn datetime_of(p: &Privmsg) -> Timestamp {
    p.time
        .as_deref()
        .and_then(|t| Timestamp::parse_rfc3339(t).ok())
        .unwrap_or_else(Timestamp::now)
}

/// Control characters other than the CTCP and formatting ones mean
/// nothing on IRC; NUL, CR and LF cannot be sent at all.
fn strip_controls(s: &str) -> String {
    s.chars()
        .filter(|&c| !matches!(c, '\0' | '\r' | '\n'))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg() -> IrcConfig {
        toml::from_str(
            r##"
            network = "irc.localhost"
            server = "127.0.0.1:6667"
            nick = "gw"
            channels = ["#Test"]
            max_lines = 3
            "##,
        )
        .unwrap()
    }

    fn privmsg(from: &str, target: &str, text: &str) -> Privmsg {
        Privmsg {
            time: Some("2026-11-22T05:09:25.659Z".into()),
            msgid: Some("m1".into()),
            ..Privmsg::plain(from, target, text)
        }
    }

    #[test]
    fn channel_message_to_model() {
        let r = Relay::new("irc", &cfg());
        let is = ISupport::default();
        let m = r
            .inbound(&privmsg("alice", "#test", "\x02hi\x02 there"), &is)
            .unwrap();
        assert_eq!(m.body.as_text(), Some("hi there"));
        assert_eq!(m.from.display.as_deref(), Some("alice"));
        assert_eq!(
            m.from.address.to_string(),
            "irc://irc.localhost/alice,isnick"
        );
        let room = m.room.unwrap();
        assert_eq!(room.address.to_string(), "irc://irc.localhost/%23Test");
        assert_eq!(m.origin.native_id.as_deref(), Some("m1"));
        assert_eq!(m.datetime.unwrap().to_rfc3339(), "2026-11-22T05:09:25.659Z");
        // Modern IRC CTCP: ACTION is /me.
        let m = r
            .inbound(&privmsg("alice", "#test", "\x01ACTION waves\x01"), &is)
            .unwrap();
        assert_eq!(m.body.as_text(), Some("/me waves"));
        // Not relayed: echoes, CTCP queries, unknown channels, history.
        let mut echo = privmsg("gw", "#test", "x");
        echo.echo = true;
        assert!(r.inbound(&echo, &is).is_none());
        assert!(
            r.inbound(&privmsg("a", "#test", "\x01VERSION\x01"), &is)
                .is_none()
        );
        assert!(r.inbound(&privmsg("a", "#other", "x"), &is).is_none());
        let mut h = privmsg("a", "#test", "x");
        h.history = true;
        assert!(r.inbound(&h, &is).is_none());
    }

    #[test]
    fn history_replays_are_taken_from_the_mark_on_under_their_msgid() {
        let r = Relay::new("irc", &cfg());
        let is = ISupport::default();
        let live = r.inbound(&privmsg("alice", "#test", "hi"), &is).unwrap();
        // The id comes from the msgid: a copy seen again is known.
        assert_eq!(live.id.as_str(), "irc:irc.localhost:m1");
        let mark = Timestamp::parse_rfc3339("2026-11-22T05:09:25.659Z").unwrap();
        let mut h = privmsg("alice", "#test", "hi");
        h.history = true;
        // InspIRCd's chanhistory replays times cut to the second.
        h.time = Some("2026-11-22T05:09:25.000Z".into());
        let again = r.recovered(&h, &is, mark, |_| false).unwrap();
        assert_eq!(again.id, live.id);
        assert_eq!(again.body, live.body);
        assert_eq!(again.room, live.room);
        // Said a second or more before the mark: not taken.
        h.time = Some("2026-11-22T05:09:24.600Z".into());
        assert!(r.recovered(&h, &is, mark, |_| false).is_none());
        h.time = Some("2026-11-22T05:10:00Z".into());
        assert!(r.recovered(&h, &is, mark, |_| false).is_some());
        // The gateway's own lines, lines without msgid or time, and live
        // lines are not taken as recovered.
        assert!(r.recovered(&h, &is, mark, |n| n == "alice").is_none());
        let no_id = Privmsg {
            msgid: None,
            ..h.clone()
        };
        assert!(r.recovered(&no_id, &is, mark, |_| false).is_none());
        let no_time = Privmsg {
            time: None,
            ..h.clone()
        };
        assert!(r.recovered(&no_time, &is, mark, |_| false).is_none());
        let not_history = Privmsg {
            history: false,
            ..h.clone()
        };
        assert!(r.recovered(&not_history, &is, mark, |_| false).is_none());
        // Without a msgid a live line gets a random id.
        let plain = Privmsg::plain("alice", "#test", "x");
        let a = r.inbound(&plain, &is).unwrap();
        let b = r.inbound(&plain, &is).unwrap();
        assert_ne!(a.id, b.id);
    }

    fn from_other_world(text: &str, to: &str) -> Message {
        let mut m = Message::text(
            Origin {
                world: World::Xmpp,
                adapter: "xmpp".into(),
                native_id: None,
            },
            "\"Alice in wonderland\" <xmpp:alice@a.localhost>"
                .parse()
                .unwrap(),
            NameAddr::new(to.parse().unwrap()),
            text,
        );
        m.room = None;
        m
    }

    #[test]
    fn posting_from_other_worlds() {
        let r = Relay::new("irc", &cfg());
        let is = ISupport::default();
        let m = from_other_world("hello", "irc://irc.localhost/%23test");
        let lines = r.outbound(&m, Poster::Gateway("gw"), &is, 2, 9).unwrap();
        assert_eq!(
            lines,
            [Line {
                target: "#Test".into(),
                text: "<Alice in wonderland> hello".into()
            }]
        );
        let m = from_other_world("/me waves", "irc://irc.localhost/%23test");
        assert_eq!(
            r.outbound(&m, Poster::Gateway("gw"), &is, 2, 9).unwrap()[0].text,
            "* Alice in wonderland waves"
        );
        // Text can never become a command: each line is its own PRIVMSG.
        let m = from_other_world("one\r\nQUIT :x\n\nthree", "irc://irc.localhost/bob,isnick");
        let lines = r.outbound(&m, Poster::Gateway("gw"), &is, 2, 9).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].text, "<Alice in wonderland> QUIT :x");
        assert_eq!(lines[0].target, "bob");
        // Beyond max_lines: cut with a note.
        let m = from_other_world("1\n2\n3\n4\n5", "irc://irc.localhost/%23test");
        let lines = r.outbound(&m, Poster::Gateway("gw"), &is, 2, 9).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[2].text,
            "[3 more lines from Alice in wonderland not shown]"
        );
        // A long line is split to fit 512 bytes with the server's prefix.
        let long = "word ".repeat(300);
        let m = from_other_world(&long, "irc://irc.localhost/%23test");
        let mut r2 = Relay::new("irc", &cfg());
        r2.max_lines = 100;
        for l in r2.outbound(&m, Poster::Gateway("gw"), &is, 2, 9).unwrap() {
            let wire = format!(":gw!~g@127.0.0.1 PRIVMSG {} :{}\r\n", l.target, l.text);
            assert!(wire.len() <= 512, "{}", wire.len());
        }
    }

    #[test]
    fn puppets_post_plain_text_and_actions() {
        let r = Relay::new("irc", &cfg());
        let is = ISupport::default();
        let m = from_other_world("hello\nworld", "irc://irc.localhost/%23test");
        let lines = r.outbound(&m, Poster::Puppet("Alice"), &is, 2, 9).unwrap();
        assert_eq!(lines[0].text, "hello");
        assert_eq!(lines[1].text, "world");
        let m = from_other_world("/me waves", "irc://irc.localhost/%23test");
        assert_eq!(
            r.outbound(&m, Poster::Puppet("Alice"), &is, 2, 9).unwrap()[0].text,
            "\x01ACTION waves\x01"
        );
        assert_eq!(
            r.destination(&m, &is).unwrap(),
            Target::Channel("#Test".into())
        );
        let m = from_other_world("x", "irc://irc.localhost/bob,isnick");
        assert_eq!(r.destination(&m, &is).unwrap(), Target::Nick("bob".into()));
        // A private message to a puppet: from the IRC user, to the remote
        // user, in the room where they met when there is one.
        let to = NameAddr::new("sip:alice@example.com".parse().unwrap());
        let p = privmsg("bob", "Alice", "psst");
        let m = r.private_inbound(&p, to.clone(), None).unwrap();
        assert!(!m.private && m.room.is_none());
        assert_eq!(m.from.address.to_string(), "irc://irc.localhost/bob,isnick");
        let room = r.room(&is, "#test");
        let m = r.private_inbound(&p, to.clone(), room).unwrap();
        assert!(m.private);
        assert_eq!(m.to[0], to);
        let mut notice = privmsg("bob", "Alice", "psst");
        notice.notice = true;
        assert!(r.private_inbound(&notice, to, None).is_none());
    }

    #[test]
    fn wrong_destinations_fail() {
        let r = Relay::new("irc", &cfg());
        let is = ISupport::default();
        let m = from_other_world("x", "irc://irc.localhost/%23nope");
        assert_eq!(
            r.outbound(&m, Poster::Gateway("gw"), &is, 2, 9)
                .unwrap_err()
                .kind,
            FailureKind::NotFound
        );
        let m = from_other_world("x", "irc://other.net/%23test");
        assert_eq!(
            r.outbound(&m, Poster::Gateway("gw"), &is, 2, 9)
                .unwrap_err()
                .kind,
            FailureKind::NotFound
        );
        let m = from_other_world(" \n ", "irc://irc.localhost/%23test");
        assert_eq!(
            r.outbound(&m, Poster::Gateway("gw"), &is, 2, 9)
                .unwrap_err()
                .kind,
            FailureKind::Rejected
        );
    }

    #[test]
    fn roster_and_events() {
        let r = Relay::new("irc", &cfg());
        let is = ISupport::default();
        let ev = Event::Names {
            channel: "#test".into(),
            members: vec![("gw".into(), String::new()), ("alice".into(), "@".into())],
        };
        let out = r.room_events(&ev, "gw", &is);
        assert!(matches!(
            &out[0].kind,
            RoomEventKind::Roster { participants } if participants.len() == 1 && participants[0].nick == "alice"
        ));
        let ev = Event::Join {
            channel: "#test".into(),
            nick: "gw".into(),
            account: None,
        };
        assert!(r.room_events(&ev, "GW", &is).is_empty());
        let ev = Event::Quit {
            nick: "bob".into(),
            reason: None,
            channels: vec!["#test".into()],
            netsplit: false,
        };
        assert!(matches!(
            &r.room_events(&ev, "gw", &is)[0].kind,
            RoomEventKind::Leave { who, .. } if who.nick == "bob"
        ));
    }
}
