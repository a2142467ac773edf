//! The cpimgate hub, in-process, for a test.
//!
//! [`Gateway::start`] writes the test's TOML into a temporary directory and
//! starts the hub the way `cpimgate run` does (mapping table, durable queue,
//! adapters), except that:
//!
//! * `store.path` is always `<dir>/gateway.sqlite` and the admin listener is
//!   off (`CPIMGATE__STORE__PATH`, `CPIMGATE__ADMIN__LISTEN` overrides);
//! * `{dir}` in the TOML is replaced by the directory's path;
//! * sections with `kind = "embedded"` are served by the adapters the test
//!   passes (see [`crate::embedded`]), by name; every other section is
//!   built by `cpimgate::app::build_adapters`, as in production.
//!
//! ```no_run
//! # async fn f(server: &cpimgate_e2e::prosody::Prosody) -> anyhow::Result<()> {
//! use cpimgate_e2e::embedded::embedded_adapter;
//! use cpimgate_e2e::gateway::Gateway;
//! use cpimgate_model::World;
//! let (sip_adapter, mut sip) = embedded_adapter(World::Sip);
//! let toml = format!(r#"
//!     [gateway]
//!     name = "gw-test"
//!     [adapters.xmpp]
//!     kind = "xmpp"
//!     mode = "component"
//!     domain = "gw.localhost"
//!     secret = "gw-test-secret"
//!     server = "{}"
//!     [adapters.sip]
//!     kind = "embedded"
//! "#, server.component_addr());
//! let gw = Gateway::start(&toml, vec![("sip".into(), sip_adapter)]).await?;
//! gw.wait_connected("xmpp", std::time::Duration::from_secs(15)).await?;
//! // ...
//! gw.shutdown().await?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use cpimgate::config::{AdapterSection, Config};
use cpimgate::hub::{Readiness, RunningHub};
use cpimgate_mappings::MappingStore;
use cpimgate_model::port::{Adapter, AdapterStatus};

use crate::HarnessError;

/// How long in-flight deliveries may take at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// A running in-process gateway.
#[derive(Debug)]
pub struct Gateway {
    dir: tempfile::TempDir,
    config: Config,
    mappings: MappingStore,
    hub: Option<RunningHub>,
}

