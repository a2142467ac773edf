//! Addresses of every world. (Placeholder API: the full parser replaces this.)

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An address in one of the worlds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Address {
    /// Placeholder.
    Uri(String),
}

/// Error parsing an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address at byte {offset}: {reason}")]
pub struct AddressError {
    /// Byte offset.
    pub offset: usize,
    /// Reason.
    pub reason: &'static str,
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(AddressError { offset: 0, reason: "empty" });
        }
        Ok(Address::Uri(s.to_owned()))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Uri(s) => f.write_str(s),
        }
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An address with an optional display name (`"Alice" <sip:alice@example.com>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NameAddr {
    /// Display name, unquoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The address.
    pub address: Address,
}

impl NameAddr {
    /// An address without display name.
    pub fn new(address: Address) -> Self {
        NameAddr { display: None, address }
    }
}

impl FromStr for NameAddr {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(lt) = s.find('<') {
            let gt = s.rfind('>').ok_or(AddressError { offset: s.len(), reason: "missing '>'" })?;
            let display = s[..lt].trim().trim_matches('"');
            Ok(NameAddr {
                display: (!display.is_empty()).then(|| display.to_owned()),
                address: s[lt + 1..gt].parse()?,
            })
        } else {
            Ok(NameAddr::new(s.parse()?))
        }
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.display {
            Some(d) => write!(f, "\"{d}\" <{}>", self.address),
            None => write!(f, "<{}>", self.address),
        }
    }
}
