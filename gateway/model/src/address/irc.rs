//! IRC addresses: a nick or a channel on a network.
//!
//! The string form follows the de-facto `irc:` URL draft
//! (draft-butcher-irc-url-04):
//!
//! ```text
//! irc-address = ( "irc" / "ircs" ) "://" host [ ":" port ] "/" target [ "," flag ]
//! target      = a channel (its prefix '#' written %23) / a nick
//! flag        = "isnick" / "ischannel"
//! ```
//!
//! * `irc://irc.example.org/%23rust` is channel `#rust` on `irc.example.org`;
//!   `&`, `+` and `!` channels are written with their prefix as is.
//! * `irc://irc.example.org/alice,isnick` is nick `alice`.
//! * `irc://irc.example.org/rust` (no prefix, no flag) is, as in the draft,
//!   channel `#rust`; it is written back as `%23rust`.
//! * `ircs://` marks a network reached over TLS; a port is kept if written.
//!
//! Nicks follow the "Modern IRC" rules (no space, `,`, `*`, `?`, `!`, `@`,
//! and no leading `$`, `:`, channel prefix or digit); channels those of
//! RFC 2812 §1.3 (a prefix among `#&+!`, then no space, control-G, `,` or
//! `:`). Lengths are capped at 200 bytes; a network's own `NICKLEN` and
//! `CHANNELLEN` are for the IRC adapter to apply.

use std::fmt;
use std::str::FromStr;

use super::AddressError;
use super::host::{Host, parse_hostport};
use super::pct::{self, Percent, unreserved_3986};

const MAX_TARGET: usize = 200;

/// What an [`IrcAddress`] names on its network.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IrcTarget {
    /// A channel, with its prefix (`#rust`).
    Channel(String),
    /// A nick (`alice`).
    Nick(String),
}

/// A nick or a channel on an IRC network.
///
/// ```
/// use cpimgate_model::address::{IrcAddress, IrcTarget};
/// let c = IrcAddress::channel("irc.example.org", "#test").unwrap();
/// assert_eq!(c.to_string(), "irc://irc.example.org/%23test");
/// assert_eq!(c.target(), &IrcTarget::Channel("#test".into()));
///
/// let n = IrcAddress::nick("irc.example.org", "alice").unwrap();
/// assert_eq!(n.to_string(), "irc://irc.example.org/alice,isnick");
///
/// let n: IrcAddress = "ircs://irc.example.org:6697/%5Bbob%5D,isnick".parse().unwrap();
/// assert_eq!(n.target(), &IrcTarget::Nick("[bob]".into()));
/// assert_eq!((n.is_secure(), n.port()), (true, Some(6697)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IrcAddress {
    secure: bool,
    network: Host,
    port: Option<u16>,
    target: IrcTarget,
}

impl IrcAddress {
    /// Channel `name` (with its prefix, e.g. `#chan`) on `network`.
    pub fn channel(network: &str, name: &str) -> Result<IrcAddress, AddressError> {
        check_channel(name).map_err(|reason| AddressError::Invalid {
            what: "IRC channel",
            reason,
        })?;
        Ok(IrcAddress {
            secure: false,
            network: network.parse()?,
            port: None,
            target: IrcTarget::Channel(name.to_owned()),
        })
    }

    /// Nick `nick` on `network`.
    pub fn nick(network: &str, nick: &str) -> Result<IrcAddress, AddressError> {
        check_nick(nick).map_err(|reason| AddressError::Invalid {
            what: "IRC nick",
            reason,
        })?;
        Ok(IrcAddress {
            secure: false,
            network: network.parse()?,
            port: None,
            target: IrcTarget::Nick(nick.to_owned()),
        })
    }

    /// The same address reached over TLS (`ircs://`) or not.
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The same address with a port.
    pub fn with_port(mut self, port: Option<u16>) -> Self {
        self.port = port;
        self
    }

