//! The component's sans-IO core: parsed stanzas and hub traffic in,
//! stanzas and hub requests out.
//!
//! Call order (the driver keeps it): after every `handle_*` call, drain
//! [`Core::poll_output`] until it gives `None`; call
//! [`Core::handle_timeout`] when [`Core::poll_timeout`] says. The core
//! never blocks and never does I/O; nickname reservations, which are
//! writes to the mapping store, leave as [`Output::Reserve`] /
//! [`Output::Release`], history reads as [`Output::FetchHistory`] (its
//! answer comes back through [`Core::handle_history`]), and the outcomes
//! of deliveries that waited for a receipt as [`Output::Answer`].
//!
//! What it speaks:
//!
//! * 1:1 chat (RFC 6121 §5): a `<message type='chat'>` to
//!   `alice\40sip.example.com@gw.example.com` is a message to
//!   `im:alice@sip.example.com`; a message of another world to an XMPP user
//!   comes from the sender's component JID. XEP-0184 receipts follow the
//!   other world's delivery outcome.
//!   Delivered the other way, a message asks for a receipt (XEP-0184 §5.1)
//!   and its outcome waits: *delivered* when the receipt comes, *failed*
//!   on an error stanza for it, *accepted* when neither comes within
//!   `receipt_wait` ([`Core::handle_timeout`]).
//! * XEP-0308 corrections become new messages whose text starts with
//!   [`CORRECTION_MARKER`](crate::convert::CORRECTION_MARKER).
//! * rooms (XEP-0045), in [`super::muc`].
//! * service discovery (XEP-0030) and ping (XEP-0199), in the `disco` module.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use cpimgate_mappings::{MappingStore, RoomAlias};
use cpimgate_model::address::{Jid as ModelJid, XmppUri};
use cpimgate_model::port::{DeliveryOutcome, Failure, FailureKind, HistoryQuery};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Address, Message, MessageId, NameAddr, Origin, RoomEvent, RoomRef, World};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::{Message as XMessage, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ns;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::receipts::Received;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use super::muc::Rooms;
use super::stanzas;

/// How many 1:1 messages wait for their outcome at most; the oldest is
/// forgotten first (its outcome then goes unreported).
const MAX_PENDING: usize = 16 * 1024;

/// What the core asks the driver to do.
#[derive(Debug)]
pub enum Output {
    /// Send this stanza to the server.
    Transmit(Box<Stanza>),
    /// Hand this message to the hub and pass its answer to
    /// [`Core::handle_hub_answer`].
    ToHub(Box<Message>),
    /// Hand this room event to the hub.
    Event(Box<RoomEvent>),
    /// Reserve `nick` for `owner` in the bridge (XEP-0045 §7.2.9).
    Reserve {
        /// The bridge's name.
        bridge: String,
        /// The nickname.
        nick: String,
        /// Who holds it (`xmpp:user@host`).
        owner: String,
    },
    /// Fetch the history of `room` that `query` allows (XEP-0045
    /// §7.2.15) and pass it to [`Core::handle_history`] with `token`.
    FetchHistory {
        /// Names the join waiting for it.
        token: u64,
        /// The room.
        room: RoomRef,
        /// What to fetch.
        query: HistoryQuery,
    },
    /// The outcome of the delivery [`Core::handle_deliver`] answered with
    /// [`Delivery::AwaitingReceipt`] carrying `token`.
    Answer {
        /// The delivery's token.
        token: u64,
        /// Its outcome.
        outcome: DeliveryOutcome,
    },
    /// Release a reservation made with [`Output::Reserve`].
    Release {
        /// The bridge's name.
        bridge: String,
        /// The nickname.
        nick: String,
        /// Who held it.
        owner: String,
    },
}

/// What became of a message handed to [`Core::handle_deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Written out; the server has it, nothing more will be known.
    Sent,
    /// Written out with a receipt request: the outcome comes later as an
    /// [`Output::Answer`] with this token.
    AwaitingReceipt(u64),
}

/// A 1:1 delivery waiting for its XEP-0184 receipt.
#[derive(Debug, Clone)]
pub(crate) struct AwaitingReceipt {
    pub(crate) token: u64,
    /// The bare JID of the recipient: only they can answer for it.
    pub(crate) user: BareJid,
    pub(crate) deadline: Instant,
}

