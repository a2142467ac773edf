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
//!
//! Files by concern: `login.rs` opens and authenticates the stream,
//! `wire.rs` moves stanzas between the wire's namespace and this build's,
//! `muc.rs` joins, leaves and renames in rooms, `mailbox.rs` receives and
//! waits; this file holds the user, connecting and sending.

mod login;
mod mailbox;
mod muc;
mod wire;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use minidom::Element;
use tokio_rustls::rustls;
use tokio_xmpp::Stanza;
use tokio_xmpp::xmlstream::ReadError;
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Lang, Message};
use xmpp_parsers::presence::Presence;

use crate::HarnessError;
use crate::prosody::Prosody;

pub use login::tls_config;
pub use muc::{is_groupchat_from, is_self_presence, muc_user, nick_of};

use login::{Stream, login};
use wire::{stanza_element, to_wire};

/// The default wait for something that should arrive: generous, it only
/// keeps a broken test from hanging.
pub const WAIT: Duration = Duration::from_secs(15);

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
}

/// The body of a message (in whatever language), if it has one.
pub fn body(message: &Message) -> Option<&str> {
    message.get_best_body(vec![]).map(|(_, text)| text.as_str())
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
