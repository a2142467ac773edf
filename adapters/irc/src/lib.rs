//! IRC adapter: relay mode and puppet mode, IRCv3.
//!
//! * [`proto`]: the protocol without I/O: the line codec with IRCv3 tags,
//!   ISUPPORT and case mapping, text (formatting, CTCP ACTION, splitting
//!   at the 512-byte limit), nick mapping, flood control, and the
//!   connection state machine ([`proto::session::Session`]: CAP 302, SASL
//!   PLAIN/EXTERNAL, roster, batches, echo-message and labels).
//! * [`relay`]: the translation between a channel and the model.
//! * `puppet`: puppet mode's bookkeeping without I/O (who has a puppet,
//!   which connection a message takes, nicks kept in the mapping table)
//!   and the task of one puppet connection.
//! * the driver: the gateway's connection to the network, reconnecting
//!   with backoff, rejoining, flood-paced, with deliveries confirmed by
//!   echo-message; in puppet mode it also runs the puppets.
//!
//! Relay mode (`mode = "relay"`, the default) posts messages of other
//! worlds as `<Nick> text` through the gateway's one connection. Puppet
//! mode (`mode = "puppet"`) gives each user of another world present in a
//! bridged channel a connection of their own, with their nick: they join,
//! part, change nick and speak as themselves, and IRC users can write to
//! them privately. The gateway's connection still reads the channels for
//! the hub, leaving out what the puppets say and do.

pub mod config;
#[cfg(feature = "runtime")]
mod driver;
pub mod proto;
#[cfg(feature = "runtime")]
mod puppet;
#[cfg(feature = "runtime")]
pub mod relay;
#[cfg(feature = "runtime")]
mod tls;

#[cfg(feature = "runtime")]
use cpimgate_mappings::MappingStore;
#[cfg(feature = "runtime")]
use cpimgate_model::World;
#[cfg(feature = "runtime")]
use cpimgate_model::port::{Adapter, AdapterContext, AdapterError, BoxFuture};

pub use config::IrcConfig;

/// The IRC adapter, ready to run.
#[cfg(feature = "runtime")]
#[derive(Debug)]
pub struct IrcAdapter {
    config: IrcConfig,
    mappings: MappingStore,
}

#[cfg(feature = "runtime")]
impl IrcAdapter {
    /// An adapter for `config`; puppet mode keeps the nicks it gives to
    /// users of other worlds in `mappings`.
    pub fn new(config: IrcConfig, mappings: MappingStore) -> IrcAdapter {
        IrcAdapter { config, mappings }
    }
}

#[cfg(feature = "runtime")]
impl Adapter for IrcAdapter {
    fn world(&self) -> World {
        World::Irc
    }

    fn run(self: Box<Self>, ctx: AdapterContext) -> BoxFuture<'static, Result<(), AdapterError>> {
        Box::pin(driver::run(self.config, self.mappings, ctx))
    }
}
