//! The conference event package of the rooms (RFC 4575 with the
//! nicknames of RFC 7701 §7.4): SUBSCRIBE to a room's URI, a NOTIFY with
//! the full roster at once (every bridged world's members too), then
//! partial NOTIFYs with the changes. The subscriptions are
//! `cpimgate_sip::subscribe`, the documents [`crate::conference`].
//!
//! # Rate of notifications
//!
//! RFC 4575 §3.9 recommends not notifying one subscriber more often than
//! once every 5 seconds: `notify_interval_ms` (5000 by default, 0: no
//! spacing). A change that comes sooner after the subscriber's last
//! NOTIFY is held; when the interval has passed, one partial NOTIFY
//! carries every change held, each user once in its latest state
//! ([`crate::conference::coalesce`]). In a room that 1,000 people join,
//! each subscriber gets a NOTIFY every 5 seconds rather than one per
//! join. A change after a quiet spell goes out at once.
//!
//! The changes are kept once per room, in a [`Log`]; each [`Watcher`]
//! knows how far into it its subscriber is, so what is held costs one
//! position per subscriber, not one copy of each change. The log
//! forgets what every watcher of the room has had.
//!
//! The full NOTIFY of a SUBSCRIBE or a refresh, and the last one of a
//! subscription (unsubscribe, expiry, the gateway stopping), go out at
//! once: a full document makes whatever was held needless. A partial
//! NOTIFY also waits while another NOTIFY of the subscription has no
//! final response yet, so that the partial documents arrive in the
//! order of their versions even over UDP: one that overtook another
//! would look like a lost one to the subscriber, which then refreshes
//! (§4.6). Its changes are sent once the response comes (a 481 or a
//! timeout ends the subscription instead, RFC 6665 §4.2.2).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cpimgate_model::address::Address;
use cpimgate_sip::codec::{self, OwnedMessage};
use cpimgate_sip::dialog::Via;
use cpimgate_sip::subscribe::{Config, Due, NotifyError, Reason, State, Subscription};
use cpimgate_sip::transaction::{self, Method, OutgoingRequest, OutgoingResponse, TxId};
use cpimgate_sip::transport::Destination;

use super::sip::call_key;
use super::{Driver, token};
use crate::conference::{Conference, Endpoint, Update, coalesce, users_of};
use crate::room::RosterChange;

/// The changes of one room's roster, in order, kept until every watcher
/// of the room has had them. A change's position counts from the
/// room's first one and never goes back.
#[derive(Debug, Default)]
pub(super) struct Log {
    /// The position of the first change kept.
    base: u64,
    changes: VecDeque<Update>,
}

impl Log {
    /// The position the next change takes.
    pub(super) fn head(&self) -> u64 {
        self.base + self.changes.len() as u64
    }

    pub(super) fn push(&mut self, update: Update) {
        self.changes.push_back(update);
    }

    /// The changes from position `from` on.
    fn since(&self, from: u64) -> impl Iterator<Item = &Update> {
        let skip = usize::try_from(from.saturating_sub(self.base)).unwrap_or(usize::MAX);
        self.changes.iter().skip(skip)
    }

    /// Forgets the changes before position `to`.
    fn forget_before(&mut self, to: u64) {
        while self.base < to && self.changes.pop_front().is_some() {
            self.base += 1;
        }
    }
}

/// What a watcher owes its subscriber now.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Owed {
    /// A full document, or the last NOTIFY: at once, whatever the
    /// interval (the caller writes the body, it knows the sessions).
    State(Due),
    /// The changes held, one update per user, for one partial document
    /// of version [`Subscription::next_version`]: one up per NOTIFY,
    /// however many changes it carries.
    Changes(Vec<Update>),
}

/// One subscription to a room's events, sans-IO: the driver gives it
/// the time and the room's [`Log`], writes what [`Watcher::poll_owed`]
/// says is owed with [`Watcher::notify`], tells it of each NOTIFY sent
/// ([`Watcher::sent`]) and of each one's final response
/// ([`Watcher::handle_notify_response`]), and wakes it at
/// [`Watcher::poll_timeout`].
#[derive(Debug)]
pub(super) struct Watcher {
    sub: Subscription,
    room: String,
    peer: Destination,
    /// The position in the room's log up to which the subscriber has the
    /// changes; those after it are held.
    sent_up_to: u64,
    /// NOTIFYs sent that have no final response yet.
    in_flight: u32,
}

