//! The room's history, sent to a user who joins (XEP-0045 §7.2.15).
//!
//! The gateway's history is the hub's ([`History`](cpimgate_model::port::History)
//! in the adapter context): every message of the bridge, from every room of
//! it. The core does not wait for it: a join that wants history ends with
//! [`Output::FetchHistory`](super::super::core::Output::FetchHistory) in
//! place of the subject; the driver asks the hub and passes the answer to
//! [`Core::handle_history`], which sends the history, then the subject, then
//! whatever room traffic came for the newcomer in the meantime. The order of
//! §7.2.3 (presences, history, subject, live messages) holds.
//!
//! What the user asks for in `<history/>` (§7.2.15):
//!
//! * nothing (no `<history/>`): the newest
//!   [`ComponentConfig::history_on_join`](crate::config::ComponentConfig::history_on_join)
//!   messages;
//! * `maxstanzas`: at most that many (capped at [`HISTORY_CAP`]);
//! * `maxchars`: at most that many characters of the complete history
//!   stanzas, as sent;
//! * `seconds`, `since`: none older;
//! * `maxstanzas='0'` or `maxchars='0'`: none.
//!
//! Each history message is a groupchat message from `room@service/nick` of
//! the sender (their nick as shown in this room), with an XEP-0203
//! `<delay/>` stamped by the room and the message's id as XEP-0359
//! stanza-id. Private messages are never part of it.

use std::str::FromStr;

use cpimgate_model::port::{Failure, HistoryQuery};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Address, Message, NameAddr};
use xmpp_parsers::date::DateTime;
use xmpp_parsers::delay::Delay;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::{Message as XMessage, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::muc::muc::History;

use super::super::core::{Core, Directory};
use super::super::stanzas;
use super::{Room, nick_of, stanza_id};
use crate::convert::body_text;
use crate::text::xml_safe;

/// The most messages a join is sent as history, whatever it asks for.
pub(crate) const HISTORY_CAP: usize = 500;

/// The query for the history a join asks for, and its `maxchars`; `None`
/// when it wants none. `default` is the configured number of messages for a
/// join without `<history/>`.
pub(crate) fn wanted(
    default: usize,
    asked: Option<&History>,
    now: Timestamp,
) -> Option<(HistoryQuery, Option<usize>)> {
    let Some(h) = asked else {
        return (default > 0).then(|| {
            (
                HistoryQuery {
                    max_messages: default.min(HISTORY_CAP),
                    since: None,
                },
                None,
            )
        });
    };
    // §7.2.15: maxstanzas='0' or maxchars='0' ask for no history.
    if h.maxstanzas == Some(0) || h.maxchars == Some(0) {
        return None;
    }
    let max_messages = h
        .maxstanzas
        .map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX))
        .min(HISTORY_CAP);
    if max_messages == 0 {
        return None;
    }
    let by_seconds = h.seconds.map(|s| Timestamp {
        unix_micros: now
            .unix_micros
            .saturating_sub(i64::from(s).saturating_mul(1_000_000)),
    });
    let by_date = h.since.as_ref().map(crate::convert::timestamp);
    let since = match (by_seconds, by_date) {
        (Some(a), Some(b)) => Some(if a.unix_micros > b.unix_micros { a } else { b }),
        (a, b) => a.or(b),
    };
    let max_chars = h.maxchars.map(|c| usize::try_from(c).unwrap_or(usize::MAX));
    Some((
        HistoryQuery {
            max_messages,
            since,
        },
        max_chars,
    ))
}

/// The nick `from` shows in `room`: the resource of one of the room's own
/// occupant JIDs, the shown nick of a participant of another world present
/// now, else the name the message carries (made a usable resourcepart).
fn shown_nick(room: &Room, from: &NameAddr) -> String {
    if let Address::Xmpp(u) = &from.address
        && let Some(r) = u.jid().resource()
        && BareJid::new(&u.jid().bare().to_string())
            .is_ok_and(|b| super::key(&b) == super::key(&room.jid))
    {
        return r.to_owned();
    }
    if let Some(r) = room.remote.iter().find(|r| r.address == from.address) {
        return r.shown.clone();
    }
    let n = xml_safe(nick_of(from).trim()).into_owned();
    if n.is_empty() || room.jid.with_resource_str(&n).is_err() {
        "guest".to_owned()
    } else {
        n
    }
}

