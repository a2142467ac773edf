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

use cpimgate_model::address::{Address, IrcTarget, unescape_node};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, NameAddr};

use crate::text::xml_safe;

/// The name to show for `from`: its display name, else the most human part
/// of its address (a JID's resource in a room or its localpart, a SIP or
/// `im:` user, an IRC nick), else the whole address.
pub fn sender_nick(from: &NameAddr) -> String {
    if let Some(d) = from.display.as_deref().map(str::trim)
        && !d.is_empty()
    {
        return xml_safe(d).into_owned();
    }
    let part = match &from.address {
        Address::Xmpp(u) => match (u.jid().resource(), u.jid().node()) {
            (Some(r), _) => Some(r.to_owned()),
            (None, Some(n)) => Some(unescape_node(n).unwrap_or_else(|_| n.to_owned())),
            (None, None) => None,
        },
        Address::Sip(u) => u.user().map(str::to_owned),
        Address::Im(u) => Some(u.user().to_owned()),
        Address::Irc(a) => match a.target() {
            IrcTarget::Nick(n) => Some(n.clone()),
            _ => None,
        },
        _ => None,
    };
    let s = part
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| from.address.to_string());
    xml_safe(&s).into_owned()
}

/// The message's content as text XML can carry: the body of a `text/*`
/// message in UTF-8, with characters XML 1.0 cannot hold replaced; for any
/// other content a short placeholder naming the type and size, since a
/// chat room shows only text.
pub fn body_text(message: &Message) -> Cow<'_, str> {
    let ct = message.content_type.trim().to_ascii_lowercase();
    if (ct.is_empty() || ct.starts_with("text/"))
        && let Some(t) = message.body.as_text()
    {
        return xml_safe(t);
    }
    let kind = message.content_type.split(';').next().unwrap_or("").trim();
    Cow::Owned(format!(
        "[{} content, {} bytes]",
        xml_safe(if kind.is_empty() { "binary" } else { kind }),
        message.body.len()
    ))
}

/// `template` with `{nick}` and `{text}` replaced, in one pass: what the
/// values contain is never expanded again (a nick `{text}` stays literal).
/// Unknown `{...}` stay as written.
pub fn render(template: &str, nick: &str, text: &str) -> String {
    let mut out = String::with_capacity(template.len() + nick.len() + text.len());
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("{nick}") {
            out.push_str(nick);
            rest = t;
        } else if let Some(t) = tail.strip_prefix("{text}") {
            out.push_str(text);
            rest = t;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

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
