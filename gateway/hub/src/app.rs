//! `cpimgate run`: open the store, start the hub, the adapters and the
//! admin listener, and stop cleanly on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use cpimgate_mappings::{Alias, MappingStore};
use cpimgate_model::port::Adapter;
use tokio::sync::watch;

use crate::config::{AdapterSection, Config};
use crate::hub::RunningHub;
use crate::queue::{Queue, QueueConfig};

/// Build the adapter instances the config names.
///
/// The protocol adapters are built by their own issues; until one is in this
/// build, a config that names it fails at start, saying so.
pub fn build_adapters(
    cfg: &Config,
    mappings: &MappingStore,
) -> anyhow::Result<Vec<(String, Box<dyn Adapter>)>> {
    let mut out: Vec<(String, Box<dyn Adapter>)> = Vec::new();
    for (name, section) in &cfg.adapters {
        match section {
            AdapterSection::Xmpp(x) => out.push((
                name.clone(),
                Box::new(cpimgate_xmpp::XmppAdapter::new(x.clone(), mappings.clone())),
            )),
            AdapterSection::Irc(i) => out.push((
                name.clone(),
                Box::new(cpimgate_irc::IrcAdapter::new(i.clone(), mappings.clone())),
            )),
            AdapterSection::Sip(s) => out.push((
                name.clone(),
                Box::new(cpimgate_sip::SipAdapter::new(s.clone(), mappings.clone())),
            )),
            AdapterSection::Msrp(m) => out.push((
                name.clone(),
                Box::new(cpimgate_msrp::MsrpAdapter::new(m.clone(), mappings.clone())),
            )),
            other => anyhow::bail!(
                "adapters.{name}.kind: the {} adapter is not part of this build yet",
                other.kind()
            ),
        }
    }
    Ok(out)
}

/// Open the mapping table and write the static entries of the config into it.
pub async fn open_mappings(cfg: &Config) -> anyhow::Result<MappingStore> {
    let store = MappingStore::open(&cfg.store.path)
        .await
        .with_context(|| format!("store.path: {}", cfg.store.path.display()))?;
    for (i, identity) in cfg.identity.iter().enumerate() {
        let aliases = identity
            .aliases
            .iter()
            .map(|a| a.parse::<Alias>())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("identity[{i}]"))?;
        store
            .upsert_identity(identity.display_name.as_deref(), &aliases)
            .await
            .with_context(|| format!("identity[{i}]"))?;
    }
    for bridge in &cfg.bridge {
        for (j, room) in bridge.rooms.iter().enumerate() {
            let alias = room
                .address
                .parse()
                .ok()
                .as_ref()
                .and_then(crate::config::room_alias)
                .with_context(|| format!("bridge {}: rooms[{j}].address", bridge.name))?;
            if store.bridge_of(&alias).as_deref() != Some(bridge.name.as_str()) {
                store
                    .add_room(&bridge.name, alias)
                    .await
                    .with_context(|| format!("bridge {}: rooms[{j}]", bridge.name))?;
            }
        }
    }
    Ok(store)
}

/// Open the durable queue in the store's file.
pub async fn open_queue(cfg: &Config) -> anyhow::Result<Queue> {
    let (queue, pending) = Queue::open(QueueConfig {
        path: cfg.store.path.clone(),
        max_batch: cfg.queue.max_batch,
        batch_delay: Duration::from_micros(cfg.queue.batch_delay_us),
        history_keep: cfg.history.keep,
        history_max_age: cfg.history.max_age(),
        ..QueueConfig::default()
    })
    .await
    .with_context(|| format!("store.path: {}", cfg.store.path.display()))?;
    if !pending.is_empty() {
        tracing::info!(
            pending = pending.len(),
            "queued messages from before the last stop will be delivered"
        );
    }
    Ok(queue)
}

/// Run until SIGINT or SIGTERM.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    // Install the recorder before anything records.
    let _ = crate::ops::metrics_handle();
    let mappings = open_mappings(&cfg).await?;
    let queue = open_queue(&cfg).await?;
    let adapters = build_adapters(&cfg, &mappings)?;
    let hub = RunningHub::start(&cfg, adapters, queue)?;

    let (admin_stop, admin_stop_rx) = watch::channel(false);
    let admin = if cfg.admin.listen.is_empty() {
        None
    } else {
        let addr: SocketAddr = cfg.admin.listen.parse().context("admin.listen")?;
        let limits = crate::ops::AdminLimits {
            max_connections: cfg.admin.max_connections,
            connection_timeout: Duration::from_millis(cfg.admin.connection_timeout_ms),
        };
        let (local, task) = crate::ops::serve_admin(addr, limits, hub.readiness(), admin_stop_rx)
            .await
            .with_context(|| format!("admin.listen: cannot listen on {addr}"))?;
        tracing::info!(%local, "admin listener up: /healthz /readyz /metrics");
        Some(task)
    };
    let trimmer = tokio::spawn(crate::memory::trim_when_idle(
        Duration::from_millis(cfg.memory.trim_after_idle_ms),
        admin_stop.subscribe(),
    ));
    tracing::info!(gateway = %cfg.gateway.name, store = %cfg.store.path.display(), "cpimgate running");

    wait_for_signal().await?;
    tracing::info!("shutting down: draining in-flight deliveries");
    let drain = Duration::from_millis(cfg.queue.drain_ms);
    hub.shutdown(drain).await.context("closing the queue")?;
    if let Some(pool) = mappings.sqlite_pool() {
        pool.close().await;
    }
    let _ = admin_stop.send(true);
    let _ = trimmer.await;
    if let Some(task) = admin {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    Ok(())
}
