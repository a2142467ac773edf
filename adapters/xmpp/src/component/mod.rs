//! Component mode (XEP-0114). (Not built yet.)

use cpimgate_mappings::MappingStore;
use cpimgate_model::port::{AdapterContext, AdapterError};

use crate::config::ComponentConfig;

/// Run component mode until shutdown.
pub async fn run(
    _config: ComponentConfig,
    _mappings: MappingStore,
    _ctx: AdapterContext,
) -> Result<(), AdapterError> {
    Err(AdapterError::Config("xmpp component mode is not built yet".into()))
}
