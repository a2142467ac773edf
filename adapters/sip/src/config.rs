//! `[adapters.NAME]` with `kind = "sip"`: the SIP MESSAGE adapter's
//! settings.
//!
//! ```toml
//! [adapters.sip]
//! kind = "sip"
//! domains = ["gw.example.com"]          # the gateway's own SIP domains
//! udp = ["0.0.0.0:5060"]
//! tcp = ["0.0.0.0:5060"]
//! tls = ["0.0.0.0:5061"]
//! tls_cert = "/etc/cpimgate/sip.pem"
//! tls_key = "/etc/cpimgate/sip.key"
//! outbound_proxy = "sip:proxy.example.com:5060;transport=tcp"
//! dns_servers = ["127.0.0.1:53"]        # RFC 3263 lookups; default: /etc/resolv.conf
//! max_message_size = 65536               # body bytes; larger gets 413
//! max_connections = 1024                 # TCP and TLS connections open at once
//! max_connections_per_ip = 256           # accepted from one address; 0: no cap
//! idle_timeout_ms = 120000               # a connection without traffic is closed
//! message_timeout_ms = 10000             # first byte to last of a message (slowloris)
//! write_timeout_ms = 10000               # a peer that does not read is cut off
//! send_queue = 64                        # messages waiting per connection
//! credentials = { user = "gw", password = "...", realm = "example.com" }
//! trusted = ["192.0.2.10"]               # never challenged
//! authenticate = true                    # challenge everyone else (401)
//! accounts = [{ user = "alice", password = "..." }]
//!
//! # Make an XMPP user reachable as a SIP address of record of a PBX:
//! # the gateway registers a Contact for it and keeps it refreshed.
//! [[adapters.sip.register]]
//! aor = "sip:bob@pbx.example.com"
//! address = "bob@xmpp.example.org"
//! expires = 3600
//! credentials = { user = "bob", password = "..." }
//! ```
//!
//! Users of other worlds are reached as
//! `sip:<escaped address>@<first domain>` (DESIGN.md "Addressing"): a
//! MESSAGE to `sip:alice%40xmpp.example.org@gw.example.com` goes to
//! `alice@xmpp.example.org` by the hub's `[[route]]` rules, and a message
//! from that user leaves with that From.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use cpimgate_model::address::Address;
use serde::{Deserialize, Serialize};

use crate::digest::Algorithm;

