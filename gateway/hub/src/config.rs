//! Configuration: TOML through the `config` crate, every key overridable by
//! environment variables.
//!
//! An environment variable `CPIMGATE__SECTION__KEY` overrides `key` of
//! `[section]` (double underscores separate the levels), e.g.
//! `CPIMGATE__ADMIN__LISTEN=0.0.0.0:9464`. Every struct here denies unknown
//! fields: a misspelt key fails at start, naming the key. The doc comment of
//! each field is the user documentation of that key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cpimgate_model::Address;
use serde::{Deserialize, Serialize};

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Happens when the file cannot be read or is not valid TOML, or a key
    /// has the wrong type or is unknown.
    #[error("{path}: {reason}")]
    Load {
        /// The file.
        path: String,
        /// What the loader said.
        reason: String,
    },
    /// Happens when a value is well-formed but unusable.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key, as a path (`bridge[0].rooms[1].address`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The whole configuration file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[gateway]`: this instance.
    pub gateway: GatewaySection,
    /// `[store]`: the SQLite file holding mappings and the durable queue.
    pub store: StoreSection,
    /// `[queue]`: durable queue and delivery.
    pub queue: QueueSection,
    /// `[history]`: room history, for history on join.
    pub history: HistorySection,
    /// `[admin]`: the admin HTTP listener.
    pub admin: AdminSection,
    /// `[log]`: logging.
    pub log: LogSection,
    /// `[limits]`: parser limits.
    pub limits: LimitsSection,
    /// `[memory]`: giving memory back after load.
    pub memory: MemorySection,
    /// `[adapters.NAME]`: the adapter instances, by name.
    pub adapters: BTreeMap<String, AdapterSection>,
    /// `[[bridge]]`: rooms of several worlds federated into one conversation.
    pub bridge: Vec<BridgeSection>,
    /// `[[route]]`: 1:1 routing rules, tried in order.
    pub route: Vec<RouteSection>,
    /// `[[identity]]`: static identity mappings.
    pub identity: Vec<IdentitySection>,
}

/// `[gateway]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// The name of this gateway instance. It goes into the hop trail of
    /// every message so that two gateways federating the same rooms do not
    /// relay each other's messages in a loop: give each instance its own.
    pub name: String,
    /// Domains of this gateway. An address `scheme:<escaped address>@<one
    /// of these>` names a user of another world
    /// (`sip:alice%40xmpp.example.org@gw.example.com`) and is unwrapped
    /// before routing.
    pub domains: Vec<String>,
}

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            name: "cpimgate".to_owned(),
            domains: Vec::new(),
        }
    }
}

/// `[memory]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemorySection {
    /// After a load, once the gateway has been idle this long (in
    /// milliseconds), the allocator is asked to give the free memory it
    /// keeps back to the system (see `memory.rs`). 0: never.
    pub trim_after_idle_ms: u64,
}

impl Default for MemorySection {
    fn default() -> Self {
        MemorySection {
            trim_after_idle_ms: 2000,
        }
    }
}

/// `[store]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Path of the SQLite file, created on first run. Relative paths are
    /// relative to the working directory.
    pub path: PathBuf,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            path: PathBuf::from("cpimgate.sqlite"),
        }
    }
}

/// `[queue]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSection {
    /// Most messages written in one commit (one fsync). 1 means one commit
    /// per message: safe, and slow.
    pub max_batch: usize,
    /// How long the writer waits to gather more messages into a commit, in
    /// microseconds. 0: commit whatever is waiting at once.
    pub batch_delay_us: u64,
    /// First retry delay after a transient failure, in milliseconds.
    pub retry_base_ms: u64,
    /// Longest retry delay, in milliseconds.
    pub retry_max_ms: u64,
    /// Expiry of a message that did not say how long it is valid, in
    /// seconds. After it the message is reported as failed, not delivered.
    pub default_expiry_s: u64,
    /// How long the gateway waits for an adapter's answer to one delivery
    /// before it counts as a timeout (and is retried), in milliseconds.
    pub delivery_timeout_ms: u64,
    /// Deliveries handed to one adapter and not yet answered.
    pub window: usize,
    /// On shutdown, how long in-flight deliveries may take to finish, in
    /// milliseconds. What is not done stays queued for the next start.
    pub drain_ms: u64,
}

