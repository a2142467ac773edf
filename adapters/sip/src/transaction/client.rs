//! Client transactions: INVITE (RFC 3261 §17.1.1, with the Accepted state
//! of RFC 6026 §7.2) and non-INVITE (RFC 3261 §17.1.2).

use std::time::Duration;

use bytes::Bytes;

use super::context::{Ctx, Flow, Timers};
use super::types::{Event, Method, Output, ResponseSummary, Timer};

/// The states of the INVITE client transaction (RFC 3261 Figure 5, as updated by RFC 6026 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InviteState {
    Calling,
    Proceeding,
    /// A 300-699 was received; the ACK is re-sent on its retransmissions.
    Completed,
    /// A 2xx was received; further 2xx go to the TU (RFC 6026 §7.2).
    Accepted,
}

/// The states of the non-INVITE client transaction (Figure 6).
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

/// One client transaction.
#[derive(Debug)]
pub(crate) struct ClientTx<D> {
    pub branch: String,
    pub method: Method,
    pub state: State,
    request: Bytes,
    dest: D,
    reliable: bool,
    /// The interval that timer A or E was last armed with.
    interval: Duration,
    /// The ACK for a non-2xx final response, once the TU has built it.
    ack: Option<Bytes>,
    pub timers: Timers,
}

impl<D: Clone> ClientTx<D> {
    /// Creates the transaction and sends the request (§17.1.1.2 for INVITE:
    /// "Calling", timers A and B; §17.1.2.2 otherwise: "Trying", timers E
    /// and F).
    pub fn start(
        ctx: &mut Ctx<'_, D>,
        branch: String,
        method: Method,
        request: Bytes,
        dest: D,
        reliable: bool,
    ) -> Self {
        let invite = method == Method::Invite;
        let mut tx = ClientTx {
            branch,
            method,
            state: if invite {
                State::Invite(InviteState::Calling)
            } else {
                State::NonInvite(NonInviteState::Trying)
            },
            request,
            dest,
            reliable,
            interval: ctx.config.t1,
            ack: None,
            timers: Timers::default(),
        };
        ctx.transmit(tx.dest.clone(), tx.request.clone());
        let (retransmit, timeout) = if invite {
            (Timer::A, Timer::B)
        } else {
            (Timer::E, Timer::F)
        };
        // RFC 3261 §17.1.1.2, §17.1.2.2: no retransmissions over reliable
        // transports; the timeout is 64*T1 for all.
        if !reliable {
            tx.timers.arm(ctx, retransmit, ctx.config.t1);
        }
        tx.timers.arm(ctx, timeout, ctx.config.t1x64());
        tx
    }

    /// A response matched this transaction (§17.1.3).
    pub fn on_response(
        &mut self,
        ctx: &mut Ctx<'_, D>,
        response: ResponseSummary,
        bytes: Bytes,
    ) -> Flow {
        match self.state {
            State::Invite(state) => self.invite_response(ctx, state, response, bytes),
            State::NonInvite(state) => self.non_invite_response(ctx, state, response, bytes),
        }
    }

    fn invite_response(
        &mut self,
        ctx: &mut Ctx<'_, D>,
        state: InviteState,
        response: ResponseSummary,
        bytes: Bytes,
    ) -> Flow {
        let tx = ctx.tx;
        match (state, response.status) {
            (InviteState::Calling | InviteState::Proceeding, 100..=199) => {
                // RFC 3261 §17.1.1.2: a provisional response stops
                // retransmissions and goes to the TU. Timer B only guards
                // "Calling" (Figure 5); a proceeding INVITE ends with a final
                // response, or with the TU's CANCEL (§9.1).
                self.state = State::Invite(InviteState::Proceeding);
                self.timers.disarm(Timer::A);
                self.timers.disarm(Timer::B);
                ctx.emit(Event::Response {
                    tx,
                    response,
                    bytes,
                });
                Flow::Continue
            }
            (InviteState::Calling | InviteState::Proceeding, 200..=299) => {
                // RFC 3261 §17.1.1.2 terminates here; RFC 6026 §7.2 enters
                // Accepted for 64*T1 (timer M) so that retransmitted and
                // forked 2xx reach the TU as part of this transaction.
                self.state = State::Invite(InviteState::Accepted);
                self.timers.disarm(Timer::A);
                self.timers.disarm(Timer::B);
                self.timers.arm(ctx, Timer::M, ctx.config.t1x64());
                ctx.emit(Event::Response {
                    tx,
                    response,
                    bytes,
                });
                Flow::Continue
            }
            (InviteState::Calling | InviteState::Proceeding, _) => {
                // RFC 3261 §17.1.1.2: 300-699 → Completed, response to the
                // TU, ACK generated (§17.1.1.3) even on reliable transports,
                // timer D.
                self.state = State::Invite(InviteState::Completed);
                self.timers.disarm(Timer::A);
                self.timers.disarm(Timer::B);
                self.timers
                    .arm(ctx, Timer::D, ctx.config.timer_d(self.reliable));
                ctx.emit(Event::Response {
                    tx,
                    response: response.clone(),
                    bytes: bytes.clone(),
                });
                ctx.output(Output::BuildAck {
                    tx,
                    response,
                    response_bytes: bytes,
                });
                Flow::Continue
            }
            (InviteState::Completed, 300..=699) => {
                // RFC 3261 §17.1.1.2: a retransmitted final response re-sends
                // the ACK and is not passed to the TU.
                if let Some(ack) = &self.ack {
                    ctx.transmit(self.dest.clone(), ack.clone());
                }
                Flow::Continue
            }
            (InviteState::Accepted, 200..=299) => {
                ctx.emit(Event::AcceptedResponse {
                    tx,
                    response,
                    bytes,
                });
                Flow::Continue
            }
            // Late provisional responses, or a final response of the other
            // class after the first final one: absorbed.
            (InviteState::Completed | InviteState::Accepted, _) => Flow::Continue,
        }
    }

