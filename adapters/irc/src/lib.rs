//! IRC adapter: relay mode, IRCv3.
//!
//! * [`proto`]: the protocol without I/O: the line codec with IRCv3 tags,
//!   ISUPPORT and case mapping, text (formatting, CTCP ACTION, splitting
//!   at the 512-byte limit), nick mapping, flood control, and the
//!   connection state machine ([`proto::session::Session`]: CAP 302, SASL
//!   PLAIN/EXTERNAL, roster, batches, echo-message and labels).
//! * [`relay`]: relay mode's translation between a channel and the model.
//! * the driver: one connection per network, reconnecting with backoff,
//!   rejoining, flood-paced, with deliveries confirmed by echo-message.
//!
//! Relay mode posts messages of other worlds as `<Nick> text` through the
//! gateway's one connection. Puppet mode (a connection per remote user) is
//! not built yet.

pub mod config;
mod driver;
pub mod proto;
pub mod relay;
mod tls;

use cpimgate_model::World;
use cpimgate_model::port::{Adapter, AdapterContext, AdapterError, BoxFuture};

pub use config::IrcConfig;

/// The IRC adapter, ready to run.
#[derive(Debug)]
pub struct IrcAdapter {
    config: IrcConfig,
}

impl IrcAdapter {
    /// An adapter for `config`.
    pub fn new(config: IrcConfig) -> IrcAdapter {
        IrcAdapter { config }
    }
}

impl Adapter for IrcAdapter {
    fn world(&self) -> World {
        World::Irc
    }

    fn run(self: Box<Self>, ctx: AdapterContext) -> BoxFuture<'static, Result<(), AdapterError>> {
        Box::pin(driver::run(self.config, ctx))
    }
}
