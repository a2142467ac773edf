//! The stored form of a [`Message`]: a format byte, then postcard.
//!
//! The model types skip empty optional fields when serializing
//! (`skip_serializing_if`), which suits JSON but not postcard: postcard is
//! not self-describing, so a skipped field shifts every later one and the
//! row no longer decodes. The queue therefore writes a mirror of the message
//! in which every field is always present. The mirror destructures
//! [`Message`] without `..`, so a field added to the model fails to compile
//! here instead of being dropped from the queue.

use serde::{Deserialize, Serialize};

use cpimgate_model::address::NameAddr;
use cpimgate_model::body::Body;
use cpimgate_model::message::Subject;
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Address, Hop, Message, MessageId, Origin, RoomRef, World};

/// The first byte of every stored message; a new layout gets a new value so
/// that an old row is still read (or refused by name, never misread).
pub(crate) const FORMAT_V1: u8 = 1;

#[derive(Serialize)]
struct NameAddrRef<'a> {
    display: Option<&'a str>,
    address: &'a Address,
}

#[derive(Deserialize)]
struct NameAddrOwned {
    display: Option<String>,
    address: Address,
}

#[derive(Serialize)]
struct SubjectRef<'a> {
    lang: Option<&'a str>,
    text: &'a str,
}

#[derive(Deserialize)]
struct SubjectOwned {
    lang: Option<String>,
    text: String,
}

#[derive(Serialize)]
struct OriginRef<'a> {
    world: World,
    adapter: &'a str,
    native_id: Option<&'a str>,
}

#[derive(Deserialize)]
struct OriginOwned {
    world: World,
    adapter: String,
    native_id: Option<String>,
}

/// Field order is the wire format: keep it identical to [`StoredOwned`].
#[derive(Serialize)]
struct StoredRef<'a> {
    id: &'a MessageId,
    from: NameAddrRef<'a>,
    to: Vec<NameAddrRef<'a>>,
    cc: Vec<NameAddrRef<'a>>,
    datetime: Option<Timestamp>,
    subject: Vec<SubjectRef<'a>>,
    content_type: &'a str,
    body: &'a Body,
    cpim: Option<&'a Body>,
    room: Option<&'a RoomRef>,
    private: bool,
    origin: OriginRef<'a>,
    trail: &'a [Hop],
    expires: Option<Timestamp>,
}

#[derive(Deserialize)]
struct StoredOwned {
    id: MessageId,
    from: NameAddrOwned,
    to: Vec<NameAddrOwned>,
    cc: Vec<NameAddrOwned>,
    datetime: Option<Timestamp>,
    subject: Vec<SubjectOwned>,
    content_type: String,
    body: Body,
    cpim: Option<Body>,
    room: Option<RoomRef>,
    private: bool,
    origin: OriginOwned,
    trail: Vec<Hop>,
    expires: Option<Timestamp>,
}

fn name_addr_ref(n: &NameAddr) -> NameAddrRef<'_> {
    NameAddrRef {
        display: n.display.as_deref(),
        address: &n.address,
    }
}

fn name_addr_owned(n: NameAddrOwned) -> NameAddr {
    NameAddr {
        display: n.display,
        address: n.address,
    }
}

/// Serializes `m` as stored in a queue row.
pub(crate) fn encode(m: &Message) -> Result<Vec<u8>, postcard::Error> {
    let Message {
        id,
        from,
        to,
        cc,
        datetime,
        subject,
        content_type,
        body,
        cpim,
        room,
        private,
        origin,
        trail,
        expires,
    } = m;
    let stored = StoredRef {
        id,
        from: name_addr_ref(from),
        to: to.iter().map(name_addr_ref).collect(),
        cc: cc.iter().map(name_addr_ref).collect(),
        datetime: *datetime,
        subject: subject
            .iter()
            .map(|s| SubjectRef {
                lang: s.lang.as_deref(),
                text: &s.text,
            })
            .collect(),
        content_type,
        body,
        cpim: cpim.as_ref(),
        room: room.as_ref(),
        private: *private,
        origin: OriginRef {
            world: origin.world,
            adapter: &origin.adapter,
            native_id: origin.native_id.as_deref(),
        },
        trail,
        expires: *expires,
    };
    let mut out = vec![FORMAT_V1];
    postcard::to_io(&stored, &mut out)?;
    Ok(out)
}

