//! Receiving: the mailbox of stanzas not yet taken, waits with a
//! timeout, and answers to IQ requests.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use tokio_xmpp::Stanza;
use tokio_xmpp::xmlstream::ReadError;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use super::wire::from_wire;
use super::{XmppUser, body, stanza_xml, with_what};
use crate::HarnessError;

impl XmppUser {
    /// The next stanza of any kind.
    pub async fn next_stanza(&mut self, timeout: Duration) -> Result<Stanza, HarnessError> {
        self.expect_stanza(|_| true, "any stanza", timeout).await
    }

    /// The next message (any type, including errors).
    pub async fn next_message(&mut self, timeout: Duration) -> Result<Message, HarnessError> {
        self.expect_message(|_| true, timeout).await
    }

    /// The first message that satisfies `pred`; others stay in the mailbox.
    pub async fn expect_message(
        &mut self,
        mut pred: impl FnMut(&Message) -> bool,
        timeout: Duration,
    ) -> Result<Message, HarnessError> {
        let stanza = self
            .expect_stanza(
                |s| matches!(s, Stanza::Message(m) if pred(m)),
                "a matching message",
                timeout,
            )
            .await?;
        match stanza {
            Stanza::Message(m) => Ok(m),
            _ => Err(HarnessError::Xmpp(
                "the mailbox returned a non-message".into(),
            )),
        }
    }

    /// The first message whose body is `text`.
    pub async fn expect_body(
        &mut self,
        text: &str,
        timeout: Duration,
    ) -> Result<Message, HarnessError> {
        self.expect_message(|m| body(m) == Some(text), timeout)
            .await
            .map_err(|e| with_what(e, &format!("a message with body {text:?}")))
    }

    /// The next presence.
    pub async fn next_presence(&mut self, timeout: Duration) -> Result<Presence, HarnessError> {
        self.expect_presence(|_| true, timeout).await
    }

    /// The first presence that satisfies `pred`; others stay in the mailbox.
    pub async fn expect_presence(
        &mut self,
        mut pred: impl FnMut(&Presence) -> bool,
        timeout: Duration,
    ) -> Result<Presence, HarnessError> {
        let stanza = self
            .expect_stanza(
                |s| matches!(s, Stanza::Presence(p) if pred(p)),
                "a matching presence",
                timeout,
            )
            .await?;
        match stanza {
            Stanza::Presence(p) => Ok(p),
            _ => Err(HarnessError::Xmpp(
                "the mailbox returned a non-presence".into(),
            )),
        }
    }

    /// The first stanza that satisfies `pred` (described by `what` in the
    /// timeout error); others stay in the mailbox.
    pub async fn expect_stanza(
        &mut self,
        mut pred: impl FnMut(&Stanza) -> bool,
        what: &str,
        timeout: Duration,
    ) -> Result<Stanza, HarnessError> {
        if let Some(i) = self.mailbox.iter().position(&mut pred) {
            if let Some(s) = self.mailbox.remove(i) {
                return Ok(s);
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            let stanza = match self.receive(deadline).await {
                Ok(s) => s,
                Err(HarnessError::Timeout { .. }) => {
                    return Err(HarnessError::Timeout {
                        what: format!(
                            "{what} at {} (in the mailbox: {})",
                            self.jid,
                            self.describe_mailbox()
                        ),
                        after: timeout,
                    });
                }
                Err(e) => return Err(e),
            };
            if pred(&stanza) {
                return Ok(stanza);
            }
            self.mailbox.push_back(stanza);
        }
    }

    /// Fail if a message satisfying `pred` arrives within `window`; other
    /// stanzas stay in the mailbox. For "this must not be relayed" checks.
    pub async fn expect_no_message(
        &mut self,
        pred: impl FnMut(&Message) -> bool,
        window: Duration,
    ) -> Result<(), HarnessError> {
        match self.expect_message(pred, window).await {
            Ok(m) => Err(HarnessError::Xmpp(format!(
                "{}: unexpected message: {}",
                self.jid,
                stanza_xml(&Stanza::Message(m))
            ))),
            Err(HarnessError::Timeout { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Everything received and not yet taken, oldest first.
    pub fn mailbox(&self) -> &VecDeque<Stanza> {
        &self.mailbox
    }

    /// Forget everything received so far and not yet taken.
    pub fn clear(&mut self) {
        self.mailbox.clear();
    }

    /// Receive one stanza from the network (answering IQ requests).
    async fn receive(&mut self, deadline: Instant) -> Result<Stanza, HarnessError> {
        loop {
            let item = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => {
                    return Err(HarnessError::Timeout {
                        what: "a stanza".into(),
                        after: Duration::ZERO,
                    });
                }
                Ok(item) => item,
            };
            let element = match item {
                Some(Ok(element)) => element,
                Some(Err(ReadError::SoftTimeout)) => continue,
                Some(Err(ReadError::ParseError(e))) => {
                    return Err(HarnessError::Xmpp(format!(
                        "{}: unparseable XML from the server: {e}",
                        self.jid
                    )));
                }
                Some(Err(ReadError::StreamFooterReceived)) | None => {
                    return Err(HarnessError::Xmpp(format!(
                        "{}: the server closed the stream",
                        self.jid
                    )));
                }
                Some(Err(ReadError::HardError(e))) => {
                    return Err(HarnessError::Xmpp(format!(
                        "{}: connection lost: {e}",
                        self.jid
                    )));
                }
            };
            if element.is("error", "http://etherx.jabber.org/streams") {
                return Err(HarnessError::Xmpp(format!(
                    "{}: stream error from the server: {}",
                    self.jid,
                    String::from(&element)
                )));
            }
            match from_wire(element) {
                Ok(Some(stanza)) => {
                    self.answer_iq(&stanza).await?;
                    return Ok(stanza);
                }
                // A nonza (XEP-0198 is not negotiated, so there should be
                // none): ignored.
                Ok(None) => continue,
                Err(e) => return Err(HarnessError::Xmpp(format!("{}: {e}", self.jid))),
            }
        }
    }

    async fn answer_iq(&mut self, stanza: &Stanza) -> Result<(), HarnessError> {
        let Stanza::Iq(iq) = stanza else {
            return Ok(());
        };
        let answer = match iq {
            Iq::Get {
                from, id, payload, ..
            } if payload.is("ping", "urn:xmpp:ping") => {
                from.clone().map(|f| Iq::empty_result(f, id.clone()))
            }
            Iq::Get { from, id, .. } | Iq::Set { from, id, .. } => from.clone().map(|f| {
                Iq::from_error(
                    id.clone(),
                    StanzaError::new(
                        ErrorType::Cancel,
                        DefinedCondition::ServiceUnavailable,
                        "en",
                        "a test client",
                    ),
                )
                .with_to(f)
            }),
            _ => None,
        };
        match answer {
            Some(iq) => self.send(iq).await,
            None => Ok(()),
        }
    }

    fn describe_mailbox(&self) -> String {
        if self.mailbox.is_empty() {
            return "nothing".into();
        }
        let mut out = format!("{} stanzas", self.mailbox.len());
        for s in self.mailbox.iter().rev().take(5).rev() {
            out.push_str("\n  ");
            out.push_str(&stanza_xml(s));
        }
        out
    }
}
