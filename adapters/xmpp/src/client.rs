//! Client mode. (Not built yet.)

use cpimgate_mappings::MappingStore;
use cpimgate_model::port::{AdapterContext, AdapterError};

use crate::config::ClientConfig;

/// Run client mode until shutdown.
pub async fn run(
    _config: ClientConfig,
    _mappings: MappingStore,
    _ctx: AdapterContext,
) -> Result<(), AdapterError> {
    Err(AdapterError::Config("xmpp client mode is not built yet".into()))
}
