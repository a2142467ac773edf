//! How a message from one world is shown in another: the sender's name,
//! the text of the body, and the configurable `<{nick}> {text}` line that
//! relay-style adapters (XMPP client mode, IRC relay mode) post.

use std::borrow::Cow;

use crate::address::{Address, IrcTarget, unescape_node};
use crate::{Message, NameAddr};

/// The name to show for `from`: its display name, else the most human part
/// of its address (a JID's resource in a room or its localpart, a SIP or
/// `im:` user, an IRC nick), else the whole address.
///
/// ```
/// use cpimgate_model::{NameAddr, display::sender_name};
/// let from: NameAddr = "<sip:alice@atlanta.example.com>".parse().unwrap();
/// assert_eq!(sender_name(&from), "alice");
/// let from: NameAddr = "\"Alice in wonderland\" <sip:alice@atlanta.example.com>".parse().unwrap();
/// assert_eq!(sender_name(&from), "Alice in wonderland");
/// ```
pub fn sender_name(from: &NameAddr) -> String {
    if let Some(d) = from.display.as_deref().map(str::trim)
        && !d.is_empty()
    {
        return d.to_owned();
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
    part.filter(|p| !p.is_empty())
        .unwrap_or_else(|| from.address.to_string())
}

/// The message's content as chat text: the body of a `text/*` message;
/// for any other content a short placeholder naming the type and size,
/// since a chat room shows only text.
pub fn body_text(message: &Message) -> Cow<'_, str> {
    let ct = message.content_type.trim().to_ascii_lowercase();
    if (ct.is_empty() || ct.starts_with("text/"))
        && let Some(t) = message.body.as_text()
    {
        return Cow::Borrowed(t);
    }
    let kind = message.content_type.split(';').next().unwrap_or("").trim();
    Cow::Owned(format!(
        "[{} content, {} bytes]",
        if kind.is_empty() { "binary" } else { kind },
        message.body.len()
    ))
}

/// `template` with `{nick}` and `{text}` replaced, in one pass: what the
/// values contain is never expanded again (a nick `{text}` stays literal).
/// Unknown `{...}` stay as written.
///
/// ```
/// use cpimgate_model::display::render;
/// assert_eq!(render("<{nick}> {text}", "{text}", "hi"), "<{text}> hi");
/// ```
pub fn render(template: &str, nick: &str, text: &str) -> String {
    render_with(template, &[("nick", nick), ("text", text)])
}

/// `template` with each `{name}` of `values` replaced, in one pass, as
/// [`render`] does for `{nick}` and `{text}`.
///
/// ```
/// use cpimgate_model::display::render_with;
/// let line = render_with("* {nick} is now {new_nick}", &[("nick", "a"), ("new_nick", "b")]);
/// assert_eq!(line, "* a is now b");
/// ```
pub fn render_with(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    'outer: while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        for (name, value) in values {
            if let Some(t) = tail.strip_prefix(name).and_then(|t| t.strip_prefix('}')) {
                out.push_str(value);
                rest = t;
                continue 'outer;
            }
        }
        out.push('{');
        rest = tail;
    }
    out.push_str(rest);
    out
}
