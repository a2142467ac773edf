//! The UAC half of the driver: messages from the hub leave as MESSAGE
//! requests, one pending per Request-URI (RFC 3428 §8), to the servers
//! RFC 3263 locates for it, and their final responses become delivery
//! outcomes (§4).

use std::time::Instant;

use bytes::Bytes;
use cpimgate_mappings::Alias;
use cpimgate_model::Message;
use cpimgate_model::address::Address;
use cpimgate_model::port::{DeliveryOutcome, Failure, FailureKind, Outbound};
use cpimgate_model::time::Timestamp;

use super::{Driver, Internal, Outgoing, POISON_FOR, random_token};
use crate::codec::{self, HeaderName};
use crate::digest::{DigestClient, DigestRequest, RandomCnonce};
use crate::message::{RequestParts, build_request, from_value, from_value_of, outcome_of};
use crate::resolve::{ResolveError, Target};
use crate::transaction::{self, Method, OutgoingRequest, ResponseSummary, TxId};
use crate::transport::request_transport;

impl Driver {
    pub(super) fn handle_outbound(&mut self, out: Outbound) {
        let (message, reply) = match out {
            Outbound::Deliver { message, reply } => (message, reply),
            // A room event or a report has no place in pager mode (a
            // report after 202 has nobody to go to, RFC 3428 §7).
            _ => return,
        };
        if message.is_expired(Timestamp::now()) {
            let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                FailureKind::Expired,
                "expired before it could be sent",
            )));
            return;
        }
        let uri = match self.request_uri(&message) {
            Ok(u) => u,
            Err(f) => {
                let _ = reply.send(DeliveryOutcome::Failed(f));
                return;
            }
        };
        if let Some((id, until)) = self.poisoned.get(&uri) {
            if *id == message.id || Instant::now() >= *until {
                self.poisoned.remove(&uri);
            } else {
                let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                    FailureKind::Unreachable,
                    format!("an earlier message to {uri} waits to be sent again"),
                )));
                return;
            }
        }
        let out = Outgoing {
            message,
            reply,
            uri: uri.clone(),
            call_id: format!("{}@{}", random_token(), self.config.primary_domain()),
            from_tag: random_token(),
            cseq: 1,
            authorized: false,
            authorization: None,
            conn: None,
            target: None,
            fallbacks: std::collections::VecDeque::new(),
        };
        if let Some(out) = self.queues.push(&uri, out) {
            self.start(out);
        }
    }

    /// The Request-URI of a message: its SIP recipient, or the SIP address
    /// of record the mapping table gives an `im:` one (RFC 3428 §5).
    fn request_uri(&self, message: &Message) -> Result<String, Failure> {
        let to = message
            .to
            .first()
            .ok_or_else(|| Failure::new(FailureKind::NotFound, "no recipient"))?;
        match &to.address {
            Address::Sip(u) => Ok(u.to_string()),
            Address::Im(u) => {
                let alias = Alias::Im(u.to_string());
                self.mappings
                    .find(&alias)
                    .and_then(|id| {
                        id.aliases.iter().find_map(|a| match a {
                            Alias::Sip(s) => Some(s.clone()),
                            _ => None,
                        })
                    })
                    .ok_or_else(|| {
                        Failure::new(FailureKind::NotFound, format!("{u} has no SIP address"))
                    })
            }
            other => Err(Failure::new(
                FailureKind::NotFound,
                format!("{other} is not a SIP address"),
            )),
        }
    }

    /// Sends `out` in a new client transaction to its target, after
    /// locating the servers of its next hop when that is not done yet.
    fn start(&mut self, out: Outgoing) {
        if out.target.is_none() {
            self.locate(out);
            return;
        }
        match self.try_start(&out) {
            Ok(tx) => {
                self.sending.insert(tx, out);
            }
            Err(f) => self.fail_permanent(out, f),
        }
    }

    /// The pending message for a URI failed for good: the next one goes.
    fn fail_permanent(&mut self, out: Outgoing, failure: Failure) {
        let uri = out.uri.clone();
        let _ = out.reply.send(DeliveryOutcome::Failed(failure));
        if let Some(next) = self.queues.finish(&uri) {
            self.start(next);
        }
    }

    /// RFC 3263 §4: the servers of the next hop, the outbound proxy or
    /// the Request-URI. A numeric IP address needs no DNS and is done on
    /// the spot; a name is looked up by a task of its own, which reports
    /// back as [`Internal::Resolved`].
    fn locate(&mut self, out: Outgoing) {
        let hop = self.config.outbound_proxy.as_deref().unwrap_or(&out.uri);
        let uri = match hop.parse::<Address>() {
            Ok(Address::Sip(u)) => u,
            _ => {
                let f = Failure::new(FailureKind::NotFound, format!("{hop} is not a SIP URI"));
                self.fail_permanent(out, f);
                return;
            }
        };
        if let Some(result) = self.resolver.resolve_now(&uri) {
            self.resolved(out, result);
            return;
        }
        let id = self.next_lookup;
        self.next_lookup += 1;
        self.resolving.insert(id, out);
        let resolver = self.resolver.clone();
        let internal = self.internal.clone();
        tokio::spawn(async move {
            let result = resolver.resolve(&uri).await;
            let _ = internal.send(Internal::Resolved { id, result }).await;
        });
    }

    /// The servers of `out`'s next hop are known: the first is tried.
    pub(super) fn resolved(
        &mut self,
        mut out: Outgoing,
        result: Result<Vec<Target>, ResolveError>,
    ) {
        match result {
            Ok(targets) => {
                out.fallbacks = targets.into();
                match out.fallbacks.pop_front() {
                    Some(t) => {
                        out.target = Some(t);
                        self.start(out);
                    }
                    None => {
                        let f = Failure::new(FailureKind::NotFound, "no server to send to");
                        self.fail_permanent(out, f);
                    }
                }
            }
            Err(e) => {
                tracing::info!(adapter = %self.name, "cannot locate the server of {}: {e}", out.uri);
                if e.is_transient() {
                    self.fail_transient(out, Failure::new(FailureKind::Unreachable, e.to_string()));
                } else {
                    self.fail_permanent(out, Failure::new(FailureKind::NotFound, e.to_string()));
                }
            }
        }
    }

    /// RFC 3263 §4.3: one server failed (transport error, timeout, 503):
    /// "the client SHOULD create a new request, which is identical to the
    /// previous, but has a different value of the Via branch ID [...]
    /// sent to the next element in the list". When none is left, the
    /// message fails with `failure`.
    pub(super) fn fail_over(&mut self, mut out: Outgoing, failure: Failure) {
        let Some(next) = out.fallbacks.pop_front() else {
            self.fail_transient(out, failure);
            return;
        };
        if let Some(failed) = &out.target {
            tracing::info!(
                adapter = %self.name,
                "{} at {} {} failed ({failure}); trying {} {}",
                out.uri, failed.transport, failed.addr, next.transport, next.addr
            );
        }
        out.target = Some(next);
        out.conn = None;
        self.start(out);
    }

    fn try_start(&mut self, out: &Outgoing) -> Result<TxId, Failure> {
        let target = out
            .target
            .clone()
            .ok_or_else(|| Failure::new(FailureKind::Internal, "no server located"))?;
        let mut kind = target.transport;
        let route = self
            .config
            .outbound_proxy
            .as_ref()
            .map(|p| format!("<{};lr>", p.split(';').next().unwrap_or(p)));
        let from = match self.aor_of(&out.message.from.address) {
            // A registered user's From is its address of record, so that
            // replies come back through the registrar (RFC 3261 §10).
            Some(aor) => {
                let aor: Address = aor.parse().map_err(|e| {
                    Failure::new(
                        FailureKind::Internal,
                        format!("address of record {aor}: {e}"),
                    )
                })?;
                let display = out.message.from.display.as_deref();
                from_value_of(&aor, display, self.config.primary_domain())?
            }
            None => from_value(&out.message, self.config.primary_domain())?,
        };
        let now = Timestamp::now();
        let mut bytes = Vec::new();
        let mut branch = String::new();
        // RFC 3428 §8 with RFC 3261 §18.1.1: a MESSAGE over 1300 bytes
        // leaves UDP for TCP; the Via names the transport it takes.
        for _ in 0..2 {
            branch = format!("{}{}", transaction::MAGIC_COOKIE, random_token());
            let sent_by = self
                .sent_by
                .get(&kind)
                .or_else(|| self.sent_by.values().next())
                .cloned()
                .unwrap_or_else(|| "127.0.0.1".to_owned());
            let parts = RequestParts {
                uri: &out.uri,
                from: &from,
                from_tag: &out.from_tag,
                call_id: &out.call_id,
                cseq: out.cseq,
                transport: kind,
                sent_by: &sent_by,
                branch: &branch,
                route: route.as_deref(),
                authorization: out.authorization.as_ref().map(|(n, v)| (*n, v.as_str())),
                now,
            };
            let request = build_request(&out.message, &parts).map_err(|e| {
                Failure::new(
                    FailureKind::Rejected,
                    format!("cannot write the MESSAGE: {e}"),
                )
            })?;
            bytes = request.to_bytes();
            let choice = request_transport(kind, bytes.len(), None);
            if !choice.switched {
                break;
            }
            kind = choice.transport;
        }
        // RFC 3261 §18.1.1: a MESSAGE too large for UDP goes over TCP to
        // the same address.
        let dest = Target {
            transport: kind,
            ..target
        }
        .destination();
        self.layer
            .send_request(
                Instant::now(),
                OutgoingRequest {
                    method: Method::Message,
                    branch,
                    bytes: Bytes::from(bytes),
                    dest,
                    reliable: kind.is_reliable(),
                },
            )
            .map_err(|e| Failure::new(FailureKind::Internal, e.to_string()))
    }

    pub(super) fn handle_final(&mut self, tx: TxId, response: &ResponseSummary, bytes: &Bytes) {
        let Some(mut out) = self.sending.remove(&tx) else {
            return;
        };
        let parsed = codec::parse(bytes).ok();
        let reason = parsed
            .as_ref()
            .and_then(codec::Message::reason)
            .unwrap_or_default()
            .to_owned();
        // RFC 3261 §22.2, §22.3: answer one challenge with the configured
        // credentials; a second one is a refusal.
        if matches!(response.status, 401 | 407) && !out.authorized {
            if let (Some(p), Some(client)) = (parsed.as_ref(), self.client.as_mut()) {
                let (challenge_header, answer_header) = if response.status == 401 {
                    (HeaderName::WwwAuthenticate, "Authorization")
                } else {
                    (HeaderName::ProxyAuthenticate, "Proxy-Authorization")
                };
                let realm_ok = |r: &str| {
                    self.config
                        .credentials
                        .as_ref()
                        .and_then(|c| c.realm.as_deref())
                        .is_none_or(|want| want == r)
                };
                let challenge = DigestClient::choose_header_values(
                    p.headers_named(challenge_header).map(codec::Header::value),
                )
                .filter(|c| realm_ok(&c.realm));
                let credentials = challenge.and_then(|c| {
                    let body = match &out.message.cpim {
                        Some(c) => c.0.clone(),
                        None => out.message.body.0.clone(),
                    };
                    let request = DigestRequest {
                        method: "MESSAGE",
                        uri: &out.uri,
                        body: &body,
                    };
                    client
                        .authorize(&c, &request, &mut RandomCnonce)
                        .ok()
                        .and_then(|cr| cr.to_header_value().ok())
                });
                if let Some(value) = credentials {
                    // To the server that challenged.
                    out.authorized = true;
                    out.authorization = Some((answer_header, value));
                    out.cseq += 1;
                    out.conn = None;
                    self.start(out);
                    return;
                }
            }
        }
        metrics::counter!(
            "cpimgate_sip_message_responses_total",
            "adapter" => self.name.clone(),
            "status" => response.status.to_string(),
        )
        .increment(1);
        let outcome = outcome_of(response.status, &reason);
        match outcome {
            // RFC 3263 §4.3: a 503 is a failure of this server.
            DeliveryOutcome::Failed(f) if response.status == 503 => self.fail_over(out, f),
            DeliveryOutcome::Failed(f) if f.is_transient() => self.fail_transient(out, f),
            outcome => {
                let uri = out.uri.clone();
                let _ = out.reply.send(outcome);
                if let Some(next) = self.queues.finish(&uri) {
                    self.start(next);
                }
            }
        }
    }

    /// A transient failure of the pending message for a URI: it and every
    /// message behind it fail the same way, and the URI waits for the
    /// hub's retry of the first (the port's ordering contract).
    pub(super) fn fail_transient(&mut self, out: Outgoing, failure: Failure) {
        for behind in self.queues.fail_all(&out.uri) {
            let _ = behind.reply.send(DeliveryOutcome::Failed(failure.clone()));
        }
        self.poisoned.insert(
            out.uri.clone(),
            (out.message.id.clone(), Instant::now() + POISON_FOR),
        );
        let _ = out.reply.send(DeliveryOutcome::Failed(failure));
    }
}