impl Watcher {
    /// A subscription to `room` whose subscriber is at `peer`; the room's
    /// log is at `head`.
    pub(super) fn new(sub: Subscription, room: String, peer: Destination, head: u64) -> Watcher {
        Watcher {
            sub,
            room,
            peer,
            sent_up_to: head,
            in_flight: 0,
        }
    }

    /// When the changes held may go out: the interval after the last
    /// NOTIFY (RFC 4575 §3.9), once none waits for its response. `None`
    /// when nothing is held, or a full or last NOTIFY is owed anyway.
    fn changes_due(&self, log: &Log) -> Option<Instant> {
        let held = self.sent_up_to < log.head();
        let active = matches!(self.sub.state(), State::Active(_));
        if !held || !active || self.in_flight > 0 || self.sub.poll_notify().is_some() {
            return None;
        }
        self.sub.next_change_at()
    }

    /// What is owed at `now`, if anything: a full or last NOTIFY, or the
    /// changes held once they are due. Changes that undo each other owe
    /// nothing. Either way the subscriber counts as having every change
    /// in `log`.
    pub(super) fn poll_owed(&mut self, now: Instant, log: &Log) -> Option<Owed> {
        // A subscription past its expiry owes its last NOTIFY instead.
        self.sub.handle_timeout(now);
        if let Some(due) = self.sub.poll_notify() {
            self.sent_up_to = log.head();
            return Some(Owed::State(due));
        }
        if self.changes_due(log)? > now {
            return None;
        }
        let updates = coalesce(log.since(self.sent_up_to));
        self.sent_up_to = log.head();
        (!updates.is_empty()).then_some(Owed::Changes(updates))
    }

    /// The NOTIFY with `body`, from [`Watcher::poll_owed`].
    pub(super) fn notify(
        &mut self,
        now: Instant,
        via: &Via<'_>,
        body: String,
    ) -> Result<OwnedMessage, NotifyError> {
        self.sub.notify(now, via, body)
    }

    /// A NOTIFY went out and waits for its final response.
    pub(super) fn sent(&mut self) {
        self.in_flight += 1;
    }

    /// The final status of a NOTIFY (a timeout as 408).
    pub(super) fn handle_notify_response(&mut self, status: u16) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.sub.handle_notify_response(status);
    }

    /// When [`Watcher::poll_owed`] should be asked again: the
    /// subscription's expiry, or when the changes held are due.
    pub(super) fn poll_timeout(&self, log: &Log) -> Option<Instant> {
        [self.sub.poll_timeout(), self.changes_due(log)]
            .into_iter()
            .flatten()
            .min()
    }
}

