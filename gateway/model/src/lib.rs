//! The neutral message model of cpimgate.
//!
//! Every adapter translates its protocol into this model and out of it, and
//! nothing else: adapters never talk to each other. The model is built on
//! `message/cpim` (RFC 3862):
//!
//! * [`cpim`]: the `message/cpim` codec. A message that arrives as
//!   `message/cpim` keeps its exact bytes ([`Message::cpim`]) so that it can
//!   leave byte-for-byte unchanged on a protocol that carries CPIM
//!   (RFC 3428 §11.5).
//! * [`address`]: typed addresses of every world (`sip:`, `sips:`, `im:`,
//!   `xmpp:`, `tel:`, IRC nicks and channels) and XEP-0106 JID escaping.
//! * [`Message`] and [`RoomEvent`]: what flows between adapters and the hub.
//! * [`port`]: the adapter contract, bounded channels and delivery outcomes.

pub mod address;
pub mod body;
pub mod convert;
pub mod cpim;
pub mod display;
pub mod event;
pub mod message;
pub mod port;
pub mod time;

pub use address::{Address, NameAddr};
pub use event::{RoomEvent, RoomRef};
pub use message::{Hop, Message, MessageId, Origin, World};
pub use port::{AdapterContext, DeliveryOutcome, Inbound, Outbound};
