//! Addresses of every world, and the mapping between them.
//!
//! | world | type | string form |
//! | --- | --- | --- |
//! | SIP (RFC 3261 §19.1) | [`SipUri`] | `sip:alice@atlanta.com;transport=tcp`, `sips:...` |
//! | CPIM (RFC 3860, RFC 3862) | [`ImUri`] | `im:alice@atlanta.example.com` |
//! | XMPP (RFC 5122, RFC 7622) | [`XmppUri`] holding a [`Jid`] | `xmpp:romeo@montague.net/orchard` |
//! | telephony (RFC 3966) | [`TelUri`] | `tel:+1-201-555-0123` |
//! | IRC (the `irc:` URL draft) | [`IrcAddress`] | `irc://irc.example.org/%23chan`, `irc://irc.example.org/alice,isnick` |
//!
//! Every type parses with [`FromStr`] and writes itself with
//! [`Display`](fmt::Display) such that parsing what was written gives the
//! same value back. Percent-encoded components are stored decoded and are
//! encoded again on output. Inputs longer than [`MAX_ADDRESS_LEN`] bytes are
//! refused before any work; no parser panics on any input.
//!
//! ```
//! use cpimgate_model::address::{Address, IrcAddress};
//! let a: Address = "SIP:alice@atlanta.com;transport=tcp".parse().unwrap();
//! assert_eq!(a.to_string(), "sip:alice@atlanta.com;transport=tcp");
//! let chan = IrcAddress::channel("irc.example.org", "#rust").unwrap();
//! assert_eq!(Address::Irc(chan).to_string(), "irc://irc.example.org/%23rust");
//! ```
//!
//! [`NameAddr`] adds a display name (`"Alice" <sip:alice@example.com>`, or
//! RFC 3862's `MR SANDERS <im:piglet@100akerwood.com>`).
//!
//! [`escape_node`] and [`unescape_node`] implement XEP-0106 (JID Escaping)
//! and never panic. The gateway's own mappings of DESIGN.md "Addressing"
//! live on [`Address`]: [`Address::to_component_jid`],
//! [`Address::from_component_jid`], [`Address::to_room_jid`],
//! [`Address::from_room_jid`].

use std::fmt;
use std::str::FromStr;

mod escape;
mod host;
mod im;
mod irc;
mod map;
mod name_addr;
mod pct;
mod sip;
mod tel;
mod xmpp;

pub use escape::{escape_node, unescape_node};
pub use host::Host;
pub use im::ImUri;
pub use irc::{IrcAddress, IrcTarget};
pub use name_addr::NameAddr;
pub use sip::SipUri;
pub use tel::TelUri;
pub use xmpp::{Jid, XmppUri};

/// The longest address, in bytes, that any parser of this module accepts.
pub const MAX_ADDRESS_LEN: usize = 4096;

