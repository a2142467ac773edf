//! The SIP side of the focus: INVITE joins a room (RFC 7701 §5.2), ACK
//! confirms, BYE leaves; SUBSCRIBE is the conference event package
//! (`events.rs`); OPTIONS is answered; the 2xx is sent again until its
//! ACK (RFC 3261 §13.3.1.4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cpimgate_model::address::Address;
use cpimgate_sip::adapter::wire::{reply_destination, request_summary, response_summary};
use cpimgate_sip::codec::{self, OwnedMessage};
use cpimgate_sip::dialog::{Dialog, Retransmit, Unacked2xx, Via};
use cpimgate_sip::transaction::{
    self, Event, IncomingRequest, Method, OutgoingRequest, OutgoingResponse, Output, TxId,
};
use cpimgate_sip::transport::{Destination, Source};

use super::{Call, Driver, Session, token};
use crate::room::{Participant, Room};
use crate::sdp::{self, Local};
use cpimgate_sip::config::Account;
use cpimgate_sip::digest::DigestRequest;

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, SUBSCRIBE";

impl Driver {
    /// A SIP message from the transport.
    pub(super) fn handle_sip(&mut self, bytes: Bytes, source: &Source) {
        let now = Instant::now();
        let Ok(m) = codec::parse(&bytes) else {
            return;
        };
        if m.status().is_some() {
            if let Some(summary) = response_summary(&m) {
                self.layer.handle_response(now, summary, bytes.clone());
            }
            return;
        }
        let Ok(Some(via)) = m.top_via() else {
            return;
        };
        let dest = reply_destination(&via, source);
        if let Err(e) = m.validate_request() {
            if m.method() != Some("ACK") {
                let s = e.response_status();
                if let Ok(r) = OwnedMessage::response_to(&m, s.code, &s.reason, Some(&token())) {
                    self.transmit(dest, Bytes::from(r.to_bytes()));
                }
            }
            return;
        }
        let Some(summary) = request_summary(&m) else {
            return;
        };
        self.layer.handle_request(
            now,
            IncomingRequest {
                summary,
                bytes: bytes.clone(),
                source: dest,
                reliable: source.transport.is_reliable(),
            },
        );
    }

    pub(super) fn transmit(&self, dest: Destination, bytes: Bytes) {
        let sip = Arc::clone(&self.sip);
        tokio::spawn(async move {
            let _ = sip.send(&dest, bytes).await;
        });
    }

    /// Drains the transaction layer's outputs.
    pub(super) fn drain(&mut self) {
        while let Some(output) = self.layer.poll_output() {
            match output {
                Output::Transmit(t) => self.transmit(t.dest, t.bytes),
                Output::Event(e) => self.handle_event(e),
                Output::SendTrying { tx, request } => {
                    if let Ok(req) = codec::parse(&request) {
                        if let Ok(r) = OwnedMessage::response_to(&req, 100, "Trying", None) {
                            let _ = self.layer.respond(
                                Instant::now(),
                                tx,
                                OutgoingResponse {
                                    status: 100,
                                    to_tag: None,
                                    bytes: Bytes::from(r.to_bytes()),
                                },
                            );
                        }
                    }
                }
                // Only a remote room's INVITE needs an ACK built.
                Output::BuildAck {
                    tx, response_bytes, ..
                } => {
                    self.remote_build_ack(tx, &response_bytes);
                }
                _ => {}
            }
        }
    }

