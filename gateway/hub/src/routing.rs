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
        let text = target.to_string();
        let (scheme, domain) = scheme_and_domain(&text);
        self.rules
            .iter()
            .find(|rule| {
                rule.scheme
                    .as_deref()
                    .is_none_or(|s| s.eq_ignore_ascii_case(scheme))
                    && domain_matches(&rule.domain, &domain)
            })
            .map(|rule| (rule.adapter.clone(), target))
    }

    /// `scheme:<escaped address>@<gateway domain>` → the escaped address.
    fn unwrap(&self, to: &Address) -> Option<Address> {
        let text = to.to_string();
        let (_, domain) = scheme_and_domain(&text);
        if !self.gateway_domains.contains(&domain) {
            return None;
        }
        let after_scheme = text.split_once(':')?.1;
        let user = after_scheme.trim_start_matches('/').rsplit_once('@')?.0;
        let decoded = percent_decode(user)?;
        if !decoded.contains('@') {
            return None;
        }
        let candidate = match decoded.split_once(':') {
            Some((s, _)) if s.chars().all(|c| c.is_ascii_alphanumeric()) && !s.contains('@') => {
                decoded
            }
            _ => format!("im:{decoded}"),
        };
        candidate.parse().ok()
    }
}

/// The scheme and the lower-cased domain of an address in its string form:
/// the host after the last `@` (or after `//` for `irc://network/...`), up
/// to a port, path, parameter or header.
fn scheme_and_domain(text: &str) -> (&str, String) {
    let Some((scheme, rest)) = text.split_once(':') else {
        return ("", String::new());
    };
    let hostpart = if let Some(authority) = rest.strip_prefix("//") {
        authority.split(['/', '?', '#']).next().unwrap_or("")
    } else {
        let end = rest.find(['/', ';', '?']).unwrap_or(rest.len());
        let addr = &rest[..end];
        addr.rsplit_once('@').map_or(addr, |(_, h)| h)
    };
    let host = hostpart.rsplit_once('@').map_or(hostpart, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.split(':').next().unwrap_or(host)
    };
    (scheme, host.to_ascii_lowercase())
}

fn domain_matches(pattern: &str, domain: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => domain
            .strip_suffix(suffix)
            .is_some_and(|head| head.ends_with('.')),
        None => pattern == domain,
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn domains_are_found() {
        assert_eq!(
            scheme_and_domain("sip:alice@Atlanta.example.com;transport=tcp"),
            ("sip", "atlanta.example.com".to_owned())
        );
        assert_eq!(
            scheme_and_domain("sip:alice@atlanta.example.com:5061"),
            ("sip", "atlanta.example.com".to_owned())
        );
        assert_eq!(
            scheme_and_domain("xmpp:romeo@montague.net/orchard"),
            ("xmpp", "montague.net".to_owned())
        );
        assert_eq!(
            scheme_and_domain("irc://irc.example.org/%23chan"),
            ("irc", "irc.example.org".to_owned())
        );
        assert_eq!(
            scheme_and_domain("tel:+1-201-555-0123"),
            ("tel", "+1-201-555-0123".to_owned())
        );
    }

    #[test]
    fn wildcards() {
        assert!(domain_matches("*", "x.org"));
        assert!(domain_matches("*.example.com", "a.example.com"));
        assert!(!domain_matches("*.example.com", "example.com"));
        assert!(!domain_matches("*.example.com", "aexample.com"));
        assert!(domain_matches("Example.COM", "example.com"));
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
            kind = "xmpp"
            [adapters.s]
            kind = "sip"
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
    }

    #[test]
    fn fan_out_excludes_the_origin_room() {
        let r = Routes::from_config(&cfg(r#"
            [adapters.x]
            kind = "xmpp"
            [adapters.i]
            kind = "irc"
            [adapters.m]
            kind = "msrp"
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
