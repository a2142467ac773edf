//! Puppet mode's bookkeeping, without I/O: which remote user has a
//! puppet connection, with which nick, in which channels, and which
//! connection each message from another world takes.
//!
//! A puppet is one IRC connection per user of another world present in a
//! bridged channel (biboumi, matrix-appservice-irc): IRC users see real
//! participants instead of `<Nick> text` from the gateway. The gateway's
//! own connection stays; it reads the channels and relays IRC traffic to
//! the hub, leaving out what the puppets say and do ([`Puppets::is_puppet`]).
//!
//! Call order, as for [`crate::proto::session::Session`]: the driver hands
//! in the hub's room events ([`Puppets::handle_event`]), its deliveries
//! ([`Puppets::handle_deliver`]), what the puppet connections report
//! ([`Puppets::handle_report`]) and time ([`Puppets::handle_timeout`], at
//! the latest at [`Puppets::poll_timeout`]); after each call it carries
//! out every [`Action`] of [`Puppets::poll_action`].
//!
//! * A puppet is opened for a `Join` (or each member of a `Roster`), or
//!   lazily for the first message of a user into a channel; opening is
//!   paced by a token bucket (`puppet_rate`) and capped (`puppet_max`);
//!   users beyond the cap are relayed through the gateway's connection,
//!   and the log says so once per user.
//! * Its nick is the one the mapping table keeps for the user, else the
//!   user's nickname made into an IRC nick ([`nick::ircify`]), else the
//!   next of [`nick::candidates`] not given to someone else; the nick it
//!   gets is written back, so the same person keeps the same nick.
//! * Messages of a user wait, in order, until the puppet is in the
//!   channel; a puppet that cannot be had (cap, kicked, lost, too slow)
//!   lets its messages go through the gateway's connection instead.
//! * A lost puppet is opened again with backoff while it has channels,
//!   and at once on the next message or event for it; an idle one
//!   (`puppet_idle_secs` without a message) is closed.

mod io;
pub(crate) mod task;

pub(crate) use io::{Action, Cmd, NickBook, Report, StoreBook};

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use cpimgate_mappings::casefold;
use cpimgate_model::display::sender_name;
use cpimgate_model::event::{Participant, RoomEventKind};
use cpimgate_model::port::Reply;
use cpimgate_model::{Address, Message, NameAddr};

use crate::config::IrcConfig;
use crate::proto::flood::TokenBucket;
use crate::proto::{ISupport, nick};
use crate::relay::Target;

/// The id of one puppet connection (a new one for each opening).
pub(crate) type ConnId = u64;

/// How long a message waits for its puppet before it is relayed.
const PENDING_WAIT: Duration = Duration::from_secs(30);
/// How long the nick of a closed puppet is still left out of what the
/// gateway relays (its QUIT may come after the close).
const RETIRE: Duration = Duration::from_secs(30);
/// The first delay before a lost puppet is opened again.
const RETRY_MIN: Duration = Duration::from_secs(1);
/// The longest delay before a lost puppet is opened again.
const RETRY_MAX: Duration = Duration::from_secs(300);
/// Nick candidates tried for a nick change refused by the server.
const NICK_TRIES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for its turn to connect (rate limit).
    Queued,
    /// Connecting and registering.
    Connecting,
    /// Registered.
    Ready,
    /// Lost; opened again at `retry_at` if it still has channels.
    Down { retry_at: Instant },
}

/// A message waiting for its puppet.
#[derive(Debug)]
struct Pending {
    message: Box<Message>,
    reply: Reply,
    target: Target,
    since: Instant,
}

/// One remote user's puppet.
#[derive(Debug)]
struct Puppet {
    address: Address,
    /// The user's nickname in their world.
    display: String,
    /// The IRC nick: the one registered, or the one to register.
    nick: String,
    /// A nick asked for and not yet confirmed.
    wanted_nick: Option<String>,
    nick_tries: usize,
    id: Option<ConnId>,
    phase: Phase,
    /// Folded channel → the channel as configured: where it should be.
    channels: BTreeMap<String, String>,
    /// Folded channels it is in.
    joined: HashSet<String>,
    /// Folded channels a JOIN was sent for and not answered yet.
    joining: HashSet<String>,
    /// Folded channels it was kicked from or refused entry to: its
    /// messages there are relayed.
    shut_out: HashSet<String>,
    pending: VecDeque<Pending>,
    last_sent: Instant,
    attempts: u32,
}

