//! What a state machine may touch while it handles one input: the clock,
//! the timer values, the output queue and the timer wheel.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::types::{Config, Event, Output, Timer, Transmit, TxId};

/// The scheduled deadlines of all transactions. An entry stays in the heap
/// after its timer is re-armed or cancelled; it is recognised as stale when
/// it pops, because the transaction no longer holds that deadline.
pub(crate) type Wheel = BinaryHeap<Reverse<(Instant, TxId, Timer)>>;

/// Whether a transaction lives on after an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// It stays.
    Continue,
    /// It entered Terminated and must be destroyed at once (RFC 3261
    /// §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).
    Terminate,
}

/// The environment of one state machine step.
#[derive(Debug)]
pub(crate) struct Ctx<'a, D> {
    pub now: Instant,
    pub config: &'a Config,
    pub tx: TxId,
    out: &'a mut VecDeque<Output<D>>,
    wheel: &'a mut Wheel,
}

impl<'a, D> Ctx<'a, D> {
    pub fn new(
        now: Instant,
        config: &'a Config,
        tx: TxId,
        out: &'a mut VecDeque<Output<D>>,
        wheel: &'a mut Wheel,
    ) -> Self {
        Ctx {
            now,
            config,
            tx,
            out,
            wheel,
        }
    }

    pub fn emit(&mut self, event: Event<D>) {
        self.out.push_back(Output::Event(event));
    }

    pub fn output(&mut self, output: Output<D>) {
        self.out.push_back(output);
    }

    pub fn transmit(&mut self, dest: D, bytes: Bytes) {
        self.out.push_back(Output::Transmit(Transmit {
            tx: self.tx,
            dest,
            bytes,
        }));
    }
}

/// The armed timers of one transaction (at most three at a time).
#[derive(Debug, Default)]
pub(crate) struct Timers {
    armed: Vec<(Timer, Instant)>,
}

impl Timers {
    /// Arms `timer` to fire `after` from now, replacing an earlier setting.
    pub fn arm<D>(&mut self, ctx: &mut Ctx<'_, D>, timer: Timer, after: Duration) {
        let at = ctx.now.checked_add(after).unwrap_or(ctx.now);
        self.disarm(timer);
        self.armed.push((timer, at));
        ctx.wheel.push(Reverse((at, ctx.tx, timer)));
    }

    pub fn disarm(&mut self, timer: Timer) {
        self.armed.retain(|(t, _)| *t != timer);
    }

    /// If `timer` is armed for `at`, disarms it and says so: the wheel entry
    /// is live.
    pub fn take_due(&mut self, timer: Timer, at: Instant) -> bool {
        let before = self.armed.len();
        self.armed.retain(|&(t, when)| !(t == timer && when == at));
        self.armed.len() != before
    }

    /// Whether `timer` is armed for `at`.
    pub fn holds(&self, timer: Timer, at: Instant) -> bool {
        self.armed.iter().any(|&(t, when)| t == timer && when == at)
    }
}
