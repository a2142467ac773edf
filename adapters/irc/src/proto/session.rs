//! One IRC client connection without I/O: registration with capability
//! negotiation and SASL, then the channel traffic as [`Event`]s.
//!
//! Call order: [`Session::new`], then [`Session::start`]; for every line
//! read, [`Session::handle`]; after every call, drain
//! [`Session::poll_transmit`] (lines to write, in order) and
//! [`Session::poll_event`]. Commands ([`Session::join`],
//! [`Session::privmsg`], ...) only queue lines.
//!
//! Registration (Modern IRC "Connection Registration", IRCv3 capability
//! negotiation): `CAP LS 302`, `PASS`, `NICK`, `USER`; the server's CAP LS
//! (possibly over several lines) is answered with one `CAP REQ` of the
//! capabilities we use that it offers; when the answer is in, SASL runs if
//! configured and offered (IRCv3 SASL 3.1: `AUTHENTICATE PLAIN`, `+`,
//! base64 of `authzid\0authcid\0password`, 903 success), then `CAP END`.
//! A 433 before 001 tries the next nick candidate. 001 confirms the nick;
//! 376 or 422 (end of MOTD) ends registration: [`Event::Registered`].

use std::collections::{HashMap, HashSet, VecDeque};

use base64::Engine as _;

use super::isupport::ISupport;
use super::message::IrcMessage;
use super::nick;

/// The capabilities the adapter uses when the server offers them.
pub const WANTED_CAPS: &[&str] = &[
    "server-time",
    "message-tags",
    "echo-message",
    "multi-prefix",
    "away-notify",
    "account-tag",
    "batch",
    "labeled-response",
    "extended-join",
    "userhost-in-names",
    "draft/relaymsg",
];

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sasl {
    /// SASL PLAIN with an account name and password.
    Plain {
        /// The account.
        user: String,
        /// Its password.
        password: String,
    },
    /// SASL EXTERNAL: the TLS client certificate is the credential.
    External,
}

/// Who the connection registers as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The nick wanted; others are tried when it is taken.
    pub nick: String,
    /// The user name (ident).
    pub user: String,
    /// The real name (gecos).
    pub realname: String,
    /// A server password (`PASS`), if any.
    pub password: Option<String>,
    /// SASL, if any; registration fails when SASL fails.
    pub sasl: Option<Sasl>,
}

/// What happened on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Registration is complete; `nick` is ours.
    Registered {
        /// Our nick.
        nick: String,
    },
    /// A PRIVMSG or NOTICE.
    Message(Box<Privmsg>),
    /// Someone (maybe we) joined a channel.
    Join {
        /// The channel.
        channel: String,
        /// Who.
        nick: String,
        /// Their account (account-tag / extended-join), if known.
        account: Option<String>,
    },
    /// Someone (maybe we) left a channel.
    Part {
        /// The channel.
        channel: String,
        /// Who.
        nick: String,
        /// The reason given.
        reason: Option<String>,
    },
    /// Someone was kicked.
    Kick {
        /// The channel.
        channel: String,
        /// Who was kicked.
        nick: String,
        /// Who kicked.
        by: String,
        /// The reason given.
        reason: Option<String>,
    },
    /// Someone quit the network; `channels` are the ones we shared.
    Quit {
        /// Who.
        nick: String,
        /// The reason given.
        reason: Option<String>,
        /// The channels we shared with them.
        channels: Vec<String>,
        /// Whether it is part of a netsplit (a `netsplit` batch, or the
        /// classic two-server-names reason).
        netsplit: bool,
    },
    /// Someone changed nick; `channels` are the ones we share.
    Nick {
        /// The old nick.
        old: String,
        /// The new nick.
        new: String,
        /// The channels we share.
        channels: Vec<String>,
    },
    /// A channel's topic, on join (332) or when changed.
    Topic {
        /// The channel.
        channel: String,
        /// The topic text.
        topic: String,
        /// Who set it, when it was changed now.
        by: Option<String>,
    },
    /// The member list of a channel we joined is complete (366).
    Names {
        /// The channel.
        channel: String,
        /// The members, with their prefixes (`@`, `+`).
        members: Vec<(String, String)>,
    },
    /// A command of ours failed: a numeric error, FAIL, or a label's error.
    Failed {
        /// The label of the failed command, if it had one.
        label: Option<String>,
        /// The target (channel or nick) the error names, if any.
        target: Option<String>,
        /// The numeric or FAIL code.
        code: String,
        /// The server's text.
        text: String,
    },
    /// Registration cannot finish (SASL refused, no nick left, ERROR).
    Fatal(String),
}

