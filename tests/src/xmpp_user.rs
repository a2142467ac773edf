//! A real XMPP client playing a human user in a test: a c2s stream over
//! plain TCP to the harness's Prosody (SASL PLAIN, resource binding), with
//! stanzas as xmpp-parsers types.
//!
//! Why not tokio-xmpp's `Client`: the adapter crate enables tokio-xmpp's
//! `component` feature, which turns on xmpp-parsers' `component` feature,
//! which makes every stanza type of the whole build use the
//! `jabber:component:accept` namespace (`xmpp_parsers::ns::DEFAULT_NS`).
//! A `Client` in such a build sends its resource-binding IQ in that
//! namespace and Prosody closes the c2s stream (`unsupported-stanza-type`).
//! So this client uses tokio-xmpp's XML stream layer with
//! `minidom::Element`s and moves stanzas between `jabber:client` on the
//! wire and [`xmpp_parsers::ns::DEFAULT_NS`] in memory.
//!
//! Received stanzas go into a mailbox. `expect_*` takes the first stanza in
//! arrival order that matches and leaves the others there, so a test can
//! wait for a message without losing the presences that came before it;
//! `next_*` takes the first of a kind. [`XmppUser::clear`] empties the
//! mailbox. Every wait has a timeout (use [`WAIT`] unless the test needs
//! another) so that a broken test fails instead of hanging. There is no
//! automatic reconnection: after a server restart, call
//! [`XmppUser::reconnect`].
//!
//! Incoming IQ requests are answered at once (a ping with a result,
//! anything else with `service-unavailable`), as a real client would; they
//! are still put into the mailbox.
//!
//! ```no_run
//! # async fn f(server: &cpimgate_e2e::prosody::Prosody) -> Result<(), cpimgate_e2e::HarnessError> {
//! use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body};
//! let mut alice = XmppUser::connect(server, "alice@a.localhost", "pw").await?;
//! alice.join_muc("lobby@conference.a.localhost", "Alice").await?;
//! alice.send_groupchat("lobby@conference.a.localhost", "hello").await?;
//! let echo = alice.expect_body("hello", WAIT).await?;
//! assert_eq!(body(&echo), Some("hello"));
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use minidom::Element;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::rustls;
use tokio_xmpp::Stanza;
use tokio_xmpp::connect::AsyncReadAndWrite;
use tokio_xmpp::xmlstream::{ReadError, StreamHeader, Timeouts, XmlStream, initiate_stream};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Lang, Message, MessageType};
use xmpp_parsers::muc::muc::History;
use xmpp_parsers::muc::user::Status as MucStatus;
use xmpp_parsers::muc::{Muc, MucUser};
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::HarnessError;
use crate::prosody::Prosody;

/// The default wait for something that should arrive: generous, it only
/// keeps a broken test from hanging.
pub const WAIT: Duration = Duration::from_secs(15);

const JABBER_CLIENT: &str = "jabber:client";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";

const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";

type Io = Box<dyn AsyncReadAndWrite + Send>;
type Stream = XmlStream<Io, Element>;

/// One logged-in XMPP user.
pub struct XmppUser {
    stream: Stream,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    password: String,
    jid: FullJid,
    mailbox: VecDeque<Stanza>,
}

impl std::fmt::Debug for XmppUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmppUser")
            .field("jid", &self.jid)
            .field("addr", &self.addr)
            .field("mailbox", &self.mailbox.len())
            .finish_non_exhaustive()
    }
}

impl XmppUser {
    /// Log in as `jid` (`user@host`, a bare JID; the server binds a
    /// resource) with `password` to `server`'s c2s port, over plain TCP,
    /// and send initial presence.
    pub async fn connect(
        server: &Prosody,
        jid: &str,
        password: &str,
    ) -> Result<XmppUser, HarnessError> {
        Self::connect_to(server.c2s_addr(), jid, password).await
    }

    /// Like [`XmppUser::connect`], over STARTTLS, checking the server's
    /// certificate against the harness's test CA
    /// ([`Prosody::ca_cert_path`]).
    pub async fn connect_starttls(
        server: &Prosody,
        jid: &str,
        password: &str,
    ) -> Result<XmppUser, HarnessError> {
        let tls = tls_config(&server.ca_cert_path())?;
        Self::connect_with(server.c2s_addr(), Some(tls), jid, password).await
    }