impl Default for QueueSection {
    fn default() -> Self {
        QueueSection {
            max_batch: 512,
            batch_delay_us: 0,
            retry_base_ms: 500,
            retry_max_ms: 60_000,
            default_expiry_s: 24 * 3600,
            delivery_timeout_ms: 30_000,
            window: 64,
            drain_ms: 5_000,
        }
    }
}

impl QueueSection {
    /// [`QueueSection::default_expiry_s`] as a duration.
    pub fn default_expiry(&self) -> Duration {
        Duration::from_secs(self.default_expiry_s)
    }
}

/// `[history]`: the recent messages of each bridge, which adapters give to
/// someone joining one of its rooms (history on join, XEP-0045 §7.2.15).
/// Kept in the store's file, written with the durable queue; only room
/// messages that were accepted and are not private are recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySection {
    /// Keep room history. `false`: nothing more is recorded and adapters
    /// offer none; what was recorded before is still pruned.
    pub enabled: bool,
    /// Messages kept per bridge: the newest, from all its rooms together.
    /// A joining user may ask for fewer, never for more.
    pub keep: usize,
    /// Oldest history kept and given out, in seconds (default 7 days).
    pub max_age_s: u64,
}

impl Default for HistorySection {
    fn default() -> Self {
        HistorySection {
            enabled: true,
            keep: 100,
            max_age_s: 7 * 24 * 3600,
        }
    }
}

impl HistorySection {
    /// [`HistorySection::max_age_s`] as a duration.
    pub fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_age_s)
    }
}

/// Longest `history.max_age_s`: 100 years, far below where the
/// microsecond timestamps of the store overflow.
const MAX_HISTORY_AGE_S: u64 = 100 * 366 * 24 * 3600;

/// `[admin]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Address of the admin HTTP listener (`/healthz`, `/readyz`,
    /// `/metrics`). Empty: no listener.
    pub listen: String,
    /// Most admin connections open at once; more are reset at once.
    pub max_connections: usize,
    /// How long one admin connection may stay open, milliseconds, busy or
    /// not: a client that sends its request a byte at a time, or does
    /// not read the answer, is cut off then (a scraper opens a new one).
    pub connection_timeout_ms: u64,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: "127.0.0.1:9464".to_owned(),
            max_connections: 64,
            connection_timeout_ms: 30_000,
        }
    }
}

/// `[log]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `cpimgate=debug,info`.
    /// `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            format: LogFormat::Human,
            level: "info".to_owned(),
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// `[limits]`: bounds on what parsers accept from the network.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Most header lines in one message.
    pub max_headers: usize,
    /// Longest header line, in bytes.
    pub max_header_line: usize,
    /// Largest message body, in bytes.
    pub max_body: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_headers: 64,
            max_header_line: 8 * 1024,
            max_body: 1024 * 1024,
        }
    }
}

impl LimitsSection {
    /// The limits of the `message/cpim` parser.
    pub fn cpim(&self) -> cpimgate_model::cpim::Limits {
        cpimgate_model::cpim::Limits {
            max_headers: self.max_headers,
            max_line_len: self.max_header_line,
            max_body: self.max_body,
        }
    }
}

