//! Server transactions: INVITE (RFC 3261 §17.2.1, with the Accepted state
//! of RFC 6026 §7.1) and non-INVITE (RFC 3261 §17.2.2).

use std::time::Duration;

use bytes::Bytes;

use super::context::{Ctx, Flow, Timers};
use super::types::{Error, Event, Method, OutgoingResponse, Output, RequestSummary, Timer};

/// The states of the INVITE server transaction (RFC 3261 Figure 7, as updated by RFC 6026 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InviteState {
    Proceeding,
    /// A 300-699 was sent; it is retransmitted until the ACK comes.
    Completed,
    /// The ACK came; further ACKs are absorbed.
    Confirmed,
    /// A 2xx was sent; the TU retransmits it (RFC 6026 §7.1).
    Accepted,
}

/// The states of the non-INVITE server transaction (Figure 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonInviteState {
    Trying,
    Proceeding,
    Completed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Invite(InviteState),
    NonInvite(NonInviteState),
}

/// One server transaction.
#[derive(Debug)]
pub(crate) struct ServerTx<D> {
    pub state: State,
    /// The request that created the transaction.
    pub request: RequestSummary,
    request_bytes: Bytes,
    source: D,
    reliable: bool,
    /// The last response passed to the transport, provisional or final.
    last_response: Option<Bytes>,
    /// The To tag of the last response sent, which an RFC 2543 ACK must
    /// carry (RFC 3261 §17.2.3).
    pub response_to_tag: Option<String>,
    /// The interval that timer G was last armed with.
    interval: Duration,
    pub timers: Timers,
}

impl<D: Clone> ServerTx<D> {
    /// Creates the transaction for a request that matched none, and passes
    /// the request to the TU (§17.2.1, §17.2.2).
    pub fn start(
        ctx: &mut Ctx<'_, D>,
        request: RequestSummary,
        bytes: Bytes,
        source: D,
        reliable: bool,
    ) -> Self {
        let invite = request.method == Method::Invite;
        let mut tx = ServerTx {
            state: if invite {
                State::Invite(InviteState::Proceeding)
            } else {
                State::NonInvite(NonInviteState::Trying)
            },
            request: request.clone(),
            request_bytes: bytes.clone(),
            source: source.clone(),
            reliable,
            last_response: None,
            response_to_tag: None,
            interval: ctx.config.t1,
            timers: Timers::default(),
        };
        if invite {
            // RFC 3261 §17.2.1: a 100 (Trying) unless the TU answers within
            // 200 ms.
            tx.timers.arm(ctx, Timer::Trying, ctx.config.trying_delay);
        }
        ctx.emit(Event::Request {
            tx: ctx.tx,
            request,
            bytes,
            source,
        });
        tx
    }

    /// A retransmission of the request that created the transaction, or an
    /// ACK, matched it (§17.2.3).
    pub fn on_request(
        &mut self,
        ctx: &mut Ctx<'_, D>,
        request: RequestSummary,
        bytes: Bytes,
        source: D,
    ) -> Flow {
        let is_ack = request.method == Method::Ack;
        match self.state {
            State::Invite(InviteState::Proceeding) if !is_ack => {
                // §17.2.1: re-send the most recent provisional response.
                self.retransmit(ctx);
                Flow::Continue
            }
            State::Invite(InviteState::Completed) if !is_ack => {
                // §17.2.1: the server SHOULD re-send the final response.
                self.retransmit(ctx);
                Flow::Continue
            }
            State::Invite(InviteState::Completed) => {
                // §17.2.1: ACK → Confirmed, G and H stop, timer I.
                self.state = State::Invite(InviteState::Confirmed);
                self.timers.disarm(Timer::G);
                self.timers.disarm(Timer::H);
                let i = ctx.config.t4_or_zero(self.reliable);
                if i.is_zero() {
                    return Flow::Terminate;
                }
                self.timers.arm(ctx, Timer::I, i);
                Flow::Continue
            }
            State::Invite(InviteState::Accepted) if is_ack => {
                // RFC 6026 §7.1: an ACK in Accepted goes to the TU.
                ctx.emit(Event::Ack {
                    tx: Some(ctx.tx),
                    request,
                    bytes,
                    source,
                });
                Flow::Continue
            }
            // Confirmed absorbs ACKs and INVITEs (§17.2.1); Accepted absorbs
            // INVITE retransmissions (RFC 6026 §7.1); an ACK in Proceeding
            // acknowledges nothing.
            State::Invite(_) => Flow::Continue,
            // §17.2.2: Trying discards retransmissions; Proceeding and
            // Completed re-send the last response.
            State::NonInvite(NonInviteState::Trying) => Flow::Continue,
            State::NonInvite(NonInviteState::Proceeding | NonInviteState::Completed) => {
                self.retransmit(ctx);
                Flow::Continue
            }
        }
    }

    fn retransmit(&self, ctx: &mut Ctx<'_, D>) {
        if let Some(last) = &self.last_response {
            ctx.transmit(self.source.clone(), last.clone());
        }
    }

