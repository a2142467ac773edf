//! Addresses of people and rooms in each world, their string-level
//! validation and normalisation, and their compact string form.
//!
//! Normalisation lowers what the protocols say is case-insensitive: URI
//! schemes, domains and SIP hosts (RFC 3261 §19.1.4), JID local parts and
//! domains (RFC 7622 §3.2, §3.3; the local part is case-mapped). SIP user
//! parts and `im:` local parts keep their case. IRC nicks and channels and
//! MSRP nicknames keep their spelling: they are compared through a folded
//! key (see [`casefold`](crate::casefold) and [`nick_key`](crate::nick_key)),
//! never rewritten.
//!
//! This is deliberately not a full URI parser (that is the model's
//! `Address`): it rejects what would break the table or smuggle syntax into
//! another protocol (white space, control characters, `<>`, a missing `@`),
//! and says why.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::MappingError;

/// One address of a person in one world.
///
/// Compact string form (`Display` / `FromStr`, also the serde form):
///
/// | variant | compact form | example |
/// | --- | --- | --- |
/// | `Im` | the `im:` URI | `im:alice@example.com` |
/// | `Sip` | the SIP or SIPS URI | `sip:alice@example.com` |
/// | `Jid` | `xmpp:` + bare JID (`jid:` also accepted) | `xmpp:alice@example.org` |
/// | `IrcNick` | `irc:<network>/<nick>` | `irc:libera/alice` |
/// | `MsrpNick` | `msrp:<room SIP URI>/<nickname>` | `msrp:sip:room@chat.example.com/Alice in wonderland` |
///
/// The variants' strings are as described on each; build one by hand or
/// parse the compact form, then [`normalized`](Alias::normalized) (the store
/// normalises whatever it is given).
///
/// ```
/// use cpimgate_mappings::Alias;
/// let a: Alias = "irc:Libera/Alice".parse().unwrap();
/// assert_eq!(a, Alias::IrcNick { network: "libera".into(), nick: "Alice".into() });
/// assert_eq!(a.to_string(), "irc:libera/Alice");
/// let j: Alias = "jid:Alice@Example.ORG".parse().unwrap();
/// assert_eq!(j.to_string(), "xmpp:alice@example.org");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alias {
    /// An `im:` URI, scheme included: `im:alice@example.com` (RFC 3860).
    Im(String),
    /// A SIP address of record, scheme included: `sip:alice@example.com`.
    Sip(String),
    /// A bare JID, without scheme: `alice@example.org`.
    Jid(String),
    /// A nick on an IRC network (the network's name in the gateway config).
    IrcNick {
        /// The network's config name, lower case: `libera`.
        network: String,
        /// The nick as spelt.
        nick: String,
    },
    /// An RFC 7701 nickname in an MSRP chat room.
    MsrpNick {
        /// The room's SIP URI: `sip:room@chat.example.com`.
        room: String,
        /// The nickname as spelt (UTF-8, may contain spaces).
        nick: String,
    },
}

/// A room in one world.
///
/// Compact string form:
///
/// | variant | compact form | example |
/// | --- | --- | --- |
/// | `Msrp` | `msrp:` + the room's SIP URI | `msrp:sip:room@chat.example.com` |
/// | `Muc` | `xmpp:` + bare JID (`muc:` also accepted) | `xmpp:room@conference.example.org` |
/// | `Irc` | `irc:<network>/<channel>` | `irc:libera/#cpimgate` |
///
/// ```
/// use cpimgate_mappings::RoomAlias;
/// let r: RoomAlias = "irc:libera/#Chat".parse().unwrap();
/// assert_eq!(r, RoomAlias::Irc { network: "libera".into(), channel: "#Chat".into() });
/// let m: RoomAlias = "muc:Room@Conference.example.org".parse().unwrap();
/// assert_eq!(m.to_string(), "xmpp:room@conference.example.org");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoomAlias {
    /// An MSRP chat room (RFC 7701): its SIP URI, `sip:room@chat.example.com`.
    Msrp(String),
    /// An XMPP multi-user chat (XEP-0045): its bare JID, without scheme.
    Muc(String),
    /// An IRC channel on a network.
    Irc {
        /// The network's config name, lower case.
        network: String,
        /// The channel as spelt, with its prefix: `#cpimgate`.
        channel: String,
    },
}