/// One history message for `to` (§7.2.15 example 37, with the XEP-0203
/// delay of example 34).
fn history_stanza(room: &Room, m: &Message, to: &Jid, now: Timestamp) -> Option<XMessage> {
    if m.private {
        return None;
    }
    let from = room.occupant_jid(&shown_nick(room, &m.from))?;
    let mut s = stanzas::text_message(
        MessageType::Groupchat,
        Jid::from(from),
        to.clone(),
        Some(m.id.to_string()),
        &body_text(m),
    );
    let when = m.datetime.unwrap_or(now);
    let stamp = DateTime::from_str(&when.to_rfc3339()).ok()?;
    s.payloads.push(
        Delay {
            from: Some(Jid::from(room.jid.clone())),
            stamp,
            data: None,
        }
        .into(),
    );
    s.payloads.push(stanza_id(m.id.as_str(), &room.jid));
    Some(s)
}

/// The newest of `stanzas` whose complete XML fits in `max_chars`
/// characters (§7.2.15 `maxchars`), oldest first.
fn within_chars(stanzas: Vec<XMessage>, max_chars: usize) -> Vec<XMessage> {
    let mut total = 0usize;
    let mut keep = stanzas.len();
    for (i, s) in stanzas.iter().enumerate().rev() {
        total = total.saturating_add(String::from(&Element::from(s.clone())).chars().count());
        if total > max_chars {
            break;
        }
        keep = i;
    }
    stanzas.into_iter().skip(keep).collect()
}

impl<D: Directory> Core<D> {
    /// The history asked for with
    /// [`Output::FetchHistory`](super::super::core::Output::FetchHistory):
    /// the joining occupant is sent it, then the subject, then the room
    /// traffic held meanwhile. A failed fetch sends no history; the join
    /// still completes. A token whose occupant left meanwhile is ignored.
    pub fn handle_history(
        &mut self,
        token: u64,
        result: Result<Vec<Message>, Failure>,
        now: Timestamp,
    ) {
        let mut found = None;
        for (k, room) in &self.rooms.map {
            if let Some(i) = room
                .occupants
                .iter()
                .position(|o| o.joining.as_ref().is_some_and(|j| j.token == token))
            {
                found = Some((k.clone(), i));
                break;
            }
        }
        let Some((k, i)) = found else {
            return;
        };
        let Some(room) = self.rooms.map.get_mut(&k) else {
            return;
        };
        let messages = match result {
            Ok(m) => m,
            Err(f) => {
                tracing::warn!(room = %room.jid, "no history for a join: {f}");
                Vec::new()
            }
        };
        let Some(occupant) = room.occupants.get(i) else {
            return;
        };
        let to = occupant.real.clone();
        let (max_chars, max_messages) = match &occupant.joining {
            Some(j) => (j.max_chars, HISTORY_CAP),
            None => (None, HISTORY_CAP),
        };
        let mut list: Vec<XMessage> = messages
            .iter()
            .filter_map(|m| history_stanza(room, m, &to, now))
            .collect();
        if list.len() > max_messages {
            list.drain(..list.len() - max_messages);
        }
        if let Some(c) = max_chars {
            list = within_chars(list, c);
        }
        let subject = room.subject_message(Jid::from(room.jid.clone()), to);
        let Some(occupant) = room.occupants.get_mut(i) else {
            return;
        };
        let held = occupant.joining.take().map(|j| j.held).unwrap_or_default();
        let ids: Vec<String> = list
            .iter()
            .filter_map(|s| s.id.clone().map(|i| i.0))
            .collect();
        let mut tx = list;
        tx.push(subject);
        for s in held {
            let dup = s.id.as_ref().is_some_and(|i| ids.contains(&i.0));
            if !dup {
                tx.push(s);
            }
        }
        // Live copies that come later are not shown twice; those held were
        // filtered above.
        occupant.had_in_history = ids.into_iter().collect();
        for s in tx {
            self.transmit(s);
        }
    }
}