/// Every puppet of one network.
pub(crate) struct Puppets {
    book: Box<dyn NickBook>,
    bucket: TokenBucket,
    max: usize,
    idle: Duration,
    isupport: ISupport,
    users: HashMap<String, Puppet>,
    by_id: HashMap<ConnId, String>,
    /// Folded nicks of closed puppets → until when they are left out.
    retired: HashMap<String, Instant>,
    to_open: VecDeque<String>,
    next_id: ConnId,
    told_over_max: HashSet<String>,
    actions: VecDeque<Action>,
}

impl Puppets {
    /// The puppets of the network of `cfg`, with nicks kept in `book`.
    pub(crate) fn new(cfg: &IrcConfig, book: Box<dyn NickBook>, now: Instant) -> Puppets {
        let burst = cfg.puppet_rate.ceil().clamp(1.0, 1000.0) as u32;
        Puppets {
            book,
            bucket: TokenBucket::new(burst, cfg.puppet_rate, now),
            max: cfg.puppet_max,
            idle: Duration::from_secs(cfg.puppet_idle_secs),
            isupport: ISupport::default(),
            users: HashMap::new(),
            by_id: HashMap::new(),
            retired: HashMap::new(),
            to_open: VecDeque::new(),
            next_id: 1,
            told_over_max: HashSet::new(),
            actions: VecDeque::new(),
        }
    }

    /// The server's ISUPPORT as the gateway's connection saw it (nick
    /// length, case mapping).
    pub(crate) fn set_isupport(&mut self, isupport: &ISupport) {
        self.isupport = isupport.clone();
    }

    fn fold(&self, s: &str) -> String {
        casefold(self.isupport.casemapping, s)
    }

    /// Whether `nick` is one of our puppets (or was, a moment ago): what
    /// it says and does on IRC is not relayed back to the hub.
    pub(crate) fn is_puppet(&self, nick: &str) -> bool {
        let key = self.fold(nick);
        self.retired.contains_key(&key)
            || self.users.values().any(|p| {
                p.phase == Phase::Ready
                    && (self.fold(&p.nick) == key
                        || p.wanted_nick
                            .as_deref()
                            .is_some_and(|w| self.fold(w) == key))
            })
    }