/// Where a nickname reservation applies.
///
/// Compact form: `bridge:<name>`, or a room's compact form.
///
/// A reservation made in a room that belongs to a bridge, or in the bridge
/// itself, counts in every room of that bridge: a nick taken in any bridged
/// world is taken.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NickScope {
    /// Every room of a bridge.
    Bridge(String),
    /// One room (and, if it is bridged, its whole bridge).
    Room(RoomAlias),
}

impl Alias {
    /// Checks the strings and returns the canonical form (lower-case
    /// schemes, domains, hosts, JIDs and network names).
    pub fn normalized(&self) -> Result<Alias, MappingError> {
        Ok(match self {
            Alias::Im(s) => Alias::Im(normalize_im(s)?),
            Alias::Sip(s) => Alias::Sip(normalize_sip(s, "SIP URI")?),
            Alias::Jid(s) => Alias::Jid(normalize_bare_jid(s, "JID", false)?),
            Alias::IrcNick { network, nick } => Alias::IrcNick {
                network: normalize_network(network)?,
                nick: check_irc_nick(nick)?.to_owned(),
            },
            Alias::MsrpNick { room, nick } => Alias::MsrpNick {
                room: normalize_msrp_room(room)?,
                nick: check_msrp_nick(nick)?,
            },
        })
    }
}

impl RoomAlias {
    /// Checks the strings and returns the canonical form.
    pub fn normalized(&self) -> Result<RoomAlias, MappingError> {
        Ok(match self {
            RoomAlias::Msrp(s) => RoomAlias::Msrp(normalize_msrp_room(s)?),
            RoomAlias::Muc(s) => RoomAlias::Muc(normalize_bare_jid(s, "MUC JID", true)?),
            RoomAlias::Irc { network, channel } => RoomAlias::Irc {
                network: normalize_network(network)?,
                channel: check_irc_channel(channel)?.to_owned(),
            },
        })
    }
}

impl NickScope {
    /// Checks the strings and returns the canonical form.
    pub fn normalized(&self) -> Result<NickScope, MappingError> {
        Ok(match self {
            NickScope::Bridge(b) => NickScope::Bridge(check_bridge(b)?.to_owned()),
            NickScope::Room(r) => NickScope::Room(r.normalized()?),
        })
    }
}

impl From<RoomAlias> for NickScope {
    fn from(room: RoomAlias) -> Self {
        NickScope::Room(room)
    }
}

impl fmt::Display for Alias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Alias::Im(s) | Alias::Sip(s) => f.write_str(s),
            Alias::Jid(s) => write!(f, "xmpp:{s}"),
            Alias::IrcNick { network, nick } => write!(f, "irc:{network}/{nick}"),
            Alias::MsrpNick { room, nick } => write!(f, "msrp:{room}/{nick}"),
        }
    }
}

impl fmt::Display for RoomAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomAlias::Msrp(s) => write!(f, "msrp:{s}"),
            RoomAlias::Muc(s) => write!(f, "xmpp:{s}"),
            RoomAlias::Irc { network, channel } => write!(f, "irc:{network}/{channel}"),
        }
    }
}

impl fmt::Display for NickScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NickScope::Bridge(b) => write!(f, "bridge:{b}"),
            NickScope::Room(r) => r.fmt(f),
        }
    }
}

/// Splits `scheme:rest`, with the scheme lowered.
fn split_scheme(s: &str) -> Option<(String, &str)> {
    let (scheme, rest) = s.split_once(':')?;
    Some((scheme.to_ascii_lowercase(), rest))
}

/// Splits `<a>/<b>` at the first `/`.
fn split_slash<'a>(
    what: &'static str,
    input: &str,
    rest: &'a str,
) -> Result<(&'a str, &'a str), MappingError> {
    rest.split_once('/')
        .ok_or_else(|| MappingError::invalid(what, input, "expected <network or room>/<name>"))
}

impl FromStr for Alias {
    type Err = MappingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "alias";
        let (scheme, rest) = split_scheme(s).ok_or_else(|| {
            MappingError::invalid(
                WHAT,
                s,
                "expected im:, sip:, sips:, xmpp:, jid:, irc: or msrp:",
            )
        })?;
        let alias = match scheme.as_str() {
            "im" => Alias::Im(s.to_owned()),
            "sip" | "sips" => Alias::Sip(s.to_owned()),
            "xmpp" | "jid" => Alias::Jid(rest.to_owned()),
            "irc" => {
                let (network, nick) = split_slash(WHAT, s, rest)?;
                Alias::IrcNick {
                    network: network.to_owned(),
                    nick: nick.to_owned(),
                }
            }
            "msrp" => {
                let (room, nick) = split_slash(WHAT, s, rest)?;
                Alias::MsrpNick {
                    room: room.to_owned(),
                    nick: nick.to_owned(),
                }
            }
            _ => {
                return Err(MappingError::invalid(
                    WHAT,
                    s,
                    format!(
                        "unknown scheme {scheme:?}: expected im, sip, sips, xmpp, jid, irc or msrp"
                    ),
                ));
            }
        };
        alias.normalized()
    }
}

