//! The one error type of the crate.

#[cfg(feature = "store")]
use std::path::PathBuf;

use crate::{Alias, IdentityId, RoomAlias};

/// What can go wrong with the mapping table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// Happens when a nickname is reserved (or an IRC nick is chosen) that
    /// another owner already holds in the same scope or in a room bridged
    /// with it. Adapters answer MSRP 425 or XMPP MUC 409 `<conflict/>`.
    #[error("nickname {nick:?} is taken by {owner}")]
    NickTaken {
        /// The nickname as its holder reserved it.
        nick: String,
        /// Who holds it.
        owner: String,
    },

    /// Happens when an alias is given to one person while another person
    /// already has it.
    #[error("{alias} already belongs to identity {owner}")]
    AliasTaken {
        /// The alias asked for.
        alias: Alias,
        /// The identity that has it.
        owner: IdentityId,
    },

    /// Happens when a room is added to a bridge while it belongs to another
    /// one (a room is federated into one conversation only).
    #[error("{room} is already in bridge {bridge:?}")]
    RoomBridged {
        /// The room asked for.
        room: RoomAlias,
        /// The bridge it is in.
        bridge: String,
    },

    /// Happens when an alias is added to, or looked up on, an identity that
    /// does not exist.
    #[error("no identity {0}")]
    UnknownIdentity(IdentityId),

    /// Happens when an address, nick, channel, bridge name or compact form
    /// fails the string-level checks (empty, white space, control
    /// characters, missing `@`, unknown scheme, ...).
    #[error("invalid {what} {input:?}: {reason}")]
    Invalid {
        /// What kind of thing was expected ("IRC nick", "SIP URI", ...).
        what: &'static str,
        /// The input, as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Happens when the database file cannot be opened or created (its
    /// directory does not exist or is not writable, the file is not a
    /// database, ...).
    #[cfg(feature = "store")]
    #[error("cannot open the mapping store {}: {source}", path.display())]
    Open {
        /// The file that was asked for.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: sqlx::Error,
    },

    /// Happens when a query fails (I/O error, database locked for longer
    /// than the busy timeout, lost PostgreSQL connection, ...).
    #[cfg(feature = "store")]
    #[error("mapping store: {0}")]
    Store(#[from] sqlx::Error),

    /// Happens when the schema migrations cannot be applied, e.g. a
    /// migration already applied to this database was edited since.
    #[cfg(feature = "store")]
    #[error("mapping store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl MappingError {
    pub(crate) fn invalid(what: &'static str, input: &str, reason: impl Into<String>) -> Self {
        MappingError::Invalid {
            what,
            input: input.to_owned(),
            reason: reason.into(),
        }
    }
}
