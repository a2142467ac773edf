//! Stanzas between `jabber:client` on the wire and this build's stanza
//! namespace in memory (see the module doc of [`super`] for why).

use minidom::Element;
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::Presence;

pub(super) const JABBER_CLIENT: &str = "jabber:client";

pub(super) fn stanza_element(stanza: Stanza) -> Element {
    match stanza {
        Stanza::Message(m) => Element::from(m),
        Stanza::Presence(p) => Element::from(p),
        Stanza::Iq(i) => Element::from(i),
    }
}

/// A stanza of this build's stanza namespace, put into `jabber:client`.
pub(super) fn to_wire(element: Element) -> Element {
    swap_ns(element, xmpp_parsers::ns::DEFAULT_NS, JABBER_CLIENT)
}

/// A stanza received in `jabber:client`, parsed as this build's stanza
/// types. `None` for anything that is not a stanza.
pub(super) fn from_wire(element: Element) -> Result<Option<Stanza>, String> {
    if element.ns() != JABBER_CLIENT {
        return Ok(None);
    }
    let element = swap_ns(element, JABBER_CLIENT, xmpp_parsers::ns::DEFAULT_NS);
    let shown = String::from(&element);
    let parsed = match element.name() {
        "message" => Message::try_from(element).map(Stanza::Message),
        "presence" => Presence::try_from(element).map(Stanza::Presence),
        "iq" => Iq::try_from(element).map(Stanza::Iq),
        _ => return Ok(None),
    };
    parsed
        .map(Some)
        .map_err(|e| format!("a stanza xmpp-parsers cannot read ({e}): {shown}"))
}

/// `element` with every element of namespace `from` (itself and its
/// descendants) moved to namespace `to`.
pub(super) fn swap_ns(mut element: Element, from: &str, to: &str) -> Element {
    if from == to {
        return element;
    }
    let ns = element.ns();
    let mut out =
        Element::builder(element.name(), if ns == from { to.to_owned() } else { ns }).build();
    *out.attrs_mut() = element.attrs().clone();
    for node in element.take_nodes() {
        match node {
            minidom::Node::Element(child) => {
                out.append_child(swap_ns(child, from, to));
            }
            minidom::Node::Text(text) => out.append_text_node(text),
        }
    }
    out
}
