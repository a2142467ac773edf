//! Small conversions between the neutral model and XMPP, shared by both
//! modes.
//!
//! * [`sender_nick`]: the name to show for the sender of a message from
//!   another world.
//! * [`body_text`]: a message's content as text that XML can carry.
//! * [`render`]: a `{nick}` / `{text}` template, filled in one pass.
//! * [`timestamp`]: an XEP-0082 date-time (as in XEP-0203 `<delay/>`) as a
//!   [`Timestamp`].
//! * [`incoming_body`]: the text of a received message, with
//!   [`CORRECTION_MARKER`] in front of an XEP-0308 correction.

use std::borrow::Cow;

use cpimgate_model::display;
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, NameAddr};

use crate::text::xml_safe;

/// The name to show for `from` ([`display::sender_name`]), with
/// characters XML 1.0 cannot hold replaced.
pub fn sender_nick(from: &NameAddr) -> String {
    xml_safe(&display::sender_name(from)).into_owned()
}

/// The message's content as text XML can carry ([`display::body_text`]),
/// with characters XML 1.0 cannot hold replaced.
pub fn body_text(message: &Message) -> Cow<'_, str> {
    match display::body_text(message) {
        Cow::Borrowed(t) => xml_safe(t),
        Cow::Owned(t) => Cow::Owned(xml_safe(&t).into_owned()),
    }
}

pub use display::render;

/// What the text of an XEP-0308 correction starts with when it leaves
/// XMPP.
///
/// The other worlds have no way to replace a message they already showed
/// (SIP, MSRP and IRC have none), so a correction
/// (`<replace xmlns='urn:xmpp:message-correct:0' id='...'/>`) becomes a new
/// message whose text is the corrected one behind this marker, rather than
/// being dropped or passed off as a new remark.
pub const CORRECTION_MARKER: &str = "* correction: ";

/// Whether `m` corrects an earlier message (XEP-0308 §3).
pub fn is_correction(m: &xmpp_parsers::message::Message) -> bool {
    m.payloads
        .iter()
        .any(|p| p.is("replace", xmpp_parsers::ns::MESSAGE_CORRECT))
}

/// The text of a received message as it goes to the hub: `body`, behind
/// [`CORRECTION_MARKER`] when `m` is an XEP-0308 correction.
pub fn incoming_body(m: &xmpp_parsers::message::Message, body: String) -> String {
    if is_correction(m) {
        format!("{CORRECTION_MARKER}{body}")
    } else {
        body
    }
}

/// An XEP-0082 date-time as a [`Timestamp`].
pub fn timestamp(dt: &xmpp_parsers::date::DateTime) -> Timestamp {
    Timestamp {
        unix_micros: dt.0.timestamp_micros(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn na(s: &str) -> NameAddr {
        s.parse().unwrap()
    }

    #[test]
    fn render_is_one_pass() {
        assert_eq!(render("<{nick}> {text}", "alice", "hi"), "<alice> hi");
        assert_eq!(render("<{nick}> {text}", "{text}", "x"), "<{text}> x");
        assert_eq!(
            render("{nick}: {text} {other}", "a", "{nick}"),
            "a: {nick} {other}"
        );
        assert_eq!(render("{", "a", "b"), "{");
    }

    #[test]
    fn nick_from_display_or_address() {
        assert_eq!(
            sender_nick(&na("\"Alice\" <sip:alice@example.com>")),
            "Alice"
        );
        assert_eq!(sender_nick(&na("<sip:bob@example.com>")), "bob");
        assert_eq!(
            sender_nick(&na("<xmpp:room@conf.example.org/carol>")),
            "carol"
        );
        assert_eq!(sender_nick(&na("<im:dave@example.com>")), "dave");
    }

    fn parse(xml: &str) -> xmpp_parsers::message::Message {
        let el: minidom::Element = xml.parse().unwrap();
        xmpp_parsers::message::Message::try_from(el).unwrap()
    }

    /// XEP-0308 §4, example 2 (the correction of example 1), in the
    /// namespace stanzas have in this build.
    #[test]
    fn a_correction_is_marked() {
        let ns = xmpp_parsers::ns::DEFAULT_NS;
        let m = parse(&format!(
            "<message xmlns='{ns}' to='juliet@capulet.net/balcony' id='good1'>\
             <body>But soft, what light through yonder window breaks?</body>\
             <replace id='bad1' xmlns='urn:xmpp:message-correct:0'/></message>"
        ));
        assert!(is_correction(&m));
        let (_, body) = m.get_best_body_cloned(vec![]).unwrap();
        assert_eq!(
            incoming_body(&m, body),
            "* correction: But soft, what light through yonder window breaks?"
        );
        // XEP-0308 §4, example 1: the original is not marked.
        let m = parse(&format!(
            "<message xmlns='{ns}' to='juliet@capulet.net/balcony' id='bad1'>\
             <body>But soft, what light through yonder airlock breaks?</body></message>"
        ));
        assert!(!is_correction(&m));
        assert_eq!(incoming_body(&m, "x".into()), "x");
    }

    #[test]
    fn non_text_gets_a_placeholder() {
        let origin = cpimgate_model::Origin {
            world: cpimgate_model::World::Local,
            adapter: "t".into(),
            native_id: None,
        };
        let mut m = Message::text(origin, na("<sip:a@x.org>"), na("<sip:b@x.org>"), "a\u{1}b");
        assert_eq!(body_text(&m), "a\u{FFFD}b");
        m.content_type = "image/png".into();
        assert_eq!(body_text(&m), "[image/png content, 3 bytes]");
    }
}
