//! XMPP adapter: component mode (XEP-0114) and client mode, MUC and 1:1.
//!
//! * [`config`]: the adapter's settings.
//! * [`text`]: text from other worlds becomes character data, never markup.
//! * `client`: client mode — logs in as an account and joins existing MUC
//!   rooms (XEP-0045); room traffic goes to the hub, messages from other
//!   worlds are posted as `<Nick> text`.
//! * `component`: component mode — users and rooms of other worlds appear
//!   as JIDs on the component's domain.

pub mod client;
pub mod component;
pub mod config;
pub mod convert;
pub mod text;

use cpimgate_mappings::MappingStore;
use cpimgate_model::World;
use cpimgate_model::port::{Adapter, AdapterContext, AdapterError, BoxFuture};

pub use config::XmppConfig;

/// The XMPP adapter, in either mode.
#[derive(Debug)]
pub struct XmppAdapter {
    config: XmppConfig,
    mappings: MappingStore,
}

impl XmppAdapter {
    /// An adapter with these settings.
    pub fn new(config: XmppConfig, mappings: MappingStore) -> Self {
        XmppAdapter { config, mappings }
    }
}

impl Adapter for XmppAdapter {
    fn world(&self) -> World {
        World::Xmpp
    }

    fn run(self: Box<Self>, ctx: AdapterContext) -> BoxFuture<'static, Result<(), AdapterError>> {
        let XmppAdapter { config, mappings } = *self;
        match config {
            XmppConfig::Component(c) => Box::pin(component::run(c, mappings, ctx)),
            XmppConfig::Client(c) => Box::pin(client::run(c, mappings, ctx)),
        }
    }
}