impl Gateway {
    /// Start the hub from `config_toml` with the test's adapters for the
    /// `kind = "embedded"` sections.
    pub async fn start(
        config_toml: &str,
        embedded: Vec<(String, Box<dyn Adapter>)>,
    ) -> Result<Gateway, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("cpimgate-gateway-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary directory", e))?;
        let path = dir.path().join("gateway.toml");
        let text = config_toml.replace("{dir}", &dir.path().display().to_string());
        std::fs::write(&path, text).map_err(|e| HarnessError::io("writing gateway.toml", e))?;
        let config = load(&path, dir.path())?;
        let (mappings, hub) = run(&config, embedded)
            .await
            .map_err(HarnessError::Gateway)?;
        Ok(Gateway {
            dir,
            config,
            mappings,
            hub: Some(hub),
        })
    }

    /// Stop the hub (two-phase shutdown, in-flight deliveries drain for up
    /// to 5 s) and start it again on the same store, with new embedded
    /// adapters: what was queued is delivered after the restart.
    pub async fn restart(
        &mut self,
        embedded: Vec<(String, Box<dyn Adapter>)>,
    ) -> Result<(), HarnessError> {
        self.stop().await?;
        let (mappings, hub) = run(&self.config, embedded)
            .await
            .map_err(HarnessError::Gateway)?;
        self.mappings = mappings;
        self.hub = Some(hub);
        Ok(())
    }

    /// The loaded configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The gateway's directory (config, store).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The store file (mappings and queue).
    pub fn store_path(&self) -> PathBuf {
        self.config.store.path.clone()
    }

    /// The mapping table.
    pub fn mappings(&self) -> &MappingStore {
        &self.mappings
    }

    /// The hub, while running.
    pub fn hub(&self) -> Option<&RunningHub> {
        self.hub.as_ref()
    }

    /// Which adapters are connected.
    pub fn readiness(&self) -> Option<Readiness> {
        self.hub.as_ref().map(RunningHub::readiness)
    }

    /// Wait until adapter `name` reports itself connected.
    pub async fn wait_connected(&self, name: &str, timeout: Duration) -> Result<(), HarnessError> {
        self.wait_status(name, AdapterStatus::Connected, timeout)
            .await
    }

    /// Wait until adapter `name` reports `status`.
    pub async fn wait_status(
        &self,
        name: &str,
        status: AdapterStatus,
        timeout: Duration,
    ) -> Result<(), HarnessError> {
        let readiness = self
            .readiness()
            .ok_or_else(|| HarnessError::Gateway(anyhow::anyhow!("the gateway is stopped")))?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let now = readiness.snapshot().get(name).copied();
            if now == Some(status) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(HarnessError::Timeout {
                    what: format!("adapter {name} to be {status:?} (it is {now:?})"),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stop the gateway: adapters say goodbye, deliveries drain, the queue
    /// and the store close.
    pub async fn shutdown(mut self) -> Result<(), HarnessError> {
        self.stop().await
    }

    async fn stop(&mut self) -> Result<(), HarnessError> {
        if let Some(hub) = self.hub.take() {
            hub.shutdown(DRAIN)
                .await
                .context("closing the queue")
                .map_err(HarnessError::Gateway)?;
        }
        if let Some(pool) = self.mappings.sqlite_pool() {
            pool.close().await;
        }
        Ok(())
    }
}

fn load(path: &Path, dir: &Path) -> Result<Config, HarnessError> {
    let env = [
        (
            "CPIMGATE__STORE__PATH".to_owned(),
            dir.join("gateway.sqlite").display().to_string(),
        ),
        ("CPIMGATE__ADMIN__LISTEN".to_owned(), String::new()),
    ];
    let config = Config::load_with_env(path, env)
        .with_context(|| format!("loading {}", path.display()))
        .map_err(HarnessError::Gateway)?;
    if !config.admin.listen.is_empty() {
        return Err(HarnessError::Gateway(anyhow::anyhow!(
            "admin.listen: the override to \"\" did not apply (it is {:?})",
            config.admin.listen
        )));
    }
    Ok(config)
}

async fn run(
    config: &Config,
    embedded: Vec<(String, Box<dyn Adapter>)>,
) -> anyhow::Result<(MappingStore, RunningHub)> {
    for (name, _) in &embedded {
        match config.adapters.get(name) {
            Some(AdapterSection::Embedded(_)) => {}
            Some(other) => anyhow::bail!(
                "an embedded adapter was given for adapters.{name}, whose kind is {:?}",
                other.kind()
            ),
            None => anyhow::bail!(
                "an embedded adapter was given for adapters.{name}, which is not in the config"
            ),
        }
    }
    let mappings = cpimgate::app::open_mappings(config).await?;
    let queue = cpimgate::app::open_queue(config).await?;
    let mut built = config.clone();
    built
        .adapters
        .retain(|_, section| !matches!(section, AdapterSection::Embedded(_)));
    let mut adapters = cpimgate::app::build_adapters(&built, &mappings)?;
    adapters.extend(embedded);
    let hub = RunningHub::start(config, adapters, queue).context("starting the hub")?;
    Ok((mappings, hub))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use cpimgate_model::World;
    use cpimgate_model::port::DeliveryOutcome;

    use super::*;
    use crate::embedded::{embedded_adapter, embedded_adapter_with, room_message};
    use crate::xmpp_user::WAIT;

    const TOML: &str = r#"
        [gateway]
        name = "gw-harness"
        [queue]
        retry_base_ms = 20
        retry_max_ms = 100
        [adapters.sip]
        kind = "embedded"
        [adapters.irc]
        kind = "embedded"
        [[bridge]]
        name = "lobby"
        rooms = [
          { adapter = "sip", address = "sip:lobby@chat.example.com" },
          { adapter = "irc", address = "irc://irc.example.org/%23lobby" },
        ]
    "#;

    fn hello(text: &str) -> cpimgate_model::Message {
        room_message(
            World::Sip,
            "sip",
            "sip:lobby@chat.example.com",
            "sip:carol@example.com",
            text,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_bridge_between_two_embedded_adapters_survives_a_restart() {
        let (sip_adapter, sip) = embedded_adapter(World::Sip);
        let (irc_adapter, mut irc) = embedded_adapter(World::Irc);
        let mut gw = Gateway::start(
            TOML,
            vec![("sip".into(), sip_adapter), ("irc".into(), irc_adapter)],
        )
        .await
        .unwrap();
        assert!(gw.store_path().starts_with(gw.dir()));
        assert_eq!(gw.config().admin.listen, "");
        gw.wait_connected("irc", WAIT).await.unwrap();

        assert_eq!(
            sip.send(hello("one")).await.unwrap(),
            DeliveryOutcome::Accepted
        );
        let got = irc.expect_text("one", WAIT).await.unwrap();
        assert_eq!(
            got.to[0].address.to_string(),
            "irc://irc.example.org/%23lobby"
        );

        // IRC is down across a restart: the message waits in the store.
        let (sip_adapter, sip) = embedded_adapter(World::Sip);
        let (irc_adapter, _irc_down) = embedded_adapter_with(World::Irc, false);
        gw.restart(vec![
            ("sip".into(), sip_adapter),
            ("irc".into(), irc_adapter),
        ])
        .await
        .unwrap();
        assert_eq!(
            sip.send(hello("two")).await.unwrap(),
            DeliveryOutcome::Accepted
        );
        let (sip_adapter, _sip) = embedded_adapter(World::Sip);
        let (irc_adapter, mut irc) = embedded_adapter(World::Irc);
        gw.restart(vec![
            ("sip".into(), sip_adapter),
            ("irc".into(), irc_adapter),
        ])
        .await
        .unwrap();
        irc.expect_text("two", WAIT).await.unwrap();
        gw.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn an_embedded_adapter_must_match_an_embedded_section() {
        let (a, _h) = embedded_adapter(World::Sip);
        let (b, _i) = embedded_adapter(World::Irc);
        let err = Gateway::start(TOML, vec![("sip".into(), a), ("sipp".into(), b)])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("adapters.sipp"), "{err}");
    }
}