/// The SIP adapter's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// The gateway's SIP domains: a Request-URI on one of them names a
    /// user of another world. The first one is written in the From of
    /// MESSAGEs the gateway sends.
    pub domains: Vec<String>,
    /// UDP listen addresses.
    #[serde(default)]
    pub udp: Vec<SocketAddr>,
    /// TCP listen addresses.
    #[serde(default)]
    pub tcp: Vec<SocketAddr>,
    /// TLS listen addresses (need `tls_cert` and `tls_key`).
    #[serde(default)]
    pub tls: Vec<SocketAddr>,
    /// PEM certificate chain shown by the TLS listeners (and to servers
    /// that ask for a client certificate).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// PEM file of extra trusted CA certificates.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Whether TLS clients must show a valid certificate (mutual TLS
    /// between SIP servers). On by default.
    #[serde(default = "yes")]
    pub tls_require_client_cert: bool,
    /// The host written in the Via of requests the gateway sends; the
    /// listener's address when absent (or `127.0.0.1` for a wildcard one).
    #[serde(default)]
    pub via_host: Option<String>,
    /// Every MESSAGE goes to this proxy (a SIP URI, `sip:host[:port]`
    /// with an optional `;transport=`), with a `Route` header naming it;
    /// without it, to the server of the Request-URI. Either URI is located
    /// the RFC 3263 way: a numeric IP address as it is, a name through
    /// NAPTR, SRV and A/AAAA records, the next server tried after a
    /// transport error, a timeout or a 503.
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    /// The DNS servers asked for those records (`ip:port`, over UDP, and
    /// TCP for long answers); when empty, the nameservers of the system's
    /// `/etc/resolv.conf`. URIs with a numeric IP address need none.
    #[serde(default)]
    pub dns_servers: Vec<SocketAddr>,
    /// The largest MESSAGE body accepted, in bytes: a larger one gets 413
    /// (RFC 3261 §21.4.11).
    #[serde(default = "default_max_message_size")]
    pub max_message_size: usize,
    /// Most TCP and TLS connections open at once, accepted and opened;
    /// past it new ones are closed at once (with a log line).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most connections accepted from one IP address at once (0: no cap
    /// per address): one host that opens many cannot take every slot of
    /// `max_connections`. A proxy in front needs few.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// A connection without traffic this long is closed, milliseconds
    /// (RFC 3261 §18: keep it above 64*T1, the longest transaction).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_ms: u64,
    /// The longest a message may take from its first byte to its last
    /// (and a TLS handshake), milliseconds: a slower sender is cut off,
    /// so that half-sent messages cannot hold connections (slowloris).
    #[serde(default = "default_message_timeout")]
    pub message_timeout_ms: u64,
    /// The longest one write to a connection may take, milliseconds: a
    /// peer that does not read what it is sent is cut off once its
    /// buffers are full this long.
    #[serde(default = "default_write_timeout")]
    pub write_timeout_ms: u64,
    /// Messages that may wait to be written on one connection.
    #[serde(default = "default_send_queue")]
    pub send_queue: usize,
    /// Credentials for challenges (401/407) from the next hop.
    #[serde(default)]
    pub credentials: Option<Credentials>,
    /// Source addresses that are never challenged (the proxy in front).
    #[serde(default)]
    pub trusted: Vec<IpAddr>,
    /// Whether senders outside `trusted` must authenticate with digest
    /// (RFC 3261 §22): their MESSAGEs get 401 until they do.
    #[serde(default)]
    pub authenticate: bool,
    /// The realm of the challenges; the first domain when absent.
    #[serde(default)]
    pub realm: Option<String>,
    /// The accounts senders authenticate as, when `authenticate` is on.
    #[serde(default)]
    pub accounts: Vec<Account>,
    /// The digest algorithms challenged with, preferred first, one
    /// `WWW-Authenticate` each (RFC 8760): `SHA-256`, `MD5`,
    /// `SHA-256-sess`, `MD5-sess`. Clients that read only the first
    /// challenge and know only MD5 (sipp) need `["MD5"]`.
    #[serde(default = "default_auth_algorithms")]
    pub auth_algorithms: Vec<String>,
    /// Whether the `uri` of a sender's credentials must be the
    /// Request-URI. On by default; RFC 3261 §22.4 item 6 lets a proxy's
    /// rewrite make them differ, and sipp answers with its peer's address.
    #[serde(default = "yes")]
    pub auth_check_uri: bool,
    /// How far, in seconds, the Date of a signed MESSAGE may be from now
    /// before it is answered 400 Incorrect Date or Time (RFC 3428 §11.4:
    /// "several minutes").
    #[serde(default = "default_date_window")]
    pub date_window_s: u64,
    /// RFC 3261 timer T1 (round-trip estimate), milliseconds.
    #[serde(default = "default_t1")]
    pub t1_ms: u64,
    /// RFC 3261 timer T2 (longest retransmit interval), milliseconds.
    #[serde(default = "default_t2")]
    pub t2_ms: u64,
    /// Addresses of record the gateway registers with a registrar
    /// (RFC 3261 §10) for users of other worlds.
    #[serde(default)]
    pub register: Vec<Registration>,
}

