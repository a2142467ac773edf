//! An adapter driven by the test: it plays another world (SIP, IRC...)
//! inside the hub. What the test sends through its [`EmbeddedHandle`] goes
//! into the hub as if that world had received it; what the hub hands to it
//! (deliveries, room events, reports) is recorded for the test to await.
//!
//! In the config it is a section with `kind = "embedded"`:
//!
//! ```toml
//! [adapters.sip]
//! kind = "embedded"
//! ```
//!
//! ```no_run
//! # async fn f() -> Result<(), cpimgate_e2e::HarnessError> {
//! use cpimgate_e2e::embedded::{embedded_adapter, room_message};
//! use cpimgate_e2e::xmpp_user::WAIT;
//! use cpimgate_model::World;
//! let (adapter, mut sip) = embedded_adapter(World::Sip);
//! // ... Gateway::start(toml, vec![("sip".into(), adapter)]) ...
//! let m = room_message(World::Sip, "sip", "sip:lobby@chat.example.com", "sip:carol@example.com", "hi")?;
//! sip.send(m).await?;                 // the hub's answer: Accepted
//! let out = sip.next_delivery(WAIT).await?;
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpimgate_model::port::{
    Adapter, AdapterContext, AdapterError, AdapterStatus, BoxFuture, DeliveryOutcome, Inbound,
    Outbound,
};
use cpimgate_model::{Address, Message, NameAddr, Origin, RoomEvent, RoomRef, World};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::HarnessError;

/// What the hub handed to an embedded adapter.
#[derive(Debug)]
#[non_exhaustive]
pub enum Seen {
    /// A message to deliver (the adapter answered with its configured
    /// outcome, [`DeliveryOutcome::Delivered`] by default).
    Deliver(Box<Message>),
    /// A room event to show.
    Event(Box<RoomEvent>),
    /// The outcome of a message this adapter handed in.
    Report {
        /// The message.
        message: Box<Message>,
        /// The adapter it went to.
        destination: String,
        /// What became of it.
        outcome: DeliveryOutcome,
    },
}

/// The adapter half, handed to the hub.
struct EmbeddedAdapter {
    world: World,
    cmds: mpsc::UnboundedReceiver<Inbound>,
    seen: mpsc::UnboundedSender<Seen>,
    outcome: Arc<Mutex<DeliveryOutcome>>,
    connected: bool,
}

/// The test's half.
#[derive(Debug)]
pub struct EmbeddedHandle {
    world: World,
    cmds: mpsc::UnboundedSender<Inbound>,
    seen: mpsc::UnboundedReceiver<Seen>,
    outcome: Arc<Mutex<DeliveryOutcome>>,
    mailbox: VecDeque<Seen>,
}

/// An embedded adapter of `world` that reports itself connected at once.
pub fn embedded_adapter(world: World) -> (Box<dyn Adapter>, EmbeddedHandle) {
    embedded_adapter_with(world, true)
}

/// An embedded adapter of `world`; unless `connected`, it stays
/// disconnected until [`EmbeddedHandle::set_status`] says otherwise, and
/// the hub queues what is for it.
pub fn embedded_adapter_with(world: World, connected: bool) -> (Box<dyn Adapter>, EmbeddedHandle) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    let outcome = Arc::new(Mutex::new(DeliveryOutcome::Delivered));
    (
        Box::new(EmbeddedAdapter {
            world,
            cmds: cmd_rx,
            seen: seen_tx,
            outcome: outcome.clone(),
            connected,
        }),
        EmbeddedHandle {
            world,
            cmds: cmd_tx,
            seen: seen_rx,
            outcome,
            mailbox: VecDeque::new(),
        },
    )
}

impl Adapter for EmbeddedAdapter {
    fn world(&self) -> World {
        self.world
    }