/// `[adapters.NAME]`: one adapter instance; `kind` names the protocol and
/// the other keys are that adapter's own.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AdapterSection {
    /// XMPP, as a component or a client (see `cpimgate_xmpp::config`).
    Xmpp(cpimgate_xmpp::XmppConfig),
    /// SIP pager mode, MESSAGE (see `cpimgate_sip::config`).
    Sip(cpimgate_sip::SipConfig),
    /// MSRP chat rooms hosted by the gateway (see `cpimgate_msrp::config`).
    Msrp(cpimgate_msrp::MsrpConfig),
    /// IRC, relay mode (see `cpimgate_irc::config`).
    Irc(cpimgate_irc::IrcConfig),
    /// An adapter supplied by the program that embeds the hub (tests);
    /// `cpimgate run` refuses it.
    Embedded(NoSettings),
}

impl AdapterSection {
    /// The protocol, as written in `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            AdapterSection::Xmpp(_) => "xmpp",
            AdapterSection::Sip(_) => "sip",
            AdapterSection::Msrp(_) => "msrp",
            AdapterSection::Irc(_) => "irc",
            AdapterSection::Embedded(_) => "embedded",
        }
    }
}

/// An adapter section without settings of its own.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// `[[bridge]]`: one conversation across worlds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSection {
    /// Name of the bridge (unique).
    pub name: String,
    /// Its rooms, one per world (or several).
    pub rooms: Vec<BridgeRoom>,
}

/// One room of a bridge.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeRoom {
    /// The adapter instance that serves the room.
    pub adapter: String,
    /// The room's address in its world (`sip:chatroom22@chat.example.com`,
    /// `xmpp:lobby@conference.example.org`, `irc://irc.example.org/%23lobby`).
    pub address: String,
}

/// `[[route]]`: where a 1:1 message goes.
///
/// A rule matches the recipient's address by scheme and domain; the first
/// rule that matches wins. `domain = "*"` matches any domain.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// URI scheme to match (`sip`, `im`, `xmpp`, `tel`, `irc`); absent: any.
    #[serde(default)]
    pub scheme: Option<String>,
    /// Domain to match, case-insensitive; `*` for any, `*.example.com` for
    /// subdomains.
    pub domain: String,
    /// Adapter instance the message goes to.
    pub adapter: String,
}

/// `[[identity]]`: one person known in several worlds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Aliases in the mapping table's form (`im:alice@example.com`,
    /// `sip:alice@example.com`, `jid:alice@example.org`,
    /// `irc:libera/alice`).
    pub aliases: Vec<String>,
}

