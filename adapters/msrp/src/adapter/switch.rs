//! The MSRP switch (RFC 7701 §6, §7): what participants send, where it
//! goes, and what the hub brings in from the bridged rooms.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cpimgate_mappings::{MappingError, NickScope, RoomAlias};
use cpimgate_model::Message;
use cpimgate_model::address::{Address, NameAddr};
use cpimgate_model::cpim;
use cpimgate_model::event::{RoomEvent, RoomEventKind, RoomRef};
use cpimgate_model::port::{DeliveryOutcome, Failure, FailureKind, Inbound, Outbound};

use super::{Driver, Forward, Incoming, accepted, shown_from, token};
use crate::codec::{self, OwnedMessage, ReassemblyEvent};
use crate::room::Route;

impl Driver {
    /// One framed MSRP message from connection `conn`.
    pub(super) fn handle_frame(&mut self, conn: u64, frame: &Bytes) {
        if let Some(i) = self.remote_of_conn(conn) {
            return self.remote_frame(i, conn, frame);
        }
        let m = match codec::parse(frame) {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(adapter = %self.name, "unreadable MSRP on connection {conn}: {e}");
                self.answer_unreadable(conn, frame);
                return;
            }
        };
        if !m.is_request() {
            return self.handle_response(conn, &m);
        }
        let Some((session, own)) = self.request_session(conn, &m) else {
            return;
        };
        match m.method() {
            Some("SEND") => self.handle_send(&session, conn, &m, frame, &own),
            Some("NICKNAME") => self.handle_nickname(&session, conn, &m, frame, &own),
            // RFC 4975 §7.1.2: a REPORT gets no response.
            Some("REPORT") => {}
            // RFC 4975 §12: an unknown method gets 501.
            _ => self.answer(conn, &m, 501, &own),
        }
    }

    /// The session a request on `conn` belongs to, and our URI in it;
    /// `None` when the request was answered here (or cannot be): 400 and
    /// the like for a malformed one, 481 for an unknown session (RFC 4975
    /// §7.3), 506 for a session bound to another connection (§5.4). The
    /// first request binds the connection.
    fn request_session(&mut self, conn: u64, m: &codec::Message<'_>) -> Option<(String, String)> {
        let own = match m.to_path() {
            Ok(Some(p)) => p.first().map(|u| u.as_str().to_owned()),
            _ => None,
        };
        // RFC 4975 §7.2: a response's From-Path is the first URI of the
        // request's To-Path; without a readable one it cannot be answered.
        let Some(own) = own else {
            tracing::info!(adapter = %self.name, "MSRP request without a readable To-Path on connection {conn}: dropped");
            return None;
        };
        if let Err(e) = m.validate() {
            let code = e.response_code();
            tracing::info!(adapter = %self.name, "MSRP request {} on connection {conn} refused with {code}: {e}", m.transaction_id());
            self.answer(conn, m, code, &own);
            return None;
        }
        // RFC 4975 §7.3: the session is the last URI of To-Path, ours.
        let session = m
            .to_path()
            .ok()
            .flatten()
            .and_then(|p| p.last().and_then(|u| u.session_id()).map(str::to_owned));
        let Some((session, bound)) =
            session.and_then(|s| self.sessions.get(&s).map(|x| (s, x.conn)))
        else {
            self.answer(conn, m, 481, &own);
            return None;
        };
        // RFC 4975 §5.4: one connection per session; another one that
        // names it is refused (it may be an eavesdropper's).
        if bound.is_some_and(|c| c != conn) {
            self.answer(conn, m, 506, &own);
            return None;
        }
        self.bind(&session, conn);
        if let Some(s) = self.sessions.get_mut(&session) {
            s.heard = Instant::now();
        }
        Some((session, own))
    }

    /// A response to a SEND of the switch. The copies of messages ask for
    /// failures only (`Failure-Report: partial`): a 481 ends the session
    /// (RFC 4975 §10.8), other failures are logged. A keep-alive asks for
    /// a response (§7.1.1): it came.
    fn handle_response(&mut self, conn: u64, m: &codec::Message<'_>) {
        let status = m.status_code().unwrap_or(0);
        let session = m
            .to_path()
            .ok()
            .flatten()
            .and_then(|p| p.last().and_then(|u| u.session_id()).map(str::to_owned))
            .filter(|s| self.sessions.get(s).is_some_and(|x| x.conn == Some(conn)));
        let Some(session) = session else {
            return;
        };
        let tid = m.transaction_id();
        if let Some(s) = self.sessions.get_mut(&session) {
            s.heard = Instant::now();
            if s.keepalive.as_ref().is_some_and(|(t, _)| t.as_str() == tid) {
                s.keepalive = None;
                if status == 200 {
                    return;
                }
            }
        }
        match status {
            200 => {}
            // RFC 4975 §10.5: no more chunks of that message to it.
            413 => self.refused_copy(&session, tid),
            481 => {
                tracing::info!(adapter = %self.name, "MSRP session {session}: the participant does not know it (481)");
                self.end_session(&session, true);
            }
            _ => {
                tracing::info!(adapter = %self.name, "MSRP session {session}: a SEND of the room got {status}");
            }
        }
    }

    /// A copy being forwarded chunk by chunk that `session` refused (its
    /// chunk's transaction `tid`): it gets no more of it.
    fn refused_copy(&mut self, session: &str, tid: &str) {
        for s in self.sessions.values_mut() {
            let Some(chunks) = s.chunks.as_mut() else {
                continue;
            };
            for f in chunks.forwards.values_mut() {
                f.targets
                    .retain(|(t, copy)| !(t == session && tid.starts_with(copy.as_str())));
            }
        }
    }

    /// A chunk whose body passed `max_message_size` on its own, cut off
    /// by the framer (its body is being skipped): 413 (RFC 4975 §10.5),
    /// which tells the sender to interrupt it and send no more of the
    /// message; what the copies got of it is aborted.
    pub(super) fn handle_oversized(&mut self, conn: u64, head: &Bytes) {
        if let Some(i) = self.remote_of_conn(conn) {
            return self.remote_oversized(i, conn, head);
        }
        let Ok(m) = codec::parse(head) else {
            return;
        };
        let Some((session, own)) = self.request_session(conn, &m) else {
            return;
        };
        if let Ok(Some(id)) = m.message_id() {
            self.stop_message(&session, id, 413);
        }
        self.answer(conn, &m, 413, &own);
    }

    /// Drops a message being received: what arrived of it, and its copies
    /// (each ended by an empty chunk with `#`, RFC 4975 §7.1: aborted).
    fn stop_message(&mut self, session: &str, msg_id: &str, code: u16) {
        tracing::info!(adapter = %self.name, "MSRP message {msg_id} stopped: {code}");
        self.drop_message(session, msg_id);
    }

    /// What [`Self::stop_message`] does, without its log line.
    fn drop_message(&mut self, session: &str, msg_id: &str) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        let Some(chunks) = s.chunks.as_mut() else {
            return;
        };
        chunks.reassembler.forget(msg_id);
        chunks.deadlines.remove(msg_id);
        let forward = chunks.forwards.remove(msg_id);
        s.tidy();
        let Some(forward) = forward else {
            return;
        };
        for (target, copy_id) in forward.targets {
            let Some(t) = self.sessions.get(&target) else {
                continue;
            };
            let Some(mut c) = switch_send(t, &token(), &copy_id, None, Bytes::new()) else {
                continue;
            };
            c.set_continuation(codec::Continuation::Aborted);
            self.send_to_session(&target, c.to_bytes());
        }
    }

    /// The earliest chunk reception timer of any session (RFC 7701 §6.1).
    pub(super) fn chunks_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(|s| s.chunks.as_ref())
            .flat_map(|c| c.deadlines.values())
            .min()
            .copied()
    }

    /// Chunked messages whose next chunk did not come in time count as
    /// aborted (RFC 7701 §6.1): what arrived of them is dropped and their
    /// copies get an abort chunk; the sender's session goes on.
    pub(super) fn chunks_expire(&mut self, now: Instant) {
        let late: Vec<(String, String)> = self
            .sessions
            .iter()
            .filter_map(|(k, s)| Some((k, s.chunks.as_ref()?)))
            .flat_map(|(k, c)| {
                c.deadlines
                    .iter()
                    .filter(|(_, d)| **d <= now)
                    .map(|(id, _)| (k.clone(), id.clone()))
            })
            .collect();
        for (session, msg_id) in late {
            tracing::warn!(
                adapter = %self.name,
                "MSRP session {session}: no chunk of message {msg_id} for {} ms: taken as aborted (RFC 7701 §6.1), its copies aborted",
                self.config.chunk_timeout_ms
            );
            self.drop_message(&session, &msg_id);
        }
    }

    /// The first request on a connection binds it to its session (RFC
    /// 4975 §5.4); what waited for it goes out, and the welcome.
    fn bind(&mut self, session: &str, conn: u64) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if s.conn.is_some() {
            return;
        }
        s.conn = Some(conn);
        let waiting = std::mem::take(&mut s.waiting);
        let welcome = !std::mem::replace(&mut s.welcomed, true);
        for b in waiting {
            self.write(conn, b);
        }
        if welcome {
            let text = self
                .sessions
                .get(session)
                .and_then(|s| {
                    self.config
                        .rooms
                        .iter()
                        .find(|r| r.name.eq_ignore_ascii_case(&s.room))
                })
                .and_then(|r| r.welcome.clone());
            if let Some(text) = text {
                self.room_notice(session, &text);
            }
        }
    }

    /// Answers a request when its Failure-Report asks for it (RFC 4975
    /// §7.2).
    fn answer(&mut self, conn: u64, m: &codec::Message<'_>, code: u16, own: &str) {
        if m.wants_response(code) {
            if let Ok(r) = OwnedMessage::response_to(m, code, Some(codec::reason_phrase(code)), own)
            {
                self.write(conn, r.to_bytes());
            }
        }
        // RFC 7701 §6.3: the switch is the endpoint receiver of a SEND,
        // and RFC 4975 §7.1.3: bytes received from a SEND that asked for a
        // success report get one (a report per chunk, which §7.1.3 allows).
        if code == 200 && m.method() == Some("SEND") && m.body().is_some_and(|b| !b.is_empty()) {
            if let Ok(Some(r)) = OwnedMessage::success_report(m, &token(), own) {
                self.write(conn, r.to_bytes());
            }
        }
    }

    /// RFC 4975 §10.2: a request that cannot be understood gets 400,
    /// when its start line, To-Path and From-Path can be read (the rest
    /// is not needed to answer it, §7.2).
    fn answer_unreadable(&mut self, conn: u64, frame: &[u8]) {
        let Some(head) = answerable_head(frame) else {
            return;
        };
        let Ok(m) = codec::parse(&head) else {
            return;
        };
        let own = match m.to_path() {
            Ok(Some(p)) => p.first().map(|u| u.as_str().to_owned()),
            _ => None,
        };
        if let Some(own) = own {
            self.answer(conn, &m, 400, &own);
        }
    }

    pub(super) fn answer_bytes(&mut self, conn: u64, request: &Bytes, code: u16) {
        let Ok(m) = codec::parse(request) else {
            return;
        };
        let own = match m.to_path() {
            Ok(Some(p)) => p.first().map(|u| u.as_str().to_owned()),
            _ => None,
        };
        if let Some(own) = own {
            self.answer(conn, &m, code, &own);
        }
    }

    fn handle_send(
        &mut self,
        session: &str,
        conn: u64,
        m: &codec::Message<'_>,
        frame: &Bytes,
        own: &str,
    ) {
        // An empty SEND binds a connection or keeps it alive (§5.4); one
        // without a message/cpim wrapper gets 415 (RFC 7701 §6.3).
        let chunk = match Incoming::of(m) {
            Incoming::Empty => return self.answer(conn, m, 200, own),
            Incoming::Refused(code) => return self.answer(conn, m, code, own),
            Incoming::Whole(chunk) => {
                let body = Bytes::copy_from_slice(chunk.body);
                let msg_id = chunk.message_id.to_owned();
                return self.take_message(
                    session,
                    body,
                    msg_id,
                    Some((conn, frame.clone())),
                    false,
                );
            }
            Incoming::Part(chunk) => chunk,
        };
        // RFC 7701 §6.1: once the CPIM headers are in (the first chunk),
        // the copies start; later chunks follow to the same recipients.
        let msg_id = chunk.message_id.to_owned();
        // RFC 7701 §6.1: the chunk reception timer, set at the first chunk
        // and reset at every other, a refused message's too (its state
        // goes when the timer runs out); a message that completes or
        // aborts below drops it again.
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        s.chunks(&self.config).deadlines.insert(
            msg_id.clone(),
            Instant::now() + Duration::from_millis(self.config.chunk_timeout_ms),
        );
        let known = self
            .sessions
            .get(session)
            .and_then(|s| s.forward(&msg_id))
            .map(|f| f.refused);
        if let Some(Some(code)) = known {
            return self.answer(conn, m, code, own);
        }
        let first = chunk.byte_range.is_none_or(|r| r.start == 1);
        if known.is_none() && first {
            if let Some(decision) = self.early_route(session, chunk.body) {
                // The copies of a message larger than a recipient takes
                // are not started (its size is the first chunk's total).
                let total = chunk.byte_range.and_then(|r| r.total);
                let forward = match decision {
                    Ok(targets) => Forward {
                        targets: targets
                            .into_iter()
                            .filter(|t| !total.is_some_and(|n| self.over_max_size(t, n)))
                            .map(|t| (t, token()))
                            .collect(),
                        refused: None,
                    },
                    Err(code) => Forward {
                        targets: Vec::new(),
                        refused: Some(code),
                    },
                };
                let refused = forward.refused;
                if let Some(s) = self.sessions.get_mut(session) {
                    s.chunks(&self.config)
                        .forwards
                        .insert(msg_id.clone(), forward);
                }
                if let Some(code) = refused {
                    return self.answer(conn, m, code, own);
                }
            }
        }
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        let chunks = s.chunks(&self.config);
        let code = match chunks.reassembler.handle_chunk(&chunk) {
            Ok(()) => 200,
            Err(e) => e.response_code(),
        };
        let events: Vec<ReassemblyEvent> =
            std::iter::from_fn(|| chunks.reassembler.poll_event()).collect();
        if code == 200 {
            self.forward_chunk(session, &msg_id, m, chunk.body);
        } else {
            // RFC 4975 §10.5: a 413 stops the message mid-transfer; the
            // copies end with it.
            self.stop_message(session, &msg_id, code);
        }
        self.answer(conn, m, code, own);
        for e in events {
            match e {
                ReassemblyEvent::Complete {
                    message_id, body, ..
                } => {
                    let forwarded = self
                        .sessions
                        .get_mut(session)
                        .and_then(|s| s.chunks.as_mut())
                        .and_then(|c| {
                            c.deadlines.remove(&message_id);
                            c.forwards.remove(&message_id)
                        })
                        .is_some();
                    // Every chunk is answered already; a refusal of the
                    // whole message is only logged.
                    self.take_message(session, body, message_id, None, forwarded);
                }
                ReassemblyEvent::Aborted { message_id, .. } => {
                    if let Some(c) = self
                        .sessions
                        .get_mut(session)
                        .and_then(|s| s.chunks.as_mut())
                    {
                        c.deadlines.remove(&message_id);
                        c.forwards.remove(&message_id);
                    }
                }
            }
        }
        if let Some(s) = self.sessions.get_mut(session) {
            s.tidy();
        }
    }

    /// Where a chunked message goes, from the CPIM headers of its first
    /// chunk: the sessions to copy it to, or the refusal; `None` when the
    /// chunk does not hold the whole CPIM header section (the message is
    /// then routed when complete).
    fn early_route(&self, session: &str, body: &[u8]) -> Option<Result<Vec<String>, u16>> {
        let parsed =
            cpim::Cpim::parse(Bytes::copy_from_slice(body), &cpim::Limits::default()).ok()?;
        let message = Message::from_parsed_cpim(&parsed, self.origin(None)).ok()?;
        let s = self.sessions.get(session)?;
        let room = self.rooms.get(&s.room)?;
        let to: Vec<Address> = message.to.iter().map(|n| n.address.clone()).collect();
        let targets: std::collections::HashSet<crate::room::SessionId> =
            match room.route(s.id, &message.from.address, &to, &message.content_type) {
                Ok(Route::Room { sessions } | Route::Private { sessions }) => {
                    sessions.into_iter().collect()
                }
                Ok(Route::PrivateRemote { .. }) => std::collections::HashSet::new(),
                Err(r) => return Some(Err(r.code)),
            };
        // An anonymous room rewrites the CPIM header section: the copies
        // cannot be the sender's chunks; they go once it is whole.
        if room.shown_sender(s.id).is_some() {
            return None;
        }
        Some(Ok(self
            .sessions
            .iter()
            .filter(|(_, o)| o.room == s.room && targets.contains(&o.id))
            .map(|(k, _)| k.clone())
            .collect()))
    }

    /// Copies one received chunk to the recipients of its message, with
    /// its Byte-Range and end flag, under each copy's own Message-ID.
    fn forward_chunk(&mut self, session: &str, msg_id: &str, m: &codec::Message<'_>, body: &[u8]) {
        let Some(targets) = self
            .sessions
            .get(session)
            .and_then(|s| s.forward(msg_id))
            .map(|f| f.targets.clone())
        else {
            return;
        };
        let range = m.byte_range().ok().flatten();
        let start = range.map_or(1, |r| r.start);
        let range = range.map(|r| r.to_string());
        let body = Bytes::copy_from_slice(body);
        for (target, copy_id) in targets {
            let Some(t) = self.sessions.get(&target) else {
                continue;
            };
            // The copy's id and the chunk's start: a response names the
            // copy it refuses (see `refused_copy`).
            let tid = format!("{copy_id}{start:x}");
            let Some(mut c) = switch_send(t, &tid, &copy_id, range.as_deref(), body.clone()) else {
                continue;
            };
            c.set_continuation(m.continuation());
            self.send_to_session(&target, c.to_bytes());
        }
    }

    /// A whole message from a participant: checked, routed, answered
    /// (`answer`: the SEND waiting for its response).
    fn take_message(
        &mut self,
        session: &str,
        body: Bytes,
        msg_id: String,
        answer: Option<(u64, Bytes)>,
        forwarded: bool,
    ) {
        let refuse = |d: &mut Driver, code: u16, why: &str| {
            tracing::info!(adapter = %d.name, "MSRP message {msg_id} refused: {code} {why}");
            if let Some((conn, req)) = &answer {
                d.answer_bytes(*conn, req, code);
            }
        };
        let origin = self.origin(Some(msg_id.clone()));
        let mut message = match Message::from_cpim(body, origin, &cpim::Limits::default()) {
            Ok(m) => m,
            Err(e) => return refuse(self, 400, &e.to_string()),
        };
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let (room_key, id) = (s.room.clone(), s.id);
        let Some(room) = self.rooms.get(&room_key) else {
            return;
        };
        let to: Vec<Address> = message.to.iter().map(|n| n.address.clone()).collect();
        let route = match room.route(id, &message.from.address, &to, &message.content_type) {
            Ok(r) => r,
            Err(r) => return refuse(self, r.code, &r.reason),
        };
        if let Some(shown) = room.shown_sender(id) {
            // An anonymous room (RFC 7701 §6.1): the copies and the hub
            // get the nickname URI, and the CPIM is written anew so that
            // no header the sender wrote (its From, a Cc) goes on.
            message.from = shown;
            message.cc.clear();
            message.cpim = None;
        } else if let Some(nick) = room.nickname(id) {
            // The name the other worlds show: the sender's nickname.
            message.from.display = Some(nick.to_owned());
        }
        let room_ref = RoomRef {
            adapter: self.name.clone(),
            address: room.uri().clone(),
        };
        let cpim = message.to_cpim();
        match route {
            Route::Room { sessions } => {
                if !forwarded {
                    self.fan_out(&room_key, &sessions, &cpim);
                }
                message.room = Some(room_ref);
                self.submit(message, answer);
            }
            Route::Private { sessions } => {
                if !forwarded {
                    self.fan_out(&room_key, &sessions, &cpim);
                }
                if let Some((conn, req)) = answer {
                    self.answer_bytes(conn, &req, 200);
                }
            }
            Route::PrivateRemote { address } => {
                message.room = Some(room_ref);
                message.private = true;
                message.to = vec![NameAddr::new(address)];
                self.submit(message, answer);
            }
        }
    }

    /// Hands a message to the hub; the SEND is answered once the hub has
    /// stored it (DESIGN.md: accepted means stored).
    pub(super) fn submit(&mut self, message: Message, answer: Option<(u64, Bytes)>) {
        let private = message.private;
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let inbound = Inbound::Message {
            message: Box::new(message),
            reply,
        };
        if self.inbound.try_send(inbound).is_err() {
            if let Some((conn, req)) = answer {
                // The hub is busy: RFC 4975 §10 has no "busy" status; 408
                // (no response in time) tells the sender it was not taken.
                self.answer_bytes(conn, &req, 408);
            }
            return;
        }
        let internal = self.internal.clone();
        tokio::spawn(async move {
            let outcome = outcome.await.unwrap_or_else(|_| {
                DeliveryOutcome::Failed(Failure::new(
                    FailureKind::Internal,
                    "the gateway is stopping",
                ))
            });
            let _ = internal
                .send(super::Internal::HubAnswer {
                    answer,
                    private,
                    outcome,
                })
                .await;
        });
    }

    pub(super) fn hub_answered(
        &mut self,
        answer: Option<(u64, Bytes)>,
        private: bool,
        outcome: &DeliveryOutcome,
    ) {
        let Some((conn, req)) = answer else {
            return;
        };
        let code = match outcome {
            o if accepted(o) => 200,
            // A room in no bridge: its own participants had it.
            DeliveryOutcome::Failed(f) if f.kind == FailureKind::NotFound && !private => 200,
            DeliveryOutcome::Failed(f) => match f.kind {
                FailureKind::NotFound => 404,
                FailureKind::Rejected => 403,
                FailureKind::TooLarge => 413,
                _ => 408,
            },
            _ => 200,
        };
        self.answer_bytes(conn, &req, code);
    }

    /// Copies a CPIM body to sessions of a room, as SEND chunks of the
    /// configured size (RFC 4975 §5.1), each with its own transaction.
    fn fan_out(&mut self, room_key: &str, targets: &[crate::room::SessionId], cpim: &Bytes) {
        // One pass over the sessions (a room of 1,000 made `contains` on
        // the list a million comparisons per message).
        let targets: std::collections::HashSet<crate::room::SessionId> =
            targets.iter().copied().collect();
        let keys: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.room == room_key && targets.contains(&s.id))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.send_cpim(&k, cpim.clone());
        }
    }

    /// Whether a message of `size` octets is over what `session` takes
    /// (RFC 4975 §8.6: "Senders SHOULD NOT exceed the max-size limit");
    /// the log says so.
    fn over_max_size(&self, session: &str, size: u64) -> bool {
        let Some(max) = self.sessions.get(session).and_then(|s| s.max_size) else {
            return false;
        };
        if size <= max {
            return false;
        }
        tracing::info!(adapter = %self.name, "a message of {size} octets is not copied to MSRP session {session}: its max-size is {max}");
        true
    }

    /// One message to one session.
    fn send_cpim(&mut self, session: &str, cpim: Bytes) {
        if self.over_max_size(session, cpim.len() as u64) {
            return;
        }
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let chunks = {
            let Some(m) = switch_send(s, &token(), &token(), None, cpim) else {
                return;
            };
            let Ok(mut chunker) = codec::Chunker::new(&m, self.config.chunk_size) else {
                return;
            };
            let mut out = Vec::new();
            while !chunker.is_done() {
                // A transaction id whose end-line is in the body is
                // refused: another one is drawn.
                let chunk = (0..4).find_map(|_| chunker.next_chunk(&token()).ok().flatten());
                match chunk {
                    Some(c) => out.push(c),
                    None => break,
                }
            }
            out
        };
        for c in chunks {
            self.send_to_session(session, c);
        }
    }

    /// A message from the room itself to one participant (welcome,
    /// shutdown notice: RFC 7701 REQ-10).
    pub(super) fn room_notice(&mut self, session: &str, text: &str) {
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let Some(room) = self.rooms.get(&s.room) else {
            return;
        };
        let Some(p) = room.participant(s.id) else {
            return;
        };
        let body = cpim::CpimBuilder::new()
            .from(&NameAddr::new(room.uri().clone()))
            .to(&NameAddr::new(p.uri.clone()))
            .content_type("text/plain;charset=utf-8")
            .body(Bytes::copy_from_slice(text.as_bytes()))
            .build();
        self.send_cpim(session, body);
    }

    /// NICKNAME (RFC 7701 §7.1): checked in the room, then reserved in
    /// the mapping table (the bridge's other rooms, other instances).
    fn handle_nickname(
        &mut self,
        session: &str,
        conn: u64,
        m: &codec::Message<'_>,
        frame: &Bytes,
        own: &str,
    ) {
        let nick = match m.use_nickname() {
            Ok(Some(n)) => n.into_owned(),
            _ => return self.answer(conn, m, 424, own),
        };
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let Some(room) = self.rooms.get(&s.room) else {
            return;
        };
        let checked = match room.check_nickname(s.id, &nick) {
            Ok(n) => n,
            Err(r) => return self.answer(conn, m, r.code, own),
        };
        let Some(owner) = room.participant(s.id).map(|p| p.uri.to_string()) else {
            return;
        };
        let scope = NickScope::Room(RoomAlias::Msrp(room.uri().to_string()));
        let old = room.nickname(s.id).map(str::to_owned);
        let mappings = self.mappings.clone();
        let internal = self.internal.clone();
        let (session, request) = (session.to_owned(), frame.clone());
        tokio::spawn(async move {
            let taken = match &checked {
                Some(n) => match mappings.reserve_nick(&scope, n, &owner).await {
                    Ok(_) => None,
                    Err(MappingError::NickTaken { owner, .. }) => Some(owner),
                    Err(e) => Some(e.to_string()),
                },
                None => None,
            };
            if taken.is_none() {
                if let Some(old) = old.filter(|o| checked.as_deref() != Some(o.as_str())) {
                    let _ = mappings.release_nick(&scope, &old, &owner).await;
                }
            }
            let nick = checked.unwrap_or_default();
            let _ = internal
                .send(super::Internal::Nick {
                    session,
                    conn,
                    request,
                    nick,
                    taken,
                })
                .await;
        });
    }

    pub(super) fn nick_reserved(
        &mut self,
        session: &str,
        conn: u64,
        request: &Bytes,
        nick: &str,
        taken: Option<String>,
    ) {
        if let Some(by) = taken {
            tracing::info!(adapter = %self.name, "nickname {nick:?} refused: held by {by}");
            return self.answer_bytes(conn, request, 425);
        }
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let (room_key, id) = (s.room.clone(), s.id);
        let code = match self
            .rooms
            .get_mut(&room_key)
            .map(|r| r.set_nickname(id, nick))
        {
            Some(Ok(_)) => 200,
            Some(Err(r)) => r.code,
            None => 481,
        };
        self.answer_bytes(conn, request, code);
        self.flush_roster(&room_key);
    }

    /// What the hub hands over: room messages and private messages for
    /// the participants, and what happens in the bridged rooms.
    pub(super) fn handle_outbound(&mut self, out: Outbound) {
        match out {
            Outbound::Deliver { message, reply } => {
                if let Err((message, reply)) = self.remote_deliver(message, reply) {
                    let outcome = self.deliver(&message);
                    let _ = reply.send(outcome);
                }
            }
            Outbound::RoomEvent(event) if !self.remote_room_event(&event) => {
                self.room_event(&event);
            }
            _ => {}
        }
    }

    fn room_key_of(&self, address: &Address) -> Option<String> {
        self.rooms
            .iter()
            .find(|(_, r)| r.uri() == address)
            .map(|(k, _)| k.clone())
    }

    fn deliver(&mut self, message: &Message) -> DeliveryOutcome {
        let Some(room_key) = message
            .room
            .as_ref()
            .and_then(|r| self.room_key_of(&r.address))
        else {
            return DeliveryOutcome::Failed(Failure::new(
                FailureKind::NotFound,
                "not a room of this gateway",
            ));
        };
        let Some(room) = self.rooms.get(&room_key) else {
            return DeliveryOutcome::Failed(Failure::new(FailureKind::NotFound, "no such room"));
        };
        // A CPIM that came as such is passed on unchanged (RFC 3862 §6);
        // else the sender shows by its nickname URI in the room's domain.
        let cpim = if message.cpim.is_some() {
            message.to_cpim()
        } else {
            let mut m = message.clone();
            m.from = shown_from(message, room);
            m.to = if message.private {
                message.to.clone()
            } else {
                vec![NameAddr::new(room.uri().clone())]
            };
            m.to_cpim()
        };
        let targets: Vec<crate::room::SessionId> = if message.private {
            let Some(to) = message.to.first() else {
                return DeliveryOutcome::Failed(Failure::new(
                    FailureKind::NotFound,
                    "no recipient",
                ));
            };
            let found = room.sessions_of(&to.address);
            if found.is_empty() {
                return DeliveryOutcome::Failed(Failure::new(
                    FailureKind::NotFound,
                    format!("{} is not in the room", to.address),
                ));
            }
            found
        } else {
            room.all_sessions(&message.content_type)
        };
        self.fan_out(&room_key, &targets, &cpim);
        DeliveryOutcome::Delivered
    }

    fn room_event(&mut self, event: &RoomEvent) {
        let Some(room_key) = self.room_key_of(&event.room.address) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(&room_key) else {
            return;
        };
        match &event.kind {
            RoomEventKind::Join { who } => {
                room.remote_join(who.address.clone(), &who.nick, true);
            }
            RoomEventKind::Leave { who, .. } | RoomEventKind::Kick { who, .. } => {
                room.remote_leave(&who.address);
            }
            RoomEventKind::NickChange { who, new_nick } => {
                room.remote_rename(&who.address, new_nick);
            }
            RoomEventKind::Roster { participants } => {
                for p in participants {
                    room.remote_join(p.address.clone(), &p.nick, true);
                }
            }
            _ => {}
        }
        // Remote changes are for the conference event package; the hub
        // hears only of local ones.
        self.flush_roster(&room_key);
    }
}

