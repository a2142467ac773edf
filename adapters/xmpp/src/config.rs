//! `[adapters.NAME]` with `kind = "xmpp"`: the XMPP adapter's settings.
//!
//! ```toml
//! [adapters.xmpp]
//! kind = "xmpp"
//! mode = "component"           # XEP-0114: the full-fidelity mode
//! domain = "gw.example.org"    # the component's JID
//! secret = "s3cret"
//! server = "127.0.0.1:5347"    # the XMPP server's component port
//! history_on_join = 20         # room messages sent to a user who joins (XEP-0045 §7.2.15)
//! receipt_wait = 5.0           # seconds to wait for an XEP-0184 receipt; 0: none
//! write_timeout_ms = 30000     # a write stuck this long cuts the connection; 0: never
//!
//! [adapters.xmpp-remote]
//! kind = "xmpp"
//! mode = "client"              # an ordinary account, for servers without a component
//! jid = "bridge@example.org"
//! password = "..."
//! rooms = [ { room = "lobby@conference.example.org", nick = "bridge" } ]
//! presence_notices = true      # "* Alice joined" lines for other worlds' joins
//! notice_format = { join = "* {nick} has joined" }
//! ```

use serde::{Deserialize, Serialize};

/// The XMPP adapter's configuration: one of two modes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum XmppConfig {
    /// Connect as an external component (XEP-0114).
    Component(ComponentConfig),
    /// Log in as an ordinary account and join existing rooms.
    Client(ClientConfig),
}

/// Component mode (XEP-0114).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// The component's domain (its JID), e.g. `gw.example.org`. Users and
    /// rooms of other worlds appear under it.
    pub domain: String,
    /// The shared secret of the component handshake.
    pub secret: String,
    /// The server's component listener, `host:port`.
    pub server: String,
    /// Largest message body accepted from XMPP, in bytes; a larger one is
    /// answered with a `not-acceptable` error.
    #[serde(default = "default_max_body")]
    pub max_body: usize,
    /// How many room messages a user who joins without asking for a
    /// particular history (no `<history/>` element, XEP-0045 §7.2.15) is
    /// sent; `0` sends none.
    #[serde(default = "default_history_on_join")]
    pub history_on_join: usize,
    /// How long, in seconds, a 1:1 message delivered to an XMPP user waits
    /// for its XEP-0184 receipt before the hub is told it was only accepted
    /// (the server has it). `0` answers "accepted" at once and asks for no
    /// receipt.
    #[serde(default = "default_receipt_wait")]
    pub receipt_wait: f64,
    /// How long one write to the server may take, in
    /// milliseconds, before the connection is cut (reset) and made again:
    /// a server that stopped reading (hung, stopped) would otherwise hold
    /// the adapter forever. `0`: no limit.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
}

impl ComponentConfig {
    /// [`ComponentConfig::receipt_wait`] as a duration; fails when it is
    /// negative or not a number.
    pub fn receipt_wait(&self) -> Result<std::time::Duration, String> {
        std::time::Duration::try_from_secs_f64(self.receipt_wait)
            .map_err(|e| format!("receipt_wait = {}: {e}", self.receipt_wait))
    }
}

/// Client mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The account's bare JID.
    pub jid: String,
    /// Its password (SASL).
    pub password: String,
    /// Connect to this `host:port` instead of resolving the JID's domain.
    #[serde(default)]
    pub server: Option<String>,
    /// Accept a server certificate that does not verify (tests only).
    #[serde(default)]
    pub insecure_accept_any_certificate: bool,
    /// The rooms to join.
    #[serde(default)]
    pub rooms: Vec<ClientRoom>,
    /// How a message from another world is posted into a room: `{nick}`
    /// and `{text}` are replaced.
    #[serde(default = "default_format")]
    pub format: String,
    /// Largest message body accepted from XMPP, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body: usize,
    /// Send each stanza at once (`TCP_NODELAY`, the default) rather than
    /// let the kernel hold a small write back until the previous one is
    /// acknowledged (Nagle's algorithm). A relayed message is one small
    /// write; behind Nagle it can wait for the server's delayed ACK. Off
    /// only to compare.
    #[serde(default = "default_true")]
    pub tcp_nodelay: bool,
    /// Post joins, leaves (and kicks) and nick changes of the other worlds
    /// of a bridge into the rooms, as one short groupchat line each
    /// ([`NoticeFormat`]: `* Alice joined`).
    ///
    /// Off by default. A client-mode account is one occupant and cannot
    /// make occupants for the people of other worlds (component mode can),
    /// so the only way to show their comings and goings is to *say* them,
    /// as ordinary messages: every join, leave and nick change of every
    /// bridged room becomes a line in the room's history, a notification
    /// on every member's phone, and an entry in the room's archive. In a
    /// busy bridge (an IRC channel with netsplits, SIP users that come and
    /// go) that is mostly noise. Turn it on for small rooms where who is
    /// present matters. The lines are our own messages: when the room
    /// reflects them they are recognised as ours and never relayed back
    /// to the hub.
    #[serde(default)]
    pub presence_notices: bool,
    /// The lines of [`ClientConfig::presence_notices`]. (Boxed: it is
    /// seldom set, and keeps the config enums small.)
    #[serde(default)]
    pub notice_format: Box<NoticeFormat>,
}

/// How a join, leave or nick change of another world is said in a room
/// (with [`ClientConfig::presence_notices`] on). `{nick}` is the
/// person's name (the old one for a nick change), `{new_nick}` the new
/// one; they are replaced in one pass, anything else stays as written.
/// The text is character data, never markup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoticeFormat {
    /// Someone joined: `* {nick} joined`.
    pub join: String,
    /// Someone left, or was kicked: `* {nick} left`.
    pub leave: String,
    /// Someone changed name: `* {nick} is now {new_nick}`.
    pub nick: String,
}

impl Default for NoticeFormat {
    fn default() -> Self {
        NoticeFormat {
            join: "* {nick} joined".to_owned(),
            leave: "* {nick} left".to_owned(),
            nick: "* {nick} is now {new_nick}".to_owned(),
        }
    }
}

/// A room joined in client mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRoom {
    /// The room's bare JID.
    pub room: String,
    /// The nickname to join under.
    pub nick: String,
}

fn default_max_body() -> usize {
    64 * 1024
}

fn default_history_on_join() -> usize {
    20
}

fn default_receipt_wait() -> f64 {
    5.0
}

fn default_write_timeout_ms() -> u64 {
    30_000
}

fn default_true() -> bool {
    true
}

fn default_format() -> String {
    "<{nick}> {text}".to_owned()
}
