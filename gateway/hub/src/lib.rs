//! cpimgate: an instant-messaging interworking gateway.
//!
//! This crate is the hub and the `cpimgate` binary. It owns:
//!
//! * [`config`]: the TOML configuration with environment overrides;
//! * [`queue`]: the durable queue in the store's SQLite file, with group
//!   commit;
//! * [`history`]: the recent messages of each bridge, for history on join;
//! * [`routing`]: bridges (rooms of several worlds federated into one
//!   conversation) and 1:1 routes;
//! * [`hub`]: the router and its per-adapter [`dispatch`]ers: fan-out,
//!   loop prevention, retries, reports;
//! * [`memory`]: giving memory back to the system after load;
//! * [`ops`]: logs, `/healthz`, `/readyz`, `/metrics`;
//! * [`inspect`]: what `cpimgate inspect` prints;
//! * [`app`]: `cpimgate run`, tying it all together.
//!
//! Adapters implement [`cpimgate_model::port::Adapter`] and never see each
//! other; nothing imports this crate.

pub mod app;
pub mod config;
pub mod dispatch;
pub mod history;
pub mod hub;
pub mod inspect;
pub mod memory;
pub mod ops;
pub mod queue;
pub mod routing;
