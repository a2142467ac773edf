//! Presence notices: joins, leaves and nick changes of other worlds, said
//! in a room as one groupchat line each (`* Alice joined`), when
//! `presence_notices` is on (see [`crate::config::ClientConfig`] for why
//! it is off by default).
//!
//! A client-mode account is a single occupant (XEP-0045 §7.2): it cannot
//! make the people of other worlds appear in the room's roster, as
//! component mode does. A line is what is left. It is posted under the
//! adapter's own nick, so when the room reflects it (XEP-0045 §7.4) the
//! rooms recognise the nick as ours and do not relay it to the hub.

use cpimgate_model::NameAddr;
use cpimgate_model::event::{Participant, RoomEventKind};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::{Id, Lang, Message};

use crate::config::NoticeFormat;
use crate::convert;
use crate::text::xml_safe;

/// The line that says `kind` in a room, or `None` for what is not said:
/// rosters (a snapshot, not a change), topics, delivery reports. A kick is
/// said as a leave.
pub(crate) fn notice_text(format: &NoticeFormat, kind: &RoomEventKind) -> Option<String> {
    match kind {
        RoomEventKind::Join { who } => Some(fill(&format.join, &name(who), "")),
        RoomEventKind::Leave { who, .. } | RoomEventKind::Kick { who, .. } => {
            Some(fill(&format.leave, &name(who), ""))
        }
        RoomEventKind::NickChange { who, new_nick } => {
            Some(fill(&format.nick, &name(who), &xml_safe(new_nick)))
        }
        _ => None,
    }
}

/// The groupchat message that posts `text` into `room`, with `id`.
///
/// Unlike a relayed message it carries no origin-id: nobody waits for its
/// reflection (a room event has no delivery to report), and the reflection
/// is recognised by our nick.
pub(crate) fn notice_stanza(room: &BareJid, text: String, id: String) -> Message {
    // The format comes from the config and may hold what XML cannot carry.
    let text = match xml_safe(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(safe) => safe,
    };
    let mut m = Message::groupchat(Jid::from(room.clone())).with_body(Lang::new(), text);
    m.id = Some(Id(id));
    m
}

/// The name a participant is shown under: its nick, as for the sender of a
/// message ([`convert::sender_nick`]), so a person reads the same in
/// `<Alice> hi` and `* Alice joined`.
fn name(who: &Participant) -> String {
    convert::sender_nick(&NameAddr::with_display(
        who.nick.clone(),
        who.address.clone(),
    ))
}

/// `template` with `{nick}` and `{new_nick}` replaced, in one pass.
fn fill(template: &str, nick: &str, new_nick: &str) -> String {
    cpimgate_model::display::render_with(template, &[("nick", nick), ("new_nick", new_nick)])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use cpimgate_model::Address;
    use cpimgate_model::event::{Participant, RoomEventKind};

    use super::*;

    fn who(nick: &str) -> Participant {
        Participant {
            address: "sip:alice@example.com".parse::<Address>().unwrap(),
            nick: nick.to_owned(),
        }
    }

    #[test]
    fn joins_leaves_kicks_and_nick_changes_are_said_in_the_default_format() {
        let f = NoticeFormat::default();
        let said = |k: RoomEventKind| notice_text(&f, &k);
        assert_eq!(
            said(RoomEventKind::Join { who: who("Alice") }).as_deref(),
            Some("* Alice joined")
        );
        assert_eq!(
            said(RoomEventKind::Leave {
                who: who("Alice"),
                reason: Some("bye".into())
            })
            .as_deref(),
            Some("* Alice left")
        );
        assert_eq!(
            said(RoomEventKind::Kick {
                who: who("Alice"),
                by: Some("op".into()),
                reason: None
            })
            .as_deref(),
            Some("* Alice left")
        );
        assert_eq!(
            said(RoomEventKind::NickChange {
                who: who("Alice"),
                new_nick: "Bob".into()
            })
            .as_deref(),
            Some("* Alice is now Bob")
        );
    }

    #[test]
    fn rosters_and_topics_are_not_said() {
        let f = NoticeFormat::default();
        assert_eq!(
            notice_text(
                &f,
                &RoomEventKind::Roster {
                    participants: vec![who("Alice")]
                }
            ),
            None
        );
        assert_eq!(
            notice_text(
                &f,
                &RoomEventKind::Topic {
                    by: None,
                    topic: "t".into()
                }
            ),
            None
        );
    }

    #[test]
    fn the_format_is_configurable_and_values_are_not_expanded_again() {
        let f = NoticeFormat {
            join: "{nick} est arrivé {x}".into(),
            leave: "<{nick}> left".into(),
            nick: "{nick} -> {new_nick}".into(),
        };
        assert_eq!(
            notice_text(
                &f,
                &RoomEventKind::Join {
                    who: who("{new_nick}")
                }
            )
            .as_deref(),
            Some("{new_nick} est arrivé {x}")
        );
        assert_eq!(
            notice_text(
                &f,
                &RoomEventKind::NickChange {
                    who: who("a"),
                    new_nick: "{nick}\u{0}".into()
                }
            )
            .as_deref(),
            Some("a -> {nick}\u{FFFD}")
        );
    }

    #[test]
    fn a_participant_without_a_nick_is_named_by_its_address() {
        let f = NoticeFormat::default();
        assert_eq!(
            notice_text(&f, &RoomEventKind::Join { who: who(" ") }).as_deref(),
            Some("* alice joined")
        );
    }

    #[test]
    fn the_stanza_is_a_groupchat_with_the_line_as_character_data() {
        let room: BareJid = "coven@chat.shakespeare.lit".parse().unwrap();
        let m = notice_stanza(&room, "* <b>x</b> joined\u{1}".into(), "n-1".into());
        let xml = String::from(&minidom::Element::from(m));
        assert!(xml.contains("type='groupchat'"), "{xml}");
        assert!(xml.contains("to='coven@chat.shakespeare.lit'"), "{xml}");
        assert!(xml.contains("id='n-1'"), "{xml}");
        assert!(
            xml.contains("* &lt;b&gt;x&lt;/b&gt; joined\u{FFFD}"),
            "{xml}"
        );
        assert!(!xml.contains("origin-id"), "{xml}");
    }
}
