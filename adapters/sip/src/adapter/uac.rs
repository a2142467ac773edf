//! The UAC half of the driver: messages from the hub leave as MESSAGE
//! requests, one pending per Request-URI (RFC 3428 §8), and their final
//! responses become delivery outcomes (§4).

use std::time::Instant;

use bytes::Bytes;
use cpimgate_mappings::Alias;
use cpimgate_model::Message;
use cpimgate_model::address::Address;
use cpimgate_model::port::{DeliveryOutcome, Failure, FailureKind, Outbound};
use cpimgate_model::time::Timestamp;

use super::wire::next_hop;
use super::{Driver, Outgoing, POISON_FOR, random_token};
use crate::codec::{self, HeaderName};
use crate::digest::{DigestClient, DigestRequest, RandomCnonce};
use crate::message::{RequestParts, build_request, from_value, from_value_of, outcome_of};
use crate::transaction::{self, Method, OutgoingRequest, ResponseSummary, TxId};
use crate::transport::{Destination, TransportKind, request_transport};

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
            conn: None,
        };
        if let Some(out) = self.queues.push(&uri, out) {
            self.start(out, None);
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

    /// Sends `out` in a new client transaction, with `authorization` when
    /// answering a challenge.
    fn start(&mut self, out: Outgoing, authorization: Option<(&'static str, String)>) {
        match self.try_start(&out, authorization) {
            Ok(tx) => {
                self.sending.insert(tx, out);
            }
            Err(f) => {
                let uri = out.uri.clone();
                let _ = out.reply.send(DeliveryOutcome::Failed(f));
                if let Some(next) = self.queues.finish(&uri) {
                    self.start(next, None);
                }
            }
        }
    }

    fn try_start(
        &mut self,
        out: &Outgoing,
        authorization: Option<(&'static str, String)>,
    ) -> Result<TxId, Failure> {
        let hop = match &self.config.outbound_proxy {
            Some(p) => p.as_str(),
            None => out.uri.as_str(),
        };
        let (mut kind, addr, host) = next_hop(hop)?;
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
                authorization: authorization.as_ref().map(|(n, v)| (*n, v.as_str())),
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
        let mut dest = Destination::new(kind, addr);
        if kind == TransportKind::Tls {
            dest = dest.with_tls_name(host);
        }
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
                    out.authorized = true;
                    out.cseq += 1;
                    out.conn = None;
                    self.start(out, Some((answer_header, value)));
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
            DeliveryOutcome::Failed(f) if f.is_transient() => self.fail_transient(out, f),
            outcome => {
                let uri = out.uri.clone();
                let _ = out.reply.send(outcome);
                if let Some(next) = self.queues.finish(&uri) {
                    self.start(next, None);
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