    /// [`XmppUser::connect`] to any c2s listener.
    pub async fn connect_to(
        addr: SocketAddr,
        jid: &str,
        password: &str,
    ) -> Result<XmppUser, HarnessError> {
        Self::connect_with(addr, None, jid, password).await
    }

    /// Log in to `addr`, over STARTTLS with `tls` if given, else over plain
    /// TCP, and send initial presence.
    pub async fn connect_with(
        addr: SocketAddr,
        tls: Option<Arc<rustls::ClientConfig>>,
        jid: &str,
        password: &str,
    ) -> Result<XmppUser, HarnessError> {
        let bare = parse_bare(jid)?;
        let (stream, jid) = tokio::time::timeout(WAIT, login(addr, tls.clone(), &bare, password))
            .await
            .map_err(|_| HarnessError::Timeout {
                what: format!("logging in as {bare} at {addr}"),
                after: WAIT,
            })??;
        let mut user = XmppUser {
            stream,
            addr,
            tls,
            password: password.to_owned(),
            jid,
            mailbox: VecDeque::new(),
        };
        user.send(Presence::available()).await?;
        Ok(user)
    }

    /// Whether the stream runs over TLS.
    pub fn is_encrypted(&self) -> bool {
        self.tls.is_some()
    }

    /// Log in again (after the server restarted, or to get a fresh
    /// session), with the same account, and send initial presence. The
    /// mailbox is emptied; rooms must be joined again.
    pub async fn reconnect(&mut self) -> Result<(), HarnessError> {
        let bare = self.jid.to_bare();
        let (stream, jid) = tokio::time::timeout(
            WAIT,
            login(self.addr, self.tls.clone(), &bare, &self.password),
        )
        .await
        .map_err(|_| HarnessError::Timeout {
            what: format!("logging in again as {bare} at {}", self.addr),
            after: WAIT,
        })??;
        self.stream = stream;
        self.jid = jid;
        self.mailbox.clear();
        self.send(Presence::available()).await
    }

    /// The full JID the server bound.
    pub fn jid(&self) -> &FullJid {
        &self.jid
    }

    /// The bare JID.
    pub fn bare_jid(&self) -> BareJid {
        self.jid.to_bare()
    }

    /// Send any stanza (an id is added if it has none).
    pub async fn send(&mut self, stanza: impl Into<Stanza>) -> Result<(), HarnessError> {
        let mut stanza = stanza.into();
        match &mut stanza {
            Stanza::Message(m) => {
                m.id.get_or_insert_with(|| xmpp_parsers::message::Id(fresh_id()));
            }
            Stanza::Presence(p) => {
                p.id.get_or_insert_with(fresh_id);
            }
            Stanza::Iq(_) => {}
        }
        let element = to_wire(stanza_element(stanza));
        self.send_element(&element).await
    }

    /// Send any element as it is (a stanza in `jabber:client`, or a
    /// nonza), e.g. a malformed stanza for a robustness test.
    pub async fn send_element(&mut self, element: &Element) -> Result<(), HarnessError> {
        let jid = &self.jid;
        tokio::time::timeout(WAIT, self.stream.send(element))
            .await
            .map_err(|_| HarnessError::Timeout {
                what: format!("{jid} to send a stanza"),
                after: WAIT,
            })?
            .map_err(|e| HarnessError::Xmpp(format!("{jid}: sending: {e}")))
    }

    /// Send a `groupchat` message with `text` to `room`; returns its id.
    pub async fn send_groupchat(&mut self, room: &str, text: &str) -> Result<String, HarnessError> {
        let room = parse_bare(room)?;
        self.send_message(Message::groupchat(Jid::from(room)).with_body(Lang::new(), text.into()))
            .await
    }

    /// Send a `chat` message with `text` to `to` (a bare or full JID, e.g. a
    /// room occupant `room@muc/nick` for a private message); returns its id.
    pub async fn send_chat(&mut self, to: &str, text: &str) -> Result<String, HarnessError> {
        let to = parse_jid(to)?;
        self.send_message(Message::chat(to).with_body(Lang::new(), text.into()))
            .await
    }

    /// Send a message, with a fresh id if it has none; returns the id.
    pub async fn send_message(&mut self, mut message: Message) -> Result<String, HarnessError> {
        let id = message
            .id
            .get_or_insert_with(|| xmpp_parsers::message::Id(fresh_id()))
            .0
            .clone();
        self.send(message).await?;
        Ok(id)
    }

