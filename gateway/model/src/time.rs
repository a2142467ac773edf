//! Timestamps (RFC 3339, as used by CPIM DateTime). (Placeholder: the full
//! RFC 3339 parser replaces this.)

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// An instant, in microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp {
    /// Microseconds since 1970-01-01T00:00:00Z.
    pub unix_micros: i64,
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// From a `SystemTime`.
    pub fn from_system_time(t: SystemTime) -> Self {
        let micros = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Timestamp { unix_micros: micros }
    }

    /// This instant plus `d`.
    pub fn plus(self, d: std::time::Duration) -> Self {
        let add = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Timestamp {
            unix_micros: self.unix_micros.saturating_add(add),
        }
    }
}