/// One address of record registered for a user of another world
/// (`[[adapters.NAME.register]]`).
///
/// The Contact is the gateway address of that user on the gateway's own
/// host and port (`sip:bob%40xmpp.example.org@192.0.2.1:5060`), so a
/// request the registrar's proxy sends to the Contact names the user; a
/// message from that user to SIP leaves with the address of record as
/// From, so that replies go through the registrar too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The address of record (`sip:bob@pbx.example.com`): To and From of
    /// the REGISTER.
    pub aor: String,
    /// The user of another world it reaches (`bob@xmpp.example.org`, a
    /// JID or any address the gateway reads, DESIGN.md "Addressing").
    pub address: String,
    /// The registrar's URI, the REGISTER's Request-URI; `sip:` and the
    /// host of `aor` when absent (RFC 3261 §10.2). It goes to
    /// `outbound_proxy` when one is set.
    #[serde(default)]
    pub registrar: Option<String>,
    /// The registration interval asked for, in seconds; the registrar's
    /// answer decides (RFC 3261 §10.2.1, §10.2.4).
    #[serde(default = "default_expires")]
    pub expires: u32,
    /// The credentials for the registrar's challenges; the adapter's
    /// `credentials` when absent.
    #[serde(default)]
    pub credentials: Option<Credentials>,
}

fn default_expires() -> u32 {
    3600
}

impl Registration {
    /// The Request-URI of its REGISTERs.
    pub fn registrar_uri(&self) -> Result<String, String> {
        if let Some(r) = &self.registrar {
            return Ok(r.clone());
        }
        match self.aor.parse::<Address>() {
            Ok(Address::Sip(u)) => {
                let scheme = if u.is_secure() { "sips" } else { "sip" };
                Ok(format!("{scheme}:{}", u.host()))
            }
            _ => Err(format!("{:?} is not a SIP URI", self.aor)),
        }
    }
}

/// A user name and password to answer challenges with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
    /// Answer only challenges of this realm; any realm when absent.
    #[serde(default)]
    pub realm: Option<String>,
}

/// An account a sender may authenticate as.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl Account {
    /// The digest server's password lookup over `accounts` (one realm).
    pub fn lookup(accounts: &[Account]) -> impl Fn(&str, &str) -> Option<String> + '_ {
        |user, _realm| {
            accounts
                .iter()
                .find(|a| a.user == user)
                .map(|a| a.password.clone())
        }
    }
}

fn yes() -> bool {
    true
}

fn default_max_message_size() -> usize {
    65_536
}

fn default_max_connections() -> usize {
    1024
}

fn default_max_connections_per_ip() -> usize {
    256
}

fn default_idle_timeout() -> u64 {
    120_000
}

fn default_message_timeout() -> u64 {
    10_000
}

fn default_write_timeout() -> u64 {
    10_000
}

fn default_send_queue() -> usize {
    64
}

fn default_auth_algorithms() -> Vec<String> {
    vec!["SHA-256".to_owned(), "MD5".to_owned()]
}

fn default_date_window() -> u64 {
    300
}

fn default_t1() -> u64 {
    500
}

fn default_t2() -> u64 {
    4_000
}

