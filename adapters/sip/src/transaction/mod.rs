//! SIP transactions (RFC 3261 §17), sans-IO.
//!
//! The [`TransactionLayer`] holds every client and server transaction of a
//! SIP element. It reads no socket and no clock: the driver hands it what
//! the codec read from each received message, the instant `now`, and the
//! TU's requests and responses; it answers with [`Output`]s. Serialized
//! messages are opaque [`Bytes`]: a retransmission repeats the stored bytes
//! exactly (RFC 3261 §17.1.1.2: "take the message previously sent to the
//! transport layer and pass it to the transport layer once more").
//!
//! The layer implements the four state machines of RFC 3261 §17 with the
//! Accepted state of RFC 6026 (2xx to INVITE): the INVITE client
//! transaction stays 64*T1 in Accepted (timer M) and reports retransmitted
//! or forked 2xx as [`Event::AcceptedResponse`]; the INVITE server
//! transaction stays 64*T1 in Accepted (timer L), passes the TU's 2xx
//! retransmissions to the transport, absorbs INVITE retransmissions and
//! passes ACKs to the TU; a transport error informs its TU without ending
//! it (the updated figure of RFC 6026 §7.1).
//!
//! # Call order
//!
//! ```text
//! loop {
//!     // inputs, in any order, each with the current instant:
//!     layer.send_request(now, request)        // TU: new client transaction
//!     layer.handle_request(now, incoming)     // transport: request received
//!     layer.handle_response(now, summary, b)  // transport: response received
//!     layer.respond(now, tx, response)        // TU: response for a server tx
//!     layer.ack_built(now, tx, ack)           // TU: after Output::BuildAck
//!     layer.handle_transport_error(now, tx)   // transport: send failed
//!     layer.handle_timeout(now)               // the deadline came
//!     // then, after every input, drain the outputs before the next input:
//!     while let Some(output) = layer.poll_output() { ... }
//!     // and sleep until layer.poll_timeout(), or until the next input.
//! }
//! ```
//!
//! Draining after every input matters for two outputs that need an answer:
//! [`Output::BuildAck`] (build the ACK of RFC 3261 §17.1.1.3 and pass it to
//! [`TransactionLayer::ack_built`]) and [`Output::SendTrying`] (build a
//! 100 (Trying) and pass it to [`TransactionLayer::respond`]). Over a
//! reliable transport timer D is zero, so an INVITE client transaction
//! whose ACK has not been handed back by the next `handle_timeout` ends
//! without sending it.
//!
//! # Example: a MESSAGE over UDP
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use cpimgate_sip::transaction::{
//!     Config, Event, Method, OutgoingRequest, Output, ResponseSummary, TransactionLayer,
//! };
//!
//! let start = Instant::now();
//! let mut layer = TransactionLayer::new(Config::default());
//! let tx = layer
//!     .send_request(start, OutgoingRequest {
//!         method: Method::Message,
//!         branch: "z9hG4bK776asdhds".into(),
//!         bytes: Bytes::from_static(b"MESSAGE sip:bob@example.com SIP/2.0\r\n..."),
//!         dest: "192.0.2.4:5060",
//!         reliable: false,
//!     })
//!     .expect("a fresh branch");
//! // The request goes out at once...
//! assert!(matches!(layer.poll_output(), Some(Output::Transmit(_))));
//! // ...and, with no answer, again after T1 (timer E).
//! let deadline = layer.poll_timeout().expect("timer E is armed");
//! assert_eq!(deadline - start, Duration::from_millis(500));
//! layer.handle_timeout(deadline);
//! assert!(matches!(layer.poll_output(), Some(Output::Transmit(_))));
//! // The 200 arrives: the TU hears of it once.
//! let ok = ResponseSummary {
//!     status: 200,
//!     branch: Some("z9hG4bK776asdhds".into()),
//!     cseq_method: Method::Message,
//!     to_tag: Some("a6c85cf".into()),
//! };
//! layer.handle_response(deadline, ok, Bytes::from_static(b"SIP/2.0 200 OK\r\n..."));
//! assert!(matches!(
//!     layer.poll_output(),
//!     Some(Output::Event(Event::Response { tx: id, response, .. }))
//!         if id == tx && response.status == 200
//! ));
//! ```
//!
//! # What is left to the layers around
//!
//! * The transport checks the sent-by of responses (§18.1.2), adds
//!   `received` to requests (§18.2.1) and routes responses by the top Via
//!   (§18.2.2): `dest` and `source` are opaque keys of type `D` for it.
//! * The codec fills [`RequestSummary`] and [`ResponseSummary`]; fields are
//!   compared as given, so it should normalise what RFC 3261 compares
//!   loosely (URIs, §19.1.4).
//! * A CANCEL is a transaction of its own; [`TransactionLayer::cancel_target`]
//!   finds the INVITE server transaction it cancels (§9.2).
//! * An INVITE client transaction in Proceeding waits for its final
//!   response without a timer (Figure 5); after a CANCEL the TU may give up
//!   on it with [`TransactionLayer::terminate`] (§9.1).
//! * The transport also picks a congestion-controlled transport for
//!   requests near the path MTU or over 1300 bytes (§18.1.1) before it
//!   says whether a transaction is `reliable`.
//! * Every request but ACK that matches no transaction gets a server
//!   transaction, as a UA or stateful proxy needs (§17.2); a UA's TU that
//!   wants to shed load answers 503 through it.
//!
//! RFC 6026 is not among the specs kept with the project; its sections are
//! cited from its published text (§7.1 server, §7.2 client).

mod client;
mod context;
mod matching;
mod server;
mod types;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Instant;

use bytes::Bytes;

use self::client::ClientTx;
use self::context::{Ctx, Flow, Wheel};
use self::matching::{ClientKey, ServerKey};
use self::server::ServerTx;
pub use self::types::{
    Config, Error, Event, IncomingRequest, MAGIC_COOKIE, Method, OutgoingRequest, OutgoingResponse,
    Output, RequestSummary, ResponseSummary, Timer, Transmit, TxId,
};

/// Every transaction of one SIP element; see the [module docs](self).
///
/// `D` is the transport layer's key for a destination (address, port and
/// transport, or a connection).
#[derive(Debug)]
pub struct TransactionLayer<D> {
    config: Config,
    next_id: u64,
    clients: HashMap<TxId, ClientTx<D>>,
    client_index: HashMap<ClientKey, TxId>,
    servers: HashMap<TxId, (ServerKey, ServerTx<D>)>,
    server_index: HashMap<ServerKey, TxId>,
    wheel: Wheel,
    out: VecDeque<Output<D>>,
}

impl<D: Clone + fmt::Debug> TransactionLayer<D> {
    /// A layer with no transaction.
    pub fn new(config: Config) -> Self {
        TransactionLayer {
            config,
            next_id: 0,
            clients: HashMap::new(),
            client_index: HashMap::new(),
            servers: HashMap::new(),
            server_index: HashMap::new(),
            wheel: Wheel::new(),
            out: VecDeque::new(),
        }
    }

    /// The timer values in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many transactions are alive.
    pub fn len(&self) -> usize {
        self.clients.len() + self.servers.len()
    }

    /// Whether no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn allocate(&mut self) -> TxId {
        self.next_id += 1;
        TxId(self.next_id)
    }

    /// Starts a client transaction for `request` and sends it
    /// (RFC 3261 §17.1.1.2, §17.1.2.2).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: OutgoingRequest<D>,
    ) -> Result<TxId, Error> {
        if request.method == Method::Ack {
            return Err(Error::AckHasNoTransaction);
        }
        if !request.branch.starts_with(MAGIC_COOKIE) {
            return Err(Error::BranchWithoutCookie(request.branch));
        }
        let key = ClientKey {
            branch: request.branch.clone(),
            method: request.method.clone(),
        };
        if self.client_index.contains_key(&key) {
            return Err(Error::DuplicateBranch {
                branch: key.branch,
                method: key.method,
            });
        }
        let id = self.allocate();
        let mut ctx = Ctx::new(now, &self.config, id, &mut self.out, &mut self.wheel);
        let tx = ClientTx::start(
            &mut ctx,
            request.branch,
            request.method,
            request.bytes,
            request.dest,
            request.reliable,
        );
        self.clients.insert(id, tx);
        self.client_index.insert(key, id);
        Ok(id)
    }

    /// A response came from the transport (RFC 3261 §17.1.3, §18.1.2): it
    /// goes to its client transaction, or to the TU as a stray response.
    pub fn handle_response(&mut self, now: Instant, response: ResponseSummary, bytes: Bytes) {
        if !(100..=699).contains(&response.status) {
            // Not a response any state machine knows; the codec should have
            // refused it. Treat it as stray rather than guess.
            self.out
                .push_back(Output::Event(Event::StrayResponse { response, bytes }));
            return;
        }
        let id = ClientKey::for_response(&response).and_then(|key| self.client_index.get(&key));
        let Some(&id) = id else {
            self.out
                .push_back(Output::Event(Event::StrayResponse { response, bytes }));
            return;
        };
        let Some(tx) = self.clients.get_mut(&id) else {
            return;
        };
        let mut ctx = Ctx::new(now, &self.config, id, &mut self.out, &mut self.wheel);
        let flow = tx.on_response(&mut ctx, response, bytes);
        self.after_client(id, flow);
    }

    /// The TU built the ACK that [`Output::BuildAck`] asked for: the
    /// transaction sends it to the request's destination and re-sends it on
    /// each retransmission of the final response (RFC 3261 §17.1.1.2).
    /// A second ACK for the same transaction is ignored.
    pub fn ack_built(&mut self, now: Instant, tx: TxId, ack: Bytes) -> Result<(), Error> {
        let Some(client) = self.clients.get_mut(&tx) else {
            return Err(Error::UnknownTransaction(tx));
        };
        let mut ctx = Ctx::new(now, &self.config, tx, &mut self.out, &mut self.wheel);
        if let Some(flow) = client.ack_built(&mut ctx, ack) {
            self.after_client(tx, flow);
        }
        Ok(())
    }

    /// A request came from the transport (RFC 3261 §17.2.3, §18.2.1): a
    /// retransmission or ACK goes to its server transaction; an ACK that
    /// matches none goes to the TU; any other request creates a server
    /// transaction and goes to the TU as [`Event::Request`].
    pub fn handle_request(&mut self, now: Instant, incoming: IncomingRequest<D>) {
        let IncomingRequest {
            summary,
            bytes,
            source,
            reliable,
        } = incoming;
        if let Some(id) = self.match_server(&summary) {
            if let Some((_, tx)) = self.servers.get_mut(&id) {
                let mut ctx = Ctx::new(now, &self.config, id, &mut self.out, &mut self.wheel);
                let flow = tx.on_request(&mut ctx, summary, bytes, source);
                self.after_server(id, flow);
            }
            return;
        }
        if summary.method == Method::Ack {
            self.out.push_back(Output::Event(Event::Ack {
                tx: None,
                request: summary,
                bytes,
                source,
            }));
            return;
        }
        let key = ServerKey::for_request(&summary);
        let id = self.allocate();
        let mut ctx = Ctx::new(now, &self.config, id, &mut self.out, &mut self.wheel);
        let tx = ServerTx::start(&mut ctx, summary, bytes, source, reliable);
        // An RFC 2543 INVITE that shares its key, but not its To tag, with a
        // live transaction gets a transaction of its own that its
        // retransmissions cannot find: the index holds one per key.
        self.server_index.entry(key.clone()).or_insert(id);
        self.servers.insert(id, (key, tx));
    }

    fn match_server(&self, request: &RequestSummary) -> Option<TxId> {
        let key = ServerKey::for_request(request);
        let &id = self.server_index.get(&key)?;
        let (_, tx) = self.servers.get(&id)?;
        if key.to_tag_apart() {
            // RFC 3261 §17.2.3: the To tag of an ACK matches that of the
            // response sent; that of any other request, that of the
            // request which created the transaction.
            let expected = if request.method == Method::Ack {
                &tx.response_to_tag
            } else {
                &tx.request.to_tag
            };
            if &request.to_tag != expected {
                return None;
            }
        }
        Some(id)
    }

    /// The INVITE server transaction that a received CANCEL cancels: the
    /// one its request would match if it were the INVITE (RFC 3261 §9.2).
    pub fn cancel_target(&self, cancel: &RequestSummary) -> Option<TxId> {
        let key = ServerKey::with_method(cancel, Method::Invite);
        let &id = self.server_index.get(&key)?;
        let (_, tx) = self.servers.get(&id)?;
        if key.to_tag_apart() && cancel.to_tag != tx.request.to_tag {
            return None;
        }
        Some(id)
    }

    /// The TU passes a response for server transaction `tx`
    /// (RFC 3261 §17.2.1, §17.2.2). A response that the state discards
    /// (a second final response) is dropped and is not an error.
    pub fn respond(
        &mut self,
        now: Instant,
        tx: TxId,
        response: OutgoingResponse,
    ) -> Result<(), Error> {
        if !(100..=699).contains(&response.status) {
            return Err(Error::InvalidStatus(response.status));
        }
        let Some((_, server)) = self.servers.get_mut(&tx) else {
            return Err(Error::UnknownTransaction(tx));
        };
        let mut ctx = Ctx::new(now, &self.config, tx, &mut self.out, &mut self.wheel);
        let flow = server.respond(&mut ctx, response)?;
        self.after_server(tx, flow);
        Ok(())
    }

    /// The transport failed to send a message of `tx` (RFC 3261 §17.1.4,
    /// §17.2.4). A report about a transaction that has ended is ignored.
    pub fn handle_transport_error(&mut self, now: Instant, tx: TxId) {
        let mut ctx = Ctx::new(now, &self.config, tx, &mut self.out, &mut self.wheel);
        if let Some(client) = self.clients.get_mut(&tx) {
            let flow = client.on_transport_error(&mut ctx);
            self.after_client(tx, flow);
        } else if let Some((_, server)) = self.servers.get_mut(&tx) {
            let flow = server.on_transport_error(&mut ctx);
            self.after_server(tx, flow);
        }
    }

    /// The TU destroys transaction `tx` at once, whatever its state: an
    /// INVITE client transaction that got no final response after its
    /// CANCEL (RFC 3261 §9.1), or shutdown. Reports [`Event::Terminated`].
    pub fn terminate(&mut self, tx: TxId) -> Result<(), Error> {
        if self.clients.contains_key(&tx) {
            self.after_client(tx, Flow::Terminate);
            Ok(())
        } else if self.servers.contains_key(&tx) {
            self.after_server(tx, Flow::Terminate);
            Ok(())
        } else {
            Err(Error::UnknownTransaction(tx))
        }
    }

    /// Fires every timer due at or before `now`, in deadline order.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, id, timer))) = self.wheel.peek() {
            if at > now {
                break;
            }
            self.wheel.pop();
            // Each step sees the instant its timer was due, so that a late
            // call still re-arms from the nominal schedule.
            if let Some(tx) = self.clients.get_mut(&id) {
                if !tx.timers.take_due(timer, at) {
                    continue;
                }
                let mut ctx = Ctx::new(at, &self.config, id, &mut self.out, &mut self.wheel);
                let flow = tx.on_timer(&mut ctx, timer);
                self.after_client(id, flow);
            } else if let Some((_, tx)) = self.servers.get_mut(&id) {
                if !tx.timers.take_due(timer, at) {
                    continue;
                }
                let mut ctx = Ctx::new(at, &self.config, id, &mut self.out, &mut self.wheel);
                let flow = tx.on_timer(&mut ctx, timer);
                self.after_server(id, flow);
            }
        }
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout)
    /// has work, if any.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, id, timer))) = self.wheel.peek() {
            let live = match (self.clients.get(&id), self.servers.get(&id)) {
                (Some(tx), _) => tx.timers.holds(timer, at),
                (None, Some((_, tx))) => tx.timers.holds(timer, at),
                (None, None) => false,
            };
            if live {
                return Some(at);
            }
            self.wheel.pop();
        }
        None
    }

    /// The next output, in the order produced.
    pub fn poll_output(&mut self) -> Option<Output<D>> {
        self.out.pop_front()
    }

    fn after_client(&mut self, id: TxId, flow: Flow) {
        if flow == Flow::Terminate
            && let Some(tx) = self.clients.remove(&id)
        {
            self.client_index.remove(&ClientKey {
                branch: tx.branch,
                method: tx.method,
            });
            self.out
                .push_back(Output::Event(Event::Terminated { tx: id }));
        }
    }

    fn after_server(&mut self, id: TxId, flow: Flow) {
        if flow == Flow::Terminate
            && let Some((key, _)) = self.servers.remove(&id)
        {
            if self.server_index.get(&key) == Some(&id) {
                self.server_index.remove(&key);
            }
            self.out
                .push_back(Output::Event(Event::Terminated { tx: id }));
        }
    }
}