impl Driver {
    /// A SUBSCRIBE: a new subscription (no To tag) or one of a dialog.
    pub(super) fn subscribe(
        &mut self,
        tx: TxId,
        req: &codec::Message<'_>,
        to_tag: Option<&str>,
        peer: Destination,
    ) {
        let now = Instant::now();
        let key = match to_tag {
            Some(tag) => call_key(req, tag),
            None => {
                // The roster is the room's own: the same digest as INVITE.
                if let Some(challenges) = self.challenge(req, &peer) {
                    let tag = token();
                    if let Ok(mut r) =
                        codec::OwnedMessage::response_to(req, 401, "Unauthorized", Some(&tag))
                    {
                        for c in &challenges {
                            let _ = r.push_header("WWW-Authenticate", c);
                        }
                        self.answer_subscribe(tx, 401, None, r.to_bytes());
                    }
                    return;
                }
                let room = match req.request_uri_address() {
                    Some(Ok(Address::Sip(u))) => u.user().map(str::to_ascii_lowercase),
                    _ => None,
                };
                let Some(room) = room.filter(|r| self.rooms.contains_key(r)) else {
                    let tag = token();
                    if let Ok(r) =
                        codec::OwnedMessage::response_to(req, 404, "Not Found", Some(&tag))
                    {
                        self.answer_subscribe(tx, 404, None, r.to_bytes());
                    }
                    return;
                };
                let contact = format!(
                    "sip:{room}@{}:{};transport={}",
                    self.host,
                    self.sip_addr.port(),
                    self.sip_transport.as_via_str().to_ascii_lowercase()
                );
                let tag = token();
                let key = call_key(req, &tag);
                let config = Config {
                    min_notify_interval: Duration::from_millis(self.config.notify_interval_ms),
                    ..Config::conference(contact)
                };
                let head = self.room_changes.get(&room).map_or(0, Log::head);
                self.watchers.insert(
                    key.clone(),
                    Watcher::new(Subscription::new(config, tag, 1), room, peer, head),
                );
                key
            }
        };
        let Some(w) = self.watchers.get_mut(&key) else {
            let tag = token();
            if let Ok(r) = codec::OwnedMessage::response_to(
                req,
                481,
                "Call/Transaction Does Not Exist",
                Some(&tag),
            ) {
                self.answer_subscribe(tx, 481, None, r.to_bytes());
            }
            return;
        };
        let tag = w.sub.local_tag().to_owned();
        match w.sub.handle_subscribe(now, req) {
            Ok(ok) => self.answer_subscribe(tx, 200, Some(tag), ok.to_bytes()),
            Err(refusal) => {
                let code = refusal.code();
                if let Ok(r) = refusal.response(req, &tag) {
                    self.answer_subscribe(tx, code, Some(tag), r.to_bytes());
                }
                if to_tag.is_none() {
                    self.watchers.remove(&key);
                    return;
                }
            }
        }
        self.notify_due(&key, now);
    }

    fn answer_subscribe(&mut self, tx: TxId, code: u16, to_tag: Option<String>, bytes: Vec<u8>) {
        let _ = self.layer.respond(
            Instant::now(),
            tx,
            OutgoingResponse {
                status: code,
                to_tag,
                bytes: Bytes::from(bytes),
            },
        );
    }

    /// Sends the NOTIFY a subscription owes at `now`: full state, its
    /// last, or the changes held once they are due.
    fn notify_due(&mut self, key: &super::CallKey, now: Instant) {
        let Some(w) = self.watchers.get_mut(key) else {
            return;
        };
        let empty = Log::default();
        let log = self.room_changes.get(&w.room).unwrap_or(&empty);
        let Some(owed) = w.poll_owed(now, log) else {
            return;
        };
        // Rooms stay while the adapter runs: there is always one.
        let Some(room) = self.rooms.get(&w.room) else {
            return;
        };
        let room_key = w.room.clone();
        let version = w.sub.next_version();
        let conference = Conference::new(room.uri());
        let body = match owed {
            Owed::Changes(updates) => conference.partial(&updates, version),
            Owed::State(Due::Final(Reason::NoResource | Reason::Deactivated)) => {
                conference.deleted(version)
            }
            Owed::State(_) => {
                let users = users_of(room, |who| self.endpoints_of(&room_key, who));
                conference.full(&users, version)
            }
        };
        self.send_notify(key, now, body);
    }

    /// The endpoints of a participant: one per MSRP session, named by its
    /// path (unique per session).
    fn endpoints_of(&self, room_key: &str, who: &Address) -> Vec<Endpoint> {
        let Some(room) = self.rooms.get(room_key) else {
            return Vec::new();
        };
        // A session's path names the participant's host: an anonymous
        // room shields them (RFC 4575 §5.6.6: the focus "may choose to
        // shield the information about the participant's multiple
        // endpoints"): users without endpoints.
        if room.policy().anonymous {
            return Vec::new();
        }
        self.sessions
            .values()
            .filter(|s| s.room == room_key)
            .filter(|s| room.participant(s.id).is_some_and(|p| p.uri.same_user(who)))
            .filter_map(|s| s.remote_path.first().map(|p| Endpoint::new(p.clone())))
            .collect()
    }