/// A SEND of the switch to session `to`, transaction `tid`: its paths, `message_id`, no
/// success report and a response only on failure (RFC 4975 §7.1.2:
/// `partial`; the switch reads no 200 it would only discard), `range` if
/// given, and the message/cpim `body`; `None` when a value cannot be
/// written.
fn switch_send(
    to: &super::Session,
    tid: &str,
    message_id: &str,
    range: Option<&str>,
    body: Bytes,
) -> Option<OwnedMessage> {
    let to_path = to.remote_path.first()?;
    let mut m = OwnedMessage::request(tid, "SEND").ok()?;
    m.push_header("To-Path", to_path)
        .and_then(|m| m.push_header("From-Path", &to.own_path))
        .and_then(|m| m.push_header("Message-ID", message_id))
        .and_then(|m| m.push_header("Success-Report", "no"))
        .and_then(|m| m.push_header("Failure-Report", "partial"))
        .ok()?;
    if let Some(r) = range {
        m.push_header("Byte-Range", r).ok()?;
    }
    m.push_header("Content-Type", "message/cpim")
        .and_then(|m| m.set_body(body))
        .ok()?;
    Some(m)
}

/// The start line of a request in `frame` with its To-Path and From-Path
/// lines and an end-line: enough to answer it (RFC 4975 §7.2); `None`
/// when the start line is not a request's.
fn answerable_head(frame: &[u8]) -> Option<Vec<u8>> {
    let mut lines = frame.split(|&b| b == b'\n');
    let start = lines.next()?;
    let start = std::str::from_utf8(start.strip_suffix(b"\r")?).ok()?;
    let mut parts = start.split(' ');
    let (Some("MSRP"), Some(tid), Some(method), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut out = format!("MSRP {tid} {method}\r\n").into_bytes();
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line.starts_with(b"-------") {
            break;
        }
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        if name.eq_ignore_ascii_case(b"To-Path") || name.eq_ignore_ascii_case(b"From-Path") {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(format!("-------{tid}$\r\n").as_bytes());
    Some(out)
}

#[cfg(test)]
mod unreadable_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_request_with_a_control_character_can_still_be_answered() {
        let frame = b"MSRP tr01 NICKNAME\r\nTo-Path: msrp://a.example.com:7654/s1;tcp\r\nUse-Nickname: \"b\x07\"\r\nFrom-Path: msrp://b.example.com:9/s2;tcp\r\n-------tr01$\r\n";
        assert!(codec::parse(frame).is_err());
        let head = answerable_head(frame).unwrap();
        let m = codec::parse(&head).unwrap();
        assert_eq!(m.method(), Some("NICKNAME"));
        assert_eq!(m.transaction_id(), "tr01");
        assert!(m.from_path().unwrap().is_some());
        // A response, or no MSRP start line: nothing to answer.
        assert!(answerable_head(b"MSRP t1 200 OK\r\n-------t1$\r\n").is_none());
        assert!(answerable_head(b"GET / HTTP/1.1\r\n\r\n").is_none());
    }
}