    fn run(
        mut self: Box<Self>,
        mut ctx: AdapterContext,
    ) -> BoxFuture<'static, Result<(), AdapterError>> {
        Box::pin(async move {
            if self.connected {
                ctx.inbound
                    .send(Inbound::Status(AdapterStatus::Connected))
                    .await
                    .map_err(|_| AdapterError::HubGone)?;
            }
            loop {
                tokio::select! {
                    _ = ctx.shutdown.changed() => return Ok(()),
                    cmd = self.cmds.recv() => match cmd {
                        Some(c) => ctx.inbound.send(c).await.map_err(|_| AdapterError::HubGone)?,
                        None => return Ok(()),
                    },
                    out = ctx.outbound.recv() => match out {
                        Some(Outbound::Deliver { message, reply }) => {
                            let outcome = self
                                .outcome
                                .lock()
                                .map(|o| o.clone())
                                .unwrap_or(DeliveryOutcome::Delivered);
                            let _ = self.seen.send(Seen::Deliver(message));
                            let _ = reply.send(outcome);
                        }
                        Some(Outbound::RoomEvent(e)) => {
                            let _ = self.seen.send(Seen::Event(e));
                        }
                        Some(Outbound::Report { message, destination, outcome }) => {
                            let _ = self.seen.send(Seen::Report { message, destination, outcome });
                        }
                        Some(_) => {}
                        None => return Ok(()),
                    },
                }
            }
        })
    }
}

impl EmbeddedHandle {
    /// The world this adapter plays.
    pub fn world(&self) -> World {
        self.world
    }

    /// Hand `message` to the hub and return its answer
    /// ([`DeliveryOutcome::Accepted`] once queued).
    pub async fn send(&self, message: Message) -> Result<DeliveryOutcome, HarnessError> {
        let (reply, answer) = oneshot::channel();
        self.cmds
            .send(Inbound::Message {
                message: Box::new(message),
                reply,
            })
            .map_err(|_| HarnessError::Gateway(anyhow::anyhow!("the embedded adapter stopped")))?;
        let wait = crate::xmpp_user::WAIT;
        tokio::time::timeout(wait, answer)
            .await
            .map_err(|_| HarnessError::Timeout {
                what: "the hub's answer to a message".into(),
                after: wait,
            })?
            .map_err(|_| HarnessError::Gateway(anyhow::anyhow!("the hub dropped the reply")))
    }

    /// Hand a room event to the hub.
    pub fn send_event(&self, event: RoomEvent) -> Result<(), HarnessError> {
        self.inbound(Inbound::RoomEvent(Box::new(event)))
    }

    /// Tell the hub the adapter is (dis)connected.
    pub fn set_status(&self, status: AdapterStatus) -> Result<(), HarnessError> {
        self.inbound(Inbound::Status(status))
    }

    /// Answer every later delivery with `outcome` (e.g. a transient
    /// failure, to make the hub retry).
    pub fn set_outcome(&self, outcome: DeliveryOutcome) {
        if let Ok(mut o) = self.outcome.lock() {
            *o = outcome;
        }
    }

    /// The next thing the hub handed over.
    pub async fn next(&mut self, timeout: Duration) -> Result<Seen, HarnessError> {
        self.expect(|_| true, "anything from the hub", timeout)
            .await
    }

    /// The next delivery.
    pub async fn next_delivery(&mut self, timeout: Duration) -> Result<Message, HarnessError> {
        self.expect_delivery(|_| true, timeout).await
    }

    /// The first delivery that satisfies `pred`; the rest stays.
    pub async fn expect_delivery(
        &mut self,
        mut pred: impl FnMut(&Message) -> bool,
        timeout: Duration,
    ) -> Result<Message, HarnessError> {
        match self
            .expect(
                |s| matches!(s, Seen::Deliver(m) if pred(m)),
                "a matching delivery",
                timeout,
            )
            .await?
        {
            Seen::Deliver(m) => Ok(*m),
            _ => Err(HarnessError::Gateway(anyhow::anyhow!("not a delivery"))),
        }
    }

    /// The first delivery whose body is the text `text`.
    pub async fn expect_text(
        &mut self,
        text: &str,
        timeout: Duration,
    ) -> Result<Message, HarnessError> {
        self.expect_delivery(|m| m.body.as_text() == Some(text), timeout)
            .await
            .map_err(|e| match e {
                HarnessError::Timeout { what, after } => HarnessError::Timeout {
                    what: format!("a delivery of {text:?}: {what}"),
                    after,
                },
                e => e,
            })
    }

