//! The gateway's mappings of addresses into JIDs of its XMPP component
//! (DESIGN.md "Addressing"), with XEP-0106 escaping.
//!
//! * A user of another world: `<escaped address>@<component domain>`. An
//!   `im:` address (the canonical identity) loses its scheme:
//!   `im:alice@atlanta.example.com` is
//!   `alice\40atlanta.example.com@sip.gw.example.com`. An IRC nick takes
//!   biboumi's form `nick%network`. Every other address keeps its scheme
//!   (`sip\3abob\40biloxi.com@...`), and so does any `im:` or IRC address
//!   whose short form would read back as something else: the mapping is
//!   always reversible.
//! * A room of another world: `<room>%<host>@<component domain>` (biboumi's
//!   convention): `#chan%irc.example.org@irc.gw.example.com` is channel
//!   `#chan` on `irc.example.org`; `chatroom22%chat.example.com@gw.example.com`
//!   is the SIP chat room `sip:chatroom22@chat.example.com`.

use super::{
    Address, AddressError, ImUri, IrcAddress, IrcTarget, Jid, SipUri, escape_node, unescape_node,
};

fn is_channel_prefix(c: char) -> bool {
    matches!(c, '#' | '&' | '+' | '!')
}

fn same_domain(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// The short, scheme-less form of an address, where it has one.
fn short_form(a: &Address) -> Option<String> {
    match a {
        Address::Im(u) if u.headers().is_empty() => Some(format!("{}@{}", u.user(), u.domain())),
        Address::Irc(i) if !i.is_secure() && i.port().is_none() => {
            let t = match i.target() {
                IrcTarget::Channel(c) | IrcTarget::Nick(c) => c,
            };
            Some(format!("{t}%{}", i.network()))
        }
        _ => None,
    }
}

/// Reads an unescaped component localpart back into an address.
fn from_local(u: &str) -> Result<Address, AddressError> {
    if u.contains(':') {
        return u.parse();
    }
    if u.starts_with(is_channel_prefix) {
        if let Some(p) = u.rfind('%') {
            return IrcAddress::channel(&u[p + 1..], &u[..p]).map(Address::Irc);
        }
    }
    if let Some(at) = u.rfind('@') {
        return ImUri::new(&u[..at], &u[at + 1..]).map(Address::Im);
    }
    if let Some(p) = u.rfind('%') {
        return IrcAddress::nick(&u[p + 1..], &u[..p]).map(Address::Irc);
    }
    Err(AddressError::Mapping {
        reason: "the localpart is neither an address, user@domain, nick%network nor #channel%network",
    })
}

fn node_of<'a>(jid: &'a Jid, component_domain: &str) -> Result<&'a str, AddressError> {
    if !same_domain(jid.domain(), component_domain) {
        return Err(AddressError::Mapping {
            reason: "the JID is not on the component's domain",
        });
    }
    jid.node().ok_or(AddressError::Mapping {
        reason: "the JID has no localpart",
    })
}

impl Address {
    /// The JID that stands for this address of another world on the XMPP
    /// component `component_domain`.
    ///
    /// Fails when the escaped address is longer than a localpart may be
    /// (1023 bytes) or holds control characters.
    ///
    /// ```
    /// use cpimgate_model::address::{Address, Jid};
    /// let a: Address = "im:alice@atlanta.example.com".parse().unwrap();
    /// let j = a.to_component_jid("sip.gw.example.com").unwrap();
    /// assert_eq!(j.to_string(), r"alice\40atlanta.example.com@sip.gw.example.com");
    /// assert_eq!(Address::from_component_jid(&j, "sip.gw.example.com").unwrap(), a);
    ///
    /// let a: Address = "sip:bob@biloxi.com;transport=tcp".parse().unwrap();
    /// let j = a.to_component_jid("sip.gw.example.com").unwrap();
    /// assert_eq!(j.to_string(), r"sip\3abob\40biloxi.com;transport=tcp@sip.gw.example.com");
    ///
    /// let a: Address = "irc://irc.example.org/alice,isnick".parse().unwrap();
    /// let j = a.to_component_jid("irc.gw.example.com").unwrap();
    /// assert_eq!(j.to_string(), "alice%irc.example.org@irc.gw.example.com");
    /// ```
    pub fn to_component_jid(&self, component_domain: &str) -> Result<Jid, AddressError> {
        let local = match short_form(self) {
            Some(s) if from_local(&s).as_ref() == Ok(self) => s,
            _ => self.to_string(),
        };
        Jid::new(Some(&escape_node(&local)), component_domain, None)
    }

    /// The address of another world that a JID of the component
    /// `component_domain` stands for: the reverse of
    /// [`Address::to_component_jid`]. The resource is ignored.
    ///
    /// ```
    /// use cpimgate_model::address::{Address, Jid};
    /// let j: Jid = r"here\27s_a_wild_\26_\2fcr%zy\2f_address\40example.com@gw.example.com".parse().unwrap();
    /// let a = Address::from_component_jid(&j, "gw.example.com").unwrap();
    /// assert_eq!(a.to_string(), "im:here%27s_a_wild_%26_%2Fcr%25zy%2F_address@example.com");
    ///
    /// let other: Jid = "alice@elsewhere.example.com".parse().unwrap();
    /// assert!(Address::from_component_jid(&other, "gw.example.com").is_err());
    /// ```
    pub fn from_component_jid(jid: &Jid, component_domain: &str) -> Result<Address, AddressError> {
        from_local(&unescape_node(node_of(jid, component_domain)?)?)
    }

