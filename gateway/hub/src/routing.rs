//! Where a message goes: bridges for rooms, rules for 1:1 messages.
//!
//! A room message goes to every other room of its bridge and never back
//! into the room it came from. A 1:1 message (and a private message inside
//! a room) goes where the first matching `[[route]]` rule says, after an
//! address of one of the gateway's own domains has been unwrapped
//! (`sip:alice%40xmpp.example.org@gw.example.com` is `alice@xmpp.example.org`).

use std::collections::HashMap;

use cpimgate_model::{Address, RoomRef};

use crate::config::{Config, RouteSection};

/// The routing table, built once from config.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    bridge_of: HashMap<RoomRef, usize>,
    bridges: Vec<(String, Vec<RoomRef>)>,
    rules: Vec<RouteSection>,
    gateway_domains: Vec<String>,
}

impl Routes {
    /// Build from a validated config.
    pub fn from_config(cfg: &Config) -> Routes {
        let mut r = Routes {
            rules: cfg.route.clone(),
            gateway_domains: cfg
                .gateway
                .domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            ..Routes::default()
        };
        for b in &cfg.bridge {
            let rooms: Vec<RoomRef> = b
                .rooms
                .iter()
                .filter_map(|room| {
                    // Validation already parsed every address.
                    room.address.parse().ok().map(|address| RoomRef {
                        adapter: room.adapter.clone(),
                        address,
                    })
                })
                .collect();
            let idx = r.bridges.len();
            for room in &rooms {
                r.bridge_of.insert(room.clone(), idx);
            }
            r.bridges.push((b.name.clone(), rooms));
        }
        r
    }

    /// The bridges, by name, with their rooms.
    pub fn bridges(&self) -> impl Iterator<Item = (&str, &[RoomRef])> {
        self.bridges.iter().map(|(n, r)| (n.as_str(), r.as_slice()))
    }

    /// The name of the bridge a room belongs to.
    pub fn bridge_name(&self, room: &RoomRef) -> Option<&str> {
        self.bridge_of
            .get(room)
            .map(|&i| self.bridges[i].0.as_str())
    }

    /// Every room a message or event of `room` goes to: the other rooms of
    /// its bridge. Empty when the room is in no bridge.
    pub fn fan_out(&self, room: &RoomRef) -> Vec<RoomRef> {
        match self.bridge_of.get(room) {
            Some(&i) => self.bridges[i]
                .1
                .iter()
                .filter(|r| *r != room)
                .cloned()
                .collect(),
            None => Vec::new(),
        }
    }

    /// The adapter a 1:1 message to `to` goes to, and the address it goes
    /// to there (unwrapped when it was an address of one of the gateway's
    /// domains).
    pub fn route(&self, to: &Address) -> Option<(String, Address)> {
        let target = self.unwrap(to).unwrap_or_else(|| to.clone());
        let domain = domain_of(&target);
        let scheme = target.scheme();
        self.rules
            .iter()
            .find(|rule| {
                rule.scheme
                    .as_deref()
                    .is_none_or(|s| s.eq_ignore_ascii_case(scheme))
                    && domain_matches(&rule.domain, domain.as_deref())
            })
            .map(|rule| (rule.adapter.clone(), target))
    }

    /// An address of one of the gateway's domains → the address of another
    /// world it stands for (DESIGN "Addressing": the user part of
    /// `sip:alice%40xmpp.example.org@gw.example.com` is
    /// `alice@xmpp.example.org`).
    fn unwrap(&self, to: &Address) -> Option<Address> {
        let domain = domain_of(to)?;
        if !self.gateway_domains.contains(&domain) {
            return None;
        }
        match to {
            Address::Sip(u) => Address::from_gateway_user(u.user()?).ok(),
            Address::Im(u) => Address::from_gateway_user(u.user()).ok(),
            Address::Xmpp(u) => Address::from_component_jid(u.jid(), &domain).ok(),
            _ => None,
        }
    }
}

/// The lower-cased domain an address lives in: the host of a SIP URI, the
/// domain of an `im:` URI or a JID, the network of an IRC address; none for
/// `tel:`.
fn domain_of(a: &Address) -> Option<String> {
    let d = match a {
        Address::Sip(u) => u.host().to_string(),
        Address::Im(u) => u.domain().to_owned(),
        Address::Xmpp(u) => u.jid().domain().to_owned(),
        Address::Irc(i) => i.network().to_string(),
        Address::Tel(_) => return None,
    };
    Some(d.to_ascii_lowercase())
}