    /// The network (server host name).
    pub fn network(&self) -> &Host {
        &self.network
    }

    /// The port, when one is written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether the network is reached over TLS (`ircs://`).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The nick or channel.
    pub fn target(&self) -> &IrcTarget {
        &self.target
    }

    /// The channel name, if this names a channel.
    pub fn as_channel(&self) -> Option<&str> {
        match &self.target {
            IrcTarget::Channel(c) => Some(c),
            IrcTarget::Nick(_) => None,
        }
    }

    /// The nick, if this names a nick.
    pub fn as_nick(&self) -> Option<&str> {
        match &self.target {
            IrcTarget::Nick(n) => Some(n),
            IrcTarget::Channel(_) => None,
        }
    }

    /// Parses what follows `irc:` / `ircs:`, found at byte `base`.
    pub(super) fn parse_rest(
        s: &str,
        base: usize,
        secure: bool,
    ) -> Result<IrcAddress, AddressError> {
        let rest = s.strip_prefix("//").ok_or(AddressError::Syntax {
            offset: base,
            expected: "'//' and a network",
        })?;
        let base = base + 2;
        let slash = rest.find('/').ok_or(AddressError::Syntax {
            offset: base + rest.len(),
            expected: "'/' and a channel or nick after the network",
        })?;
        let (network, port) = parse_hostport(&rest[..slash], base)?;
        let path = &rest[slash + 1..];
        let pbase = base + slash + 1;
        let (raw_target, flag) = match path.find(',') {
            Some(c) => (&path[..c], Some((&path[c + 1..], pbase + c + 1))),
            None => (path, None),
        };
        let name = pct::decode(
            raw_target,
            pbase,
            target_in,
            true,
            Percent::Strict,
            "a channel or nick character",
        )?;
        let invalid = |reason| AddressError::Syntax {
            offset: pbase,
            expected: reason,
        };
        let target = match flag {
            Some(("isnick", _)) => {
                check_nick(&name).map_err(invalid)?;
                IrcTarget::Nick(name)
            }
            Some(("ischannel", _)) | None => {
                let name = if name.starts_with(is_channel_prefix) {
                    name
                } else {
                    format!("#{name}")
                };
                check_channel(&name).map_err(invalid)?;
                IrcTarget::Channel(name)
            }
            Some((_, at)) => {
                return Err(AddressError::Syntax {
                    offset: at,
                    expected: "'isnick' or 'ischannel'",
                });
            }
        };
        Ok(IrcAddress {
            secure,
            network,
            port,
            target,
        })
    }
}

fn is_channel_prefix(c: char) -> bool {
    matches!(c, '#' | '&' | '+' | '!')
}

/// Raw bytes accepted in the target: URI `pchar`s but `,` (the flag
/// separator) and `%` (handled by decoding).
fn target_in(b: u8) -> bool {
    unreserved_3986(b) || b"!$&'()*+;=:@".contains(&b)
}

/// Bytes written raw in the target.
fn target_out(b: u8) -> bool {
    unreserved_3986(b) || b"!$&'()*+;=@".contains(&b)
}

/// RFC 2812 §1.3: a prefix, then anything but NUL, BELL, CR, LF, space,
/// comma and colon.
fn check_channel(name: &str) -> Result<(), &'static str> {
    if !name.starts_with(is_channel_prefix) {
        return Err("a channel starts with '#', '&', '+' or '!'");
    }
    if name.len() < 2 || name.len() > MAX_TARGET {
        return Err("a channel name of 2 to 200 bytes");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == ',' || c == ':')
    {
        return Err("a channel name without space, control character, ',' or ':'");
    }
    Ok(())
}

