//! The registration half of the driver: the bindings of
//! [`crate::register`] sent through the transaction layer, refreshed on
//! their timers, removed when the adapter stops.
//!
//! The next hop (the outbound proxy, else the registrar) is located like
//! a MESSAGE's (RFC 3263): on the spot for a numeric IP address, by a
//! spawned lookup that reports back as `Internal::RegistrarResolved` for
//! a name (the binding's timer is held meanwhile). A transport error, a
//! timeout or a 503 sends the REGISTER to the next server of the list
//! (§4.3); when none is left, the binding's own retry takes over. The
//! answer to a challenge goes to the server that challenged.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cpimgate_model::address::Address;

use super::{Driver, Internal, random_token};
use crate::codec;
use crate::config::SipConfig;
use crate::digest::DigestClient;
use crate::register::{Binding, Hop, Outcome};
use crate::resolve::{ResolveError, Target};
use crate::transaction::{self, Method, OutgoingRequest, TxId};
use crate::transport::TransportKind;

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
    /// The earliest time a binding needs a REGISTER (not counting those
    /// whose next hop is being looked up).
    pub(super) fn register_timeout(&self) -> Option<Instant> {
        self.bindings
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.register_lookups.contains_key(i))
            .filter_map(|(_, b)| b.poll_timeout())
            .min()
    }

    /// Sends the REGISTERs that are due.
    pub(super) fn register_due(&mut self, now: Instant) {
        for i in 0..self.bindings.len() {
            if self.bindings[i].is_due(now) && !self.register_lookups.contains_key(&i) {
                self.send_register(i, false);
            }
        }
    }

    /// Sends the REGISTER of binding `i` (with `Expires: 0` when
    /// `remove`) through its next hop: the outbound proxy, else the
    /// registrar, located first (RFC 3263).
    fn send_register(&mut self, i: usize, remove: bool) {
        let Some(binding) = self.bindings.get(i) else {
            return;
        };
        let hop_uri = self
            .config
            .outbound_proxy
            .clone()
            .unwrap_or_else(|| binding.registrar().to_owned());
        let Ok(Address::Sip(uri)) = hop_uri.parse::<Address>() else {
            let outcome = self.bindings[i]
                .handle_failure(Instant::now(), &format!("{hop_uri} is not a SIP URI"));
            self.log_outcome(i, &outcome);
            return;
        };
        if let Some(result) = self.resolver.resolve_now(&uri) {
            self.register_resolved(i, remove, result);
            return;
        }
        // One lookup per binding at a time; a removal asked meanwhile is
        // sent when it ends.
        if let Some(r) = self.register_lookups.get_mut(&i) {
            *r |= remove;
            return;
        }
        self.register_lookups.insert(i, remove);
        let resolver = self.resolver.clone();
        let internal = self.internal.clone();
        tokio::spawn(async move {
            let result = resolver.resolve(&uri).await;
            let _ = internal
                .send(Internal::RegistrarResolved { binding: i, result })
                .await;
        });
    }

    /// The servers of binding `i`'s next hop are known: the REGISTER goes
    /// to the first.
    pub(super) fn register_resolved(
        &mut self,
        i: usize,
        remove: bool,
        result: Result<Vec<Target>, ResolveError>,
    ) {
        if i >= self.bindings.len() {
            return;
        }
        let mut targets: std::collections::VecDeque<Target> = match result {
            Ok(t) => t.into(),
            Err(e) => {
                let outcome = self.bindings[i].handle_failure(Instant::now(), &e.to_string());
                self.log_outcome(i, &outcome);
                return;
            }
        };
        let Some(first) = targets.pop_front() else {
            let outcome = self.bindings[i].handle_failure(Instant::now(), "no server to send to");
            self.log_outcome(i, &outcome);
            return;
        };
        self.register_fallbacks.insert(i, targets);
        self.register_to(i, remove, &first);
    }

    /// RFC 3263 §4.3: the REGISTER of binding `i` failed at one server;
    /// true when it went to the next one.
    fn register_fail_over(&mut self, i: usize, why: &str) -> bool {
        let Some(next) = self
            .register_fallbacks
            .get_mut(&i)
            .and_then(std::collections::VecDeque::pop_front)
        else {
            return false;
        };
        tracing::info!(
            adapter = %self.name,
            "REGISTER failed ({why}); trying {} {}", next.transport, next.addr
        );
        // The binding knows whether it is removing: the same REGISTER.
        self.register_to(i, false, &next);
        true
    }

    /// Sends the REGISTER of binding `i` to `target` (the removal when
    /// `remove`).
    fn register_to(&mut self, i: usize, remove: bool, target: &Target) {
        self.register_servers.insert(i, target.clone());
        let kind = target.transport;
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
        let dest = target.destination();
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
            // RFC 3263 §4.3: a 503 is a failure of this server.
            Ok(m) if m.status() == Some(503) && self.register_fail_over(i, "503") => return true,
            Ok(m) => self.bindings[i].handle_response(now, &m),
            Err(e) => self.bindings[i].handle_failure(now, &format!("unreadable response: {e}")),
        };
        self.log_outcome(i, &outcome);
        if outcome == Outcome::SendAgain {
            // The answer to a challenge (or 423) goes to the server that
            // asked for it: its nonce is its own.
            match self.register_servers.get(&i).cloned() {
                Some(server) => self.register_to(i, false, &server),
                None => self.send_register(i, false),
            }
        }
        true
    }

    /// A REGISTER that got no final response; false when `tx` is not one.
    pub(super) fn register_lost(&mut self, tx: TxId, why: &str) -> bool {
        let Some(i) = self.register_txs.remove(&tx) else {
            return false;
        };
        if self.register_fail_over(i, why) {
            return true;
        }
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
        self.unregistering()
    }

    /// Whether removals are still awaited (or their next hops looked up).
    pub(super) fn unregistering(&self) -> bool {
        !self.register_txs.is_empty() || !self.register_lookups.is_empty()
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
