//! Component mode (XEP-0114): users and rooms of other worlds appear as
//! JIDs on the component's domain.
//!
//! * A user of another world is `<XEP-0106-escaped address>@<domain>`:
//!   `alice\40atlanta.example.com@gw.example.com` is
//!   `im:alice@atlanta.example.com`. An XMPP user chats with that JID; the
//!   hub routes the message by the unescaped address (`[[route]]`), and
//!   replies come back from the same JID. XEP-0184 receipts follow the
//!   other world's outcome: delivered → receipt, accepted only → none,
//!   failed → `<message type='error'/>`. The other way, a message to an
//!   XMPP user asks for a receipt and the hub hears *delivered* when it
//!   comes (module `receipts`). An XEP-0308 correction goes
//!   on as a new message, marked. The service answers `jabber:iq:gateway`
//!   (XEP-0100 §6.3): the JID for an address of another world.
//! * A room of another world is a MUC room (XEP-0045) on the component,
//!   `#chan%irc.example.org@gw.example.com`, served when a bridge names it
//!   (see [`muc`]): history on join, private messages, XEP-0359 ids.
//!
//! Shape: [`core::Core`] is the sans-IO state machine (stanzas and hub
//! traffic in, stanzas and hub requests out: `handle_*`, then drain
//! `poll_output`; time through `poll_timeout` / `handle_timeout`);
//! [`driver`] owns the connection, reconnects with backoff and jitter,
//! fetches room history and talks to the hub.

pub mod core;
mod disco;
pub mod driver;
pub mod muc;
mod receipts;
mod stanzas;

#[cfg(test)]
mod tests;

use cpimgate_mappings::MappingStore;
use cpimgate_model::port::{AdapterContext, AdapterError};

use crate::config::ComponentConfig;

/// Run component mode until shutdown.
pub async fn run(
    config: ComponentConfig,
    mappings: MappingStore,
    ctx: AdapterContext,
) -> Result<(), AdapterError> {
    driver::run(config, mappings, ctx).await
}