    fn non_invite_response(
        &mut self,
        ctx: &mut Ctx<'_, D>,
        state: NonInviteState,
        response: ResponseSummary,
        bytes: Bytes,
    ) -> Flow {
        let tx = ctx.tx;
        match (state, response.status) {
            (NonInviteState::Trying | NonInviteState::Proceeding, 100..=199) => {
                // RFC 3261 §17.1.2.2: to the TU, Proceeding; retransmissions
                // go on (at T2 from the next firing of E).
                self.state = State::NonInvite(NonInviteState::Proceeding);
                ctx.emit(Event::Response {
                    tx,
                    response,
                    bytes,
                });
                Flow::Continue
            }
            (NonInviteState::Trying | NonInviteState::Proceeding, _) => {
                // RFC 3261 §17.1.2.2: 200-699 → to the TU, Completed, timer K
                // (T4 unreliable, zero reliable).
                self.state = State::NonInvite(NonInviteState::Completed);
                self.timers.disarm(Timer::E);
                self.timers.disarm(Timer::F);
                ctx.emit(Event::Response {
                    tx,
                    response,
                    bytes,
                });
                let k = ctx.config.t4_or_zero(self.reliable);
                if k.is_zero() {
                    return Flow::Terminate;
                }
                self.timers.arm(ctx, Timer::K, k);
                Flow::Continue
            }
            // Completed buffers response retransmissions (§17.1.2.2).
            (NonInviteState::Completed, _) => Flow::Continue,
        }
    }

    /// The TU built the ACK asked for by [`Output::BuildAck`]: send it now
    /// and on every retransmission of the final response (§17.1.1.2). Over
    /// a reliable transport timer D is zero: the transaction ends once the
    /// ACK is passed on.
    pub fn ack_built(&mut self, ctx: &mut Ctx<'_, D>, ack: Bytes) -> Option<Flow> {
        if self.state != State::Invite(InviteState::Completed) || self.ack.is_some() {
            return None;
        }
        // RFC 3261 §17.1.1.2: "The ACK MUST be sent to the same address,
        // port, and transport to which the original request was sent."
        ctx.transmit(self.dest.clone(), ack.clone());
        self.ack = Some(ack);
        Some(if self.reliable {
            Flow::Terminate
        } else {
            Flow::Continue
        })
    }

    /// A timer of this transaction fired.
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, D>, timer: Timer) -> Flow {
        let tx = ctx.tx;
        match (self.state, timer) {
            (State::Invite(InviteState::Calling), Timer::A) => {
                // RFC 3261 §17.1.1.2: retransmit, double the interval.
                ctx.transmit(self.dest.clone(), self.request.clone());
                self.interval = self.interval.saturating_mul(2);
                self.timers.arm(ctx, Timer::A, self.interval);
                Flow::Continue
            }
            (State::Invite(InviteState::Calling), Timer::B) => {
                // RFC 3261 §17.1.1.2: inform the TU of the timeout; no ACK.
                ctx.emit(Event::Timeout { tx, timer });
                Flow::Terminate
            }
            (State::Invite(InviteState::Completed), Timer::D)
            | (State::Invite(InviteState::Accepted), Timer::M)
            | (State::NonInvite(NonInviteState::Completed), Timer::K) => Flow::Terminate,
            (State::NonInvite(NonInviteState::Trying), Timer::E) => {
                // RFC 3261 §17.1.2.2: MIN(2*interval, T2).
                ctx.transmit(self.dest.clone(), self.request.clone());
                self.interval = self.interval.saturating_mul(2).min(ctx.config.t2);
                self.timers.arm(ctx, Timer::E, self.interval);
                Flow::Continue
            }
            (State::NonInvite(NonInviteState::Proceeding), Timer::E) => {
                // RFC 3261 §17.1.2.2: in Proceeding, E is reset to T2.
                ctx.transmit(self.dest.clone(), self.request.clone());
                self.interval = ctx.config.t2;
                self.timers.arm(ctx, Timer::E, self.interval);
                Flow::Continue
            }
            (State::NonInvite(NonInviteState::Trying | NonInviteState::Proceeding), Timer::F) => {
                ctx.emit(Event::Timeout { tx, timer });
                Flow::Terminate
            }
            // A timer that does not belong to the state: states disarm the
            // timers they leave behind, so this does not happen; ignore.
            _ => Flow::Continue,
        }
    }

    /// The transport failed to send a message of this transaction
    /// (RFC 3261 §17.1.4).
    pub fn on_transport_error(&mut self, ctx: &mut Ctx<'_, D>) -> Flow {
        match self.state {
            // RFC 3261 §17.1.4, Figures 5 and 6: inform the TU, terminate.
            // Figure 5 also does so in Completed, where the ACK failed.
            State::Invite(
                InviteState::Calling | InviteState::Proceeding | InviteState::Completed,
            )
            | State::NonInvite(NonInviteState::Trying | NonInviteState::Proceeding) => {
                ctx.emit(Event::TransportError { tx: ctx.tx });
                Flow::Terminate
            }
            // Nothing of the transaction is being sent in these states (the
            // ACK for 2xx is the UAC core's): a late report is ignored.
            State::Invite(InviteState::Accepted) | State::NonInvite(NonInviteState::Completed) => {
                Flow::Continue
            }
        }
    }
}