impl Config {
    /// Load `path` (TOML), with `CPIMGATE__...` environment overrides, and
    /// validate it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// Like [`Config::load`], with the environment given (for tests).
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let load_err = |e: config::ConfigError| ConfigError::Load {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Load {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let env: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("CPIMGATE__"))
            .collect();
        let built = config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("CPIMGATE")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(env)),
            )
            .build()
            .map_err(load_err)?;
        let cfg: Config = built.try_deserialize().map_err(load_err)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check what types alone cannot: names, addresses, references, the
    /// store path.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.gateway.name.trim().is_empty() {
            return Err(invalid("gateway.name", "must not be empty"));
        }
        if self.admin.max_connections == 0 {
            return Err(invalid("admin.max_connections", "must be at least 1"));
        }
        if self.admin.connection_timeout_ms == 0 {
            return Err(invalid("admin.connection_timeout_ms", "must be at least 1"));
        }
        if !self.admin.listen.is_empty() && self.admin.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "admin.listen",
                format!("{:?} is not an IP address and port", self.admin.listen),
            ));
        }
        if self.queue.max_batch == 0 {
            return Err(invalid("queue.max_batch", "must be at least 1"));
        }
        if self.queue.window == 0 {
            return Err(invalid("queue.window", "must be at least 1"));
        }
        if self.queue.retry_base_ms == 0 || self.queue.retry_base_ms > self.queue.retry_max_ms {
            return Err(invalid(
                "queue.retry_base_ms",
                "must be at least 1 and at most queue.retry_max_ms",
            ));
        }
        if self.history.keep == 0 {
            return Err(invalid(
                "history.keep",
                "must be at least 1 (set history.enabled = false to keep none)",
            ));
        }
        if self.history.max_age_s == 0 || self.history.max_age_s > MAX_HISTORY_AGE_S {
            return Err(invalid(
                "history.max_age_s",
                format!("must be between 1 and {MAX_HISTORY_AGE_S} seconds"),
            ));
        }
        self.validate_store_path()?;
        for (name, section) in &self.adapters {
            if let AdapterSection::Irc(irc) = section {
                irc.validate()
                    .map_err(|e| invalid(format!("adapters.{name}"), e))?;
            }
            let checked = match section {
                AdapterSection::Sip(sip) => sip.validate(),
                AdapterSection::Msrp(msrp) => msrp.validate(),
                _ => Ok(()),
            };
            checked.map_err(|e| match e.split_once(": ") {
                Some((key, reason)) => invalid(format!("adapters.{name}.{key}"), reason),
                None => invalid(format!("adapters.{name}"), e),
            })?;
        }
        for (i, b) in self.bridge.iter().enumerate() {
            if b.name.trim().is_empty() {
                return Err(invalid(format!("bridge[{i}].name"), "must not be empty"));
            }
            if self.bridge[..i].iter().any(|o| o.name == b.name) {
                return Err(invalid(
                    format!("bridge[{i}].name"),
                    format!("bridge {:?} is defined twice", b.name),
                ));
            }
            if b.rooms.len() < 2 {
                return Err(invalid(
                    format!("bridge[{i}].rooms"),
                    "a bridge needs at least two rooms",
                ));
            }
            for (j, r) in b.rooms.iter().enumerate() {
                let key = format!("bridge[{i}].rooms[{j}]");
                self.check_adapter(&format!("{key}.adapter"), &r.adapter)?;
                let address = r.address.parse::<Address>().map_err(|e| {
                    invalid(format!("{key}.address"), format!("{:?}: {e}", r.address))
                })?;
                if room_alias(&address).is_none() {
                    return Err(invalid(
                        format!("{key}.address"),
                        format!(
                            "{:?} is not a room: use an MSRP room's sip: URI, a MUC's xmpp: URI or an IRC channel (irc://network/%23chan)",
                            r.address
                        ),
                    ));
                }
            }
        }
        for (i, r) in self.route.iter().enumerate() {
            self.check_adapter(&format!("route[{i}].adapter"), &r.adapter)?;
            if r.domain.trim().is_empty() {
                return Err(invalid(
                    format!("route[{i}].domain"),
                    "must not be empty (use \"*\" for any)",
                ));
            }
        }
        for (i, id) in self.identity.iter().enumerate() {
            for (j, a) in id.aliases.iter().enumerate() {
                a.parse::<cpimgate_mappings::Alias>().map_err(|e| {
                    invalid(format!("identity[{i}].aliases[{j}]"), format!("{a:?}: {e}"))
                })?;
            }
        }
        Ok(())
    }

    fn check_adapter(&self, key: &str, name: &str) -> Result<(), ConfigError> {
        if self.adapters.contains_key(name) {
            Ok(())
        } else {
            Err(invalid(
                key,
                format!("no adapter named {name:?} in [adapters]"),
            ))
        }
    }

    fn validate_store_path(&self) -> Result<(), ConfigError> {
        let path = &self.store.path;
        if path.as_os_str().is_empty() {
            return Err(invalid("store.path", "must not be empty"));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(invalid(
                "store.path",
                format!("{} is not a directory", dir.display()),
            )),
            Err(e) => Err(invalid(
                "store.path",
                format!("directory {} cannot be used: {e}", dir.display()),
            )),
        }
    }
}