    /// Join `room` (a bare JID) as `nick`, asking for no history, and wait
    /// for the room's self-presence (status 110), which is returned. A
    /// presence error from the room (nickname taken, ...) is an error.
    pub async fn join_muc(&mut self, room: &str, nick: &str) -> Result<Presence, HarnessError> {
        self.join_muc_with(
            room,
            nick,
            Muc::new().with_history(History::new().with_maxstanzas(0)),
        )
        .await
    }

    /// [`XmppUser::join_muc`] with the `<x xmlns='http://jabber.org/protocol/muc'/>`
    /// element given (history, password).
    pub async fn join_muc_with(
        &mut self,
        room: &str,
        nick: &str,
        muc: Muc,
    ) -> Result<Presence, HarnessError> {
        let occupant = occupant(room, nick)?;
        let room = occupant.to_bare();
        self.send(
            Presence::available()
                .with_to(occupant.clone())
                .with_payload(muc),
        )
        .await?;
        let what = format!("the self-presence of {occupant}");
        let presence = self
            .expect_presence(
                |p| {
                    from_bare(p.from.as_ref(), &room)
                        && (p.type_ == PresenceType::Error || is_self_presence(p))
                },
                WAIT,
            )
            .await
            .map_err(|e| with_what(e, &what))?;
        if presence.type_ == PresenceType::Error {
            return Err(HarnessError::Xmpp(format!(
                "joining {occupant}: the room answered with an error: {}",
                stanza_xml(&Stanza::Presence(presence))
            )));
        }
        Ok(presence)
    }

    /// Leave `room` (sent to `room/nick`) and wait for the room's
    /// unavailable self-presence.
    pub async fn leave_muc(&mut self, room: &str, nick: &str) -> Result<Presence, HarnessError> {
        let occupant = occupant(room, nick)?;
        let room = occupant.to_bare();
        self.send(Presence::unavailable().with_to(occupant.clone()))
            .await?;
        self.expect_presence(
            |p| {
                from_bare(p.from.as_ref(), &room)
                    && p.type_ == PresenceType::Unavailable
                    && is_self_presence(p)
            },
            WAIT,
        )
        .await
        .map_err(|e| with_what(e, &format!("the unavailable self-presence of {occupant}")))
    }

    /// Change the nickname in `room` to `new_nick` and wait for the room's
    /// self-presence under the new nick.
    pub async fn change_nick(
        &mut self,
        room: &str,
        new_nick: &str,
    ) -> Result<Presence, HarnessError> {
        let occupant = occupant(room, new_nick)?;
        self.send(Presence::available().with_to(occupant.clone()))
            .await?;
        let target = Jid::from(occupant.clone());
        let presence = self
            .expect_presence(
                |p| {
                    p.from.as_ref() == Some(&target)
                        && (p.type_ == PresenceType::Error
                            || (p.type_ == PresenceType::None && is_self_presence(p)))
                },
                WAIT,
            )
            .await
            .map_err(|e| with_what(e, &format!("the self-presence of {occupant}")))?;
        if presence.type_ == PresenceType::Error {
            return Err(HarnessError::Xmpp(format!(
                "changing nick to {occupant}: error: {}",
                stanza_xml(&Stanza::Presence(presence))
            )));
        }
        Ok(presence)
    }

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

