//! The number of an identity in the table.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::MappingError;

/// The number of an identity in the table. Stable for the life of the
/// database; printed as `#12`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdentityId(pub i64);

impl fmt::Display for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl FromStr for IdentityId {
    type Err = MappingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix('#')
            .unwrap_or(s)
            .parse()
            .map(IdentityId)
            .map_err(|_| MappingError::invalid("identity id", s, "expected a number such as #12"))
    }
}
