//! Delivery to one adapter: one dispatcher task per adapter instance.
//!
//! The dispatcher takes queued entries (and room events) in the order the
//! queue accepted them — as soon as they are written, before their commit
//! (see "Staging" in [`crate::queue`]) — hands them to its adapter through the adapter's
//! bounded outbound channel with at most `window` deliveries unanswered,
//! and settles each one by its outcome:
//!
//! * delivered or accepted by the next hop: removed from the queue;
//! * transient failure (adapter down, timeout, overload): kept, retried
//!   with exponential backoff and jitter; the whole adapter pauses until the
//!   retry time, so later messages do not overtake the failed one;
//! * permanent failure or expiry: removed, and reported to the adapter the
//!   message came from ([`Outbound::Report`]).
//!
//! Entries reach the dispatcher through a bounded channel. When it is full
//! the router stops sending and raises [`DispatchInput::overflow`]; the
//! dispatcher then reads the backlog from the queue's file in order and
//! clears the flag once it has caught up, so memory stays bounded however
//! long an adapter is down. A backlog read is answered after the commit of
//! the queue's current group, so it sees every entry staged before it was
//! asked for; entries it returns that the channel also carries are skipped
//! by id (ids grow in acceptance order).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cpimgate_model::port::{AdapterStatus, DeliveryOutcome, Failure, FailureKind, Outbound};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, RoomEvent};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::queue::{Backoff, Entry, EntryId, Queue};

/// What a dispatcher is given to do.
#[derive(Debug)]
pub enum Work {
    /// A queue entry for this adapter (written; its commit may still be
    /// running).
    Entry(Box<Entry>),
    /// A room event to show (not durable).
    Event(Box<RoomEvent>),
    /// The final outcome of a message that came in through this adapter.
    Report {
        /// The delivered (or failed) copy.
        message: Box<Message>,
        /// The adapter that was to deliver it.
        destination: String,
        /// What happened.
        outcome: DeliveryOutcome,
    },
}

/// The router's side of one dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchInput {
    /// Bounded channel into the dispatcher.
    pub tx: mpsc::Sender<Work>,
    /// Set when an entry could not be sent because the channel was full:
    /// the dispatcher reads the backlog from disk and clears it.
    pub overflow: Arc<AtomicBool>,
}

impl DispatchInput {
    /// Hand a staged entry over, in acceptance order. Never waits: when the
    /// channel is full the entry is left to the disk and the dispatcher
    /// catches up from there (its backlog read waits for the commit).
    pub fn offer_entry(&self, entry: Entry) {
        if self.overflow.load(Ordering::Acquire) {
            return;
        }
        if self.tx.try_send(Work::Entry(Box::new(entry))).is_err() {
            self.overflow.store(true, Ordering::Release);
        }
    }

    /// Hand a room event or report over; dropped (with a log line) when the
    /// dispatcher is that far behind.
    pub fn offer(&self, work: Work, adapter: &str) {
        if let Err(e) = self.tx.try_send(work) {
            metrics::counter!("cpimgate_events_dropped_total", "adapter" => adapter.to_owned())
                .increment(1);
            tracing::warn!(
                adapter,
                "dispatcher backlog full, dropping {:?}",
                kind_of(&e)
            );
        }
    }
}

fn kind_of(e: &mpsc::error::TrySendError<Work>) -> &'static str {
    match e {
        mpsc::error::TrySendError::Full(Work::Event(_))
        | mpsc::error::TrySendError::Closed(Work::Event(_)) => "room event",
        mpsc::error::TrySendError::Full(Work::Report { .. })
        | mpsc::error::TrySendError::Closed(Work::Report { .. }) => "report",
        _ => "entry",
    }
}

/// Settings of a dispatcher, from `[queue]`.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Most deliveries unanswered at once.
    pub window: usize,
    /// How long an adapter may take to answer one delivery.
    pub delivery_timeout: Duration,
    /// Retry delays.
    pub backoff: Backoff,
    /// How many backlog entries are read from disk at a time.
    pub backlog_batch: usize,
    /// On shutdown, how long in-flight deliveries may take.
    pub drain: Duration,
}

/// One adapter's dispatcher.
#[derive(Debug)]
pub struct Dispatcher {
    /// Adapter instance name.
    pub adapter: String,
    /// Into the adapter.
    pub outbound: mpsc::Sender<Outbound>,
    /// From the router.
    pub rx: mpsc::Receiver<Work>,
    /// Shared with the router.
    pub overflow: Arc<AtomicBool>,
    /// The adapter's connection state.
    pub status: watch::Receiver<AdapterStatus>,
    /// Every dispatcher's input, for reports to origin adapters.
    pub peers: Arc<HashMap<String, DispatchInput>>,
    /// The durable queue.
    pub queue: Queue,
    /// Settings.
    pub settings: DispatchSettings,
    /// Gateway shutdown.
    pub shutdown: watch::Receiver<bool>,
}