/// "Modern IRC" nickname rules.
fn check_nick(nick: &str) -> Result<(), &'static str> {
    if nick.is_empty() || nick.len() > MAX_TARGET {
        return Err("a nick of 1 to 200 bytes");
    }
    if nick.chars().any(|c| {
        c.is_control() || c.is_whitespace() || matches!(c, ',' | '*' | '?' | '!' | '@' | '%')
    }) {
        return Err("a nick without space, control character, ',', '*', '?', '!', '@' or '%'");
    }
    if nick
        .starts_with(|c: char| matches!(c, '$' | ':' | '#' | '&' | '+' | '~') || c.is_ascii_digit())
    {
        return Err("a nick that does not start with '$', ':', a digit or a channel prefix");
    }
    Ok(())
}

impl FromStr for IrcAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        pct::check_len(s)?;
        if let Some(rest) = pct::strip_scheme(s, "irc") {
            IrcAddress::parse_rest(rest, 4, false)
        } else if let Some(rest) = pct::strip_scheme(s, "ircs") {
            IrcAddress::parse_rest(rest, 5, true)
        } else {
            Err(AddressError::UnknownScheme { offset: 0 })
        }
    }
}

impl fmt::Display for IrcAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "ircs://" } else { "irc://" })?;
        write!(f, "{}", self.network)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str("/")?;
        match &self.target {
            IrcTarget::Channel(c) => pct::encode(f, c, target_out),
            IrcTarget::Nick(n) => {
                pct::encode(f, n, target_out)?;
                f.write_str(",isnick")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn forms() {
        for (s, target) in [
            (
                "irc://irc.example.org/%23chan",
                IrcTarget::Channel("#chan".into()),
            ),
            (
                "irc://irc.example.org/&local",
                IrcTarget::Channel("&local".into()),
            ),
            (
                "irc://irc.example.org/%23%23rust-offtopic",
                IrcTarget::Channel("##rust-offtopic".into()),
            ),
            (
                "irc://irc.example.org/alice,isnick",
                IrcTarget::Nick("alice".into()),
            ),
            (
                "irc://irc.example.org/%5Bbob%5D%7C%5Eaway,isnick",
                IrcTarget::Nick("[bob]|^away".into()),
            ),
            (
                "ircs://[2001:db8::1]:6697/%23secure",
                IrcTarget::Channel("#secure".into()),
            ),
            (
                "irc://irc.example.org/%23caf%C3%A9",
                IrcTarget::Channel("#caf\u{e9}".into()),
            ),
        ] {
            let a: IrcAddress = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(a.target(), &target);
            assert_eq!(a.to_string(), s);
        }
        // The draft's forms without '%23' or with ',ischannel'.
        let a: IrcAddress = "IRC://irc.example.org/rust".parse().unwrap();
        assert_eq!(a.as_channel(), Some("#rust"));
        assert_eq!(a.to_string(), "irc://irc.example.org/%23rust");
        let a: IrcAddress = "irc://irc.example.org/%23rust,ischannel".parse().unwrap();
        assert_eq!(a.as_channel(), Some("#rust"));
    }

    #[test]
    fn errors() {
        let e = |s: &str| s.parse::<IrcAddress>().unwrap_err();
        assert_eq!(e("irc:irc.example.org").offset(), Some(4));
        assert_eq!(e("irc://irc.example.org").offset(), Some(21));
        assert_eq!(e("irc://irc.example.org/").offset(), Some(22));
        assert_eq!(e("irc://irc.example.org/a,isserver").offset(), Some(24));
        assert_eq!(e("irc://irc.example.org/a%20b,isnick").offset(), Some(22));
        assert_eq!(e("irc://irc.example.org/%23a%3Ab").offset(), Some(22));
        assert_eq!(e("irc://irc.example.org:x/%23a").offset(), Some(22));
        assert!(IrcAddress::nick("irc.example.org", "1abc").is_err());
        assert!(IrcAddress::nick("irc.example.org", "a b").is_err());
        assert!(IrcAddress::channel("irc.example.org", "chan").is_err());
        assert!(IrcAddress::channel("irc.example.org", "#a,b").is_err());
        assert!(IrcAddress::channel("bad host", "#a").is_err());
    }
}