    /// The SIP address that stands for this address of another world under
    /// the gateway's SIP domain: the same local part as
    /// [`Address::to_component_jid`], percent-encoded as a SIP user part
    /// instead of XEP-0106-escaped.
    ///
    /// ```
    /// use cpimgate_model::address::{Address, SipUri};
    /// let a: Address = "im:alice@xmpp.example.org".parse().unwrap();
    /// let s = a.to_gateway_sip("gw.example.com").unwrap();
    /// assert_eq!(s.to_string(), "sip:alice%40xmpp.example.org@gw.example.com");
    /// assert_eq!(Address::from_gateway_user(s.user().unwrap()).unwrap(), a);
    ///
    /// let a: Address = "irc://irc.example.org/alice,isnick".parse().unwrap();
    /// let s = a.to_gateway_sip("gw.example.com").unwrap();
    /// assert_eq!(s.to_string(), "sip:alice%25irc.example.org@gw.example.com");
    /// ```
    pub fn to_gateway_sip(&self, gateway_domain: &str) -> Result<SipUri, AddressError> {
        let local = match short_form(self) {
            Some(s) if from_local(&s).as_ref() == Ok(self) => s,
            _ => self.to_string(),
        };
        SipUri::new(Some(&local), gateway_domain)
    }

    /// Reads the (decoded) user part of a gateway address back into the
    /// address it stands for: `alice@xmpp.example.org` is
    /// `im:alice@xmpp.example.org`, `alice%irc.example.org` an IRC nick,
    /// `#chan%irc.example.org` an IRC channel, and a full URI itself.
    pub fn from_gateway_user(user: &str) -> Result<Address, AddressError> {
        from_local(user)
    }

    /// The room JID that stands for this room of another world: an IRC
    /// channel, or a SIP chat room URI (`sip:room@host` with no port,
    /// password, parameters or headers, and a room name that does not
    /// start like a channel).
    ///
    /// The port and TLS flag of an IRC address are not part of the room's
    /// name (they are the IRC adapter's configuration) and are dropped.
    ///
    /// ```
    /// use cpimgate_model::address::{Address, IrcAddress};
    /// let chan = Address::Irc(IrcAddress::channel("irc.example.org", "#chan").unwrap());
    /// let j = chan.to_room_jid("irc.gw.example.com").unwrap();
    /// assert_eq!(j.to_string(), "#chan%irc.example.org@irc.gw.example.com");
    /// assert_eq!(Address::from_room_jid(&j, "irc.gw.example.com").unwrap(), chan);
    ///
    /// let room: Address = "sip:chatroom22@chat.example.com".parse().unwrap();
    /// let j = room.to_room_jid("gw.example.com").unwrap();
    /// assert_eq!(j.to_string(), "chatroom22%chat.example.com@gw.example.com");
    /// assert_eq!(Address::from_room_jid(&j, "gw.example.com").unwrap(), room);
    /// ```
    pub fn to_room_jid(&self, component_domain: &str) -> Result<Jid, AddressError> {
        let local = match self {
            Address::Irc(i) => match i.target() {
                IrcTarget::Channel(c) => format!("{c}%{}", i.network()),
                IrcTarget::Nick(_) => {
                    return Err(AddressError::Mapping {
                        reason: "an IRC nick is not a room",
                    });
                }
            },
            Address::Sip(u) => {
                let plain = !u.is_secure()
                    && u.password().is_none()
                    && u.port().is_none()
                    && u.params().is_empty()
                    && u.headers().is_empty();
                match u.user() {
                    Some(user) if plain && !user.starts_with(is_channel_prefix) => {
                        format!("{user}%{}", u.host())
                    }
                    _ => {
                        return Err(AddressError::Mapping {
                            reason: "only sip:room@host, with a room not starting with #&+!, has a room JID",
                        });
                    }
                }
            }
            _ => {
                return Err(AddressError::Mapping {
                    reason: "only IRC channels and SIP chat rooms have a room JID",
                });
            }
        };
        Jid::new(Some(&escape_node(&local)), component_domain, None)
    }