    fn send_notify(&mut self, key: &super::CallKey, now: Instant, body: String) {
        let branch = format!("{}{}", transaction::MAGIC_COOKIE, token());
        let sent_by = self.sip_addr.to_string();
        let transport = self.sip_transport.as_via_str();
        let Some(w) = self.watchers.get_mut(key) else {
            return;
        };
        let via = Via {
            transport,
            sent_by: &sent_by,
            branch: &branch,
        };
        let Ok(notify) = w.notify(now, &via, body) else {
            return;
        };
        let dest = w.peer.clone();
        let sent = self.layer.send_request(
            now,
            OutgoingRequest {
                method: Method::Notify,
                branch,
                bytes: Bytes::from(notify.to_bytes()),
                reliable: dest.transport.is_reliable(),
                dest,
            },
        );
        if let Ok(tx) = sent {
            w.sent();
            self.notify_txs.insert(tx, key.clone());
        }
        if w.sub.is_terminated() {
            self.watchers.remove(key);
        }
    }

    /// Changes in a room, from [`crate::room::Room::poll_change`]: kept
    /// for the room's watchers, and sent to those whose interval has
    /// passed; the others have them when it has.
    pub(super) fn notify_changes(&mut self, room_key: &str, changes: &[RosterChange]) {
        let now = Instant::now();
        let keys: Vec<super::CallKey> = self
            .watchers
            .iter()
            .filter(|(_, w)| w.room == room_key && !w.sub.is_terminated())
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() || changes.is_empty() {
            return;
        }
        for change in changes {
            let endpoints = match change {
                RosterChange::Joined {
                    who, remote: false, ..
                } => self.endpoints_of(room_key, who),
                _ => Vec::new(),
            };
            self.room_changes
                .entry(room_key.to_owned())
                .or_default()
                .push(Update::from_change(change, endpoints));
        }
        for key in keys {
            self.notify_due(&key, now);
        }
        self.forget_sent_changes();
    }

    /// Drops from each room's log what all its watchers have had.
    fn forget_sent_changes(&mut self) {
        let mut oldest: HashMap<&str, u64> = HashMap::new();
        for w in self.watchers.values() {
            let at = oldest.entry(w.room.as_str()).or_insert(w.sent_up_to);
            *at = (*at).min(w.sent_up_to);
        }
        for (room, log) in &mut self.room_changes {
            let to = oldest.get(room.as_str()).copied().unwrap_or(log.head());
            log.forget_before(to);
        }
    }

    /// The final response of a NOTIFY; false when `tx` is not one. The
    /// changes held while it was pending go out if they are due.
    pub(super) fn notify_answered(&mut self, tx: TxId, status: u16) -> bool {
        let Some(key) = self.notify_txs.remove(&tx) else {
            return false;
        };
        if let Some(w) = self.watchers.get_mut(&key) {
            w.handle_notify_response(status);
            if w.sub.is_terminated() {
                self.watchers.remove(&key);
            } else {
                self.notify_due(&key, Instant::now());
            }
        }
        true
    }

    /// Expiries of the subscriptions, and when held changes are due.
    pub(super) fn watchers_timeout(&self) -> Option<Instant> {
        let empty = Log::default();
        self.watchers
            .values()
            .filter_map(|w| w.poll_timeout(self.room_changes.get(&w.room).unwrap_or(&empty)))
            .min()
    }

    /// Subscriptions that expired get their last NOTIFY, those whose
    /// held changes are due get them.
    pub(super) fn watchers_expire(&mut self, now: Instant) {
        let keys: Vec<super::CallKey> = self.watchers.keys().cloned().collect();
        for key in keys {
            self.notify_due(&key, now);
        }
        self.forget_sent_changes();
    }

    /// The gateway stops: every subscription ends (`deactivated`).
    pub(super) fn watchers_end(&mut self) {
        let now = Instant::now();
        let keys: Vec<super::CallKey> = self.watchers.keys().cloned().collect();
        for key in keys {
            if let Some(w) = self.watchers.get_mut(&key) {
                w.sub.terminate(Reason::Deactivated);
            }
            self.notify_due(&key, now);
        }
    }
}

#[cfg(test)]
mod tests;