/// The mapping table's name for a room of a bridge, or `None` when the
/// address cannot name a room.
pub fn room_alias(address: &Address) -> Option<cpimgate_mappings::RoomAlias> {
    use cpimgate_mappings::RoomAlias;
    match address {
        Address::Sip(u) => Some(RoomAlias::Msrp(u.to_string())),
        Address::Xmpp(u) if u.jid().node().is_some() => {
            Some(RoomAlias::Muc(u.jid().bare().to_string()))
        }
        Address::Irc(a) => a.as_channel().map(|c| RoomAlias::Irc {
            network: a.network().to_string(),
            channel: c.to_owned(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        Config::load_with_env(&p, env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_are_valid() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.admin.listen, "127.0.0.1:9464");
        assert_eq!(c.queue.max_batch, 512);
    }

    #[test]
    fn environment_overrides_a_key() {
        let c = load(
            "[admin]\nlisten = \"127.0.0.1:1\"\n",
            &[
                ("CPIMGATE__ADMIN__LISTEN", "127.0.0.1:2"),
                ("CPIMGATE__QUEUE__MAX_BATCH", "7"),
            ],
        )
        .unwrap();
        assert_eq!(c.admin.listen, "127.0.0.1:2");
        assert_eq!(c.queue.max_batch, 7);
    }

    #[test]
    fn admin_limits_read_and_validate() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.admin.max_connections, 64);
        assert_eq!(c.admin.connection_timeout_ms, 30_000);
        let c = load(
            "[admin]\nmax_connections = 4\nconnection_timeout_ms = 1000\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.admin.max_connections, 4);
        assert_eq!(c.admin.connection_timeout_ms, 1000);
        let e = load("[admin]\nmax_connections = 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("admin.max_connections:"), "{e}");
        let e = load("[admin]\nconnection_timeout_ms = 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("admin.connection_timeout_ms:"), "{e}");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load("[gateway]\nnmae = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nmae"), "{e}");
    }

    #[test]
    fn bad_listen_address_is_named() {
        let e = load("[admin]\nlisten = \"nowhere\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("admin.listen:"), "{e}");
    }

    #[test]
    fn unreachable_store_path_is_named() {
        let e = load("[store]\npath = \"/nonexistent/dir/x.sqlite\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("store.path:"), "{e}");
        assert!(e.contains("/nonexistent/dir"), "{e}");
    }

    #[test]
    fn bridge_with_unknown_adapter_is_named() {
        let e = load(
            "[adapters.x]\nkind = \"embedded\"\n[[bridge]]\nname = \"b\"\nrooms = [{adapter = \"x\", address = \"xmpp:a@b\"}, {adapter = \"y\", address = \"xmpp:c@d\"}]\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("bridge[0].rooms[1].adapter:"), "{e}");
    }

    #[test]
    fn history_defaults_and_overrides() {
        let c = load("", &[]).unwrap();
        assert!(c.history.enabled);
        assert_eq!(c.history.keep, 100);
        assert_eq!(c.history.max_age(), Duration::from_secs(7 * 24 * 3600));
        let c = load(
            "[history]\nkeep = 20\n",
            &[
                ("CPIMGATE__HISTORY__ENABLED", "false"),
                ("CPIMGATE__HISTORY__MAX_AGE_S", "3600"),
            ],
        )
        .unwrap();
        assert!(!c.history.enabled);
        assert_eq!(c.history.keep, 20);
        assert_eq!(c.history.max_age_s, 3600);
    }

    #[test]
    fn bad_history_values_are_named() {
        let e = load("[history]\nkeep = 0\n", &[]).unwrap_err().to_string();
        assert!(e.starts_with("history.keep:"), "{e}");
        let e = load("[history]\nmax_age_s = 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("history.max_age_s:"), "{e}");
        let e = load("[history]\nmax_age = 5\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_age"), "{e}");
    }

    #[test]
    fn bad_room_address_is_named() {
        let e = load(
            "[adapters.x]\nkind = \"embedded\"\n[[bridge]]\nname = \"b\"\nrooms = [{adapter = \"x\", address = \"\"}, {adapter = \"x\", address = \"xmpp:c@d\"}]\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("bridge[0].rooms[0].address:"), "{e}");
    }
}