    fn send(&mut self, ctx: &mut Ctx<'_, D>, response: OutgoingResponse) {
        ctx.transmit(self.source.clone(), response.bytes.clone());
        self.last_response = Some(response.bytes);
        self.response_to_tag = response.to_tag;
    }

    /// The TU passes a response (§17.2.1, §17.2.2).
    pub fn respond(
        &mut self,
        ctx: &mut Ctx<'_, D>,
        response: OutgoingResponse,
    ) -> Result<Flow, Error> {
        let status = response.status;
        match self.state {
            State::Invite(InviteState::Proceeding) => {
                self.timers.disarm(Timer::Trying);
                self.send(ctx, response);
                match status {
                    // §17.2.1: provisional responses are sent, not
                    // retransmitted, and change nothing.
                    100..=199 => {}
                    200..=299 => {
                        // RFC 6026 §7.1: Accepted, timer L; RFC 3261 as
                        // written terminated here.
                        self.state = State::Invite(InviteState::Accepted);
                        self.timers.arm(ctx, Timer::L, ctx.config.t1x64());
                    }
                    _ => {
                        // §17.2.1: Completed, G (unreliable only), H.
                        self.state = State::Invite(InviteState::Completed);
                        if !self.reliable {
                            self.interval = ctx.config.t1;
                            self.timers.arm(ctx, Timer::G, self.interval);
                        }
                        self.timers.arm(ctx, Timer::H, ctx.config.t1x64());
                    }
                }
                Ok(Flow::Continue)
            }
            State::Invite(InviteState::Accepted) => {
                // RFC 6026 §7.1: 2xx retransmissions from the TU are passed
                // to the transport.
                if !(200..=299).contains(&status) {
                    return Err(Error::NotAfter2xx { tx: ctx.tx, status });
                }
                self.send(ctx, response);
                Ok(Flow::Continue)
            }
            // §17.2.1: once the final response is sent, the TU has nothing
            // more to say; discarded like §17.2.2 does.
            State::Invite(InviteState::Completed | InviteState::Confirmed) => Ok(Flow::Continue),
            State::NonInvite(NonInviteState::Trying | NonInviteState::Proceeding) => {
                self.send(ctx, response);
                if status < 200 {
                    // §17.2.2: Trying → Proceeding on a provisional response.
                    self.state = State::NonInvite(NonInviteState::Proceeding);
                    return Ok(Flow::Continue);
                }
                // §17.2.2: Completed, timer J (64*T1 unreliable, 0 reliable).
                self.state = State::NonInvite(NonInviteState::Completed);
                if self.reliable {
                    return Ok(Flow::Terminate);
                }
                self.timers.arm(ctx, Timer::J, ctx.config.t1x64());
                Ok(Flow::Continue)
            }
            // §17.2.2: "Any other final responses passed by the TU to the
            // server transaction MUST be discarded while in the 'Completed'
            // state."
            State::NonInvite(NonInviteState::Completed) => Ok(Flow::Continue),
        }
    }

    /// A timer of this transaction fired.
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, D>, timer: Timer) -> Flow {
        match (self.state, timer) {
            (State::Invite(InviteState::Proceeding), Timer::Trying) => {
                ctx.output(Output::SendTrying {
                    tx: ctx.tx,
                    request: self.request_bytes.clone(),
                });
                Flow::Continue
            }
            (State::Invite(InviteState::Completed), Timer::G) => {
                // §17.2.1: re-send, MIN(2*interval, T2).
                self.retransmit(ctx);
                self.interval = self.interval.saturating_mul(2).min(ctx.config.t2);
                self.timers.arm(ctx, Timer::G, self.interval);
                Flow::Continue
            }
            (State::Invite(InviteState::Completed), Timer::H) => {
                // §17.2.1: the ACK never came: a transaction failure.
                ctx.emit(Event::Timeout { tx: ctx.tx, timer });
                Flow::Terminate
            }
            (State::Invite(InviteState::Confirmed), Timer::I)
            | (State::Invite(InviteState::Accepted), Timer::L)
            | (State::NonInvite(NonInviteState::Completed), Timer::J) => Flow::Terminate,
            _ => Flow::Continue,
        }
    }

    /// The transport failed to send a response of this transaction
    /// (RFC 3261 §17.2.4, after the failover of RFC 3263 failed too).
    pub fn on_transport_error(&mut self, ctx: &mut Ctx<'_, D>) -> Flow {
        match self.state {
            // Confirmed sends nothing more: a late report is ignored.
            State::Invite(InviteState::Confirmed) => Flow::Continue,
            // RFC 6026 §7.1, its INVITE server figure: in Proceeding, Completed and Accepted
            // a transport error informs the TU and the transaction stays,
            // to go on absorbing retransmissions (RFC 3261 terminated from
            // Proceeding and Completed); timers H and L still end it.
            State::Invite(_) => {
                ctx.emit(Event::TransportError { tx: ctx.tx });
                Flow::Continue
            }
            // RFC 3261 §17.2.4, Figure 8: inform the TU, terminate.
            State::NonInvite(_) => {
                ctx.emit(Event::TransportError { tx: ctx.tx });
                Flow::Terminate
            }
        }
    }
}