type Answer = (EntryId, Result<DeliveryOutcome, Failure>);

impl Dispatcher {
    /// Run until shutdown; then wait for in-flight deliveries up to the
    /// drain deadline. Entries not settled stay queued on disk.
    pub async fn run(mut self) {
        let adapter = self.adapter.clone();
        // Work ready to go, in order; entries are also kept by id so a
        // retried one goes back to the front in its original place.
        let mut ready: VecDeque<Work> = VecDeque::new();
        let mut held: BTreeMap<EntryId, Entry> = BTreeMap::new();
        let mut in_flight: HashMap<EntryId, Entry> = HashMap::new();
        let mut answers: FuturesUnordered<tokio::task::JoinHandle<Answer>> =
            FuturesUnordered::new();
        let mut last_seen: Option<EntryId> = None;
        let mut paused_until: Option<Instant> = None;

        loop {
            if *self.shutdown.borrow() {
                break;
            }
            // Catch up from disk when the router had to stop sending.
            if self.overflow.load(Ordering::Acquire) && ready.len() < self.settings.backlog_batch {
                // What the channel holds was staged before the backlog.
                while let Ok(w) = self.rx.try_recv() {
                    accept(w, &mut ready, &mut last_seen);
                }
                match self
                    .queue
                    .load_pending(&adapter, last_seen, self.settings.backlog_batch)
                    .await
                {
                    Ok(batch) => {
                        let caught_up = batch.len() < self.settings.backlog_batch;
                        for e in batch {
                            accept(Work::Entry(Box::new(e)), &mut ready, &mut last_seen);
                        }
                        if caught_up {
                            // Anything the router sends from now on comes
                            // through the channel; duplicates of what was
                            // just read are skipped by id.
                            self.overflow.store(false, Ordering::Release);
                            let more = self
                                .queue
                                .load_pending(&adapter, last_seen, self.settings.backlog_batch)
                                .await
                                .unwrap_or_default();
                            for e in more {
                                accept(Work::Entry(Box::new(e)), &mut ready, &mut last_seen);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(adapter, "reading the queue backlog failed: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }

            let connected = *self.status.borrow() == AdapterStatus::Connected;
            let paused = paused_until.is_some_and(|t| Instant::now() < t);
            if !paused && paused_until.is_some() {
                paused_until = None;
                // Retries go first, in their original order.
                for (_, e) in std::mem::take(&mut held).into_iter().rev() {
                    ready.push_front(Work::Entry(Box::new(e)));
                }
            }
            let can_send =
                connected && !paused && in_flight.len() < self.settings.window && !ready.is_empty();

            if can_send {
                if let Some(work) = ready.pop_front() {
                    self.send(work, &mut in_flight, &mut answers).await;
                }
                continue;
            }

            let pause_sleep = async {
                match paused_until {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.shutdown.changed() => {}
                _ = self.status.changed() => {}
                _ = pause_sleep => {}
                w = self.rx.recv(), if ready.len() < self.settings.backlog_batch * 2 => match w {
                    Some(w) => accept(w, &mut ready, &mut last_seen),
                    None => break,
                },
                Some(joined) = answers.next(), if !answers.is_empty() => {
                    if let Ok((id, result)) = joined
                        && let Some(entry) = in_flight.remove(&id)
                        && let Some(delay) = self.settle(entry, result, &mut held).await
                    {
                        let until = Instant::now() + delay;
                        paused_until = Some(paused_until.map_or(until, |p| p.max(until)));
                    }
                }
            }
        }

        // Drain: wait for answers already asked for, up to the deadline.
        let deadline = Instant::now() + self.settings.drain;
        while !answers.is_empty() {
            match tokio::time::timeout_at(deadline, answers.next()).await {
                Ok(Some(Ok((id, result)))) => {
                    if let Some(entry) = in_flight.remove(&id) {
                        self.settle(entry, result, &mut held).await;
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(
                        adapter,
                        unanswered = in_flight.len(),
                        "shutdown deadline reached; unanswered deliveries stay queued"
                    );
                    break;
                }
            }
        }
    }

    async fn send(
        &self,
        work: Work,
        in_flight: &mut HashMap<EntryId, Entry>,
        answers: &mut FuturesUnordered<tokio::task::JoinHandle<Answer>>,
    ) {
        match work {
            Work::Entry(entry) => {
                let entry = *entry;
                if entry.message.is_expired(Timestamp::now()) {
                    self.finish(
                        entry,
                        DeliveryOutcome::Failed(Failure::new(
                            FailureKind::Expired,
                            "the message expired before it could be delivered",
                        )),
                    )
                    .await;
                    return;
                }
                let (reply, answer) = oneshot::channel();
                let out = Outbound::Deliver {
                    message: Box::new(entry.message.clone()),
                    reply,
                };
                let id = entry.id;
                if self.outbound.send(out).await.is_err() {
                    // The adapter is gone: keep the entry for the next start.
                    tracing::warn!(adapter = %self.adapter, "adapter stopped; entry stays queued");
                    return;
                }
                in_flight.insert(id, entry);
                let timeout = self.settings.delivery_timeout;
                answers.push(tokio::spawn(async move {
                    let result = match tokio::time::timeout(timeout, answer).await {
                        Ok(Ok(outcome)) => Ok(outcome),
                        Ok(Err(_)) => Err(Failure::new(
                            FailureKind::Unreachable,
                            "the adapter dropped the delivery",
                        )),
                        Err(_) => Err(Failure::new(
                            FailureKind::Timeout,
                            "no answer from the adapter in time",
                        )),
                    };
                    (id, result)
                }));
            }
            Work::Event(event) => {
                let _ = self.outbound.send(Outbound::RoomEvent(event)).await;
            }
            Work::Report {
                message,
                destination,
                outcome,
            } => {
                let _ = self
                    .outbound
                    .send(Outbound::Report {
                        message,
                        destination,
                        outcome,
                    })
                    .await;
            }
        }
    }

    /// Settle one answered delivery; returns a pause when it must be retried.
    async fn settle(
        &self,
        mut entry: Entry,
        result: Result<DeliveryOutcome, Failure>,
        held: &mut BTreeMap<EntryId, Entry>,
    ) -> Option<Duration> {
        let outcome = match result {
            Ok(o) => o,
            Err(f) => DeliveryOutcome::Failed(f),
        };
        match &outcome {
            DeliveryOutcome::Failed(f) if f.is_transient() => {
                let now = Timestamp::now();
                if entry.message.is_expired(now) {
                    self.finish(
                        entry,
                        DeliveryOutcome::Failed(Failure::new(
                            FailureKind::Expired,
                            format!("expired while retrying ({f})"),
                        )),
                    )
                    .await;
                    return None;
                }
                entry.attempts = entry.attempts.saturating_add(1);
                let delay = self.settings.backoff.delay(entry.attempts);
                entry.next_attempt = now.plus(delay);
                metrics::counter!("cpimgate_delivery_retries_total", "adapter" => self.adapter.clone())
                    .increment(1);
                tracing::debug!(adapter = %self.adapter, id = %entry.message.id, attempts = entry.attempts, "retrying in {delay:?}: {f}");
                if let Err(e) = self
                    .queue
                    .reschedule(entry.id, entry.attempts, entry.next_attempt)
                    .await
                {
                    tracing::error!(adapter = %self.adapter, "rescheduling failed: {e}");
                }
                held.insert(entry.id, entry);
                Some(delay)
            }
            _ => {
                self.finish(entry, outcome).await;
                None
            }
        }
    }

    /// Remove a settled entry and report its outcome to where it came from.
    async fn finish(&self, entry: Entry, outcome: DeliveryOutcome) {
        let adapter = self.adapter.clone();
        match &outcome {
            DeliveryOutcome::Failed(f) => {
                metrics::counter!("cpimgate_messages_failed_total", "adapter" => adapter.clone(), "kind" => f.kind.to_string())
                    .increment(1);
                tracing::info!(adapter, id = %entry.message.id, "delivery failed: {f}");
            }
            _ => {
                metrics::counter!("cpimgate_messages_out_total", "adapter" => adapter.clone())
                    .increment(1);
                let waited = Timestamp::now().unix_micros - entry.enqueued_at.unix_micros;
                metrics::histogram!("cpimgate_delivery_seconds", "adapter" => adapter.clone())
                    .record(waited.max(0) as f64 / 1e6);
            }
        }
        if let Err(e) = self.queue.complete(entry.id).await {
            tracing::error!(adapter, "removing a settled entry failed: {e}");
        }
        let origin = entry.message.origin.adapter.clone();
        if let Some(peer) = self.peers.get(&origin) {
            peer.offer(
                Work::Report {
                    message: Box::new(entry.message),
                    destination: adapter,
                    outcome,
                },
                &origin,
            );
        }
    }
}

/// Take one piece of work into the ready list, skipping entries already
/// seen (read from disk and also sent by the router).
fn accept(work: Work, ready: &mut VecDeque<Work>, last_seen: &mut Option<EntryId>) {
    if let Work::Entry(e) = &work {
        if last_seen.is_some_and(|l| e.id <= l) {
            return;
        }
        *last_seen = Some(e.id);
    }
    ready.push_back(work);
}
