//! Between [`Message`] and `message/cpim` (RFC 3862).
//!
//! A message that arrived as CPIM keeps its bytes in [`Message::cpim`] and
//! leaves with exactly those bytes (RFC 3428 §11.5, RFC 3862 §6: a gateway
//! "MUST NOT change the Message/CPIM content in any way"). Any other message
//! is rendered fresh with [`CpimBuilder`].

use bytes::Bytes;

use crate::body::Body;
use crate::cpim::{Cpim, CpimBuilder, CpimError, Limits};
use crate::message::{Message, MessageId, Origin};

/// The content type assumed when the encapsulated part names none
/// (RFC 2045 §5.2).
const DEFAULT_CONTENT_TYPE: &str = "text/plain";

impl Message {
    /// Reads a `message/cpim` body into a message.
    ///
    /// `from`, `to`, `cc`, `datetime` and `subject` come from the CPIM
    /// headers, `content_type` and `body` from the encapsulated part; the
    /// input is kept in [`Message::cpim`]. The id is the `imdn.Message-ID`
    /// (RFC 5438 §6.3, name space resolved) when there is one, else random.
    /// A message without `From` is an error: the gateway must know whom it
    /// speaks for.
    pub fn from_cpim(bytes: Bytes, origin: Origin, limits: &Limits) -> Result<Message, CpimError> {
        let cpim = Cpim::parse(bytes, limits)?;
        Message::from_parsed_cpim(&cpim, origin)
    }

    /// As [`Message::from_cpim`], from an already parsed message.
    pub fn from_parsed_cpim(cpim: &Cpim, origin: Origin) -> Result<Message, CpimError> {
        let f = cpim.fields()?;
        let from = f.from.ok_or(CpimError::MissingHeader { header: "From" })?;
        let id = match f.imdn_message_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => MessageId(id.to_owned()),
            _ => MessageId::random(),
        };
        Ok(Message {
            id,
            from,
            to: f.to,
            cc: f.cc,
            datetime: f.datetime,
            subject: f.subject,
            content_type: cpim
                .content_type()
                .map_or_else(|| DEFAULT_CONTENT_TYPE.to_owned(), |c| c.into_owned()),
            body: Body(cpim.body()),
            cpim: Some(Body(cpim.as_bytes().clone())),
            room: None,
            private: false,
            origin,
            trail: Vec::new(),
            expires: None,
        })
    }

    /// The message as a `message/cpim` body: the original bytes when it came
    /// as CPIM, else a new one with `From`, `To`, `cc`, `DateTime`,
    /// `Subject`, `NS: imdn` + `imdn.Message-ID` (the message id), then
    /// `Content-Type` and the body.
    pub fn to_cpim(&self) -> Bytes {
        if let Some(original) = &self.cpim {
            return original.0.clone();
        }
        let mut b = CpimBuilder::new().from(&self.from);
        for t in &self.to {
            b = b.to(t);
        }
        for c in &self.cc {
            b = b.cc(c);
        }
        if let Some(t) = self.datetime {
            b = b.datetime(t);
        }
        for s in &self.subject {
            b = b.subject(&s.text, s.lang.as_deref());
        }
        b.imdn_message_id(self.id.as_str())
            .content_type(&self.content_type)
            .body(self.body.0.clone())
            .build()
    }
}