    /// The next room event.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<RoomEvent, HarnessError> {
        match self
            .expect(|s| matches!(s, Seen::Event(_)), "a room event", timeout)
            .await?
        {
            Seen::Event(e) => Ok(*e),
            _ => Err(HarnessError::Gateway(anyhow::anyhow!("not an event"))),
        }
    }

    /// The next report: the message, its destination adapter, the outcome.
    pub async fn next_report(
        &mut self,
        timeout: Duration,
    ) -> Result<(Message, String, DeliveryOutcome), HarnessError> {
        match self
            .expect(|s| matches!(s, Seen::Report { .. }), "a report", timeout)
            .await?
        {
            Seen::Report {
                message,
                destination,
                outcome,
            } => Ok((*message, destination, outcome)),
            _ => Err(HarnessError::Gateway(anyhow::anyhow!("not a report"))),
        }
    }

    /// Fail if the hub hands over something satisfying `pred` within
    /// `window` (reports are a matter of `pred` too).
    pub async fn expect_none(
        &mut self,
        pred: impl FnMut(&Seen) -> bool,
        window: Duration,
    ) -> Result<(), HarnessError> {
        match self.expect(pred, "nothing", window).await {
            Ok(s) => Err(HarnessError::Gateway(anyhow::anyhow!("unexpected: {s:?}"))),
            Err(HarnessError::Timeout { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The first item satisfying `pred`; the rest stays for later calls.
    pub async fn expect(
        &mut self,
        mut pred: impl FnMut(&Seen) -> bool,
        what: &str,
        timeout: Duration,
    ) -> Result<Seen, HarnessError> {
        if let Some(i) = self.mailbox.iter().position(&mut pred) {
            if let Some(s) = self.mailbox.remove(i) {
                return Ok(s);
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Err(_) => {
                    return Err(HarnessError::Timeout {
                        what: format!(
                            "{what} at the {} adapter ({} other items waiting: {:?})",
                            self.world,
                            self.mailbox.len(),
                            self.mailbox.iter().rev().take(3).collect::<Vec<_>>()
                        ),
                        after: timeout,
                    });
                }
                Ok(None) => {
                    return Err(HarnessError::Gateway(anyhow::anyhow!(
                        "the embedded {} adapter stopped",
                        self.world
                    )));
                }
                Ok(Some(s)) if pred(&s) => return Ok(s),
                Ok(Some(s)) => self.mailbox.push_back(s),
            }
        }
    }

    /// Forget everything received and not yet taken.
    pub fn clear(&mut self) {
        while self.seen.try_recv().is_ok() {}
        self.mailbox.clear();
    }

    fn inbound(&self, item: Inbound) -> Result<(), HarnessError> {
        self.cmds
            .send(item)
            .map_err(|_| HarnessError::Gateway(anyhow::anyhow!("the embedded adapter stopped")))
    }
}

/// A text message of a room, as adapter `adapter` of `world` would hand it
/// in: `room` is the room's address in that world, `from` the sender's.
pub fn room_message(
    world: World,
    adapter: &str,
    room: &str,
    from: &str,
    text: &str,
) -> Result<Message, HarnessError> {
    let room_addr = parse_address(room)?;
    let mut m = Message::text(
        origin(world, adapter),
        NameAddr::new(parse_address(from)?),
        NameAddr::new(room_addr.clone()),
        text,
    );
    m.room = Some(RoomRef {
        adapter: adapter.to_owned(),
        address: room_addr,
    });
    Ok(m)
}

/// A 1:1 text message from `from` to `to`, as adapter `adapter` of `world`
/// would hand it in.
pub fn direct_message(
    world: World,
    adapter: &str,
    from: &str,
    to: &str,
    text: &str,
) -> Result<Message, HarnessError> {
    Ok(Message::text(
        origin(world, adapter),
        NameAddr::new(parse_address(from)?),
        NameAddr::new(parse_address(to)?),
        text,
    ))
}

fn origin(world: World, adapter: &str) -> Origin {
    Origin {
        world,
        adapter: adapter.to_owned(),
        native_id: None,
    }
}

fn parse_address(s: &str) -> Result<Address, HarnessError> {
    s.parse::<Address>()
        .map_err(|e| HarnessError::Gateway(anyhow::anyhow!("{s:?} is not an address: {e}")))
}