    fn handle_event(&mut self, event: Event<Destination>) {
        match event {
            Event::Request {
                tx, bytes, source, ..
            } => self.handle_request(tx, &bytes, source),
            Event::Response {
                tx,
                response,
                bytes,
            } if self.is_remote_tx(tx) => self.remote_response(tx, response.status, &bytes),
            Event::AcceptedResponse { tx, .. } => {
                self.remote_accepted_again(tx);
            }
            Event::Terminated { tx } => {
                self.remote_invites.remove(&tx);
            }
            Event::Timeout { tx, .. } | Event::TransportError { tx } if self.is_remote_tx(tx) => {
                self.remote_tx_failed(tx);
            }
            Event::Response { tx, response, .. } if response.status >= 200 => {
                self.notify_answered(tx, response.status);
            }
            // RFC 3261 §8.1.3.1: a transaction timeout is a 408.
            Event::Timeout { tx, .. } | Event::TransportError { tx } => {
                self.notify_answered(tx, 408);
            }
            Event::Ack { request, .. } => {
                if let Some(tag) = request.to_tag {
                    if let Some(call) = self.calls.get_mut(&(request.call_id, tag)) {
                        call.unacked = None;
                        // RFC 6026 §7.1 keeps the INVITE's transaction in
                        // Accepted for 64*T1, to absorb retransmissions of
                        // the INVITE and pass on ACKs. The ACK is here,
                        // and a late copy of the INVITE is absorbed by
                        // `invite_again`: the transaction (its request,
                        // its 2xx, its slot: some 2.5 KB per participant
                        // for 32 s) goes now.
                        if let Some(tx) = call.invite_tx.take() {
                            let _ = self.layer.terminate(tx);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn handle_request(&mut self, tx: TxId, bytes: &Bytes, source: Destination) {
        let Ok(req) = codec::parse(bytes) else {
            return;
        };
        if self.remote_request(tx, &req) {
            return;
        }
        let to_tag = req
            .to()
            .ok()
            .flatten()
            .and_then(|t| t.tag())
            .map(str::to_owned);
        match (req.method().unwrap_or_default(), to_tag) {
            ("INVITE", None) if self.invite_again(&req) => {
                let _ = self.layer.terminate(tx);
            }
            ("INVITE", None) => self.invite(tx, &req, source),
            ("INVITE", Some(tag)) => self.reinvite(tx, &req, &tag),
            ("BYE", Some(tag)) => self.bye(tx, &req, &tag),
            ("SUBSCRIBE", tag) => self.subscribe(tx, &req, tag.as_deref(), source),
            ("CANCEL", _) => {
                // The INVITE was answered at once: nothing is pending to
                // cancel (RFC 3261 §9.2), the CANCEL gets its 200.
                self.respond(tx, &req, 200, "OK", &[], None);
            }
            ("OPTIONS", _) => self.respond(
                tx,
                &req,
                200,
                "OK",
                &[("Allow", ALLOW), ("Accept", "application/sdp")],
                None,
            ),
            (_, Some(_)) => {
                self.respond(tx, &req, 481, "Call/Transaction Does Not Exist", &[], None)
            }
            // RFC 3261 §21.5.2: a method the focus does not recognise gets
            // 501; §8.2.1: one it knows but does not serve, 405.
            (m, None) if !cpimgate_sip::message::KNOWN_METHODS.contains(&m) => {
                self.respond(tx, &req, 501, "Not Implemented", &[("Allow", ALLOW)], None)
            }
            _ => self.respond(
                tx,
                &req,
                405,
                "Method Not Allowed",
                &[("Allow", ALLOW)],
                None,
            ),
        }
    }

    /// Answers a server transaction; `body` is an SDP.
    pub(super) fn respond(
        &mut self,
        tx: TxId,
        req: &codec::Message<'_>,
        code: u16,
        reason: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) {
        let tag = token();
        let Ok(mut r) = OwnedMessage::response_to(req, code, reason, Some(&tag)) else {
            return;
        };
        for (n, v) in headers {
            let _ = r.push_header(n, v);
        }
        if let Some(b) = body {
            let _ = r.push_header("Content-Type", "application/sdp");
            r.set_body(b);
        }
        let has_tag = req.to().ok().flatten().and_then(|t| t.tag()).is_some();
        let _ = self.layer.respond(
            Instant::now(),
            tx,
            OutgoingResponse {
                status: code,
                to_tag: (!has_tag && code != 100).then_some(tag),
                bytes: Bytes::from(r.to_bytes()),
            },
        );
    }

    /// RFC 3261 §22: the 401 to send when the sender must authenticate
    /// and has not (outside `trusted`, with `authenticate` on), or when
    /// its From is not the account it authenticated as.
    pub(super) fn challenge(
        &self,
        req: &codec::Message<'_>,
        peer: &Destination,
    ) -> Option<Vec<String>> {
        let server = self.digest.as_ref()?;
        let ip = peer.addr.ip().to_canonical();
        if self.config.trusted.iter().any(|t| t.to_canonical() == ip) {
            return None;
        }
        let now = std::time::SystemTime::now();
        let request = DigestRequest {
            method: req.method().unwrap_or_default(),
            uri: req.request_uri().unwrap_or_default(),
            body: req.body(),
        };
        let from_user = req
            .from()
            .ok()
            .flatten()
            .and_then(|f| f.address().ok())
            .and_then(|a| match a {
                Address::Sip(u) => u.user().map(str::to_owned),
                _ => None,
            });
        let challenges = server
            .authenticate(
                now,
                &request,
                req.authorization(),
                &Account::lookup(&self.config.accounts),
                |user| from_user.as_deref() == Some(user),
                |_| {},
            )
            .err()?;
        Some(challenges.iter().map(|c| c.to_header_value()).collect())
    }

    /// RFC 7701 §5.2: an INVITE with an MSRP offer joins the room its
    /// Request-URI names.
    fn invite(&mut self, tx: TxId, req: &codec::Message<'_>, source: Destination) {
        let refuse = |d: &mut Driver, code: u16, reason: &str| {
            d.respond(tx, req, code, reason, &[], None);
        };
        if let Some(challenges) = self.challenge(req, &source) {
            let headers: Vec<(&str, &str)> = challenges
                .iter()
                .map(|c| ("WWW-Authenticate", c.as_str()))
                .collect();
            return self.respond(tx, req, 401, "Unauthorized", &headers, None);
        }
        let room_key = match req.request_uri_address() {
            Some(Ok(Address::Sip(u))) => match u.user() {
                Some(user) => user.to_ascii_lowercase(),
                None => return refuse(self, 404, "Not Found: no room named"),
            },
            _ => return refuse(self, 416, "Unsupported URI Scheme"),
        };
        if !self.rooms.contains_key(&room_key) {
            if !self.config.create_rooms {
                return refuse(self, 404, "Not Found: no such room");
            }
            let Some(uri) = self.config.room_uri(&room_key) else {
                return refuse(self, 404, "Not Found: not a room name");
            };
            self.rooms.insert(
                room_key.clone(),
                Room::new(uri, crate::room::Policy::default()),
            );
        }
        let is_sdp = req
            .content_type()
            .ok()
            .flatten()
            .is_some_and(|c| c.is("application", "sdp"));
        if !is_sdp {
            return refuse(self, 488, "Not Acceptable Here: an MSRP offer is needed");
        }
        let offer = match sdp::parse(req.body()) {
            Ok(o) => o,
            Err(e) => return refuse(self, 488, &format!("Not Acceptable Here: {e}")),
        };
        let Some(peer) = offer.msrp.first() else {
            return refuse(self, 488, "Not Acceptable Here: no MSRP media line");
        };
        // RFC 7701 §9.1 F2: the room sends message/cpim only.
        if !peer.accepts("message/cpim") {
            return refuse(
                self,
                488,
                "Not Acceptable Here: the room sends message/cpim",
            );
        }
        let Some(Ok(from)) = req.from().ok().flatten().map(|f| f.address()) else {
            return refuse(self, 400, "Bad Request: From");
        };
        let Some(room) = self.rooms.get(&room_key) else {
            return;
        };
        let policy = room.policy().clone();
        let session = token();
        // RFC 4975 §6: an offer over TLS gets the TLS listener's msrps:
        // path, when there is one (else the answer is refused below).
        let (scheme, port) = match (peer.secure, self.msrps_port) {
            (true, Some(p)) => ("msrps", p),
            _ => ("msrp", self.msrp_port),
        };
        let own_path = format!("{scheme}://{}:{port}/{session};tcp", self.host);
        let local = room_local(&self.host, port, &own_path, &policy);
        let (answer, agreed) = match sdp::answer(&offer, &local) {
            Ok(a) => a,
            Err(e) => return refuse(self, 488, &format!("Not Acceptable Here: {e}")),
        };
        if agreed.we_connect {
            return refuse(
                self,
                488,
                "Not Acceptable Here: the room does not connect out",
            );
        }
        let participant = Participant {
            uri: from,
            accepts_private: agreed.peer.accepts_private(),
            wrapped_types: agreed.peer.accept_wrapped_types.clone(),
        };
        let Some(room) = self.rooms.get_mut(&room_key) else {
            return;
        };
        let id = match room.join(participant) {
            Ok(id) => id,
            Err(r) => return refuse(self, 486, &format!("Busy Here: {}", r.reason)),
        };
        let local_tag = token();
        let contact = format!(
            "sip:{room_key}@{}:{};transport={}",
            self.host,
            self.sip_addr.port(),
            self.sip_transport.as_via_str().to_ascii_lowercase()
        );
        let dialog = match Dialog::uas(req, &local_tag, &contact, 1) {
            Ok(d) => d,
            Err(e) => {
                if let Some(room) = self.rooms.get_mut(&room_key) {
                    room.leave(id);
                }
                return refuse(self, 400, &format!("Bad Request: {e}"));
            }
        };
        let Ok(mut ok) = dialog.response(req, 200, "OK") else {
            return;
        };
        // RFC 7701 §9.1 F2: the focus says so in its Contact (RFC 4579).
        ok.remove_header("Contact");
        let _ = ok.push_header("Contact", &format!("<{contact}>;isfocus"));
        let _ = ok.push_header("Allow", ALLOW);
        let _ = ok.push_header("Content-Type", "application/sdp");
        ok.set_body(Bytes::from(answer));
        // Kept until its ACK (and by the INVITE's transaction for
        // 64*T1): without the spare room the writer left in it.
        let ok = Bytes::from(shrunk(ok.to_bytes()));
        let now = Instant::now();
        let _ = self.layer.respond(
            now,
            tx,
            OutgoingResponse {
                status: 200,
                to_tag: Some(local_tag.clone()),
                bytes: ok.clone(),
            },
        );
        let key = (dialog.call_id().to_owned(), local_tag);
        self.sessions.insert(
            session.clone(),
            Box::new(Session {
                room: room_key.clone(),
                id,
                own_path,
                remote_path: agreed.remote_path,
                max_size: agreed.peer.max_size,
                conn: None,
                waiting: Vec::new(),
                chunks: None,
                call: key.clone(),
                welcomed: false,
                connect_by: now + Duration::from_millis(self.config.connect_within_ms),
                heard: now,
                keepalive: None,
            }),
        );
        self.calls.insert(
            key,
            Box::new(Call {
                dialog,
                session,
                peer: source,
                unacked: Some((Unacked2xx::new(now, self.t1, self.t1 * 8), ok)),
                invite_tx: Some(tx),
            }),
        );
        self.flush_roster(&room_key);
    }

    /// Whether an INVITE without To tag is a late copy of one that made a
    /// call that is there (its Call-ID and From tag): its transaction
    /// ended at the ACK, so it is absorbed here instead (RFC 3261
    /// §17.2.3, RFC 6026 §7.1).
    fn invite_again(&self, req: &codec::Message<'_>) -> bool {
        let Ok(Some(call_id)) = req.call_id() else {
            return false;
        };
        let Some(from_tag) = req.from().ok().flatten().and_then(|f| f.tag()) else {
            return false;
        };
        self.calls
            .values()
            .any(|c| c.dialog.call_id() == call_id && c.dialog.remote_tag() == from_tag)
    }

    /// A re-INVITE: the same answer again (the session does not move).
    fn reinvite(&mut self, tx: TxId, req: &codec::Message<'_>, tag: &str) {
        let key = call_key(req, tag);
        let Some(call) = self.calls.get_mut(&key) else {
            return self.respond(tx, req, 481, "Call/Transaction Does Not Exist", &[], None);
        };
        if call.dialog.handle_request(req).is_err() {
            return self.respond(
                tx,
                req,
                500,
                "Server Internal Error: CSeq out of order",
                &[],
                None,
            );
        }
        // RFC 3264 §8: the new offer gets an answer; the session does
        // not move (the same path, the same listener).
        let session = call.session.clone();
        let answer = self.sessions.get(&session).and_then(|s| {
            let room = self.rooms.get(&s.room)?;
            let port = s
                .own_path
                .rsplit_once(':')
                .and_then(|(_, r)| r.split('/').next())
                .and_then(|p| p.parse().ok())?;
            let local = room_local(&self.host, port, &s.own_path, room.policy());
            // RFC 3261 §14.2: a re-INVITE without an offer gets one.
            if req.body().is_empty() {
                return Some(sdp::offer_as(&local, sdp::Setup::Passive));
            }
            let offer = sdp::parse(req.body()).ok()?;
            sdp::answer(&offer, &local).ok().map(|(a, _)| a)
        });
        match answer {
            Some(a) => self.respond(
                tx,
                req,
                200,
                "OK",
                &[("Allow", ALLOW)],
                Some(Bytes::from(a)),
            ),
            None => self.respond(
                tx,
                req,
                488,
                "Not Acceptable Here: the session stays as it is",
                &[],
                None,
            ),
        }
    }

    /// BYE: the participant leaves.
    fn bye(&mut self, tx: TxId, req: &codec::Message<'_>, tag: &str) {
        let key = call_key(req, tag);
        let Some(call) = self.calls.get_mut(&key) else {
            return self.respond(tx, req, 481, "Call/Transaction Does Not Exist", &[], None);
        };
        let _ = call.dialog.handle_request(req);
        let session = call.session.clone();
        self.respond(tx, req, 200, "OK", &[], None);
        self.end_session(&session, false);
    }

    /// The BYE that ends a call from this side.
    pub(super) fn send_bye(&mut self, mut call: Call) {
        let branch = format!("{}{}", transaction::MAGIC_COOKIE, token());
        let sent_by = self.sip_addr.to_string();
        let via = Via {
            transport: self.sip_transport.as_via_str(),
            sent_by: &sent_by,
            branch: &branch,
        };
        let Ok(bye) = call.dialog.request("BYE", &via) else {
            return;
        };
        call.dialog.terminate();
        let _ = self.layer.send_request(
            Instant::now(),
            OutgoingRequest {
                method: Method::Bye,
                branch,
                bytes: Bytes::from(bye.to_bytes()),
                reliable: call.peer.transport.is_reliable(),
                dest: call.peer,
            },
        );
    }

    /// Sends 2xx again where no ACK came; ends the call after 64*T1.
    pub(super) fn retransmit_2xx(&mut self, now: Instant) {
        let mut give_up = Vec::new();
        let mut again = Vec::new();
        for (key, call) in &mut self.calls {
            if let Some((timer, ok)) = &mut call.unacked {
                match timer.handle_timeout(now) {
                    Retransmit::Wait => {}
                    Retransmit::Send => again.push((call.peer.clone(), ok.clone())),
                    Retransmit::GiveUp => give_up.push(key.clone()),
                }
            }
        }
        for (dest, ok) in again {
            self.transmit(dest, ok);
        }
        for key in give_up {
            if let Some(call) = self.calls.get(&key) {
                let session = call.session.clone();
                tracing::info!(adapter = %self.name, "no ACK for the 2xx of {}: the session ends", key.0);
                self.end_session(&session, true);
            }
        }
    }
}

/// What the room says of itself in an SDP answer at `own_path`.
fn room_local(host: &str, port: u16, own_path: &str, policy: &crate::room::Policy) -> Local {
    let mut local = Local::room(host, port, own_path);
    let mut tokens = Vec::new();
    if policy.nicknames {
        tokens.push("nickname".to_owned());
    }
    if policy.private_messages {
        tokens.push("private-messages".to_owned());
    }
    local.chatroom = Some(tokens);
    local
}

/// `v` in an allocation of its length.
fn shrunk(mut v: Vec<u8>) -> Vec<u8> {
    v.shrink_to_fit();
    v
}

/// The dialog a request names: its Call-ID and our tag (its To tag).
pub(super) fn call_key(req: &codec::Message<'_>, local_tag: &str) -> super::CallKey {
    (
        req.call_id().ok().flatten().unwrap_or_default().to_owned(),
        local_tag.to_owned(),
    )
}