/// Error parsing, building or mapping an address.
///
/// Offsets are byte offsets into the string that was parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Happens when the input is empty.
    #[error("empty address")]
    Empty,
    /// Happens when the input is longer than [`MAX_ADDRESS_LEN`].
    #[error("address of {len} bytes is longer than the limit of {max}")]
    TooLong {
        /// Length of the input.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Happens when the input does not start with a scheme this module
    /// knows (`sip`, `sips`, `im`, `xmpp`, `tel`, `irc`, `ircs`).
    #[error("unknown or missing URI scheme at byte {offset}")]
    UnknownScheme {
        /// Where the scheme should end (the `:`), or 0.
        offset: usize,
    },
    /// Happens when the byte at `offset` is not what the grammar allows there.
    #[error("invalid address at byte {offset}: expected {expected}")]
    Syntax {
        /// Byte offset of the first offending byte.
        offset: usize,
        /// What the grammar expected there.
        expected: &'static str,
    },
    /// Happens when a `%` is not followed by two hexadecimal digits.
    #[error("invalid percent-encoding at byte {offset}")]
    BadEscape {
        /// Byte offset of the `%`.
        offset: usize,
    },
    /// Happens when percent-decoded bytes do not form UTF-8.
    #[error("percent-encoded component at byte {offset} is not UTF-8")]
    NotUtf8 {
        /// Byte offset of the component.
        offset: usize,
    },
    /// Happens when a port is not a number from 0 to 65535.
    #[error("invalid port at byte {offset}")]
    Port {
        /// Byte offset of the port.
        offset: usize,
    },
    /// Happens when a JID breaks the rules of RFC 7622 (a part empty or
    /// over 1023 bytes, a character the localpart forbids, a space or a
    /// control character).
    #[error("invalid JID at byte {offset}: {reason}")]
    Jid {
        /// Byte offset of the offending part or character.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Happens when a value given to a constructor is not acceptable (an
    /// empty user, a nick with a space...).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which component.
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Happens when an address or a JID cannot be mapped to the other world
    /// (a JID of another domain, an address that is not a room...).
    #[error("cannot map address: {reason}")]
    Mapping {
        /// Why.
        reason: &'static str,
    },
}

impl AddressError {
    /// The byte offset the error points at, when it points at one.
    pub fn offset(&self) -> Option<usize> {
        match *self {
            AddressError::UnknownScheme { offset }
            | AddressError::Syntax { offset, .. }
            | AddressError::BadEscape { offset }
            | AddressError::NotUtf8 { offset }
            | AddressError::Port { offset }
            | AddressError::Jid { offset, .. } => Some(offset),
            AddressError::Empty => Some(0),
            _ => None,
        }
    }

    /// The same error with its offset moved by `by` bytes (for a component
    /// parsed out of a larger string).
    pub(crate) fn shifted(mut self, by: usize) -> Self {
        match &mut self {
            AddressError::UnknownScheme { offset }
            | AddressError::Syntax { offset, .. }
            | AddressError::BadEscape { offset }
            | AddressError::NotUtf8 { offset }
            | AddressError::Port { offset }
            | AddressError::Jid { offset, .. } => *offset += by,
            _ => {}
        }
        self
    }
}

/// An address in one of the worlds.
///
/// ```
/// use cpimgate_model::address::Address;
/// for s in [
///     "sip:alice@atlanta.com",
///     "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
///     "im:pooh@100akerwood.com",
///     "xmpp:romeo@montague.net/orchard",
///     "tel:+1-201-555-0123",
///     "irc://irc.example.org/%23chan",
///     "irc://irc.example.org/alice,isnick",
/// ] {
///     let a: Address = s.parse().unwrap();
///     assert_eq!(a.to_string(), s);
/// }
/// assert!("mailto:a@b".parse::<Address>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Address {
    /// `sip:` or `sips:` (RFC 3261).
    Sip(SipUri),
    /// `im:` (RFC 3860), the canonical identity of the gateway.
    Im(ImUri),
    /// `xmpp:` (RFC 5122).
    Xmpp(XmppUri),
    /// `tel:` (RFC 3966).
    Tel(TelUri),
    /// A nick or a channel on an IRC network (`irc://` / `ircs://`).
    Irc(IrcAddress),
}

