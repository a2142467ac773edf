//! The registration half of the driver: the bindings of
//! [`crate::register`] sent through the transaction layer, refreshed on
//! their timers, removed when the adapter stops.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cpimgate_model::address::Address;

use super::wire::next_hop;
use super::{Driver, random_token};
use crate::codec;
use crate::config::SipConfig;
use crate::digest::DigestClient;
use crate::register::{Binding, Hop, Outcome};
use crate::transaction::{self, Method, OutgoingRequest, TxId};
use crate::transport::{Destination, TransportKind};

/// How long a stopping adapter waits for the registrar to confirm that
/// its bindings are removed.
pub(super) const UNREGISTER_WAIT: Duration = Duration::from_secs(2);

/// The bindings of `config` (validated already: a bad entry is skipped
/// with a log line).
pub(super) fn bindings(config: &SipConfig, name: &str, now: Instant) -> Vec<Binding> {
    let mut out = Vec::new();
    for r in &config.register {
        let (Ok(registrar), Ok(address)) =
            (r.registrar_uri(), Address::from_gateway_user(&r.address))
        else {
            tracing::warn!(adapter = %name, "cannot register {}: bad registrar or address", r.aor);
            continue;
        };
        let credentials = r.credentials.as_ref().or(config.credentials.as_ref());
        let client = credentials.map(|c| {
            (
                DigestClient::new(c.user.clone(), c.password.clone()),
                c.realm.clone(),
            )
        });
        let ids = (
            format!("{}@{}", random_token(), config.primary_domain()),
            random_token(),
        );
        out.push(Binding::new(
            r.aor.clone(),
            registrar,
            address,
            r.expires,
            ids,
            client,
            now,
        ));
    }
    out
}

impl Driver {
    /// The earliest time a binding needs a REGISTER.
    pub(super) fn register_timeout(&self) -> Option<Instant> {
        self.bindings.iter().filter_map(Binding::poll_timeout).min()
    }

    /// Sends the REGISTERs that are due.
    pub(super) fn register_due(&mut self, now: Instant) {
        for i in 0..self.bindings.len() {
            if self.bindings[i].is_due(now) {
                self.send_register(i, false);
            }
        }
    }

    /// Sends the REGISTER of binding `i` (with `Expires: 0` when
    /// `remove`) through its next hop: the outbound proxy, else the
    /// registrar.
    fn send_register(&mut self, i: usize, remove: bool) {
        let Some(binding) = self.bindings.get(i) else {
            return;
        };
        let hop_uri = self
            .config
            .outbound_proxy
            .clone()
            .unwrap_or_else(|| binding.registrar().to_owned());
        let (kind, addr, host) = match next_hop(&hop_uri) {
            Ok(h) => h,
            Err(f) => {
                let now = Instant::now();
                let outcome = self.bindings[i].handle_failure(now, &f.detail);
                self.log_outcome(i, &outcome);
                return;
            }
        };
        let route = self
            .config
            .outbound_proxy
            .as_ref()
            .map(|p| format!("<{};lr>", p.split(';').next().unwrap_or(p)));
        let sent_by = self.sent_by_for(kind);
        let branch = format!("{}{}", transaction::MAGIC_COOKIE, random_token());
        let hop = Hop {
            transport: kind,
            sent_by: &sent_by,
            branch: &branch,
            route: route.as_deref(),
        };
        let binding = &mut self.bindings[i];
        let request = if remove {
            match binding.unregister(&hop) {
                Some(r) => r,
                None => return,
            }
        } else {
            binding.request(&hop)
        };
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                let outcome = binding.handle_failure(Instant::now(), &e.to_string());
                self.log_outcome(i, &outcome);
                return;
            }
        };
        let mut dest = Destination::new(kind, addr);
        if kind == TransportKind::Tls {
            dest = dest.with_tls_name(host);
        }
        let sent = self.layer.send_request(
            Instant::now(),
            OutgoingRequest {
                method: Method::Register,
                branch,
                bytes: Bytes::from(request.to_bytes()),
                dest,
                reliable: kind.is_reliable(),
            },
        );
        match sent {
            Ok(tx) => {
                self.register_txs.insert(tx, i);
            }
            Err(e) => {
                let outcome = self.bindings[i].handle_failure(Instant::now(), &e.to_string());
                self.log_outcome(i, &outcome);
            }
        }
    }

    /// The Via sent-by (and Contact host) for a transport.
    pub(super) fn sent_by_for(&self, kind: TransportKind) -> String {
        self.sent_by
            .get(&kind)
            .or_else(|| self.sent_by.values().next())
            .cloned()
            .unwrap_or_else(|| "127.0.0.1".to_owned())
    }

    /// A final response to a REGISTER; false when `tx` is not one.
    pub(super) fn register_response(&mut self, tx: TxId, bytes: &Bytes) -> bool {
        let Some(i) = self.register_txs.remove(&tx) else {
            return false;
        };
        let now = Instant::now();
        let outcome = match codec::parse(bytes) {
            Ok(m) => self.bindings[i].handle_response(now, &m),
            Err(e) => self.bindings[i].handle_failure(now, &format!("unreadable response: {e}")),
        };
        self.log_outcome(i, &outcome);
        if outcome == Outcome::SendAgain {
            self.send_register(i, false);
        }
        true
    }

    /// A REGISTER that got no final response; false when `tx` is not one.
    pub(super) fn register_lost(&mut self, tx: TxId, why: &str) -> bool {
        let Some(i) = self.register_txs.remove(&tx) else {
            return false;
        };
        let outcome = self.bindings[i].handle_failure(Instant::now(), why);
        self.log_outcome(i, &outcome);
        true
    }

    fn log_outcome(&self, i: usize, outcome: &Outcome) {
        let Some(b) = self.bindings.get(i) else {
            return;
        };
        let status = match outcome {
            Outcome::Registered(_) => "registered",
            Outcome::Unregistered => "unregistered",
            Outcome::SendAgain => return,
            Outcome::Failed { .. } => "failed",
        };
        metrics::counter!(
            "cpimgate_sip_registrations_total",
            "adapter" => self.name.clone(),
            "outcome" => status,
        )
        .increment(1);
        match outcome {
            Outcome::Registered(d) => tracing::info!(
                adapter = %self.name,
                "registered {} at {} for {} s", b.aor(), b.registrar(), d.as_secs()
            ),
            Outcome::Unregistered => {
                tracing::info!(adapter = %self.name, "unregistered {}", b.aor());
            }
            Outcome::Failed { why, retry_in } => tracing::warn!(
                adapter = %self.name,
                "registration of {} at {} failed: {why}; trying again in {} s",
                b.aor(), b.registrar(), retry_in.as_secs()
            ),
            Outcome::SendAgain => {}
        }
    }

    /// Sends the REGISTERs that remove every binding; true when any went
    /// out (the caller then waits for their answers, at most
    /// [`UNREGISTER_WAIT`]).
    pub(super) fn unregister_all(&mut self) -> bool {
        // A REGISTER out for a binding would race the removal: forget it.
        self.register_txs.clear();
        for i in 0..self.bindings.len() {
            self.send_register(i, true);
        }
        !self.register_txs.is_empty()
    }

    /// Whether removals are still awaited.
    pub(super) fn unregistering(&self) -> bool {
        !self.register_txs.is_empty()
    }

    /// The address of record registered for the sender of a message: the
    /// From it leaves with, so replies reach the gateway through the
    /// registrar.
    pub(super) fn aor_of(&self, sender: &Address) -> Option<&str> {
        self.bindings
            .iter()
            .find(|b| b.address().same_user(sender))
            .map(Binding::aor)
    }
}