impl FromStr for RoomAlias {
    type Err = MappingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "room";
        let (scheme, rest) = split_scheme(s)
            .ok_or_else(|| MappingError::invalid(WHAT, s, "expected msrp:, xmpp:, muc: or irc:"))?;
        let room = match scheme.as_str() {
            "msrp" => RoomAlias::Msrp(rest.to_owned()),
            "xmpp" | "muc" => RoomAlias::Muc(rest.to_owned()),
            "irc" => {
                let (network, channel) = split_slash(WHAT, s, rest)?;
                RoomAlias::Irc {
                    network: network.to_owned(),
                    channel: channel.to_owned(),
                }
            }
            _ => {
                return Err(MappingError::invalid(
                    WHAT,
                    s,
                    format!("unknown scheme {scheme:?}: expected msrp, xmpp, muc or irc"),
                ));
            }
        };
        room.normalized()
    }
}

impl FromStr for NickScope {
    type Err = MappingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match split_scheme(s) {
            Some((scheme, rest)) if scheme == "bridge" => {
                Ok(NickScope::Bridge(check_bridge(rest)?.to_owned()))
            }
            _ => Ok(NickScope::Room(s.parse()?)),
        }
    }
}

macro_rules! serde_via_str {
    ($t:ty, $expecting:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_via_str!(Alias, "an alias");
serde_via_str!(RoomAlias, "a room");
serde_via_str!(NickScope, "a nickname scope");

// ---------------------------------------------------------------------------
// String-level checks.

/// Characters never allowed in an address: they would end a header, a line or
/// an XML attribute in another protocol.
fn is_forbidden_in_address(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"')
}

fn check_address_chars(what: &'static str, input: &str) -> Result<(), MappingError> {
    if input.is_empty() {
        return Err(MappingError::invalid(what, input, "is empty"));
    }
    if let Some(c) = input.chars().find(|&c| is_forbidden_in_address(c)) {
        return Err(MappingError::invalid(
            what,
            input,
            format!("contains {c:?}"),
        ));
    }
    Ok(())
}

fn normalize_domain(what: &'static str, input: &str, domain: &str) -> Result<String, MappingError> {
    if domain.is_empty() {
        return Err(MappingError::invalid(what, input, "the domain is empty"));
    }
    if let Some(c) = domain
        .chars()
        .find(|&c| matches!(c, '@' | '/' | '\\' | '?' | '#'))
    {
        return Err(MappingError::invalid(
            what,
            input,
            format!("the domain contains {c:?}"),
        ));
    }
    Ok(domain.to_lowercase())
}

/// `im:local@domain` (RFC 3860 §3): the scheme may be omitted.
fn normalize_im(input: &str) -> Result<String, MappingError> {
    const WHAT: &str = "im: URI";
    check_address_chars(WHAT, input)?;
    let rest = match split_scheme(input) {
        Some((scheme, rest)) if scheme == "im" => rest,
        Some((scheme, _)) if !scheme.contains('@') => {
            return Err(MappingError::invalid(
                WHAT,
                input,
                format!("the scheme is {scheme:?}, not im"),
            ));
        }
        _ => input,
    };
    let (local, domain) = rest
        .split_once('@')
        .ok_or_else(|| MappingError::invalid(WHAT, input, "expected im:local@domain"))?;
    if local.is_empty() {
        return Err(MappingError::invalid(
            WHAT,
            input,
            "the local part is empty",
        ));
    }
    Ok(format!(
        "im:{local}@{}",
        normalize_domain(WHAT, input, domain)?
    ))
}

/// `sip:[user@]host[:port][;params][?headers]`, also `sips:`; the scheme
/// may be omitted (then `sip:`). Scheme and host are lowered (RFC 3261 §19.1.4).
fn normalize_sip(input: &str, what: &'static str) -> Result<String, MappingError> {
    check_address_chars(what, input)?;
    let (scheme, rest) = match split_scheme(input) {
        Some((scheme, rest)) if scheme == "sip" || scheme == "sips" => (scheme, rest),
        Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphabetic()) => {
            return Err(MappingError::invalid(
                what,
                input,
                format!("the scheme is {scheme:?}, not sip or sips"),
            ));
        }
        _ => ("sip".to_owned(), input),
    };
    // The user part cannot hold an unescaped '@' (RFC 3261 §25.1), so the
    // first one ends it.
    let (user, hostpart) = match rest.split_once('@') {
        Some((user, hostpart)) => {
            if user.is_empty() {
                return Err(MappingError::invalid(what, input, "the user part is empty"));
            }
            (Some(user), hostpart)
        }
        None => (None, rest),
    };
    let host_end = if hostpart.starts_with('[') {
        hostpart.find(']').map(|i| i + 1).unwrap_or(hostpart.len())
    } else {
        hostpart.find([':', ';', '?']).unwrap_or(hostpart.len())
    };
    let (host, tail) = hostpart.split_at(host_end);
    let host = normalize_domain(what, input, host)?;
    Ok(match user {
        Some(user) => format!("{scheme}:{user}@{host}{tail}"),
        None => format!("{scheme}:{host}{tail}"),
    })
}

/// A room's SIP URI: as [`normalize_sip`], and no `/` (the compact form of an
/// MSRP nickname splits at the first one; escape it as `%2F`).
fn normalize_msrp_room(input: &str) -> Result<String, MappingError> {
    const WHAT: &str = "MSRP room URI";
    let uri = normalize_sip(input, WHAT)?;
    if uri.contains('/') {
        return Err(MappingError::invalid(
            WHAT,
            input,
            "contains '/' (escape it as %2F)",
        ));
    }
    Ok(uri)
}

/// A bare JID `[local@]domain` (RFC 7622), lowered; `xmpp:`/`jid:` prefixes
/// are not part of it. A resource is refused: identities and rooms are bare.
fn normalize_bare_jid(
    input: &str,
    what: &'static str,
    need_local: bool,
) -> Result<String, MappingError> {
    check_address_chars(what, input)?;
    let jid = input
        .strip_prefix("xmpp:")
        .or_else(|| input.strip_prefix("jid:"))
        .unwrap_or(input);
    if jid.contains('/') {
        return Err(MappingError::invalid(
            what,
            input,
            "has a resource: expected a bare JID",
        ));
    }
    let (local, domain) = match jid.split_once('@') {
        Some((local, domain)) => (Some(local), domain),
        None => (None, jid),
    };
    if let Some(local) = local {
        if local.is_empty() {
            return Err(MappingError::invalid(
                what,
                input,
                "the local part is empty",
            ));
        }
        // RFC 7622 §3.3.1: these are excluded from local parts (XEP-0106
        // escapes them as \22 \26 \27 \2f \3a \3c \3e \40).
        if let Some(c) = local
            .chars()
            .find(|&c| matches!(c, '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@'))
        {
            return Err(MappingError::invalid(
                what,
                input,
                format!("the local part contains {c:?}"),
            ));
        }
    } else if need_local {
        return Err(MappingError::invalid(what, input, "expected room@service"));
    }
    let domain = normalize_domain(what, input, domain)?;
    Ok(match local {
        Some(local) => format!("{}@{domain}", local.to_lowercase()),
        None => domain,
    })
}

/// A network's config name: lowered; no white space, `/` or control characters.
pub(crate) fn normalize_network(input: &str) -> Result<String, MappingError> {
    const WHAT: &str = "IRC network name";
    check_address_chars(WHAT, input)?;
    if input.contains('/') {
        return Err(MappingError::invalid(WHAT, input, "contains '/'"));
    }
    Ok(input.to_lowercase())
}

/// An IRC nick (RFC 2812 §2.3.1, loosened for networks that allow more):
/// no white space, none of `,*?!@.:/`, and not starting like a channel, a
/// digit or `-`.
pub(crate) fn check_irc_nick(input: &str) -> Result<&str, MappingError> {
    const WHAT: &str = "IRC nick";
    check_address_chars(WHAT, input)?;
    if let Some(c) = input
        .chars()
        .find(|&c| matches!(c, ',' | '*' | '?' | '!' | '@' | '.' | ':' | '/'))
    {
        return Err(MappingError::invalid(
            WHAT,
            input,
            format!("contains {c:?}"),
        ));
    }
    if let Some(c) = input
        .chars()
        .next()
        .filter(|c| c.is_ascii_digit() || matches!(c, '-' | '#' | '&' | '$' | '+' | '~' | '%'))
    {
        return Err(MappingError::invalid(
            WHAT,
            input,
            format!("starts with {c:?}"),
        ));
    }
    Ok(input)
}

/// An IRC channel (RFC 2812 §1.3): a `#&+!` prefix; no white space, `,` or
/// control characters (BEL included).
fn check_irc_channel(input: &str) -> Result<&str, MappingError> {
    const WHAT: &str = "IRC channel";
    check_address_chars(WHAT, input)?;
    if !input.starts_with(['#', '&', '+', '!']) {
        return Err(MappingError::invalid(
            WHAT,
            input,
            "must start with #, &, + or !",
        ));
    }
    if input.len() == 1 {
        return Err(MappingError::invalid(
            WHAT,
            input,
            "has no name after the prefix",
        ));
    }
    if input.contains(',') {
        return Err(MappingError::invalid(WHAT, input, "contains ','"));
    }
    Ok(input)
}

/// An RFC 7701 nickname: UTF-8 without control characters; surrounding white
/// space is dropped (RFC 7700 §2.2 would drop it before comparing anyway).
pub(crate) fn check_msrp_nick(input: &str) -> Result<String, MappingError> {
    const WHAT: &str = "nickname";
    let nick = input.trim();
    if nick.is_empty() {
        return Err(MappingError::invalid(WHAT, input, "is empty"));
    }
    if let Some(c) = nick.chars().find(|c| c.is_control()) {
        return Err(MappingError::invalid(
            WHAT,
            input,
            format!("contains {c:?}"),
        ));
    }
    Ok(nick.to_owned())
}

/// A bridge name: non-empty, no white space or control characters.
pub(crate) fn check_bridge(input: &str) -> Result<&str, MappingError> {
    const WHAT: &str = "bridge name";
    if input.is_empty() {
        return Err(MappingError::invalid(WHAT, input, "is empty"));
    }
    if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(MappingError::invalid(
            WHAT,
            input,
            format!("contains {c:?}"),
        ));
    }
    Ok(input)
}

