//! The conference event package of the rooms (RFC 4575 with the
//! nicknames of RFC 7701 §7.4): SUBSCRIBE to a room's URI, a NOTIFY with
//! the full roster at once (every bridged world's members too), then one
//! partial NOTIFY per change. The subscriptions are
//! `cpimgate_sip::subscribe`, the documents [`crate::conference`].
//!
//! Every change goes out at once: the five-second spacing RFC 4575 §3.9
//! recommends is not applied.

use std::time::Instant;

use bytes::Bytes;
use cpimgate_model::address::Address;
use cpimgate_sip::codec;
use cpimgate_sip::dialog::Via;
use cpimgate_sip::subscribe::{Config, Due, Reason, Subscription};
use cpimgate_sip::transaction::{self, Method, OutgoingRequest, OutgoingResponse, TxId};
use cpimgate_sip::transport::Destination;

use super::sip::call_key;
use super::{Driver, token};
use crate::conference::{Conference, Endpoint, Update, users_of};
use crate::room::RosterChange;

/// One subscription to a room's events.
#[derive(Debug)]
pub(super) struct Watcher {
    sub: Subscription,
    room: String,
    peer: Destination,
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
                self.watchers.insert(
                    key.clone(),
                    Watcher {
                        sub: Subscription::new(Config::conference(contact), tag, 1),
                        room,
                        peer,
                    },
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

    /// Sends the NOTIFY a subscription owes (full state, or its last).
    fn notify_due(&mut self, key: &super::CallKey, now: Instant) {
        let Some(w) = self.watchers.get(key) else {
            return;
        };
        let Some(due) = w.sub.poll_notify() else {
            return;
        };
        let version = w.sub.next_version();
        let room_key = w.room.clone();
        let body = match (due, self.rooms.get(&room_key)) {
            (Due::Final(Reason::NoResource), Some(room))
            | (Due::Final(Reason::Deactivated), Some(room)) => {
                Conference::new(room.uri()).deleted(version)
            }
            (_, Some(room)) => {
                let users = users_of(room, |who| self.endpoints_of(&room_key, who));
                Conference::new(room.uri()).full(&users, version)
            }
            (_, None) => String::new(),
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
        let Ok(notify) = w.sub.notify(now, &via, body) else {
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
            self.notify_txs.insert(tx, key.clone());
        }
        if w.sub.is_terminated() {
            self.watchers.remove(key);
        }
    }

    /// A change in a room: a partial NOTIFY to each of its watchers.
    pub(super) fn notify_change(&mut self, room_key: &str, change: &RosterChange) {
        let now = Instant::now();
        let keys: Vec<super::CallKey> = self
            .watchers
            .iter()
            .filter(|(_, w)| w.room == room_key && !w.sub.is_terminated())
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return;
        }
        let endpoints = match change {
            RosterChange::Joined {
                who, remote: false, ..
            } => self.endpoints_of(room_key, who),
            _ => Vec::new(),
        };
        let Some(room) = self.rooms.get(room_key) else {
            return;
        };
        let conference = Conference::new(room.uri());
        let update = Update::from_change(change, endpoints);
        for key in keys {
            let Some(w) = self.watchers.get(&key) else {
                continue;
            };
            let body = conference.partial(std::slice::from_ref(&update), w.sub.next_version());
            self.send_notify(&key, now, body);
        }
    }

    /// The final response of a NOTIFY; false when `tx` is not one.
    pub(super) fn notify_answered(&mut self, tx: TxId, status: u16) -> bool {
        let Some(key) = self.notify_txs.remove(&tx) else {
            return false;
        };
        if let Some(w) = self.watchers.get_mut(&key) {
            w.sub.handle_notify_response(status);
            if w.sub.is_terminated() {
                self.watchers.remove(&key);
            }
        }
        true
    }

    /// Expiries of the subscriptions.
    pub(super) fn watchers_timeout(&self) -> Option<Instant> {
        self.watchers
            .values()
            .filter_map(|w| w.sub.poll_timeout())
            .min()
    }

    pub(super) fn watchers_expire(&mut self, now: Instant) {
        let keys: Vec<super::CallKey> = self.watchers.keys().cloned().collect();
        for key in keys {
            if let Some(w) = self.watchers.get_mut(&key) {
                w.sub.handle_timeout(now);
            }
            self.notify_due(&key, now);
        }
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