/// A PRIVMSG or NOTICE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privmsg {
    /// The sender's nick.
    pub from: String,
    /// The channel or our nick.
    pub target: String,
    /// The text (CTCP framing kept).
    pub text: String,
    /// NOTICE rather than PRIVMSG.
    pub notice: bool,
    /// Our own message echoed (echo-message).
    pub echo: bool,
    /// The `time` tag (server-time).
    pub time: Option<String>,
    /// The `msgid` tag.
    pub msgid: Option<String>,
    /// The `label` tag (labeled-response), or the label of its batch.
    pub label: Option<String>,
    /// The sender's account (account-tag).
    pub account: Option<String>,
    /// Part of a history batch (chathistory, znc playback): not new.
    pub history: bool,
}

#[cfg(test)]
impl Privmsg {
    /// A PRIVMSG as a server sends it, without tags.
    pub(crate) fn plain(from: &str, target: &str, text: &str) -> Privmsg {
        Privmsg {
            from: from.into(),
            target: target.into(),
            text: text.into(),
            notice: false,
            echo: false,
            time: None,
            msgid: None,
            label: None,
            account: None,
            history: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Waiting for the CAP LS answer.
    CapLs,
    /// CAP REQ sent; waiting for ACK/NAK.
    CapReq,
    /// SASL in progress.
    Sasl,
    /// CAP END sent, waiting for 001.
    Welcome,
    /// 001 seen, waiting for the end of the MOTD.
    Motd,
    /// Registered.
    Ready,
    /// Gave up.
    Dead,
}

/// A channel's members: folded nick → (nick, prefixes).
type Members = HashMap<String, (String, String)>;

/// One connection's protocol state.
#[derive(Debug)]
pub struct Session {
    me: Identity,
    phase: Phase,
    nick: String,
    tried: usize,
    offered: HashMap<String, String>,
    caps: HashSet<String>,
    isupport: ISupport,
    /// Channel (folded) → (name as joined, its members).
    channels: HashMap<String, (String, Members)>,
    /// Channels whose NAMES reply is being gathered.
    names: HashMap<String, Vec<(String, String)>>,
    /// Open batches: reference → (type, label).
    batches: HashMap<String, (String, Option<String>)>,
    /// Whether the members of joined channels are kept (see
    /// [`Session::without_rosters`]).
    rosters: bool,
    transmit: VecDeque<IrcMessage>,
    events: VecDeque<Event>,
}

impl Session {
    /// A session that will register as `me`.
    pub fn new(me: Identity) -> Session {
        let nick = me.nick.clone();
        Session {
            me,
            phase: Phase::CapLs,
            nick,
            tried: 0,
            offered: HashMap::new(),
            caps: HashSet::new(),
            isupport: ISupport::default(),
            channels: HashMap::new(),
            names: HashMap::new(),
            batches: HashMap::new(),
            rosters: true,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A session that keeps no channel members: its NAMES replies and
    /// the JOINs of others are not recorded, [`Event::Names`] comes with
    /// no members, and QUIT and NICK events name no channels. For a
    /// connection that only speaks for one user (a puppet): every other
    /// member of a channel would otherwise be kept once per puppet.
    #[must_use]
    pub fn without_rosters(mut self) -> Session {
        self.rosters = false;
        self
    }

    /// Queue the registration lines.
    pub fn start(&mut self) {
        self.send(IrcMessage::new("CAP", &["LS", "302"]));
        if let Some(p) = self.me.password.clone() {
            self.send(IrcMessage::new("PASS", &[&p]));
        }
        let nick = self.nick.clone();
        self.send(IrcMessage::new("NICK", &[&nick]));
        let (user, real) = (self.me.user.clone(), self.me.realname.clone());
        self.send(IrcMessage::new("USER", &[&user, "0", "*", &real]));
    }

    /// Our current nick.
    pub fn nick(&self) -> &str {
        &self.nick
    }

    /// Whether registration is complete.
    pub fn is_registered(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Whether capability `cap` was acknowledged.
    pub fn has_cap(&self, cap: &str) -> bool {
        self.caps.contains(cap)
    }

    /// The server's ISUPPORT.
    pub fn isupport(&self) -> &ISupport {
        &self.isupport
    }

    /// Whether we are in `channel`.
    pub fn in_channel(&self, channel: &str) -> bool {
        self.channels.contains_key(&self.fold(channel))
    }

    /// The members of `channel`, as (nick, prefixes).
    pub fn members(&self, channel: &str) -> Vec<(String, String)> {
        self.channels
            .get(&self.fold(channel))
            .map(|(_, m)| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether `nick` is among the members of `channel`.
    pub fn is_member(&self, channel: &str, nick: &str) -> bool {
        self.channels
            .get(&self.fold(channel))
            .is_some_and(|(_, m)| m.contains_key(&self.fold(nick)))
    }

    /// The next line to write.
    pub fn poll_transmit(&mut self) -> Option<IrcMessage> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Queue `JOIN channel`.
    pub fn join(&mut self, channel: &str) {
        self.send(IrcMessage::new("JOIN", &[channel]));
    }

    /// Queue `PART channel :reason`.
    pub fn part(&mut self, channel: &str, reason: &str) {
        self.send(IrcMessage::new("PART", &[channel, reason]));
    }

    /// Queue `QUIT :reason`.
    pub fn quit(&mut self, reason: &str) {
        self.send(IrcMessage::new("QUIT", &[reason]));
    }

    /// Queue `NICK nick`.
    pub fn change_nick(&mut self, nick: &str) {
        self.send(IrcMessage::new("NICK", &[nick]));
    }

    /// Queue a PRIVMSG (or NOTICE) of one line, with a `label` tag when
    /// labeled-response is on and a label is given.
    pub fn privmsg(&mut self, target: &str, text: &str, notice: bool, label: Option<&str>) {
        let mut m = IrcMessage::new(if notice { "NOTICE" } else { "PRIVMSG" }, &[target, text]);
        if let Some(l) = label.filter(|_| self.has_cap("labeled-response")) {
            m = m.with_tag("label", Some(l));
        }
        self.send(m);
    }

    /// Queue a line as given.
    pub fn send(&mut self, m: IrcMessage) {
        self.transmit.push_back(m);
    }

    fn fold(&self, s: &str) -> String {
        cpimgate_mappings::casefold(self.isupport.casemapping, s)
    }

    fn is_me(&self, nick: &str) -> bool {
        self.isupport.same(nick, &self.nick)
    }

    /// Take one line from the server.
    pub fn handle(&mut self, m: IrcMessage) {
        match m.command.as_str() {
            "PING" => {
                let token = m.param(0).unwrap_or("").to_owned();
                self.send(IrcMessage::new("PONG", &[&token]));
            }
            "CAP" => self.on_cap(&m),
            "AUTHENTICATE" => self.on_authenticate(&m),
            // RPL_LOGGEDIN, RPL_SASLSUCCESS
            "900" => {}
            "903" if self.phase == Phase::Sasl => self.cap_end(),
            // ERR_NICKLOCKED, ERR_SASLFAIL, ERR_SASLTOOLONG, ERR_SASLABORTED
            "902" | "904" | "905" | "906" if self.phase == Phase::Sasl => {
                self.die(format!(
                    "SASL authentication failed ({}): {}",
                    m.command,
                    m.params.last().map_or("", String::as_str)
                ));
            }
            // ERR_SASLMECHS: the mechanism is not offered.
            "908" if self.phase == Phase::Sasl => {
                self.die("SASL mechanism not offered by the server".into());
            }
            "001" => {
                if let Some(n) = m.param(0) {
                    self.nick = n.to_owned();
                }
                self.phase = Phase::Motd;
            }
            "005" => self.isupport.apply(&m.params),
            "376" | "422" if matches!(self.phase, Phase::Motd | Phase::Welcome) => {
                self.phase = Phase::Ready;
                let nick = self.nick.clone();
                self.events.push_back(Event::Registered { nick });
            }
            // ERR_NICKNAMEINUSE, ERR_ERRONEUSNICKNAME, ERR_NICKCOLLISION,
            // ERR_UNAVAILRESOURCE
            "433" | "432" | "436" | "437" => self.on_nick_refused(&m),
            "ERROR" => {
                let text = m.param(0).unwrap_or("").to_owned();
                self.die(format!("server closed the link: {text}"));
            }
            "BATCH" => self.on_batch(&m),
            "PRIVMSG" | "NOTICE" => self.on_privmsg(&m),
            "JOIN" => self.on_join(&m),
            "PART" => self.on_part(&m),
            "KICK" => self.on_kick(&m),
            "QUIT" => self.on_quit(&m),
            "NICK" => self.on_nick(&m),
            "TOPIC" => {
                if let (Some(c), Some(t)) = (m.param(0), m.param(1)) {
                    self.events.push_back(Event::Topic {
                        channel: c.to_owned(),
                        topic: t.to_owned(),
                        by: m.nick().map(str::to_owned),
                    });
                }
            }
            // RPL_TOPIC: <client> <channel> :<topic>
            "332" => {
                if let (Some(c), Some(t)) = (m.param(1), m.param(2)) {
                    self.events.push_back(Event::Topic {
                        channel: c.to_owned(),
                        topic: t.to_owned(),
                        by: None,
                    });
                }
            }
            // RPL_NAMREPLY: <client> <symbol> <channel> :[prefix]<nick>{ [prefix]<nick>}
            "353" => {
                if !self.rosters {
                    return;
                }
                if let (Some(c), Some(list)) = (m.param(2), m.param(3)) {
                    let key = self.fold(c);
                    let entries: Vec<(String, String)> = list
                        .split(' ')
                        .filter(|e| !e.is_empty())
                        .map(|e| {
                            let (n, p) = self.isupport.split_names_entry(e);
                            (n.to_owned(), p.to_owned())
                        })
                        .filter(|(n, _)| !n.is_empty())
                        .collect();
                    self.names.entry(key).or_default().extend(entries);
                }
            }
            // RPL_ENDOFNAMES
            "366" => {
                if let Some(c) = m.param(1) {
                    let key = self.fold(c);
                    let members = self.names.remove(&key).unwrap_or_default();
                    if let Some((_, set)) = self.channels.get_mut(&key) {
                        set.clear();
                        for (n, p) in &members {
                            set.insert(
                                cpimgate_mappings::casefold(self.isupport.casemapping, n),
                                (n.clone(), p.clone()),
                            );
                        }
                    }
                    self.events.push_back(Event::Names {
                        channel: c.to_owned(),
                        members,
                    });
                }
            }
            "FAIL" => {
                // IRCv3 standard-replies: FAIL <command> <code> [<context>...] <description>
                let code = m.param(1).unwrap_or("").to_owned();
                let text = m.params.last().cloned().unwrap_or_default();
                let target = (m.params.len() > 3).then(|| m.params[2].clone());
                self.events.push_back(Event::Failed {
                    label: self.label_of(&m),
                    target,
                    code,
                    text,
                });
            }
            c if is_error_numeric(c) => {
                if !self.is_registered() {
                    return;
                }
                // <client> <target> :<text> for the errors about a target.
                let target = (m.params.len() > 2).then(|| m.params[1].clone());
                self.events.push_back(Event::Failed {
                    label: self.label_of(&m),
                    target,
                    code: c.to_owned(),
                    text: m.params.last().cloned().unwrap_or_default(),
                });
            }
            _ => {}
        }
    }

    fn die(&mut self, why: String) {
        self.phase = Phase::Dead;
        self.events.push_back(Event::Fatal(why));
    }

    fn on_cap(&mut self, m: &IrcMessage) {
        // CAP <client> <sub> [*] :<caps>
        let sub = m.param(1).unwrap_or("").to_ascii_uppercase();
        let more = m.param(2) == Some("*") && m.params.len() > 3;
        let list = m.params.last().map_or("", String::as_str);
        match sub.as_str() {
            "LS" => {
                for tok in list.split(' ').filter(|t| !t.is_empty()) {
                    let (k, v) = tok.split_once('=').unwrap_or((tok, ""));
                    self.offered.insert(k.to_owned(), v.to_owned());
                }
                if more || self.phase != Phase::CapLs {
                    return;
                }
                let mut want: Vec<&str> = WANTED_CAPS
                    .iter()
                    .copied()
                    .filter(|c| self.offered.contains_key(*c))
                    .collect();
                if self.me.sasl.is_some() && self.offered.contains_key("sasl") {
                    want.push("sasl");
                }
                if want.is_empty() {
                    self.cap_end();
                } else {
                    let list = want.join(" ");
                    self.send(IrcMessage::new("CAP", &["REQ", &list]));
                    self.phase = Phase::CapReq;
                }
            }
            "ACK" => {
                for c in list.split(' ').filter(|t| !t.is_empty()) {
                    match c.strip_prefix('-') {
                        Some(off) => {
                            self.caps.remove(off);
                        }
                        None => {
                            self.caps.insert(c.to_owned());
                        }
                    }
                }
                if self.phase == Phase::CapReq {
                    self.after_caps();
                }
            }
            "NAK" if self.phase == Phase::CapReq => self.after_caps(),
            "NEW" | "DEL" => {} // cap-notify: nothing we use changes mid-connection
            _ => {}
        }
    }

    fn after_caps(&mut self) {
        match &self.me.sasl {
            Some(sasl) if self.caps.contains("sasl") => {
                let mech = match sasl {
                    Sasl::Plain { .. } => "PLAIN",
                    Sasl::External => "EXTERNAL",
                };
                self.send(IrcMessage::new("AUTHENTICATE", &[mech]));
                self.phase = Phase::Sasl;
            }
            Some(_) => self.die("SASL is configured but the server does not offer it".into()),
            None => self.cap_end(),
        }
    }

    fn on_authenticate(&mut self, m: &IrcMessage) {
        if self.phase != Phase::Sasl || m.param(0) != Some("+") {
            return;
        }
        let payload = match &self.me.sasl {
            Some(Sasl::Plain { user, password }) => {
                // RFC 4616 §2: [authzid] NUL authcid NUL passwd
                let raw = format!("{user}\0{user}\0{password}");
                base64::engine::general_purpose::STANDARD.encode(raw)
            }
            _ => String::new(),
        };
        if payload.is_empty() {
            self.send(IrcMessage::new("AUTHENTICATE", &["+"]));
            return;
        }
        // IRCv3 SASL 3.1: chunks of 400; a final chunk of exactly 400 is
        // followed by `+`.
        let bytes = payload.as_bytes();
        for chunk in bytes.chunks(400) {
            let s = String::from_utf8_lossy(chunk).into_owned();
            self.send(IrcMessage::new("AUTHENTICATE", &[&s]));
        }
        if bytes.len() % 400 == 0 {
            self.send(IrcMessage::new("AUTHENTICATE", &["+"]));
        }
    }

    fn cap_end(&mut self) {
        self.send(IrcMessage::new("CAP", &["END"]));
        self.phase = Phase::Welcome;
    }

    fn on_nick_refused(&mut self, m: &IrcMessage) {
        if self.phase == Phase::Ready {
            let text = m.params.last().cloned().unwrap_or_default();
            self.events.push_back(Event::Failed {
                label: self.label_of(m),
                target: m.param(1).map(str::to_owned),
                code: m.command.clone(),
                text,
            });
            return;
        }
        self.tried += 1;
        let tried = nick::tried_nicks(&self.me.nick, self.isupport.nicklen);
        match tried.get(self.tried) {
            Some(next) => {
                self.nick = next.clone();
                self.send(IrcMessage::new("NICK", &[next]));
            }
            None => self.die("no free nick found".into()),
        }
    }

    fn label_of(&self, m: &IrcMessage) -> Option<String> {
        if let Some(l) = m.tag("label") {
            return Some(l.to_owned());
        }
        let b = m.tag("batch")?;
        self.batches.get(b).and_then(|(_, l)| l.clone())
    }

    fn batch_type(&self, m: &IrcMessage) -> Option<&str> {
        let b = m.tag("batch")?;
        self.batches.get(b).map(|(t, _)| t.as_str())
    }

    fn on_batch(&mut self, m: &IrcMessage) {
        let Some(r) = m.param(0) else { return };
        if let Some(r) = r.strip_prefix('+') {
            let kind = m.param(1).unwrap_or("").to_owned();
            let label = m.tag("label").map(str::to_owned).or_else(|| {
                // A nested batch inherits its parent's label.
                m.tag("batch")
                    .and_then(|p| self.batches.get(p))
                    .and_then(|(_, l)| l.clone())
            });
            self.batches.insert(r.to_owned(), (kind, label));
        } else if let Some(r) = r.strip_prefix('-') {
            self.batches.remove(r);
        }
    }

    fn on_privmsg(&mut self, m: &IrcMessage) {
        let (Some(from), Some(target), Some(text)) = (m.nick(), m.param(0), m.param(1)) else {
            return;
        };
        let kind = self.batch_type(m);
        let history = matches!(kind, Some("chathistory" | "znc.in/playback"));
        let p = Privmsg {
            from: from.to_owned(),
            target: target.to_owned(),
            text: text.to_owned(),
            notice: m.command == "NOTICE",
            echo: self.is_me(from),
            time: m.tag("time").map(str::to_owned),
            msgid: m.tag("msgid").map(str::to_owned),
            label: self.label_of(m),
            account: m.tag("account").map(str::to_owned),
            history,
        };
        self.events.push_back(Event::Message(Box::new(p)));
    }

    fn on_join(&mut self, m: &IrcMessage) {
        let (Some(who), Some(channel)) = (m.nick(), m.param(0)) else {
            return;
        };
        let key = self.fold(channel);
        if self.is_me(who) {
            self.channels
                .insert(key.clone(), (channel.to_owned(), HashMap::new()));
        }
        // extended-join: JOIN <channel> <account> :<realname>; `*` = none.
        let account = m
            .tag("account")
            .or_else(|| m.param(1).filter(|a| *a != "*"))
            .map(str::to_owned);
        if self.rosters {
            let folded = self.fold(who);
            if let Some((_, members)) = self.channels.get_mut(&key) {
                members.insert(folded, (who.to_owned(), String::new()));
            }
        }
        self.events.push_back(Event::Join {
            channel: channel.to_owned(),
            nick: who.to_owned(),
            account,
        });
    }

    fn on_part(&mut self, m: &IrcMessage) {
        let (Some(who), Some(channel)) = (m.nick(), m.param(0)) else {
            return;
        };
        self.leave(channel, who);
        self.events.push_back(Event::Part {
            channel: channel.to_owned(),
            nick: who.to_owned(),
            reason: m.param(1).map(str::to_owned),
        });
    }

    fn on_kick(&mut self, m: &IrcMessage) {
        let (Some(by), Some(channel), Some(who)) = (m.nick(), m.param(0), m.param(1)) else {
            return;
        };
        self.leave(channel, who);
        self.events.push_back(Event::Kick {
            channel: channel.to_owned(),
            nick: who.to_owned(),
            by: by.to_owned(),
            reason: m.param(2).map(str::to_owned),
        });
    }

    fn leave(&mut self, channel: &str, who: &str) {
        let key = self.fold(channel);
        if self.is_me(who) {
            self.channels.remove(&key);
        } else if let Some((_, members)) = self.channels.get_mut(&key) {
            members.remove(&cpimgate_mappings::casefold(self.isupport.casemapping, who));
        }
    }

    fn shared_channels(&mut self, who: &str, remove: bool) -> Vec<String> {
        let folded = self.fold(who);
        let mut out = Vec::new();
        for (name, members) in self.channels.values_mut() {
            let present = if remove {
                members.remove(&folded).is_some()
            } else {
                members.contains_key(&folded)
            };
            if present {
                out.push(name.clone());
            }
        }
        out.sort();
        out
    }

    fn on_quit(&mut self, m: &IrcMessage) {
        let Some(who) = m.nick() else { return };
        let reason = m.param(0).map(str::to_owned);
        let netsplit = self.batch_type(m) == Some("netsplit")
            || reason.as_deref().is_some_and(looks_like_netsplit);
        let channels = self.shared_channels(who, true);
        self.events.push_back(Event::Quit {
            nick: who.to_owned(),
            reason,
            channels,
            netsplit,
        });
    }

    fn on_nick(&mut self, m: &IrcMessage) {
        let (Some(old), Some(new)) = (m.nick(), m.param(0)) else {
            return;
        };
        if self.is_me(old) {
            self.nick = new.to_owned();
        }
        let old_key = self.fold(old);
        let new_key = self.fold(new);
        let mut channels = Vec::new();
        for (name, members) in self.channels.values_mut() {
            if let Some((_, prefixes)) = members.remove(&old_key) {
                members.insert(new_key.clone(), (new.to_owned(), prefixes));
                channels.push(name.clone());
            }
        }
        channels.sort();
        self.events.push_back(Event::Nick {
            old: old.to_owned(),
            new: new.to_owned(),
            channels,
        });
    }
}

/// The classic netsplit QUIT reason: two server names, e.g.
/// `irc.hub.example irc.leaf.example`.
fn looks_like_netsplit(reason: &str) -> bool {
    let mut parts = reason.split(' ');
    let host = |s: &str| {
        s.contains('.')
            && !s.starts_with('.')
            && !s.ends_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '*')
    };
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if host(a) && host(b))
}

/// The numerics that say a command failed (Modern IRC: 4xx and 5xx, and the
/// 4xx-like 9xx are handled above).
fn is_error_numeric(c: &str) -> bool {
    c.len() == 3 && (c.starts_with('4') || c.starts_with('5'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn me(sasl: Option<Sasl>) -> Identity {
        Identity {
            nick: "gw".into(),
            user: "gw".into(),
            realname: "cpimgate".into(),
            password: None,
            sasl,
        }
    }

    fn feed(s: &mut Session, line: &str) {
        s.handle(IrcMessage::parse(line.as_bytes()).unwrap());
    }

    fn lines(s: &mut Session) -> Vec<String> {
        std::iter::from_fn(|| s.poll_transmit())
            .map(|m| m.to_line().unwrap())
            .collect()
    }

    fn events(s: &mut Session) -> Vec<Event> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn registered(sasl: Option<Sasl>) -> Session {
        let mut s = Session::new(me(sasl));
        s.start();
        let _ = lines(&mut s);
        feed(
            &mut s,
            ":irc.localhost CAP * LS :server-time echo-message labeled-response batch message-tags multi-prefix",
        );
        feed(
            &mut s,
            ":irc.localhost CAP * ACK :server-time echo-message labeled-response batch message-tags multi-prefix",
        );
        feed(&mut s, ":irc.localhost 001 gw :Welcome");
        feed(
            &mut s,
            ":irc.localhost 005 gw CASEMAPPING=rfc1459 NICKLEN=30 PREFIX=(ov)@+ :are supported by this server",
        );
        feed(&mut s, ":irc.localhost 376 gw :End of message of the day.");
        let _ = lines(&mut s);
        let _ = events(&mut s);
        s
    }

    #[test]
    fn registration_with_caps() {
        let mut s = Session::new(me(None));
        s.start();
        assert_eq!(
            lines(&mut s),
            ["CAP LS 302", "NICK gw", "USER gw 0 * cpimgate"]
        );
        // IRCv3 capability negotiation: a multi-line LS ends with the line
        // without `*`.
        feed(
            &mut s,
            ":irc.localhost CAP * LS * :multi-prefix sasl=PLAIN,EXTERNAL",
        );
        assert!(lines(&mut s).is_empty());
        feed(
            &mut s,
            ":irc.localhost CAP * LS :server-time echo-message foo",
        );
        assert_eq!(
            lines(&mut s),
            ["CAP REQ :server-time echo-message multi-prefix"]
        );
        feed(
            &mut s,
            ":irc.localhost CAP gw ACK :server-time echo-message multi-prefix",
        );
        assert_eq!(lines(&mut s), ["CAP END"]);
        assert!(s.has_cap("echo-message"));
        feed(&mut s, "PING :abc");
        assert_eq!(lines(&mut s), ["PONG abc"]);
        feed(
            &mut s,
            ":irc.localhost 433 * gw :Nickname is already in use.",
        );
        assert_eq!(lines(&mut s), ["NICK gw_"]);
        feed(
            &mut s,
            ":irc.localhost 001 gw_ :Welcome to the TestNet IRC Network gw_!gw@127.0.0.1",
        );
        assert!(!s.is_registered());
        feed(
            &mut s,
            ":irc.localhost 422 gw_ :Message of the day file is missing.",
        );
        assert!(s.is_registered());
        assert_eq!(events(&mut s), [Event::Registered { nick: "gw_".into() }]);
    }

    #[test]
    fn sasl_plain() {
        let mut s = Session::new(me(Some(Sasl::Plain {
            user: "jilles".into(),
            password: "sesame".into(),
        })));
        s.start();
        let _ = lines(&mut s);
        feed(&mut s, ":irc.localhost CAP * LS :sasl=PLAIN");
        assert_eq!(lines(&mut s), ["CAP REQ sasl"]);
        feed(&mut s, ":irc.localhost CAP * ACK sasl");
        assert_eq!(lines(&mut s), ["AUTHENTICATE PLAIN"]);
        feed(&mut s, "AUTHENTICATE +");
        // IRCv3 SASL 3.1 example: "jilles\0jilles\0sesame".
        assert_eq!(lines(&mut s), ["AUTHENTICATE amlsbGVzAGppbGxlcwBzZXNhbWU="]);
        feed(
            &mut s,
            ":irc.localhost 900 gw gw!gw@host jilles :You are now logged in as jilles",
        );
        feed(
            &mut s,
            ":irc.localhost 903 gw :SASL authentication successful",
        );
        assert_eq!(lines(&mut s), ["CAP END"]);
    }

    #[test]
    fn sasl_failure_and_missing_sasl_are_fatal() {
        let mut s = Session::new(me(Some(Sasl::External)));
        s.start();
        feed(&mut s, ":irc.localhost CAP * LS :sasl");
        feed(&mut s, ":irc.localhost CAP * ACK :sasl");
        feed(&mut s, "AUTHENTICATE +");
        assert!(lines(&mut s).contains(&"AUTHENTICATE +".to_owned()));
        feed(&mut s, ":irc.localhost 904 gw :SASL authentication failed");
        assert!(matches!(events(&mut s).as_slice(), [Event::Fatal(_)]));

        let mut s = Session::new(me(Some(Sasl::External)));
        s.start();
        feed(&mut s, ":irc.localhost CAP * LS :server-time");
        feed(&mut s, ":irc.localhost CAP * ACK :server-time");
        assert!(matches!(events(&mut s).as_slice(), [Event::Fatal(_)]));
    }

    #[test]
    fn a_session_without_rosters_keeps_its_channels_but_no_members() {
        let mut kept = registered(None);
        let mut bare = registered(None).without_rosters();
        for s in [&mut kept, &mut bare] {
            s.join("#test");
            feed(s, ":gw!gw@127.0.0.1 JOIN #test");
            feed(s, ":irc.localhost 353 gw = #test :@alice +bob gw");
            feed(s, ":irc.localhost 366 gw #test :End of /NAMES list.");
            feed(s, ":carol!c@h JOIN #test");
            let _ = events(s);
        }
        for nick in ["Alice", "bob", "carol"] {
            assert!(kept.is_member("#TEST", nick), "{nick}");
            assert!(!bare.is_member("#test", nick), "{nick}");
        }
        assert!(bare.in_channel("#test"));
        assert!(bare.members("#test").is_empty());
        // Its own leaving and nick changes are still seen.
        feed(&mut bare, ":carol!c@h NICK :caroline");
        assert_eq!(
            events(&mut bare),
            [Event::Nick {
                old: "carol".into(),
                new: "caroline".into(),
                channels: Vec::new()
            }]
        );
        feed(&mut bare, ":gw!gw@h PART #test :bye");
        assert!(matches!(events(&mut bare).as_slice(), [Event::Part { nick, .. }] if nick == "gw"));
        assert!(!bare.in_channel("#test"));
    }

    #[test]
    fn channel_traffic_and_roster() {
        let mut s = registered(None);
        s.join("#test");
        assert_eq!(lines(&mut s), ["JOIN #test"]);
        feed(&mut s, ":gw!gw@127.0.0.1 JOIN #test");
        feed(&mut s, ":irc.localhost 332 gw #test :the topic");
        feed(&mut s, ":irc.localhost 353 gw = #test :@alice +bob gw");
        feed(&mut s, ":irc.localhost 366 gw #test :End of /NAMES list.");
        let ev = events(&mut s);
        assert!(matches!(&ev[0], Event::Join { nick, .. } if nick == "gw"));
        assert!(matches!(&ev[1], Event::Topic { topic, .. } if topic == "the topic"));
        assert!(
            matches!(&ev[2], Event::Names { members, .. } if members.len() == 3 && members[0] == ("alice".into(), "@".into()))
        );
        assert!(s.in_channel("#TEST"));
        feed(
            &mut s,
            "@time=2026-11-22T05:09:25.659Z;msgid=abc :alice!a@h PRIVMSG #test :hi there",
        );
        let Some(Event::Message(p)) = s.poll_event() else {
            panic!("no message")
        };
        assert_eq!((p.from.as_str(), p.text.as_str()), ("alice", "hi there"));
        assert_eq!(p.time.as_deref(), Some("2026-11-22T05:09:25.659Z"));
        assert_eq!(p.msgid.as_deref(), Some("abc"));
        assert!(!p.echo);
        // echo-message with labeled-response: our own line comes back labeled.
        s.privmsg("#test", "<x> y", false, Some("L1"));
        assert_eq!(lines(&mut s), ["@label=L1 PRIVMSG #test :<x> y"]);
        feed(&mut s, "@label=L1;msgid=m2 :gw!gw@h PRIVMSG #test :<x> y");
        let Some(Event::Message(p)) = s.poll_event() else {
            panic!("no echo")
        };
        assert!(p.echo);
        assert_eq!(p.label.as_deref(), Some("L1"));
        feed(&mut s, ":bob!b@h NICK :Bobby");
        assert_eq!(
            events(&mut s),
            [Event::Nick {
                old: "bob".into(),
                new: "Bobby".into(),
                channels: vec!["#test".into()]
            }]
        );
        feed(&mut s, ":Bobby!b@h QUIT :irc.hub.example irc.leaf.example");
        assert!(matches!(
            events(&mut s).as_slice(),
            [Event::Quit { netsplit: true, channels, .. }] if channels == &["#test".to_owned()]
        ));
        feed(
            &mut s,
            ":irc.localhost 404 gw #test :Cannot send to channel",
        );
        assert!(matches!(
            events(&mut s).as_slice(),
            [Event::Failed { target: Some(t), code, .. }] if t == "#test" && code == "404"
        ));
        feed(&mut s, ":alice!a@h KICK #test gw :out");
        let _ = events(&mut s);
        assert!(!s.in_channel("#test"));
    }

    #[test]
    fn batches_mark_netsplits_and_history() {
        let mut s = registered(None);
        feed(&mut s, ":gw!gw@h JOIN #c");
        feed(&mut s, ":irc.localhost 353 gw = #c :gw carol");
        feed(&mut s, ":irc.localhost 366 gw #c :End");
        let _ = events(&mut s);
        // IRCv3 batch, netsplit example.
        feed(
            &mut s,
            ":irc.host BATCH +yXNAbvnRHTRBv netsplit irc.hub other.host",
        );
        feed(&mut s, "@batch=yXNAbvnRHTRBv :carol!c@h QUIT :Gone");
        feed(&mut s, ":irc.host BATCH -yXNAbvnRHTRBv");
        assert!(matches!(
            events(&mut s).as_slice(),
            [Event::Quit { netsplit: true, .. }]
        ));
        feed(&mut s, ":irc.host BATCH +h chathistory #c");
        feed(&mut s, "@batch=h :dan!d@h PRIVMSG #c :old");
        feed(&mut s, ":irc.host BATCH -h");
        assert!(matches!(
            events(&mut s).as_slice(),
            [Event::Message(p)] if p.history
        ));
    }

    #[test]
    fn netsplit_reasons() {
        assert!(looks_like_netsplit("irc.hub.example *.leaf.example"));
        assert!(!looks_like_netsplit("Quit: see you. bye."));
        assert!(!looks_like_netsplit("Ping timeout: 240 seconds"));
    }
}