    /// The room of another world that a room JID of the component stands
    /// for: the reverse of [`Address::to_room_jid`]. A room starting with
    /// `#`, `&`, `+` or `!` is an IRC channel, any other a SIP chat room.
    ///
    /// ```
    /// use cpimgate_model::address::{Address, Jid};
    /// let j: Jid = "#test%irc.example.org@irc.gw.example.com".parse().unwrap();
    /// let a = Address::from_room_jid(&j, "irc.gw.example.com").unwrap();
    /// assert_eq!(a.to_string(), "irc://irc.example.org/%23test");
    /// ```
    pub fn from_room_jid(jid: &Jid, component_domain: &str) -> Result<Address, AddressError> {
        let local = unescape_node(node_of(jid, component_domain)?)?;
        let p = local.rfind('%').ok_or(AddressError::Mapping {
            reason: "a room JID's localpart is room%host",
        })?;
        let (room, host) = (&local[..p], &local[p + 1..]);
        if room.starts_with(is_channel_prefix) {
            IrcAddress::channel(host, room).map(Address::Irc)
        } else if room.is_empty() {
            Err(AddressError::Mapping {
                reason: "empty room name",
            })
        } else {
            SipUri::new(Some(room), host).map(Address::Sip)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn round_trip(s: &str, domain: &str) -> String {
        let a: Address = s.parse().unwrap();
        let j = a.to_component_jid(domain).unwrap();
        assert_eq!(
            Address::from_component_jid(&j, domain).unwrap(),
            a,
            "{s} -> {j}"
        );
        let again: Jid = j.to_string().parse().unwrap();
        assert_eq!(again, j);
        j.to_string()
    }

    #[test]
    fn component_jids() {
        let d = "gw.example.com";
        assert_eq!(
            round_trip("im:alice@atlanta.example.com", d),
            r"alice\40atlanta.example.com@gw.example.com"
        );
        assert_eq!(
            round_trip("im:d%27artagnan@musketeers.lit", d),
            r"d\27artagnan\40musketeers.lit@gw.example.com"
        );
        assert_eq!(
            round_trip("im:a%3Fb@x.org?subject=hi", d),
            r"im\3aa%3Fb\40x.org?subject=hi@gw.example.com"
        );
        assert_eq!(
            round_trip("im:%23a%25b@x.org", d),
            r"im\3a%23a%25b\40x.org@gw.example.com"
        );
        assert_eq!(
            round_trip("sip:alice@atlanta.com", d),
            r"sip\3aalice\40atlanta.com@gw.example.com"
        );
        assert_eq!(
            round_trip("tel:+1-201-555-0123", d),
            r"tel\3a+1-201-555-0123@gw.example.com"
        );
        assert_eq!(
            round_trip("xmpp:romeo@montague.net", d),
            r"xmpp\3aromeo\40montague.net@gw.example.com"
        );
        assert_eq!(
            round_trip("irc://irc.example.org/%23rust", d),
            "#rust%irc.example.org@gw.example.com"
        );
        assert_eq!(
            round_trip("irc://irc.example.org/bob,isnick", d),
            "bob%irc.example.org@gw.example.com"
        );
        assert_eq!(
            round_trip("ircs://irc.example.org/bob,isnick", d),
            r"ircs\3a\2f\2firc.example.org\2fbob,isnick@gw.example.com"
        );
        // RFC 7701-style nickname URI and the XEP-0106 §6.3 sip: example.
        round_trip("sip:Alice%20the%20great@chat.example.com", d);
        round_trip(
            "sip:here%27s_a_wild_%26_%2Fcr%25zy%2F_address@example.com",
            d,
        );
        round_trip(r"im:c%3A%5C5commas@example.com", d);
    }

    #[test]
    fn component_jid_errors() {
        let j: Jid = "alice@gw.example.com".parse().unwrap();
        assert!(matches!(
            Address::from_component_jid(&j, "gw.example.com"),
            Err(AddressError::Mapping { .. })
        ));
        let j: Jid = "gw.example.com".parse().unwrap();
        assert!(Address::from_component_jid(&j, "gw.example.com").is_err());
        let j: Jid = r"a\40@gw.example.com".parse().unwrap();
        assert!(Address::from_component_jid(&j, "gw.example.com").is_err());
        let long: Address = format!("im:{}@x.org", "a".repeat(1100)).parse().unwrap();
        assert!(long.to_component_jid("gw.example.com").is_err());
    }

    #[test]
    fn room_jids() {
        let j: Jid = "chatroom22%chat.example.com@gw.example.com"
            .parse()
            .unwrap();
        let a = Address::from_room_jid(&j, "gw.example.com").unwrap();
        assert_eq!(a.to_string(), "sip:chatroom22@chat.example.com");
        let a: Address = "sip:my%20room@chat.example.com".parse().unwrap();
        let j = a.to_room_jid("gw.example.com").unwrap();
        assert_eq!(j.to_string(), r"my\20room%chat.example.com@gw.example.com");
        assert_eq!(Address::from_room_jid(&j, "gw.example.com").unwrap(), a);
        for bad in [
            "sip:%23x@chat.example.com",
            "sip:room@chat.example.com;transport=tcp",
            "sip:chat.example.com",
            "im:a@b.org",
            "irc://irc.example.org/bob,isnick",
        ] {
            let a: Address = bad.parse().unwrap();
            assert!(a.to_room_jid("gw.example.com").is_err(), "{bad}");
        }
        let j: Jid = "noroom@gw.example.com".parse().unwrap();
        assert!(Address::from_room_jid(&j, "gw.example.com").is_err());
        let j: Jid = "%chat.example.com@gw.example.com".parse().unwrap();
        assert!(Address::from_room_jid(&j, "gw.example.com").is_err());
    }
}