/// What the core needs to know of the mapping table; reads only.
pub trait Directory {
    /// The bridge a room JID of the component belongs to, if any.
    fn bridge_of_room(&self, room: &BareJid) -> Option<String>;
    /// Who holds `nick` anywhere in `bridge`.
    fn nick_owner(&self, bridge: &str, nick: &str) -> Option<String>;
    /// Every room JID on `domain` that is in a bridge.
    fn rooms(&self, domain: &str) -> Vec<BareJid>;
}

impl Directory for MappingStore {
    fn bridge_of_room(&self, room: &BareJid) -> Option<String> {
        self.bridge_of(&RoomAlias::Muc(room.to_string()))
    }

    fn nick_owner(&self, bridge: &str, nick: &str) -> Option<String> {
        MappingStore::nick_owner(
            self,
            &cpimgate_mappings::NickScope::Bridge(bridge.into()),
            nick,
        )
    }

    fn rooms(&self, domain: &str) -> Vec<BareJid> {
        self.bridges()
            .into_iter()
            .flat_map(|(_, rooms)| rooms)
            .filter_map(|r| match r {
                RoomAlias::Muc(j) => BareJid::new(&j).ok(),
                _ => None,
            })
            .filter(|j| j.domain().as_str().eq_ignore_ascii_case(domain))
            .collect()
    }
}

/// A message handed to the hub, remembered until its outcome is known.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// The XMPP sender.
    pub user: Jid,
    /// The JID it was sent to (a contact or a room).
    pub ours: Jid,
    /// The stanza's id.
    pub stanza_id: Option<String>,
    /// Whether the sender asked for a receipt (XEP-0184 §5.1).
    pub receipt: bool,
    /// A room message (no receipts, no reports awaited).
    pub room: bool,
    /// A room message's reflection to its sender (XEP-0045 §7.4), sent
    /// once the hub has the message on disk: to the sender it says that
    /// the room took the message, so it must not come before that.
    pub reflection: Option<XMessage>,
}

/// The component's state.
#[derive(Debug)]
pub struct Core<D> {
    pub(crate) domain: String,
    pub(crate) adapter: String,
    pub(crate) max_body: usize,
    pub(crate) dir: D,
    pub(crate) rooms: Rooms,
    pending: HashMap<MessageId, Pending>,
    pending_order: VecDeque<MessageId>,
    /// Deliveries waiting for a receipt, by stanza id, in deadline order.
    /// Bounded by the hub: it keeps at most its dispatcher window of
    /// deliveries unanswered per adapter, and these are unanswered;
    /// [`MAX_PENDING`] is the guard should that change.
    pub(crate) receipts: HashMap<String, AwaitingReceipt>,
    pub(crate) receipt_order: VecDeque<String>,
    pub(crate) receipt_wait: Duration,
    pub(crate) history_on_join: usize,
    pub(crate) next_token: u64,
    /// (contact, user) pairs we told we are available (RFC 6121 §4).
    contacts: HashSet<(String, String)>,
    pub(crate) out: VecDeque<Output>,
}

impl<D: Directory> Core<D> {
    /// A core for the component `domain`, run by adapter `adapter`; fails
    /// when `domain` is not a JID domainpart.
    pub fn new(domain: &str, adapter: &str, max_body: usize, dir: D) -> Result<Self, String> {
        let service =
            BareJid::new(domain).map_err(|e| format!("domain {domain:?} is not a JID: {e}"))?;
        if service.node().is_some() {
            return Err(format!("domain {domain:?} must be a bare domain"));
        }
        Ok(Core {
            domain: domain.to_ascii_lowercase(),
            adapter: adapter.to_owned(),
            max_body,
            dir,
            rooms: Rooms::default(),
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
            receipts: HashMap::new(),
            receipt_order: VecDeque::new(),
            receipt_wait: Duration::ZERO,
            history_on_join: 0,
            next_token: 0,
            contacts: HashSet::new(),
            out: VecDeque::new(),
        })
    }

    /// How many room messages a join without `<history/>` is sent
    /// (XEP-0045 §7.2.15); none by default.
    pub fn with_history_on_join(mut self, n: usize) -> Self {
        self.history_on_join = n;
        self
    }

