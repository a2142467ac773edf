//! `[adapters.NAME]` with `kind = "irc"`: the IRC adapter's settings.
//!
//! ```toml
//! [adapters.irc]
//! kind = "irc"
//! network = "irc.example.org"     # the network's name in irc:// addresses
//! server = "irc.example.org:6697"
//! tls = true
//! nick = "cpimgate"
//! channels = ["#lobby"]
//! sasl = { mechanism = "plain", user = "cpimgate", password = "..." }
//! mode = "puppet"                # or "relay" (the default)
//! ```
//!
//! A bridge names a channel of this adapter as
//! `{ adapter = "irc", address = "irc://irc.example.org/%23lobby" }`; the
//! network in the address must be this adapter's `network`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The IRC adapter's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrcConfig {
    /// The network's name as written in `irc://NETWORK/...` addresses of
    /// bridges and routes (usually the server's host name).
    pub network: String,
    /// The server, `host:port`.
    pub server: String,
    /// Connect with TLS (certificates checked against the system's roots
    /// and `ca_file`).
    #[serde(default)]
    pub tls: bool,
    /// A PEM file of extra trusted CA certificates (a private CA, or the
    /// test CA of the end-to-end tests). Certificates are always checked.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The gateway's nick; when taken, `nick_`, `nick2`, ... are tried.
    pub nick: String,
    /// The user name (ident); the nick when absent.
    #[serde(default)]
    pub username: Option<String>,
    /// The real name shown in WHOIS.
    #[serde(default = "default_realname")]
    pub realname: String,
    /// A server password (`PASS`).
    #[serde(default)]
    pub password: Option<String>,
    /// SASL authentication (IRCv3 SASL 3.1); registration fails when it
    /// fails, rather than going on unauthenticated.
    #[serde(default)]
    pub sasl: Option<Box<SaslConfig>>,
    /// The channels to join.
    #[serde(default)]
    pub channels: Vec<String>,
    /// How a message from another world is posted: `{nick}` and `{text}`
    /// are replaced.
    #[serde(default = "default_format")]
    pub format: String,
    /// How a `/me` action from another world is posted.
    #[serde(default = "default_action_format")]
    pub action_format: String,
    /// The most lines one message may become; the rest is cut, with a
    /// note saying how many lines were left out, rather than flooding the
    /// channel.
    #[serde(default = "default_max_lines")]
    pub max_lines: usize,
    /// Lines the gateway may send at once before flood control paces it.
    #[serde(default = "default_flood_burst")]
    pub flood_burst: u32,
    /// Lines per second after the burst (0 = no limit; only for servers
    /// that exempt the gateway).
    #[serde(default = "default_flood_rate")]
    pub flood_rate: f64,
    /// Seconds a QUIT with a netsplit reason is held before it is shown to
    /// the other worlds; a rejoin within that time cancels it.
    #[serde(default = "default_netsplit_hold")]
    pub netsplit_hold_secs: u64,
    /// The longest wait between reconnection attempts, in seconds.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_secs: u64,
    /// How long one write to the server may take, in
    /// milliseconds, before the connection is given up and made again (a
    /// server that stopped reading would otherwise hold it forever). `0`:
    /// no limit.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
    /// How users of other worlds appear on IRC: `relay` (the gateway's one
    /// connection posts `<Nick> text`) or `puppet` (a connection per user
    /// present in a bridged channel, with that user's nick).
    #[serde(default)]
    pub mode: Mode,
    /// Puppet mode: puppet connections opened per second at most.
    #[serde(default = "default_puppet_rate")]
    pub puppet_rate: f64,
    /// Puppet mode: the most puppet connections on this network; the users
    /// beyond it are relayed through the gateway's connection.
    #[serde(default = "default_puppet_max")]
    pub puppet_max: usize,
    /// Puppet mode: a puppet that sent nothing for this many seconds is
    /// closed (it comes back with the user's next message).
    #[serde(default = "default_puppet_idle")]
    pub puppet_idle_secs: u64,
}

/// How users of other worlds appear on IRC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One connection; messages posted as `<Nick> text`.
    #[default]
    Relay,
    /// One connection per remote user present in a bridged channel.
    Puppet,
}

/// SASL settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "mechanism", rename_all = "lowercase")]
pub enum SaslConfig {
    /// `PLAIN`: an account and its password.
    Plain {
        /// The account name.
        user: String,
        /// Its password.
        password: String,
    },
    /// `EXTERNAL`: the TLS client certificate identifies the account.
    External {
        /// The client certificate, PEM.
        cert_file: PathBuf,
        /// Its private key, PEM.
        key_file: PathBuf,
    },
}

fn default_realname() -> String {
    "cpimgate gateway".to_owned()
}

fn default_format() -> String {
    "<{nick}> {text}".to_owned()
}

fn default_action_format() -> String {
    "* {nick} {text}".to_owned()
}

fn default_max_lines() -> usize {
    5
}

fn default_flood_burst() -> u32 {
    5
}

fn default_flood_rate() -> f64 {
    2.0
}

fn default_netsplit_hold() -> u64 {
    30
}

fn default_reconnect_max() -> u64 {
    60
}

fn default_write_timeout_ms() -> u64 {
    30_000
}

fn default_puppet_rate() -> f64 {
    2.0
}

fn default_puppet_max() -> usize {
    50
}

fn default_puppet_idle() -> u64 {
    3600
}

impl IrcConfig {
    /// Check what serde cannot: the message of the first problem, naming
    /// the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.network.trim().is_empty() {
            return Err("network: must not be empty".into());
        }
        if !self.server.contains(':') {
            return Err(format!("server: {:?} is not host:port", self.server));
        }
        if self.nick.trim().is_empty() || self.nick.contains([' ', '\r', '\n', '\0']) {
            return Err(format!("nick: {:?} is not a usable nick", self.nick));
        }
        for c in &self.channels {
            if c.is_empty() || c.contains([' ', ',', '\x07', '\r', '\n', '\0']) {
                return Err(format!("channels: {c:?} is not a channel name"));
            }
        }
        if self.max_lines == 0 {
            return Err("max_lines: must be at least 1".into());
        }
        if !self.flood_rate.is_finite() || self.flood_rate < 0.0 {
            return Err("flood_rate: must be 0 or more lines per second".into());
        }
        if !self.puppet_rate.is_finite() || self.puppet_rate <= 0.0 {
            return Err("puppet_rate: must be more than 0 connections per second".into());
        }
        if self.puppet_idle_secs == 0 {
            return Err("puppet_idle_secs: must be at least 1".into());
        }
        Ok(())
    }
}