    /// The next thing to do.
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Puppets::handle_timeout`] must be called next (a puppet
    /// waits for the rate limit), if not by the driver's regular tick.
    pub(crate) fn poll_timeout(&mut self, now: Instant) -> Option<Instant> {
        self.to_open.front()?;
        Some(now + self.bucket.wait(now))
    }

    /// A room event of the hub for `channel` (as configured).
    pub(crate) fn handle_event(&mut self, now: Instant, channel: &str, kind: &RoomEventKind) {
        match kind {
            RoomEventKind::Join { who } => self.joined(now, channel, &who.address, &who.nick),
            RoomEventKind::Leave { who, .. } | RoomEventKind::Kick { who, .. } => {
                self.left(now, &who.address.to_string(), channel, "left");
            }
            RoomEventKind::NickChange { who, new_nick } => {
                self.renamed(&who.address.to_string(), new_nick);
            }
            RoomEventKind::Roster { participants } => {
                let present: HashSet<String> =
                    participants.iter().map(|p| p.address.to_string()).collect();
                for p in participants {
                    self.joined(now, channel, &p.address, &p.nick);
                }
                let ch = self.fold(channel);
                let gone: Vec<String> = self
                    .users
                    .iter()
                    .filter(|(k, p)| p.channels.contains_key(&ch) && !present.contains(*k))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in gone {
                    self.left(now, &k, channel, "left");
                }
            }
            _ => {}
        }
        self.pump(now);
    }

    fn joined(&mut self, now: Instant, channel: &str, address: &Address, display: &str) {
        let key = address.to_string();
        if !self.ensure(now, &key, address, display) {
            return;
        }
        let ch = self.fold(channel);
        if let Some(p) = self.users.get_mut(&key) {
            p.shut_out.remove(&ch);
            p.channels.insert(ch, channel.to_owned());
        }
        self.reopen_if_down(&key);
        self.sync_channels(&key);
    }

    fn left(&mut self, now: Instant, key: &str, channel: &str, reason: &str) {
        let ch = self.fold(channel);
        let Some(p) = self.users.get_mut(key) else {
            return;
        };
        p.channels.remove(&ch);
        if p.joined.contains(&ch)
            && let Some(id) = p.id
        {
            self.actions.push_back(Action::Command {
                id,
                cmd: Cmd::Part {
                    channel: channel.to_owned(),
                    reason: reason.to_owned(),
                },
            });
        }
        self.flush(key, None);
        self.close_if_unused(now, key, reason);
    }

    fn renamed(&mut self, key: &str, new_display: &str) {
        let nicklen = self.isupport.nicklen;
        let Some(p) = self.users.get_mut(key) else {
            return;
        };
        p.display = new_display.to_owned();
        let base = nick::ircify(new_display, nicklen);
        let (current, id, ready) = (p.nick.clone(), p.id, p.phase == Phase::Ready);
        if self.fold(&base) == self.fold(&current) {
            return;
        }
        let Some(new) = self.free_nick(key, &base, 0) else {
            return;
        };
        match id {
            Some(id) if ready => {
                if let Some(p) = self.users.get_mut(key) {
                    p.wanted_nick = Some(new.clone());
                    p.nick_tries = 0;
                }
                self.actions.push_back(Action::Command {
                    id,
                    cmd: Cmd::Nick(new),
                });
            }
            // Not registered: the next opening uses the new name.
            _ => {
                if let Some(p) = self.users.get_mut(key) {
                    p.nick = new;
                }
            }
        }
    }

    /// A message from another world to `target` on this network.
    pub(crate) fn handle_deliver(
        &mut self,
        now: Instant,
        message: Box<Message>,
        reply: Reply,
        target: Target,
    ) {
        let key = message.from.address.to_string();
        match &target {
            Target::Channel(channel) => {
                let ch = self.fold(channel);
                if self
                    .users
                    .get(&key)
                    .is_some_and(|p| p.shut_out.contains(&ch))
                {
                    tracing::info!(user = %key, %channel, "irc: the puppet was kicked from the channel or refused entry; relaying");
                    self.actions.push_back(Action::Relay { message, reply });
                    return;
                }
                let display = sender_name(&message.from);
                if !self.ensure(now, &key, &message.from.address, &display) {
                    self.actions.push_back(Action::Relay { message, reply });
                    return;
                }
                if let Some(p) = self.users.get_mut(&key) {
                    p.channels.entry(ch).or_insert_with(|| channel.clone());
                }
                self.sync_channels(&key);
            }
            Target::Nick(_) if !self.users.contains_key(&key) => {
                // No puppet: the gateway's connection says who it is from.
                self.actions.push_back(Action::Relay { message, reply });
                return;
            }
            Target::Nick(_) => {}
        }
        self.reopen_if_down(&key);
        if let Some(p) = self.users.get_mut(&key) {
            p.pending.push_back(Pending {
                message,
                reply,
                target,
                since: now,
            });
        }
        self.flush(&key, Some(now));
        self.pump(now);
    }

    /// What puppet connection `id` reports.
    pub(crate) fn handle_report(&mut self, now: Instant, id: ConnId, report: Report) {
        let Some(key) = self.by_id.get(&id).cloned() else {
            return;
        };
        match report {
            Report::Registered { nick, isupport } => {
                self.isupport = *isupport;
                if let Some(p) = self.users.get_mut(&key) {
                    p.phase = Phase::Ready;
                    p.attempts = 0;
                    p.nick = nick.clone();
                }
                if self.book.nick_of(&key).as_deref() != Some(nick.as_str()) {
                    self.actions.push_back(Action::StoreNick {
                        who: key.clone(),
                        nick,
                    });
                }
                self.sync_channels(&key);
                self.flush(&key, Some(now));
            }
            Report::Joined(channel) => {
                let ch = self.fold(&channel);
                if let Some(p) = self.users.get_mut(&key) {
                    p.joining.remove(&ch);
                    p.joined.insert(ch);
                }
                self.sync_channels(&key);
                self.flush(&key, Some(now));
            }
            Report::Left { channel, kicked } => {
                let ch = self.fold(&channel);
                let was_kicked = kicked.is_some();
                if let Some(p) = self.users.get_mut(&key) {
                    p.joining.remove(&ch);
                    p.joined.remove(&ch);
                    if let Some((by, reason)) = kicked {
                        // The user leaves the bridged rooms too (the hub
                        // is told); their rejoin there rejoins the channel,
                        // or, when the channel refuses (a ban), relays.
                        tracing::info!(user = %key, %channel, %by, "irc: an operator kicked a puppet; its user is kicked from the bridged rooms");
                        p.channels.remove(&ch);
                        self.actions.push_back(Action::Kicked {
                            who: Participant {
                                address: p.address.clone(),
                                nick: p.display.clone(),
                            },
                            channel: channel.clone(),
                            by,
                            reason,
                        });
                    }
                }
                self.flush(&key, Some(now));
                if !was_kicked {
                    // A kicked puppet stays until idle: its user may well
                    // come back.
                    self.close_if_unused(now, &key, "left");
                }
            }
            Report::JoinRefused { channel, why } => {
                tracing::warn!(user = %key, %channel, "irc: a puppet may not join ({why}); its messages there go through the gateway");
                let ch = self.fold(&channel);
                if let Some(p) = self.users.get_mut(&key) {
                    p.joining.remove(&ch);
                    p.channels.remove(&ch);
                    p.shut_out.insert(ch);
                }
                self.flush(&key, Some(now));
                self.close_if_unused(now, &key, "left");
            }
            Report::NickChanged(nick) => {
                if let Some(p) = self.users.get_mut(&key) {
                    p.nick = nick.clone();
                    p.wanted_nick = None;
                }
                self.actions.push_back(Action::StoreNick { who: key, nick });
            }
            Report::NickRefused(refused) => self.nick_refused(&key, id, &refused),
            Report::Private { message, shared } => {
                if let Some(p) = self.users.get(&key) {
                    let channel = match shared.as_slice() {
                        [one] => Some(one.clone()),
                        _ => None,
                    };
                    self.actions.push_back(Action::Private {
                        to: NameAddr {
                            display: Some(p.display.clone()),
                            address: p.address.clone(),
                        },
                        channel,
                        message,
                    });
                }
            }
            Report::Closed(why) => self.closed(now, &key, id, &why),
        }
    }

    fn nick_refused(&mut self, key: &str, id: ConnId, refused: &str) {
        let nicklen = self.isupport.nicklen;
        let Some(p) = self.users.get_mut(key) else {
            return;
        };
        if p.wanted_nick.as_deref() != Some(refused) {
            return;
        }
        p.nick_tries += 1;
        let (tries, base) = (p.nick_tries, nick::ircify(&p.display, nicklen));
        let next = (tries < NICK_TRIES)
            .then(|| self.free_nick(key, &base, tries))
            .flatten();
        if let Some(p) = self.users.get_mut(key) {
            p.wanted_nick = next.clone();
        }
        if let Some(n) = next {
            self.actions.push_back(Action::Command {
                id,
                cmd: Cmd::Nick(n),
            });
        }
    }

    fn closed(&mut self, now: Instant, key: &str, id: ConnId, why: &str) {
        self.by_id.remove(&id);
        let nick_key = self.users.get(key).map(|p| self.fold(&p.nick));
        if let Some(k) = nick_key {
            self.retired.insert(k, now + RETIRE);
        }
        let Some(p) = self.users.get_mut(key) else {
            return;
        };
        p.id = None;
        p.joined.clear();
        p.joining.clear();
        p.wanted_nick = None;
        p.attempts = p.attempts.saturating_add(1);
        let delay = RETRY_MIN
            .saturating_mul(1u32 << p.attempts.min(16))
            .min(RETRY_MAX);
        p.phase = Phase::Down {
            retry_at: now + delay,
        };
        tracing::warn!(user = %key, "irc: puppet connection closed: {why}; retrying in {delay:?}");
        let pending: Vec<Pending> = p.pending.drain(..).collect();
        for q in pending {
            tracing::info!(user = %key, "irc: relaying a message of a lost puppet");
            self.actions.push_back(Action::Relay {
                message: q.message,
                reply: q.reply,
            });
        }
        if p.channels.is_empty() {
            self.users.remove(key);
        }
    }

    /// Time passed: open puppets the rate allows, relay messages that
    /// waited too long, close idle puppets, reopen lost ones.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.retired.retain(|_, until| *until > now);
        let keys: Vec<String> = self.users.keys().cloned().collect();
        for key in keys {
            let Some(p) = self.users.get_mut(&key) else {
                continue;
            };
            while p
                .pending
                .front()
                .is_some_and(|q| q.since + PENDING_WAIT <= now)
            {
                if let Some(q) = p.pending.pop_front() {
                    tracing::warn!(user = %key, "irc: the puppet was not ready in {PENDING_WAIT:?}; relaying");
                    self.actions.push_back(Action::Relay {
                        message: q.message,
                        reply: q.reply,
                    });
                }
            }
            match p.phase {
                Phase::Down { retry_at } if retry_at <= now => {
                    p.phase = Phase::Queued;
                    self.to_open.push_back(key.clone());
                }
                Phase::Ready | Phase::Connecting
                    if p.pending.is_empty() && p.last_sent + self.idle <= now =>
                {
                    self.close(now, &key, "idle");
                }
                _ => {}
            }
        }
        self.pump(now);
    }

    /// Close every puppet (the gateway stops); the connections to wait for.
    pub(crate) fn shutdown(&mut self, now: Instant) -> Vec<ConnId> {
        let keys: Vec<String> = self.users.keys().cloned().collect();
        let ids = self.by_id.keys().copied().collect();
        for k in keys {
            self.close(now, &k, "gateway shutting down");
        }
        ids
    }

    /// Make sure `key` has a puppet (queued for opening when new); `false`
    /// when the cap is reached.
    fn ensure(&mut self, now: Instant, key: &str, address: &Address, display: &str) -> bool {
        if self.users.contains_key(key) {
            return true;
        }
        if self.users.len() >= self.max {
            if self.told_over_max.insert(key.to_owned()) {
                tracing::warn!(user = %key, max = self.max, "irc: puppet_max reached; this user's messages go through the gateway's connection");
            }
            return false;
        }
        self.told_over_max.remove(key);
        self.users.insert(
            key.to_owned(),
            Puppet {
                address: address.clone(),
                display: display.to_owned(),
                nick: String::new(),
                wanted_nick: None,
                nick_tries: 0,
                id: None,
                phase: Phase::Queued,
                channels: BTreeMap::new(),
                joined: HashSet::new(),
                joining: HashSet::new(),
                shut_out: HashSet::new(),
                pending: VecDeque::new(),
                last_sent: now,
                attempts: 0,
            },
        );
        self.to_open.push_back(key.to_owned());
        true
    }

    fn reopen_if_down(&mut self, key: &str) {
        if let Some(p) = self.users.get_mut(key)
            && matches!(p.phase, Phase::Down { .. })
        {
            p.phase = Phase::Queued;
            self.to_open.push_back(key.to_owned());
        }
    }

    /// JOIN what it should be in, PART what it should not.
    fn sync_channels(&mut self, key: &str) {
        let Some(p) = self.users.get_mut(key) else {
            return;
        };
        let (Some(id), Phase::Ready) = (p.id, p.phase) else {
            return;
        };
        for (ch, name) in &p.channels {
            if !p.joined.contains(ch) && p.joining.insert(ch.clone()) {
                self.actions.push_back(Action::Command {
                    id,
                    cmd: Cmd::Join(name.clone()),
                });
            }
        }
        for ch in &p.joined {
            if !p.channels.contains_key(ch) {
                self.actions.push_back(Action::Command {
                    id,
                    cmd: Cmd::Part {
                        channel: ch.clone(),
                        reason: "left".into(),
                    },
                });
            }
        }
    }

    /// Send, in order, the waiting messages the puppet can send now; those
    /// it never will (channel left, kicked from, refused) are relayed. `now` is
    /// the time of a send (for idleness), `None` when nothing is sent.
    fn flush(&mut self, key: &str, now: Option<Instant>) {
        let casemapping = self.isupport.casemapping;
        let Some(p) = self.users.get_mut(key) else {
            return;
        };
        while let Some(q) = p.pending.front() {
            let (ready, never) = match &q.target {
                Target::Channel(c) => {
                    let ch = casefold(casemapping, c);
                    (
                        p.phase == Phase::Ready && p.joined.contains(&ch),
                        !p.channels.contains_key(&ch),
                    )
                }
                Target::Nick(_) => (p.phase == Phase::Ready, false),
            };
            let (Some(id), true, Some(now)) = (p.id, ready, now) else {
                if never && let Some(q) = p.pending.pop_front() {
                    self.actions.push_back(Action::Relay {
                        message: q.message,
                        reply: q.reply,
                    });
                    continue;
                }
                break;
            };
            let Some(q) = p.pending.pop_front() else {
                break;
            };
            p.last_sent = now;
            self.actions.push_back(Action::Send {
                id,
                nick: p.nick.clone(),
                message: q.message,
                reply: q.reply,
            });
        }
    }

    fn close_if_unused(&mut self, now: Instant, key: &str, reason: &str) {
        if self
            .users
            .get(key)
            .is_some_and(|p| p.channels.is_empty() && p.pending.is_empty() && p.shut_out.is_empty())
        {
            // A kicked puppet stays until idle, so that its next message
            // does not rejoin at once.
            self.close(now, key, reason);
        }
    }

    fn close(&mut self, now: Instant, key: &str, reason: &str) {
        let Some(p) = self.users.remove(key) else {
            return;
        };
        self.retired.insert(self.fold(&p.nick), now + RETIRE);
        for q in p.pending {
            self.actions.push_back(Action::Relay {
                message: q.message,
                reply: q.reply,
            });
        }
        if let Some(id) = p.id {
            self.by_id.remove(&id);
            self.actions.push_back(Action::Command {
                id,
                cmd: Cmd::Quit(reason.to_owned()),
            });
        }
    }

    /// Open queued puppets as the rate allows.
    fn pump(&mut self, now: Instant) {
        while !self.to_open.is_empty() && self.bucket.wait(now).is_zero() {
            let Some(key) = self.to_open.pop_front() else {
                break;
            };
            let Some(p) = self.users.get(&key) else {
                continue;
            };
            if p.phase != Phase::Queued {
                continue;
            }
            self.bucket.take(now);
            let nick = self.choose_nick(&key);
            let id = self.next_id;
            self.next_id += 1;
            self.by_id.insert(id, key.clone());
            if let Some(p) = self.users.get_mut(&key) {
                p.phase = Phase::Connecting;
                p.id = Some(id);
                p.nick = nick.clone();
                self.actions.push_back(Action::Open {
                    id,
                    nick,
                    realname: p.display.clone(),
                });
            }
        }
    }

    /// The kept nick, else the first free candidate of the user's name.
    fn choose_nick(&self, key: &str) -> String {
        let nicklen = self.isupport.nicklen;
        if let Some(kept) = self.book.nick_of(key)
            && nick::is_valid(&kept, nicklen.max(kept.len()))
        {
            return kept;
        }
        let Some(p) = self.users.get(key) else {
            return "_".into();
        };
        if !p.nick.is_empty() {
            return p.nick.clone();
        }
        let base = nick::ircify(&p.display, nicklen);
        self.free_nick(key, &base, 0).unwrap_or(base)
    }

    /// The first of `base`'s candidates from the `skip`th on that no other
    /// user has, in the table or as a live puppet.
    fn free_nick(&self, key: &str, base: &str, skip: usize) -> Option<String> {
        nick::candidates(base, self.isupport.nicklen.max(2))
            .skip(skip)
            .take(50)
            .find(|c| {
                let folded = self.fold(c);
                self.book.owner_of(c).is_none_or(|o| o == key)
                    && !self
                        .users
                        .iter()
                        .any(|(k, p)| k != key && self.fold(&p.nick) == folded)
            })
    }
}

#[cfg(test)]
mod tests;