    /// How long a 1:1 delivery waits for its XEP-0184 receipt; zero (the
    /// default) asks for none and answers at once.
    pub fn with_receipt_wait(mut self, wait: Duration) -> Self {
        self.receipt_wait = wait;
        self
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub(crate) fn transmit(&mut self, s: impl Into<Stanza>) {
        self.out.push_back(Output::Transmit(Box::new(s.into())));
    }

    pub(crate) fn origin(&self, stanza_id: Option<String>) -> Origin {
        Origin {
            world: World::Xmpp,
            adapter: self.adapter.clone(),
            native_id: stanza_id,
        }
    }

    pub(crate) fn remember(&mut self, id: MessageId, p: Pending) {
        // The oldest still pending goes; ids forgotten meanwhile are skipped.
        while self.pending.len() >= MAX_PENDING {
            let Some(old) = self.pending_order.pop_front() else {
                break;
            };
            if self.pending.remove(&old).is_some() {
                break;
            }
        }
        self.pending_order.push_back(id.clone());
        self.pending.insert(id, p);
    }

    fn forget(&mut self, id: &MessageId) -> Option<Pending> {
        let p = self.pending.remove(id)?;
        // The id stays in `pending_order` until it reaches the front or the
        // order is compacted: removing it here would scan the whole order
        // for every answer, quadratic with thousands in flight.
        if self.pending_order.len() > 2 * self.pending.len() + 64 {
            let pending = &self.pending;
            self.pending_order.retain(|i| pending.contains_key(i));
        }
        // After a burst the map would keep the size of its high-water mark
        // (1.4 MB after 2,000 messages from 200 occupants, heaptrack): give
        // it back once it is mostly empty.
        if self.pending.capacity() > 1024 && self.pending.len() * 8 < self.pending.capacity() {
            self.pending.shrink_to(self.pending.len() * 2);
            self.pending_order.shrink_to(self.pending.len() * 2);
        }
        Some(p)
    }

    /// A stanza from the server.
    pub fn handle_stanza(&mut self, stanza: Stanza, now: Timestamp) {
        match stanza {
            Stanza::Message(m) => self.on_message(m, now),
            Stanza::Presence(p) => self.on_presence(p, now),
            Stanza::Iq(iq) => self.on_iq(iq),
        }
    }

    fn on_message(&mut self, m: XMessage, now: Timestamp) {
        let (Some(from), Some(to)) = (m.from.clone(), m.to.clone()) else {
            return;
        };
        if m.type_ == MessageType::Error {
            if self.on_delivery_error(&m, &from) {
                return;
            }
            tracing::debug!(%from, %to, "error stanza from XMPP: {:?}", m.payloads.first().map(|p| p.name().to_owned()));
            return;
        }
        if to.node().is_none() {
            // Messages to the service itself: nothing to do.
            return;
        }
        self.on_receipt(&m, &from);
        let bare = to.to_bare();
        if self.is_room(&bare) {
            self.on_room_message(m, from, to, now);
            return;
        }
        if m.type_ == MessageType::Groupchat {
            self.transmit(stanzas::message_error(
                to,
                from,
                m.id.map(|i| i.0),
                stanzas::error(
                    ErrorType::Cancel,
                    DefinedCondition::ItemNotFound,
                    "no such room",
                ),
            ));
            return;
        }
        self.on_chat(m, from, to, now);
    }

    /// RFC 6121 §5: a 1:1 message to a user of another world.
    fn on_chat(&mut self, m: XMessage, from: Jid, to: Jid, now: Timestamp) {
        let Some((_, body)) = m.get_best_body_cloned(vec![]) else {
            // Chat states, receipts, markers: nothing to relay.
            return;
        };
        let id = m.id.as_ref().map(|i| i.0.clone());
        let fail = |core: &mut Self, t, c, text: &str| {
            core.transmit(stanzas::message_error(
                to.clone(),
                from.clone(),
                id.clone(),
                stanzas::error(t, c, text),
            ));
        };
        let recipient = match component_address(&to, &self.domain) {
            Ok(a) => a,
            Err((c, text)) => return fail(self, ErrorType::Cancel, c, &text),
        };
        if body.len() > self.max_body {
            let text = format!(
                "the message body is {} bytes, the limit is {}",
                body.len(),
                self.max_body
            );
            return fail(
                self,
                ErrorType::Modify,
                DefinedCondition::NotAcceptable,
                &text,
            );
        }
        let Ok(sender) = model_jid(&from) else {
            return fail(
                self,
                ErrorType::Modify,
                DefinedCondition::JidMalformed,
                "bad sender JID",
            );
        };
        let receipt = m.payloads.iter().any(|p| p.is("request", ns::RECEIPTS));
        let body = crate::convert::incoming_body(&m, body);
        let mut msg = Message::text(
            self.origin(id.clone()),
            NameAddr::new(Address::Xmpp(XmppUri::new(sender))),
            NameAddr::new(recipient),
            &body,
        );
        msg.id = model_id(&from, &m);
        msg.datetime = Some(now);
        self.remember(
            msg.id.clone(),
            Pending {
                user: from,
                ours: Jid::from(to.to_bare()),
                stanza_id: id,
                receipt,
                room: false,
                reflection: None,
            },
        );
        self.out.push_back(Output::ToHub(Box::new(msg)));
    }

    /// The hub's answer to a message handed in with [`Output::ToHub`].
    pub fn handle_hub_answer(&mut self, id: &MessageId, outcome: DeliveryOutcome) {
        match outcome {
            DeliveryOutcome::Failed(f) => {
                if let Some(p) = self.forget(id) {
                    self.answer_failure(&p, &f);
                }
            }
            DeliveryOutcome::Delivered => {
                if let Some(p) = self.forget(id) {
                    self.answer_delivered(&p);
                }
            }
            DeliveryOutcome::Accepted => {
                // Room messages are done once their sender has the
                // reflection; 1:1 ones wait for the report.
                if self.pending.get(id).is_some_and(|p| p.room)
                    && let Some(p) = self.forget(id)
                    && let Some(r) = p.reflection
                {
                    self.transmit(r);
                }
            }
        }
    }

    /// The final outcome of a message this adapter handed in
    /// (`Outbound::Report`).
    pub fn handle_report(&mut self, message: &Message, outcome: &DeliveryOutcome) {
        let Some(p) = self.pending.get(&message.id).cloned() else {
            return;
        };
        if p.room && !matches!(outcome, DeliveryOutcome::Failed(_)) {
            // A room message is done with the hub's answer, which sends
            // the reflection. Delivery starts before the commit, so a
            // bridged room's delivery can be reported first: it must not
            // take the reflection away, nor send it before the message is
            // on disk.
            return;
        }
        match outcome {
            // XEP-0184 §5.1: a receipt says the recipient has it; a next hop
            // that merely accepted it is no such proof.
            DeliveryOutcome::Delivered => {
                self.forget(&message.id);
                self.answer_delivered(&p);
            }
            DeliveryOutcome::Accepted => {
                self.forget(&message.id);
            }
            DeliveryOutcome::Failed(f) => {
                self.forget(&message.id);
                self.answer_failure(&p, f);
            }
        }
    }

    fn answer_failure(&mut self, p: &Pending, f: &Failure) {
        self.transmit(stanzas::message_error(
            p.ours.clone(),
            p.user.clone(),
            p.stanza_id.clone(),
            stanzas::error_for(f),
        ));
    }

    fn answer_delivered(&mut self, p: &Pending) {
        if !p.receipt || p.room {
            return;
        }
        let Some(id) = p.stanza_id.clone() else {
            return;
        };
        // XEP-0184 §5.1 example 4.
        let mut m = XMessage::new(Some(p.user.clone()));
        m.from = Some(p.ours.clone());
        m.payloads.push(Received { id }.into());
        self.transmit(m);
    }

    /// A message of another world to deliver (`Outbound::Deliver`). On
    /// success the stanzas are in the output queue; a 1:1 message then
    /// waits for its receipt when `receipt_wait` is not zero.
    pub fn handle_deliver(&mut self, message: &Message, now: Instant) -> Result<Delivery, Failure> {
        let text = cut_to(message_text(message)?, self.max_body);
        if let Some(room) = &message.room {
            return self
                .deliver_to_room(room, message, &text)
                .map(|()| Delivery::Sent);
        }
        let to = message
            .to
            .first()
            .ok_or_else(|| Failure::new(FailureKind::NotFound, "no recipient"))?;
        let user = xmpp_user(&to.address)?;
        let user_bare = user.to_bare();
        let from = message
            .from
            .address
            .to_component_jid(&self.domain)
            .ok()
            .and_then(|j| Jid::new(&j.to_string()).ok())
            .ok_or_else(|| {
                Failure::new(
                    FailureKind::Rejected,
                    format!("{} has no JID on {}", message.from.address, self.domain),
                )
            })?;
        let mut m = stanzas::text_message(
            MessageType::Chat,
            from,
            user,
            Some(message.id.to_string()),
            &text,
        );
        // XEP-0359 §4: the gateway-wide id, so the message can be followed.
        m.payloads.push(origin_id(message.id.as_str()));
        if self.receipt_wait.is_zero() {
            self.transmit(m);
            return Ok(Delivery::Sent);
        }
        // XEP-0184 §5.1: the request; the receipt names the stanza's id.
        m.payloads.push(xmpp_parsers::receipts::Request.into());
        self.transmit(m);
        self.next_token += 1;
        let token = self.next_token;
        let sid = message.id.to_string();
        if self.receipts.len() >= MAX_PENDING
            && let Some(old) = self.receipt_order.pop_front()
            && let Some(r) = self.receipts.remove(&old)
        {
            self.answer(r.token, DeliveryOutcome::Accepted);
        }
        if let Some(prev) = self.receipts.remove(&sid) {
            // The same message again (a retry): the earlier wait is over.
            self.receipt_order.retain(|i| i != &sid);
            self.answer(prev.token, DeliveryOutcome::Accepted);
        }
        self.receipt_order.push_back(sid.clone());
        self.receipts.insert(
            sid,
            AwaitingReceipt {
                token,
                user: user_bare,
                deadline: now + self.receipt_wait,
            },
        );
        Ok(Delivery::AwaitingReceipt(token))
    }

    /// A room event of another world (`Outbound::RoomEvent`).
    pub fn handle_room_event(&mut self, event: &RoomEvent) {
        self.room_event(event);
    }

    /// Presence to a contact JID (RFC 6121 §3): subscriptions to users of
    /// other worlds are granted, probes answered.
    fn on_presence(&mut self, p: Presence, now: Timestamp) {
        let (Some(from), Some(to)) = (p.from.clone(), p.to.clone()) else {
            return;
        };
        if to.node().is_none() {
            return;
        }
        // A presence to `jid/nick` is a MUC join (XEP-0045 §7.2.1), whether
        // or not the room exists: contacts are addressed by bare JID.
        if to.resource().is_some() {
            self.on_room_presence(p, from, to, now);
            return;
        }
        if component_address(&to, &self.domain).is_err() {
            return;
        }
        let contact = Jid::from(to.to_bare());
        let user = Jid::from(from.to_bare());
        match p.type_ {
            PresenceType::Subscribe => {
                self.transmit(
                    Presence::new(PresenceType::Subscribed)
                        .with_from(contact.clone())
                        .with_to(user.clone()),
                );
                self.available_to(contact, user);
            }
            PresenceType::Probe => self.available_to(contact, user),
            PresenceType::None => self.available_to(contact, from),
            _ => {}
        }
    }

    fn available_to(&mut self, contact: Jid, user: Jid) {
        self.contacts
            .insert((contact.to_string(), user.to_bare().to_string()));
        self.transmit(Presence::available().with_from(contact).with_to(user));
    }

    /// The connection is gone: occupants are no longer in the rooms, and
    /// users must be told again that contacts are available.
    ///
    /// Deliveries waiting for a receipt are answered *accepted*: the server
    /// had them, and a receipt sent now would not reach us.
    pub fn handle_disconnect(&mut self) {
        self.rooms_disconnected();
        self.contacts.clear();
        self.out.retain(|o| !matches!(o, Output::Transmit(_)));
        self.receipt_order.clear();
        let waiting: Vec<u64> = self.receipts.drain().map(|(_, r)| r.token).collect();
        for token in waiting {
            self.answer(token, DeliveryOutcome::Accepted);
        }
    }

    /// Shutdown: everyone we presented as available becomes unavailable
    /// (XEP-0045 §7.2: status 332, the service shuts down).
    pub fn handle_shutdown(&mut self) {
        self.rooms_shutdown();
        for (contact, user) in std::mem::take(&mut self.contacts) {
            if let (Ok(c), Ok(u)) = (Jid::new(&contact), Jid::new(&user)) {
                self.transmit(Presence::unavailable().with_from(c).with_to(u));
            }
        }
    }

    pub(crate) fn iq_error_to(
        &mut self,
        iq_from: Jid,
        iq_to: Jid,
        id: String,
        c: DefinedCondition,
        text: &str,
    ) {
        let t = match c {
            DefinedCondition::ServiceUnavailable | DefinedCondition::ItemNotFound => {
                ErrorType::Cancel
            }
            DefinedCondition::NotAcceptable => ErrorType::Modify,
            _ => ErrorType::Cancel,
        };
        self.transmit(stanzas::iq_error(
            iq_to,
            iq_from,
            id,
            stanzas::error(t, c, text),
        ));
    }
}

/// The longest origin-id taken as a message's identity.
const MAX_ORIGIN_ID: usize = 128;

/// The model id of a message from `sender`: from its XEP-0359 origin-id
/// when it has an acceptable one (1 to 128 characters, none of them a
/// control or space character), scoped by the sender's bare JID since an
/// origin-id is only unique per sender (§5: a client could otherwise
/// silence someone else's message by reusing its id); else a fresh one.
pub(crate) fn model_id(sender: &Jid, m: &XMessage) -> MessageId {
    let origin = m
        .payloads
        .iter()
        .find(|p| p.is("origin-id", ns::SID))
        .and_then(|p| p.attr("id"))
        .filter(|id| {
            !id.is_empty()
                && id.chars().count() <= MAX_ORIGIN_ID
                && !id.chars().any(|c| c.is_control() || c.is_whitespace())
        });
    match origin {
        Some(o) => MessageId(format!("xmpp:{}#{o}", sender.to_bare())),
        None => MessageId::random(),
    }
}

/// The XEP-0359 `<origin-id/>` element.
pub(crate) fn origin_id(id: &str) -> Element {
    xmpp_parsers::stanza_id::OriginId { id: id.to_owned() }.into()
}

/// A jid-crate JID as the model's JID.
pub(crate) fn model_jid(j: &Jid) -> Result<ModelJid, cpimgate_model::address::AddressError> {
    j.as_str().parse()
}

/// The address of another world a contact JID stands for, or the error
/// condition to answer with.
pub(crate) fn component_address(
    to: &Jid,
    domain: &str,
) -> Result<Address, (DefinedCondition, String)> {
    let j = model_jid(to).map_err(|e| (DefinedCondition::JidMalformed, e.to_string()))?;
    Address::from_component_jid(&j, domain).map_err(|e| match e {
        cpimgate_model::address::AddressError::Mapping { .. } => (
            DefinedCondition::ItemNotFound,
            format!("{to} stands for no address: {e}"),
        ),
        // XEP-0106 §4: an escape sequence that does not decode.
        _ => (DefinedCondition::JidMalformed, format!("{to}: {e}")),
    })
}

/// The XMPP user an address names: `xmpp:user@host[/res]` or
/// `im:user@host`.
fn xmpp_user(a: &Address) -> Result<Jid, Failure> {
    let s = match a {
        Address::Xmpp(u) => u.jid().to_string(),
        Address::Im(u) if u.headers().is_empty() => format!("{}@{}", u.user(), u.domain()),
        other => {
            return Err(Failure::new(
                FailureKind::NotFound,
                format!("{other} is not an XMPP address"),
            ));
        }
    };
    Jid::new(&s).map_err(|e| Failure::new(FailureKind::NotFound, format!("{s}: {e}")))
}

/// The text of a message of another world, or why it cannot be shown.
pub(crate) fn message_text(m: &Message) -> Result<String, Failure> {
    let ct = m.content_type.to_ascii_lowercase();
    if !(ct.is_empty() || ct.starts_with("text/plain")) {
        return Err(Failure::new(
            FailureKind::UnsupportedType,
            format!("XMPP carries text/plain, not {}", m.content_type),
        ));
    }
    m.body
        .as_text()
        .map(str::to_owned)
        .ok_or_else(|| Failure::new(FailureKind::UnsupportedType, "the body is not UTF-8"))
}

/// A body of another world cut to `max` bytes (on a character boundary),
/// with a note of what was left out: the XMPP server closes a stream
/// whose stanza is larger than its limit, so a message from a world
/// without one (a 1 MB MSRP message) is cut rather than sent whole.
pub(crate) fn cut_to(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let note_room = 48.min(max);
    let mut end = max - note_room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let note = format!(" […{} bytes cut]", text.len() - end);
    let mut out = String::with_capacity(end + note.len());
    out.push_str(&text[..end]);
    out.push_str(&note);
    out
}

/// The RoomRef of a room JID of this adapter.
pub(crate) fn room_ref(adapter: &str, room: &BareJid) -> Option<RoomRef> {
    let j: ModelJid = room.as_str().parse().ok()?;
    Some(RoomRef {
        adapter: adapter.to_owned(),
        address: Address::Xmpp(XmppUri::new(j)),
    })
}

#[cfg(test)]
mod cut_tests {
    use super::cut_to;

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary_with_a_note() {
        assert_eq!(cut_to("short".into(), 64), "short");
        let long = "é".repeat(1000);
        let cut = cut_to(long, 100);
        assert!(cut.len() <= 100, "{}", cut.len());
        assert!(cut.ends_with(" bytes cut]"), "{cut}");
        assert!(cut.starts_with("éé"));
    }
}