impl SipConfig {
    /// A configuration for `domain` with no listener and defaults
    /// elsewhere.
    pub fn new(domain: &str) -> Self {
        SipConfig {
            domains: vec![domain.to_owned()],
            udp: Vec::new(),
            tcp: Vec::new(),
            tls: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            tls_require_client_cert: true,
            via_host: None,
            outbound_proxy: None,
            dns_servers: Vec::new(),
            max_message_size: default_max_message_size(),
            max_connections: default_max_connections(),
            max_connections_per_ip: default_max_connections_per_ip(),
            idle_timeout_ms: default_idle_timeout(),
            message_timeout_ms: default_message_timeout(),
            write_timeout_ms: default_write_timeout(),
            send_queue: default_send_queue(),
            credentials: None,
            trusted: Vec::new(),
            authenticate: false,
            realm: None,
            accounts: Vec::new(),
            auth_algorithms: default_auth_algorithms(),
            auth_check_uri: true,
            date_window_s: default_date_window(),
            t1_ms: default_t1(),
            t2_ms: default_t2(),
            register: Vec::new(),
        }
    }

    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.domains.is_empty() {
            return Err("domains: name at least one domain of the gateway".into());
        }
        for (i, d) in self.domains.iter().enumerate() {
            if d.is_empty() || d.contains(['@', ':', ';', '/', ' ']) {
                return Err(format!("domains[{i}]: {d:?} is not a host name"));
            }
        }
        if self.udp.is_empty() && self.tcp.is_empty() && self.tls.is_empty() {
            return Err("udp: give at least one listen address (udp, tcp or tls)".into());
        }
        if !self.tls.is_empty() && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return Err("tls_cert: a TLS listener needs tls_cert and tls_key".into());
        }
        if let Some(p) = &self.outbound_proxy {
            match p.parse::<Address>() {
                Ok(Address::Sip(_)) => {}
                _ => {
                    return Err(format!(
                        "outbound_proxy: {p:?} is not a SIP URI (sip:host[:port])"
                    ));
                }
            }
        }
        if self.max_message_size == 0 {
            return Err("max_message_size: must be at least 1".into());
        }
        if self.max_connections == 0 {
            return Err("max_connections: must be at least 1".into());
        }
        for (key, ms) in [
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("message_timeout_ms", self.message_timeout_ms),
            ("write_timeout_ms", self.write_timeout_ms),
        ] {
            if ms == 0 {
                return Err(format!("{key}: must be at least 1"));
            }
        }
        if self.send_queue == 0 {
            return Err("send_queue: must be at least 1".into());
        }
        if self.authenticate && self.accounts.is_empty() {
            return Err("accounts: authenticate = true needs at least one account".into());
        }
        if self.auth_algorithms.is_empty() {
            return Err("auth_algorithms: name at least one".into());
        }
        for (i, a) in self.auth_algorithms.iter().enumerate() {
            if Algorithm::from_token(a).is_none() {
                return Err(format!(
                    "auth_algorithms[{i}]: {a:?} is not SHA-256, MD5, SHA-256-sess or MD5-sess"
                ));
            }
        }
        for (i, r) in self.register.iter().enumerate() {
            match r.aor.parse::<Address>() {
                Ok(Address::Sip(u)) if u.user().is_some() => {}
                _ => {
                    return Err(format!(
                        "register[{i}].aor: {:?} is not a SIP URI with a user",
                        r.aor
                    ));
                }
            }
            if !matches!(
                r.registrar_uri().map(|u| u.parse::<Address>()),
                Ok(Ok(Address::Sip(_)))
            ) {
                return Err(format!(
                    "register[{i}].registrar: {:?} is not a SIP URI",
                    r.registrar
                ));
            }
            if let Err(e) = Address::from_gateway_user(&r.address) {
                return Err(format!(
                    "register[{i}].address: {:?} is not an address: {e}",
                    r.address
                ));
            }
            if r.expires == 0 {
                return Err(format!("register[{i}].expires: must be at least 1"));
            }
        }
        if self.t1_ms == 0 || self.t2_ms < self.t1_ms {
            return Err("t1_ms: T1 must be at least 1 ms and at most t2_ms".into());
        }
        Ok(())
    }

    /// The domain written in the From of outgoing MESSAGEs.
    pub fn primary_domain(&self) -> &str {
        self.domains.first().map_or("localhost", String::as_str)
    }

    /// Whether `host` is one of the gateway's domains.
    pub fn is_ours(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.domains
            .iter()
            .any(|d| d.trim_end_matches('.').eq_ignore_ascii_case(host))
    }

    /// The challenge algorithms, in order; unknown names are skipped
    /// ([`SipConfig::validate`] refuses them).
    pub fn algorithms(&self) -> Vec<Algorithm> {
        self.auth_algorithms
            .iter()
            .filter_map(|a| Algorithm::from_token(a))
            .collect()
    }

    /// T1.
    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }

    /// T2.
    pub fn t2(&self) -> Duration {
        Duration::from_millis(self.t2_ms)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn validation_names_the_key() {
        let mut c = SipConfig::new("gw.example.com");
        assert!(c.validate().unwrap_err().starts_with("udp:"));
        c.udp.push("127.0.0.1:5060".parse().unwrap());
        c.validate().unwrap();
        c.outbound_proxy = Some("proxy.example.com".into());
        assert!(c.validate().unwrap_err().starts_with("outbound_proxy:"));
        c.outbound_proxy = Some("sip:proxy.example.com:5070;transport=tcp".into());
        c.validate().unwrap();
        c.auth_algorithms = vec!["SHA-512".into()];
        assert!(c.validate().unwrap_err().starts_with("auth_algorithms[0]:"));
        c.auth_algorithms = vec!["md5".into()];
        c.validate().unwrap();
        c.authenticate = true;
        assert!(c.validate().unwrap_err().starts_with("accounts:"));
        c.domains = vec!["a@b".into()];
        assert!(c.validate().unwrap_err().starts_with("domains[0]:"));
    }

    #[test]
    fn connection_limits_from_toml() {
        let c: SipConfig = toml::from_str(
            "domains = [\"gw\"]\ntcp = [\"127.0.0.1:5060\"]\nmax_connections = 10\n\
             max_connections_per_ip = 2\nidle_timeout_ms = 3000\nmessage_timeout_ms = 1500\n\
             write_timeout_ms = 2000\nsend_queue = 4",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!((c.max_connections, c.max_connections_per_ip), (10, 2));
        assert_eq!(
            (c.idle_timeout_ms, c.message_timeout_ms, c.write_timeout_ms),
            (3000, 1500, 2000)
        );
        assert_eq!(c.send_queue, 4);
        let d = SipConfig::new("gw");
        assert_eq!((d.max_connections, d.max_connections_per_ip), (1024, 256));
        let mut bad = c.clone();
        bad.write_timeout_ms = 0;
        assert!(bad.validate().unwrap_err().starts_with("write_timeout_ms:"));
        bad = c;
        bad.max_connections = 0;
        assert!(bad.validate().unwrap_err().starts_with("max_connections:"));
    }

    #[test]
    fn dns_servers_from_toml() {
        let c: SipConfig = toml::from_str(
            "domains = [\"gw.example.com\"]\nudp = [\"127.0.0.1:5060\"]\ndns_servers = [\"127.0.0.1:5353\", \"[::1]:53\"]",
        )
        .unwrap();
        assert_eq!(c.dns_servers.len(), 2);
        assert_eq!(c.dns_servers[0].port(), 5353);
        assert!(SipConfig::new("gw").dns_servers.is_empty(), "the system's");
        let bad = toml::from_str::<SipConfig>("domains = [\"gw\"]\ndns_server = []");
        assert!(bad.is_err(), "deny_unknown_fields");
    }

    #[test]
    fn registrations_are_checked() {
        let mut c = SipConfig::new("gw.example.com");
        c.udp = vec!["127.0.0.1:5060".parse().unwrap()];
        let r = Registration {
            aor: "sip:bob@pbx.example.com".into(),
            address: "bob@xmpp.example.org".into(),
            registrar: None,
            expires: 3600,
            credentials: None,
        };
        assert_eq!(r.registrar_uri().unwrap(), "sip:pbx.example.com");
        c.register = vec![r.clone()];
        assert_eq!(c.validate(), Ok(()));
        c.register[0].aor = "sip:pbx.example.com".into();
        assert!(c.validate().unwrap_err().starts_with("register[0].aor:"));
        c.register[0] = Registration {
            registrar: Some("mailto:x@y".into()),
            ..r.clone()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .starts_with("register[0].registrar:")
        );
        c.register[0] = Registration { expires: 0, ..r };
        assert!(
            c.validate()
                .unwrap_err()
                .starts_with("register[0].expires:")
        );
    }

    #[test]
    fn domains_compare_without_case() {
        let c = SipConfig::new("GW.example.com");
        assert!(c.is_ours("gw.EXAMPLE.com."));
        assert!(!c.is_ours("example.com"));
    }
}