/// Why a stored message could not be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("empty message blob")]
    Empty,
    #[error("unknown stored message format {0}")]
    Format(u8),
    #[error(transparent)]
    Postcard(#[from] postcard::Error),
}

/// Reads back a message written by [`encode`].
pub(crate) fn decode(blob: &[u8]) -> Result<Message, DecodeError> {
    let (&format, rest) = blob.split_first().ok_or(DecodeError::Empty)?;
    if format != FORMAT_V1 {
        return Err(DecodeError::Format(format));
    }
    let s: StoredOwned = postcard::from_bytes(rest)?;
    Ok(Message {
        id: s.id,
        from: name_addr_owned(s.from),
        to: s.to.into_iter().map(name_addr_owned).collect(),
        cc: s.cc.into_iter().map(name_addr_owned).collect(),
        datetime: s.datetime,
        subject: s
            .subject
            .into_iter()
            .map(|x| Subject {
                lang: x.lang,
                text: x.text,
            })
            .collect(),
        content_type: s.content_type,
        body: s.body,
        cpim: s.cpim,
        room: s.room,
        private: s.private,
        origin: Origin {
            world: s.origin.world,
            adapter: s.origin.adapter,
            native_id: s.origin.native_id,
        },
        trail: s.trail,
        expires: s.expires,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sample(full: bool) -> Message {
        let origin = Origin {
            world: World::Sip,
            adapter: "sip0".into(),
            native_id: full.then(|| "abc".to_owned()),
        };
        let mut m = Message::text(
            origin,
            "\"Alice\" <sip:alice@example.com>".parse().unwrap(),
            "<xmpp:bob@example.org>".parse().unwrap(),
            "hello",
        );
        if full {
            m.cc.push("<im:carol@example.net>".parse().unwrap());
            m.subject.push(Subject {
                lang: Some("en".into()),
                text: "hi".into(),
            });
            m.body = Body::from(vec![0u8, 0xff, 0x80, b'\n']);
            m.cpim = Some(Body::from(
                "From: <im:a@b>\r\n\r\nContent-Type: text/plain\r\n\r\nhi",
            ));
            m.room = Some(RoomRef {
                adapter: "irc0".into(),
                address: "irc://irc.example.org/%23chan".parse().unwrap(),
            });
            m.private = true;
            m.trail.push(Hop {
                gateway: "gw1".into(),
                adapter: "sip0".into(),
            });
            m.expires = Some(Timestamp { unix_micros: 42 });
        }
        m
    }

    #[test]
    fn round_trip_sparse_and_full() {
        for full in [false, true] {
            let m = sample(full);
            assert_eq!(decode(&encode(&m).unwrap()).unwrap(), m);
        }
    }

    #[test]
    fn unknown_format_is_refused() {
        let mut blob = encode(&sample(false)).unwrap();
        blob[0] = 9;
        assert!(matches!(decode(&blob), Err(DecodeError::Format(9))));
        assert!(matches!(decode(&[]), Err(DecodeError::Empty)));
    }

    /// Why the mirror exists: postcard cannot read back what the model's
    /// `skip_serializing_if` leaves out. If this starts to pass, the model
    /// changed and the mirror may be dropped (with a new format byte).
    #[test]
    fn plain_postcard_of_a_sparse_message_does_not_round_trip() {
        let m = sample(false);
        let enc = postcard::to_allocvec(&m).unwrap();
        assert!(postcard::from_bytes::<Message>(&enc).ok().as_ref() != Some(&m));
    }
}
