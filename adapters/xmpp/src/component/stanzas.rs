//! Stanza builders shared by the component's state machines: stanza errors
//! (RFC 6120 §8.3), MUC presences (XEP-0045 §7.2), and the mapping of the
//! hub's delivery failures to stanza error conditions.

use cpimgate_model::port::{Failure, FailureKind};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{FullJid, Jid};
use xmpp_parsers::message::{Id, Lang, Message, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::muc::user::Status;
use xmpp_parsers::ns;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::text::xml_safe;

/// A stanza error with a human-readable text (RFC 6120 §8.3.2).
pub fn error(type_: ErrorType, condition: DefinedCondition, text: &str) -> StanzaError {
    StanzaError::new(type_, condition, "en", xml_safe(text).into_owned())
}

/// The stanza error that tells an XMPP sender about a failure of the hub or
/// of the other world (RFC 6120 §8.3.3 conditions).
pub fn error_for(failure: &Failure) -> StanzaError {
    let (t, c) = match failure.kind {
        FailureKind::NotFound => (ErrorType::Cancel, DefinedCondition::ItemNotFound),
        FailureKind::Forbidden => (ErrorType::Auth, DefinedCondition::Forbidden),
        FailureKind::Rejected => (ErrorType::Cancel, DefinedCondition::NotAcceptable),
        FailureKind::TooLarge => (ErrorType::Modify, DefinedCondition::NotAcceptable),
        FailureKind::UnsupportedType => (ErrorType::Modify, DefinedCondition::NotAcceptable),
        FailureKind::Unreachable | FailureKind::Expired => {
            (ErrorType::Wait, DefinedCondition::RecipientUnavailable)
        }
        FailureKind::Timeout => (ErrorType::Wait, DefinedCondition::RemoteServerTimeout),
        FailureKind::Overloaded => (ErrorType::Wait, DefinedCondition::ResourceConstraint),
        FailureKind::Internal => (ErrorType::Wait, DefinedCondition::InternalServerError),
        _ => (ErrorType::Cancel, DefinedCondition::UndefinedCondition),
    };
    error(t, c, &failure.to_string())
}

/// A `<message type='error'/>` answering a message (RFC 6120 §8.2: the
/// error goes back to the sender, with the same id).
pub fn message_error(from: Jid, to: Jid, id: Option<String>, err: StanzaError) -> Message {
    let mut m = Message::new_with_type(MessageType::Error, Some(to));
    m.from = Some(from);
    m.id = id.map(Id);
    m.payloads.push(err.into());
    m
}

/// A `<presence type='error'/>` answering a presence.
pub fn presence_error(from: Jid, to: Jid, id: Option<String>, err: StanzaError) -> Presence {
    let mut p = Presence::new(PresenceType::Error)
        .with_from(from)
        .with_to(to);
    p.id = id;
    p.payloads.push(err.into());
    p
}

/// An `<iq type='error'/>` answering a request.
pub fn iq_error(from: Jid, to: Jid, id: String, err: StanzaError) -> Iq {
    Iq::Error {
        from: Some(from),
        to: Some(to),
        id,
        error: err,
        payload: None,
    }
}

/// An `<iq type='result'/>` answering a request.
pub fn iq_result(from: Jid, to: Jid, id: String, payload: Option<Element>) -> Iq {
    Iq::Result {
        from: Some(from),
        to: Some(to),
        id,
        payload,
    }
}

/// A message with one plain-text body, the text made XML-safe.
pub fn text_message(
    type_: MessageType,
    from: Jid,
    to: Jid,
    id: Option<String>,
    body: &str,
) -> Message {
    let mut m = Message::new_with_type(type_, Some(to));
    m.from = Some(from);
    m.id = id.map(Id);
    m.bodies.insert(Lang::new(), xml_safe(body).into_owned());
    m
}

/// An occupant's presence in a room (XEP-0045 §7.2.3): from
/// `room@service/nick`, with a `muc#user` item (no real JID: the room is
/// semi-anonymous) and the given status codes.
///
/// The `<x/>` is built by hand: xmpp-parsers leaves out
/// `affiliation='none'`, which XEP-0045's schema requires, and strict
/// clients then fail to read the item.
pub fn occupant_presence(
    from: FullJid,
    to: Jid,
    unavailable: bool,
    statuses: Vec<Status>,
    new_nick: Option<&str>,
    reason: Option<&str>,
) -> Presence {
    let mut item = Element::builder("item", ns::MUC_USER)
        .attr(n("affiliation"), "none")
        .attr(n("role"), if unavailable { "none" } else { "participant" });
    if let Some(nick) = new_nick {
        item = item.attr(n("nick"), nick);
    }
    if let Some(r) = reason {
        item = item.append(
            Element::builder("reason", ns::MUC_USER)
                .append(xml_safe(r).into_owned())
                .build(),
        );
    }
    let mut x = Element::builder("x", ns::MUC_USER).append(item.build());
    for st in statuses {
        x = x.append(Element::from(st));
    }
    let t = if unavailable {
        PresenceType::Unavailable
    } else {
        PresenceType::None
    };
    let mut p = Presence::new(t).with_from(from).with_to(to);
    p.payloads.push(x.build());
    p
}

fn n(name: &'static str) -> xmpp_parsers::minidom::rxml::NcName {
    // Literal attribute names are valid NcNames.
    #[allow(clippy::expect_used)]
    name.try_into().expect("attribute name")
}