    /// Close the stream cleanly (the server sends unavailable presence to
    /// the rooms) and wait for the server's end of the stream.
    pub async fn disconnect(mut self) -> Result<(), HarnessError> {
        let jid = self.jid.clone();
        tokio::time::timeout(WAIT, async {
            SinkExt::<&Element>::close(&mut self.stream).await?;
            while let Some(item) = self.stream.next().await {
                match item {
                    Err(ReadError::StreamFooterReceived | ReadError::HardError(_)) => break,
                    _ => continue,
                }
            }
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|_| HarnessError::Timeout {
            what: format!("{jid} to close its stream"),
            after: WAIT,
        })?
        .map_err(|e| HarnessError::Xmpp(format!("{jid}: closing: {e}")))
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

/// The body of a message (in whatever language), if it has one.
pub fn body(message: &Message) -> Option<&str> {
    message.get_best_body(vec![]).map(|(_, text)| text.as_str())
}

/// Whether a message is a `groupchat` from `room` (any occupant).
pub fn is_groupchat_from(message: &Message, room: &str) -> bool {
    message.type_ == MessageType::Groupchat
        && BareJid::from_str(room).is_ok_and(|r| from_bare(message.from.as_ref(), &r))
}

/// The occupant nick of a stanza from a MUC (`room@service/nick`).
pub fn nick_of(from: Option<&Jid>) -> Option<&str> {
    from.and_then(Jid::resource).map(|r| r.as_str())
}

/// Whether a presence from a room is about the receiver itself (MUC
/// status 110).
pub fn is_self_presence(presence: &Presence) -> bool {
    muc_user(presence).is_some_and(|u| u.status.contains(&MucStatus::SelfPresence))
}

/// The MUC `<x xmlns='http://jabber.org/protocol/muc#user'/>` of a presence.
pub fn muc_user(presence: &Presence) -> Option<MucUser> {
    presence
        .payloads
        .iter()
        .find(|p| p.is("x", "http://jabber.org/protocol/muc#user"))
        .and_then(|p| MucUser::try_from(p.clone()).ok())
}

/// A stanza as XML, as it is on the wire (`jabber:client`), for messages.
pub fn stanza_xml(stanza: &Stanza) -> String {
    let element = match stanza {
        Stanza::Message(m) => minidom::Element::from(m.clone()),
        Stanza::Presence(p) => minidom::Element::from(p.clone()),
        Stanza::Iq(i) => minidom::Element::from(i.clone()),
    };
    String::from(&to_wire(element))
}

fn from_bare(from: Option<&Jid>, bare: &BareJid) -> bool {
    from.is_some_and(|f| f.to_bare() == *bare)
}

fn occupant(room: &str, nick: &str) -> Result<FullJid, HarnessError> {
    parse_bare(room)?
        .with_resource_str(nick)
        .map_err(|e| HarnessError::Xmpp(format!("{room}/{nick}: {e}")))
}

fn parse_bare(jid: &str) -> Result<BareJid, HarnessError> {
    BareJid::from_str(jid)
        .map_err(|e| HarnessError::Xmpp(format!("{jid:?} is not a bare JID: {e}")))
}

fn parse_jid(jid: &str) -> Result<Jid, HarnessError> {
    Jid::from_str(jid).map_err(|e| HarnessError::Xmpp(format!("{jid:?} is not a JID: {e}")))
}

fn with_what(e: HarnessError, what: &str) -> HarnessError {
    match e {
        HarnessError::Timeout { what: w, after } => HarnessError::Timeout {
            what: format!("{what}: {w}"),
            after,
        },
        other => other,
    }
}

fn fresh_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("e2e-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Open a c2s stream, authenticate with SASL PLAIN, bind a resource.
async fn login(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    jid: &BareJid,
    password: &str,
) -> Result<(Stream, FullJid), HarnessError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        HarnessError::Xmpp(format!("logging in as {jid} at {addr}: {what}: {e}"))
    };
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| fail("connecting", &e))?;
    // No read timeouts to speak of: a test's own waits bound everything.
    let timeouts = Timeouts {
        read_timeout: Duration::from_secs(3600),
        response_timeout: Duration::from_secs(3600),
    };
    let header = || StreamHeader {
        from: None,
        to: Some(Cow::Owned(jid.domain().to_string())),
        id: None,
    };
    let io: Io = match tls {
        None => Box::new(BufStream::new(tcp)),
        Some(config) => {
            let tls = starttls(tcp, config, jid, timeouts)
                .await
                .map_err(|e| fail("STARTTLS", &e))?;
            Box::new(BufStream::new(tls))
        }
    };
    let (_features, mut stream) = initiate_stream(io, JABBER_CLIENT, header(), timeouts)
        .await
        .map_err(|e| fail("opening the stream", &e))?
        .recv_features::<Element>()
        .await
        .map_err(|e| fail("stream features", &e))?;

    let node = jid.node().map(|n| n.as_str()).unwrap_or_default();
    let mut credentials = vec![0u8];
    credentials.extend_from_slice(node.as_bytes());
    credentials.push(0);
    credentials.extend_from_slice(password.as_bytes());
    let auth = Element::builder("auth", NS_SASL)
        .attr(rxml_name("mechanism"), "PLAIN")
        .append(base64(&credentials))
        .build();
    stream
        .send(&auth)
        .await
        .map_err(|e| fail("sending auth", &e))?;
    let answer = next_element(&mut stream)
        .await
        .map_err(|e| fail("waiting for the SASL answer", &e))?;
    if !answer.is("success", NS_SASL) {
        return Err(fail("authentication refused", &String::from(&answer)));
    }

    let (_features, mut stream) = stream
        .initiate_reset()
        .send_header(header())
        .await
        .map_err(|e| fail("restarting the stream", &e))?
        .recv_features::<Element>()
        .await
        .map_err(|e| fail("stream features after SASL", &e))?;

    let bind = Element::builder("iq", JABBER_CLIENT)
        .attr(rxml_name("type"), "set")
        .attr(rxml_name("id"), "bind-1")
        .append(Element::builder("bind", NS_BIND).build())
        .build();
    stream
        .send(&bind)
        .await
        .map_err(|e| fail("sending bind", &e))?;
    let answer = next_element(&mut stream)
        .await
        .map_err(|e| fail("waiting for the bind answer", &e))?;
    let bound = answer
        .get_child("bind", NS_BIND)
        .and_then(|b| b.get_child("jid", NS_BIND))
        .map(Element::text)
        .filter(|_| answer.attr("type") == Some("result"))
        .ok_or_else(|| fail("resource binding refused", &String::from(&answer)))?;
    let full = FullJid::from_str(&bound).map_err(|e| fail("the bound JID", &e))?;
    Ok((stream, full))
}

/// Negotiate STARTTLS (RFC 6120 §5) on a fresh connection and return the
/// TLS stream, on which the caller opens a new XML stream.
async fn starttls(
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
    jid: &BareJid,
    timeouts: Timeouts,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let domain = jid.domain().to_string();
    let header = StreamHeader {
        from: None,
        to: Some(Cow::Owned(domain.clone())),
        id: None,
    };
    let (features, mut stream) =
        initiate_stream(BufStream::new(tcp), JABBER_CLIENT, header, timeouts)
            .await
            .map_err(|e| e.to_string())?
            .recv_features::<Element>()
            .await
            .map_err(|e| e.to_string())?;
    if !features.can_starttls() {
        return Err("the server does not offer STARTTLS".into());
    }
    stream
        .send(&Element::builder("starttls", NS_TLS).build())
        .await
        .map_err(|e| e.to_string())?;
    let answer = next_element(&mut stream).await?;
    if !answer.is("proceed", NS_TLS) {
        return Err(format!("refused: {}", String::from(&answer)));
    }
    let tcp = stream.into_inner().into_inner();
    let name = rustls::pki_types::ServerName::try_from(domain.clone())
        .map_err(|e| format!("{domain}: {e}"))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}

/// A TLS client configuration that trusts only the CA in `ca_file` (PEM).
pub fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, HarnessError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let fail = |e: &dyn std::fmt::Display| {
        HarnessError::Xmpp(format!("the test CA {}: {e}", ca_file.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| fail(&e))? {
        roots
            .add(cert.map_err(|e| fail(&e))?)
            .map_err(|e| fail(&e))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail(&e))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn next_element<T: tokio::io::AsyncBufRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut XmlStream<T, Element>,
) -> Result<Element, String> {
    loop {
        match stream.next().await {
            Some(Ok(e)) => return Ok(e),
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the server closed the connection".into()),
        }
    }
}

fn rxml_name(name: &'static str) -> minidom::rxml::NcName {
    minidom::rxml::NcName::try_from(name).unwrap_or_else(|_| unreachable!("a valid XML name"))
}

fn stanza_element(stanza: Stanza) -> Element {
    match stanza {
        Stanza::Message(m) => Element::from(m),
        Stanza::Presence(p) => Element::from(p),
        Stanza::Iq(i) => Element::from(i),
    }
}

/// A stanza of this build's stanza namespace, put into `jabber:client`.
fn to_wire(element: Element) -> Element {
    swap_ns(element, xmpp_parsers::ns::DEFAULT_NS, JABBER_CLIENT)
}

/// A stanza received in `jabber:client`, parsed as this build's stanza
/// types. `None` for anything that is not a stanza.
fn from_wire(element: Element) -> Result<Option<Stanza>, String> {
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
fn swap_ns(mut element: Element, from: &str, to: &str) -> Element {
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

/// Standard base64 with padding (RFC 4648 §4), for SASL.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }
}