/// An owner or a remote user's canonical address: non-empty, no white space
/// or control characters.
#[cfg(feature = "store")]
pub(crate) fn check_owner(what: &'static str, input: &str) -> Result<(), MappingError> {
    if input.is_empty() {
        return Err(MappingError::invalid(what, input, "is empty"));
    }
    if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(MappingError::invalid(
            what,
            input,
            format!("contains {c:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn alias(s: &str) -> Alias {
        s.parse().unwrap()
    }

    #[test]
    fn compact_forms() {
        assert_eq!(
            alias("IM:alice@Example.COM"),
            Alias::Im("im:alice@example.com".into())
        );
        assert_eq!(
            alias("SIP:Alice@Example.COM;transport=tcp"),
            Alias::Sip("sip:Alice@example.com;transport=tcp".into())
        );
        assert_eq!(
            alias("sips:bob@[2001:DB8::1]:5061"),
            Alias::Sip("sips:bob@[2001:db8::1]:5061".into())
        );
        assert_eq!(
            alias("sip:Gateway.Example.com:5060"),
            Alias::Sip("sip:gateway.example.com:5060".into())
        );
        assert_eq!(
            alias("xmpp:Alice@Example.org"),
            Alias::Jid("alice@example.org".into())
        );
        assert_eq!(
            alias("jid:alice\\40atlanta.example.com@sip.gw.example.com").to_string(),
            "xmpp:alice\\40atlanta.example.com@sip.gw.example.com"
        );
        assert_eq!(
            alias("msrp:SIP:room@Chat.example.com/Alice in wonderland"),
            Alias::MsrpNick {
                room: "sip:room@chat.example.com".into(),
                nick: "Alice in wonderland".into()
            }
        );
        assert_eq!(
            alias("irc:libera/Alice[m]").to_string(),
            "irc:libera/Alice[m]"
        );
    }

    #[test]
    fn rejects_with_a_reason() {
        for bad in [
            "alice@example.com",
            "mailto:alice@example.com",
            "im:alice",
            "im:@example.com",
            "im:alice@",
            "sip:alice @example.com",
            "sip:alice@example.com\r\nVia: x",
            "sip:<alice@example.com>",
            "xmpp:alice@example.org/phone",
            "xmpp:a:b@example.org",
            "irc:libera",
            "irc:libera/",
            "irc:libera/al ice",
            "irc:libera/#chan",
            "irc:libera/1alice",
            "irc:/alice",
            "msrp:sip:room@chat.example.com/",
            "msrp:sip:room@chat.example.com",
            "msrp:http:room@x/Alice",
        ] {
            let err = bad.parse::<Alias>().unwrap_err();
            assert!(matches!(err, MappingError::Invalid { .. }), "{bad}: {err}");
        }
        let err = "irc:libera/al ice"
            .parse::<Alias>()
            .unwrap_err()
            .to_string();
        assert_eq!(err, r#"invalid IRC nick "al ice": contains ' '"#);
    }

    #[test]
    fn rooms() {
        let r: RoomAlias = "msrp:sip:Room@Chat.Example.com".parse().unwrap();
        assert_eq!(r, RoomAlias::Msrp("sip:Room@chat.example.com".into()));
        assert!("xmpp:conference.example.org".parse::<RoomAlias>().is_err());
        assert!("irc:libera/chan".parse::<RoomAlias>().is_err());
        assert!("irc:libera/#a,#b".parse::<RoomAlias>().is_err());
        let s: NickScope = "bridge:lobby".parse().unwrap();
        assert_eq!(s, NickScope::Bridge("lobby".into()));
        let s: NickScope = "irc:libera/#c".parse().unwrap();
        assert_eq!(s.to_string(), "irc:libera/#c");
    }

    #[test]
    fn serde_uses_the_compact_form() {
        let a = alias("irc:libera/alice");
        assert_eq!(serde_json::to_string(&a).unwrap(), r#""irc:libera/alice""#);
        let back: Alias = serde_json::from_str(r#""XMPP:Bob@Example.org""#).unwrap();
        assert_eq!(back, Alias::Jid("bob@example.org".into()));
        assert!(serde_json::from_str::<Alias>(r#""irc:libera/a b""#).is_err());
        let r: RoomAlias = serde_json::from_str(r#""irc:libera/#x""#).unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), r#""irc:libera/#x""#);
    }

    fn arb_alias() -> impl Strategy<Value = Alias> {
        let local = "[A-Za-z0-9._%+=-]{1,12}";
        let domain = "[A-Za-z0-9-]{1,10}(\\.[A-Za-z]{2,5}){0,2}";
        let nick = "[A-Za-z\\[\\]\\\\`_^{|}][A-Za-z0-9\\[\\]\\\\`_^{|}-]{0,15}";
        let network = "[A-Za-z0-9._-]{1,10}";
        let msrp_nick = "[^\\p{Cc}]{1,20}";
        prop_oneof![
            (local, domain).prop_map(|(l, d)| Alias::Im(format!("im:{l}@{d}"))),
            (local, domain, proptest::option::of(1u16..)).prop_map(|(l, d, p)| Alias::Sip(
                match p {
                    Some(p) => format!("sip:{l}@{d}:{p}"),
                    None => format!("sip:{l}@{d}"),
                }
            )),
            ("[a-z0-9._\\\\-]{1,12}", domain).prop_map(|(l, d)| Alias::Jid(format!("{l}@{d}"))),
            (network, nick).prop_map(|(network, nick)| Alias::IrcNick { network, nick }),
            (local, domain, msrp_nick).prop_map(|(l, d, nick)| Alias::MsrpNick {
                room: format!("sip:{l}@{d}"),
                nick
            }),
        ]
    }

    proptest! {
        #[test]
        fn alias_string_form_round_trips(a in arb_alias()) {
            let canonical = a.normalized();
            // Generated MSRP nicks may be white space only: those must be refused.
            if let Ok(canonical) = canonical {
                let text = canonical.to_string();
                let back: Alias = text.parse().unwrap();
                prop_assert_eq!(&back, &canonical);
                prop_assert_eq!(back.to_string(), text);
                // Normalising is idempotent.
                prop_assert_eq!(canonical.normalized().unwrap(), canonical.clone());
            } else {
                let blank = matches!(&a, Alias::MsrpNick { nick, .. } if nick.trim().is_empty());
                prop_assert!(blank, "refused: {:?}", a);
            }
        }

        #[test]
        fn any_parsed_alias_round_trips(s in "(im|sip|xmpp|irc|msrp):[ -~]{0,30}") {
            if let Ok(a) = s.parse::<Alias>() {
                let back: Alias = a.to_string().parse().unwrap();
                prop_assert_eq!(back, a);
            }
        }
    }
}