impl Address {
    /// The scheme, lower case: `sip`, `sips`, `im`, `xmpp`, `tel`, `irc`
    /// or `ircs`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Address::Sip(u) if u.is_secure() => "sips",
            Address::Sip(_) => "sip",
            Address::Im(_) => "im",
            Address::Xmpp(_) => "xmpp",
            Address::Tel(_) => "tel",
            Address::Irc(a) if a.is_secure() => "ircs",
            Address::Irc(_) => "irc",
        }
    }

    /// Whether two addresses name the same user, whatever world's form
    /// they take: `sip:`/`sips:` user and host, `im:` user and domain and
    /// an XMPP bare JID compare as `user@host` (hosts without regard to
    /// case, an XMPP localpart too: nodeprep folds case; a SIP or `im:`
    /// user part is compared as written, RFC 3261 §19.1.4); other
    /// addresses compare whole.
    ///
    /// ```
    /// use cpimgate_model::address::Address;
    /// let a = |s: &str| s.parse::<Address>().unwrap();
    /// assert!(a("sip:bob@Biloxi.example.com").same_user(&a("im:bob@biloxi.example.com")));
    /// assert!(a("im:bob@x.example").same_user(&a("xmpp:bob@x.example/phone")));
    /// assert!(!a("sip:Bob@x.example").same_user(&a("sip:bob@x.example")));
    /// assert!(!a("sip:x.example").same_user(&a("im:bob@x.example")));
    /// ```
    pub fn same_user(&self, other: &Address) -> bool {
        fn parts(a: &Address) -> Option<(String, String)> {
            match a {
                Address::Sip(u) => Some((u.user()?.to_owned(), u.host().to_string())),
                Address::Im(u) => Some((u.user().to_owned(), u.domain().to_owned())),
                Address::Xmpp(u) => {
                    let j = u.jid();
                    Some((j.node()?.to_lowercase(), j.domain().to_owned()))
                }
                _ => None,
            }
        }
        match (parts(self), parts(other)) {
            (Some((u1, h1)), Some((u2, h2))) => u1 == u2 && h1.eq_ignore_ascii_case(&h2),
            _ => self == other,
        }
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let a = Address::parse_str(s)?;
        // What is written back must read back: a form that grows when
        // written (raw characters that are percent-encoded on output)
        // must stay within the limit too, or a stored address could not
        // be read again.
        check_written_len(s, &a)?;
        Ok(a)
    }
}

/// Refuses a parsed value whose written form is past the limit. Writing
/// turns an input byte into at most three (`%XX`) and adds a few fixed
/// characters, so a short input (every address in practice) cannot grow
/// past the limit and is not written out to be measured.
pub(crate) fn check_written_len(input: &str, v: &impl fmt::Display) -> Result<(), AddressError> {
    if input.len().saturating_mul(4).saturating_add(64) <= MAX_ADDRESS_LEN {
        return Ok(());
    }
    let written = written_len(v);
    if written > MAX_ADDRESS_LEN {
        return Err(AddressError::TooLong {
            len: written,
            max: MAX_ADDRESS_LEN,
        });
    }
    Ok(())
}

/// The length of a value's Display form, without building it.
fn written_len(v: &impl fmt::Display) -> usize {
    struct Count(usize);
    impl fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = fmt::write(&mut c, format_args!("{v}"));
    c.0
}

impl Address {
    fn parse_str(s: &str) -> Result<Address, AddressError> {
        pct::check_len(s)?;
        let colon = s
            .bytes()
            .take(6)
            .position(|b| b == b':')
            .ok_or(AddressError::UnknownScheme { offset: 0 })?;
        let scheme = &s[..colon];
        let rest = &s[colon + 1..];
        let base = colon + 1;
        let is = |name: &str| scheme.eq_ignore_ascii_case(name);
        if is("sip") || is("sips") {
            SipUri::parse_rest(rest, base, is("sips")).map(Address::Sip)
        } else if is("im") {
            ImUri::parse_rest(rest, base).map(Address::Im)
        } else if is("xmpp") {
            XmppUri::parse_rest(rest, base).map(Address::Xmpp)
        } else if is("tel") {
            TelUri::parse_rest(rest, base).map(Address::Tel)
        } else if is("irc") || is("ircs") {
            IrcAddress::parse_rest(rest, base, is("ircs")).map(Address::Irc)
        } else {
            Err(AddressError::UnknownScheme { offset: colon })
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Sip(u) => u.fmt(f),
            Address::Im(u) => u.fmt(f),
            Address::Xmpp(u) => u.fmt(f),
            Address::Tel(u) => u.fmt(f),
            Address::Irc(u) => u.fmt(f),
        }
    }
}

macro_rules! from_variant {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Address {
            fn from(v: $ty) -> Self {
                Address::$variant(v)
            }
        }
    )*};
}
from_variant!(
    Sip(SipUri),
    Im(ImUri),
    Xmpp(XmppUri),
    Tel(TelUri),
    Irc(IrcAddress)
);

/// Serialize and Deserialize as the string form.
macro_rules! serde_as_string {
    ($($ty:ty),*) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_as_string!(Address, SipUri, ImUri, XmppUri, TelUri, IrcAddress, Jid);