/// `*` matches anything (a `tel:` number included); `*.example.com` the
/// subdomains of `example.com`; anything else the domain itself.
fn domain_matches(pattern: &str, domain: Option<&str>) -> bool {
    if pattern == "*" {
        return true;
    }
    let Some(domain) = domain else {
        return false;
    };
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => domain
            .strip_suffix(suffix)
            .is_some_and(|head| head.ends_with('.')),
        None => pattern == domain,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn domain(s: &str) -> Option<String> {
        domain_of(&s.parse().unwrap())
    }

    #[test]
    fn domains_are_found() {
        assert_eq!(
            domain("sip:alice@Atlanta.example.com;transport=tcp").as_deref(),
            Some("atlanta.example.com")
        );
        assert_eq!(
            domain("sip:alice@atlanta.example.com:5061").as_deref(),
            Some("atlanta.example.com")
        );
        assert_eq!(
            domain("xmpp:romeo@montague.net/orchard").as_deref(),
            Some("montague.net")
        );
        assert_eq!(
            domain("irc://irc.example.org/%23chan").as_deref(),
            Some("irc.example.org")
        );
        assert_eq!(
            domain("im:piglet@100akerwood.com").as_deref(),
            Some("100akerwood.com")
        );
        assert_eq!(domain("tel:+1-201-555-0123"), None);
    }

    #[test]
    fn wildcards() {
        assert!(domain_matches("*", Some("x.org")));
        assert!(domain_matches("*", None));
        assert!(domain_matches("*.example.com", Some("a.example.com")));
        assert!(!domain_matches("*.example.com", Some("example.com")));
        assert!(!domain_matches("*.example.com", Some("aexample.com")));
        assert!(domain_matches("Example.COM", Some("example.com")));
        assert!(!domain_matches("example.com", None));
    }

    fn cfg(text: &str) -> Config {
        let c: Config = toml::from_str(text).unwrap();
        c.validate().unwrap();
        c
    }

    #[test]
    fn gateway_addresses_are_unwrapped_then_routed() {
        let r = Routes::from_config(&cfg(r#"
            [gateway]
            domains = ["gw.example.com"]
            [adapters.x]
            kind = "embedded"
            [adapters.s]
            kind = "embedded"
            [[route]]
            domain = "xmpp.example.org"
            adapter = "x"
            [[route]]
            scheme = "sip"
            domain = "*"
            adapter = "s"
        "#));
        let to: Address = "sip:alice%40xmpp.example.org@gw.example.com"
            .parse()
            .unwrap();
        let (adapter, addr) = r.route(&to).unwrap();
        assert_eq!(adapter, "x");
        assert_eq!(addr.to_string(), "im:alice@xmpp.example.org");
        let to: Address = "sip:bob@biloxi.example.com".parse().unwrap();
        assert_eq!(r.route(&to).unwrap().0, "s");
        let to: Address = "im:carol@nowhere.example".parse().unwrap();
        assert!(r.route(&to).is_none());
        // An IRC nick behind the gateway's domain, and a JID-escaped one.
        let to: Address = "sip:alice%25irc.example.org@gw.example.com"
            .parse()
            .unwrap();
        assert_eq!(r.route(&to), None, "no rule for IRC");
        let to: Address = "xmpp:romeo%5C40xmpp.example.org@gw.example.com"
            .parse()
            .unwrap();
        let (adapter, addr) = r.route(&to).unwrap();
        assert_eq!(adapter, "x");
        assert_eq!(addr.to_string(), "im:romeo@xmpp.example.org");
    }

    #[test]
    fn fan_out_excludes_the_origin_room() {
        let r = Routes::from_config(&cfg(r#"
            [adapters.x]
            kind = "embedded"
            [adapters.i]
            kind = "embedded"
            [adapters.m]
            kind = "embedded"
            [[bridge]]
            name = "lobby"
            rooms = [
              { adapter = "x", address = "xmpp:lobby@conference.example.org" },
              { adapter = "i", address = "irc://irc.example.org/%23lobby" },
              { adapter = "m", address = "sip:lobby@chat.example.com" },
            ]
        "#));
        let origin = RoomRef {
            adapter: "i".into(),
            address: "irc://irc.example.org/%23lobby".parse().unwrap(),
        };
        let out = r.fan_out(&origin);
        assert_eq!(out.len(), 2);
        assert!(!out.contains(&origin));
        assert_eq!(r.bridge_name(&origin), Some("lobby"));
        let stranger = RoomRef {
            adapter: "i".into(),
            address: "irc://irc.example.org/%23other".parse().unwrap(),
        };
        assert!(r.fan_out(&stranger).is_empty());
    }
}
