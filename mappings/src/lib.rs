//! The identity and room mapping table of cpimgate.
//!
//! It links the addresses one person or one room has in each world:
//!
//! * **identities**: a person and their [`Alias`]es: an `im:` URI (the
//!   canonical identity), SIP AoRs, bare JIDs, IRC nicks per network, RFC 7701
//!   nicknames per MSRP room, and a display name. [`MappingStore::find`]
//!   goes from any alias to the person with all the others.
//! * **bridges**: named groups of [`RoomAlias`]es (an MSRP room, a MUC, an IRC
//!   channel) federated into one conversation. A room is in one bridge at most.
//! * **nickname reservations** (RFC 7701 §7; XEP-0045 §7.2.9): a nick held by
//!   an owner in a [`NickScope`] (a bridge or a room). A nick held anywhere in
//!   a bridge is held in all its rooms; adapters turn
//!   [`MappingError::NickTaken`] into MSRP 425 or MUC 409 `<conflict/>`.
//! * **learned IRC nicks**: the nick chosen for a remote user on a network
//!   (cut to the network's rules by the IRC adapter), kept so that the same
//!   person keeps the same nick.
//!
//! Static entries come from the config ([`MappingStore::upsert_identity`] and
//! [`MappingStore::add_room`] at start-up are idempotent); learned ones are
//! written as they happen.
//!
//! # Shape
//!
//! Reads are synchronous and never touch the database: the whole table lives
//! in an in-memory cache (behind a `std::sync::RwLock`), loaded at open. Writes
//! are `async`: they check the cache, write the database (whose UNIQUE
//! constraints are the final word when several gateway instances share it),
//! then update the cache, one writer at a time.
//!
//! ```
//! # #![allow(clippy::unwrap_used)]
//! use cpimgate_mappings::{Alias, MappingError, MappingStore, NickScope, RoomAlias};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), MappingError> {
//! let dir = std::env::temp_dir().join(format!("cpimgate-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let store = MappingStore::open(&dir.join("mappings.sqlite")).await?;
//!
//! // One person, three worlds.
//! let alice = store
//!     .upsert_identity(
//!         Some("Alice"),
//!         &["im:alice@example.com".parse()?, "xmpp:alice@example.org".parse()?, "irc:libera/alice".parse()?],
//!     )
//!     .await?;
//! let who = store.find(&"irc:Libera/ALICE".parse()?).unwrap();
//! assert_eq!(who.id, alice);
//! assert!(who.aliases.contains(&Alias::Jid("alice@example.org".into())));
//!
//! // One conversation, two worlds.
//! store.add_room("lobby", "irc:libera/#lobby".parse()?).await?;
//! store.add_room("lobby", "xmpp:lobby@conference.example.org".parse()?).await?;
//! assert_eq!(store.bridge_of(&"irc:libera/#LOBBY".parse()?).as_deref(), Some("lobby"));
//!
//! // A nickname reserved in the MUC is taken on the IRC side of the bridge too.
//! let muc: RoomAlias = "xmpp:lobby@conference.example.org".parse()?;
//! store.reserve_nick(&muc.into(), "Alice", "im:alice@example.com").await?;
//! let irc = NickScope::Room("irc:libera/#lobby".parse()?);
//! assert!(matches!(
//!     store.reserve_nick(&irc, "alice", "sip:mallory@example.net").await,
//!     Err(MappingError::NickTaken { .. })
//! ));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```
//!
//! # Normalisation and keys
//!
//! Addresses are stored as canonical strings: schemes, domains, SIP hosts and
//! JIDs lowered, SIP user parts and `im:` local parts kept (see [`Alias`]). Nicks and channels keep their spelling and are compared
//! through a folded key: IRC by the network's `CASEMAPPING` ([`casefold`];
//! `rfc1459` unless [`StoreOptions::casemappings`] says otherwise), RFC 7701
//! nicknames and reservations by [`nick_key`]. This crate does only
//! string-level validation; it does not use the model's `Address` parser.
//!
//! # Storage
//!
//! The embedded default is one SQLite file ([`MappingStore::open`]: created
//! if missing, WAL journal). The hub may share that file with its durable
//! queue ([`MappingStore::open_pool`], [`MappingStore::sqlite_pool`]). Both use
//! sqlx's `_sqlx_migrations` table with their own migrators: this crate's
//! migrations (`mappings/migrations/`, embedded with `include_str!`, see `embedded_migrator`) are
//! numbered 100..199 and the queue's 200..299, and each migrator runs with
//! `ignore_missing` so the other's versions are not an error.
//!
//! Schema (portable SQL: `TEXT`/`BIGINT`, standard `UNIQUE`, `ON CONFLICT`,
//! `RETURNING`):
//!
//! | table | key | columns |
//! | --- | --- | --- |
//! | `mapping_identities` | `id` | `display_name` |
//! | `mapping_aliases` | `lookup_key` (folded) | `alias` (compact form), `identity_id` |
//! | `mapping_rooms` | `lookup_key` (folded) | `room` (compact form), `bridge` |
//! | `mapping_nick_reservations` | (`scope_key`, `nick_key`) | `scope`, `nick`, `owner` |
//! | `mapping_irc_nicks` | (`network`, `who`); unique (`network`, `nick_key`) | `nick` |
//!
//! **PostgreSQL** (several instances sharing one table) is not wired yet and
//! needs no schema change: the same migrations and the same statements run
//! there. All SQL lives in the private `db` module, where the pool is an enum
//! with one variant, `Db::Sqlite(SqlitePool)`, and every statement is written
//! once inside a `with_pool!` macro. Adding it means a `Db::Postgres(PgPool)`
//! variant, its arm in the macro and in `sqlite_pool`, and a
//! `MappingStore::open_pg(url)` constructor. Instances then need
//! [`MappingStore::reload`] (or a `LISTEN/NOTIFY` hook) to see each other's
//! writes in their caches; the database constraints already refuse
//! conflicting writes, and the store turns those into the same errors.

mod alias;
#[cfg(feature = "store")]
mod cache;
mod casefold;
#[cfg(feature = "store")]
mod db;
mod error;
mod identity_id;
#[cfg(feature = "store")]
mod migrations;
#[cfg(feature = "store")]
mod store;

pub use alias::{Alias, NickScope, RoomAlias};
pub use casefold::{CaseMapping, casefold, nick_key};
pub use error::MappingError;
pub use identity_id::IdentityId;
#[cfg(feature = "store")]
pub use migrations::embedded_migrator;
#[cfg(feature = "store")]
pub use store::{Identity, IrcNick, MappingStore, Reservation, StoreOptions};
