//! The connections: a tokio task that owns the gateway's connection, the
//! timers and the [`Session`], and the only reference to them; in puppet
//! mode also the [`Puppets`] and the tasks of the puppet connections.
//!
//! * A reader task turns the socket into parsed lines on a bounded
//!   channel: when the hub is slow, the channel fills and the socket is not
//!   read (backpressure), instead of buffering.
//! * Lines are written in order through a token bucket ([`TokenBucket`]);
//!   a line that does not fit waits, so the gateway is never killed for
//!   flooding. `PONG` goes at once.
//! * A message from another world is answered [`DeliveryOutcome::Delivered`]
//!   when the server echoes it (IRCv3 echo-message; matched by label with
//!   labeled-response, else in order per target), `Failed` on a numeric
//!   error for it, and `Accepted` when the server has no echo-message or
//!   the echo does not come in time. While not connected or not in the
//!   channel, deliveries fail as `Unreachable` and the hub keeps them
//!   queued and retries in order.
//! * On any disconnect: reconnect with exponential backoff and jitter,
//!   register again, rejoin the channels. Puppets are connections of their
//!   own ([`crate::puppet::task`]) and outlive the gateway's one.
//! * Netsplits: a QUIT with a netsplit reason is held for
//!   `netsplit_hold_secs`; a JOIN of the same nick meanwhile cancels both,
//!   so the other worlds do not see a flood of leaves and joins.
//! * What was said while the gateway was away (relay mode): a channel
//!   message's id comes from its IRCv3 `msgid`, and the history a server
//!   replays on join (a `chathistory` batch, e.g. InspIRCd's chanhistory
//!   with channel mode `+H`) is handed to the hub from the time of the
//!   channel's newest message in the bridge's history on. The hub drops
//!   what it already took (same id), so what the gateway missed (while
//!   disconnected, or killed between reading a line and storing it)
//!   arrives once.
//!
//! [`Link`] and [`Conn`] are one connection's I/O and state, shared by the
//! gateway's connection and the puppets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cpimgate_mappings::MappingStore;
use cpimgate_model::event::RoomEventKind;
use cpimgate_model::port::{
    AdapterContext, AdapterError, AdapterStatus, DeliveryOutcome, Failure, FailureKind,
    HistoryQuery, Inbound, Outbound, Reply,
};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, RoomEvent, RoomRef};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{IrcConfig, Mode, SaslConfig};
use crate::proto::ISupport;
use crate::proto::session::{Event, Identity, Privmsg, Sasl, Session};
use crate::puppet::task::{self, PuppetSetup};
use crate::puppet::{Action, Cmd, ConnId, Puppets, Report, StoreBook};
use crate::relay::{Poster, Relay};
use crate::tls;

mod link;
pub(crate) use link::{Buffers, Conn, Input, Link};

/// Hub answers awaited at once; beyond this the socket is not read.
const MAX_HUB_PENDING: usize = 1024;
/// How long connecting and registering may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The first reconnection delay.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// How long the goodbyes (QUIT) may take at shutdown.
pub(crate) const QUIT_WAIT: Duration = Duration::from_secs(2);
/// Reports of puppet connections waiting for the driver.
const PUPPET_REPORTS: usize = 1024;
/// Commands waiting for one puppet connection.
const PUPPET_COMMANDS: usize = 256;
/// How far back in the bridge's history the newest message of a channel
/// is looked for (see [`Driver::recovery_marks`]).
const RECOVERY_LOOKBACK: usize = 1000;
/// How long the history may take to answer before joining goes on
/// without recovery.
const HISTORY_WAIT: Duration = Duration::from_secs(2);

enum Ended {
    Shutdown,
    Lost(String),
}

/// Run the adapter until shutdown.
pub async fn run(
    cfg: IrcConfig,
    mappings: MappingStore,
    ctx: AdapterContext,
) -> Result<(), AdapterError> {
    cfg.validate().map_err(AdapterError::Config)?;
    let tls = if cfg.tls {
        Some(tls::connector(&cfg).map_err(|e| AdapterError::Config(e.to_string()))?)
    } else {
        None
    };
    let relay = Relay::new(&ctx.name, &cfg);
    let cfg = Arc::new(cfg);
    let puppets = (cfg.mode == Mode::Puppet).then(|| {
        let (reports_tx, reports) = mpsc::channel(PUPPET_REPORTS);
        PuppetHost {
            puppets: Puppets::new(
                &cfg,
                Box::new(StoreBook {
                    store: mappings.clone(),
                    network: cfg.network.clone(),
                }),
                Instant::now().into_std(),
            ),
            conns: HashMap::new(),
            reports_tx,
            reports,
            cfg: cfg.clone(),
            tls: tls.clone(),
            mappings,
            shutdown: ctx.shutdown.clone(),
        }
    });
    let mut d = Driver {
        relay,
        cfg,
        ctx,
        hub_answers: FuturesUnordered::new(),
        status: None,
        puppets,
        held: HashMap::new(),
        rejoin: Vec::new(),
        recover_since: HashMap::new(),
        own_nicks: Vec::new(),
    };
    d.set_status(AdapterStatus::Disconnected).await?;
    let mut attempt: u32 = 0;
    loop {
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connect(&d.cfg, tls.as_ref())).await;
        match conn {
            Ok(Ok(stream)) => match d.run_connection(stream, &mut attempt).await? {
                Ended::Shutdown => {
                    d.stop_puppets().await;
                    return Ok(());
                }
                Ended::Lost(why) => {
                    tracing::warn!(adapter = %d.ctx.name, "irc: connection lost: {why}");
                }
            },
            Ok(Err(e)) => {
                tracing::warn!(adapter = %d.ctx.name, server = %d.cfg.server, "irc: cannot connect: {e}");
            }
            Err(_) => {
                tracing::warn!(adapter = %d.ctx.name, server = %d.cfg.server, "irc: connecting timed out");
            }
        }
        d.set_status(AdapterStatus::Disconnected).await?;
        let delay = backoff(
            attempt,
            Duration::from_secs(d.cfg.reconnect_max_secs.max(1)),
        );
        attempt = attempt.saturating_add(1);
        tracing::info!(adapter = %d.ctx.name, "irc: reconnecting in {delay:?}");
        if d.wait_offline(delay).await? {
            d.stop_puppets().await;
            return Ok(());
        }
    }
}

/// Uniform in `[min/2, min(max, min * 2^attempt)]`.
fn backoff(attempt: u32, max: Duration) -> Duration {
    let cap = BACKOFF_MIN
        .saturating_mul(1u32 << attempt.min(16))
        .min(max.max(BACKOFF_MIN));
    let low = BACKOFF_MIN / 2;
    low + cap.saturating_sub(low).mul_f64(rand::random::<f64>())
}

pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A TCP (and TLS, if configured) connection to the server.
pub(crate) async fn connect(
    cfg: &IrcConfig,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> std::io::Result<Box<dyn Stream>> {
    let tcp = TcpStream::connect(&cfg.server).await?;
    tcp.set_nodelay(true)?;
    match tls {
        Some(c) => {
            let host = cfg
                .server
                .rsplit_once(':')
                .map_or(cfg.server.as_str(), |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Ok(Box::new(tls::connect(c, host, tcp).await?))
        }
        None => Ok(Box::new(tcp)),
    }
}

/// The puppet connections of puppet mode, around their [`Puppets`].
struct PuppetHost {
    puppets: Puppets,
    conns: HashMap<ConnId, (mpsc::Sender<Cmd>, JoinHandle<()>)>,
    reports_tx: mpsc::Sender<(ConnId, Report)>,
    reports: mpsc::Receiver<(ConnId, Report)>,
    cfg: Arc<IrcConfig>,
    tls: Option<tokio_rustls::TlsConnector>,
    mappings: MappingStore,
    shutdown: watch::Receiver<bool>,
}

impl PuppetHost {
    fn spawn(&mut self, id: ConnId, nick: String, realname: String) {
        let (cmd_tx, cmds) = mpsc::channel(PUPPET_COMMANDS);
        let setup = PuppetSetup {
            id,
            cfg: self.cfg.clone(),
            tls: self.tls.clone(),
            nick,
            realname,
            cmds,
            reports: self.reports_tx.clone(),
            shutdown: self.shutdown.clone(),
        };
        let handle = tokio::spawn(task::run(setup));
        self.conns.insert(id, (cmd_tx, handle));
    }

    /// Hand `cmd` to connection `id`; a `Send` that cannot be handed over
    /// is answered as a transient failure (the hub tries again).
    fn command(&mut self, id: ConnId, cmd: Cmd) {
        let Some((tx, handle)) = self.conns.get(&id) else {
            fail_send(
                cmd,
                FailureKind::Unreachable,
                "the puppet connection is gone",
            );
            return;
        };
        match tx.try_send(cmd) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Cmd::Quit(_))) => {
                // Not left running unseen: closed without its QUIT.
                handle.abort();
            }
            Err(mpsc::error::TrySendError::Full(cmd)) => {
                tracing::warn!(
                    conn = id,
                    "irc: a puppet connection is too busy for {cmd:?}"
                );
                fail_send(
                    cmd,
                    FailureKind::Overloaded,
                    "the puppet connection is busy",
                );
            }
            Err(mpsc::error::TrySendError::Closed(cmd)) => {
                fail_send(
                    cmd,
                    FailureKind::Unreachable,
                    "the puppet connection is gone",
                );
            }
        }
    }

    /// What connection `id` reports, to the bookkeeping; a closed one is
    /// forgotten.
    fn report(&mut self, id: ConnId, r: Report) {
        if matches!(r, Report::Closed(_)) {
            self.conns.remove(&id);
        }
        self.puppets.handle_report(Instant::now().into_std(), id, r);
    }
}

fn fail_send(cmd: Cmd, kind: FailureKind, why: &str) {
    if let Cmd::Send { reply, .. } = cmd {
        let _ = reply.send(DeliveryOutcome::Failed(Failure::new(kind, why)));
    }
}

/// A puppet's private message names the channels its sender shares with
/// it: of the puppet's channels, those where the gateway's connection
/// sees the sender (puppets keep no rosters). Without that connection
/// (offline), all of them are kept.
fn shared_only(r: Report, main: Option<&Session>) -> Report {
    match (r, main) {
        (Report::Private { message, shared }, Some(main)) => {
            let shared = shared
                .into_iter()
                .filter(|c| main.is_member(c, &message.from))
                .collect();
            Report::Private { message, shared }
        }
        (r, _) => r,
    }
}

async fn next_report(p: &mut Option<PuppetHost>) -> Option<(ConnId, Report)> {
    match p {
        Some(h) => h.reports.recv().await,
        None => std::future::pending().await,
    }
}

struct Driver {
    cfg: Arc<IrcConfig>,
    ctx: AdapterContext,
    relay: Relay,
    hub_answers: FuturesUnordered<oneshot::Receiver<DeliveryOutcome>>,
    status: Option<AdapterStatus>,
    puppets: Option<PuppetHost>,
    /// Netsplit leaves held back: folded nick → (until, events).
    held: HashMap<String, (Instant, Vec<RoomEvent>)>,
    /// Channels to rejoin after a kick, and when.
    rejoin: Vec<(Instant, String)>,
    /// Relay mode: folded channel → the time from which its history
    /// replay may hold messages the gateway missed (see the module doc).
    recover_since: HashMap<String, Timestamp>,
    /// Every nick the gateway's connection may have had (a killed
    /// gateway's connection lingers and keeps its nick): lines of the
    /// history replay by these are its own.
    own_nicks: Vec<String>,
}

impl Driver {
    async fn set_status(&mut self, s: AdapterStatus) -> Result<(), AdapterError> {
        if self.status == Some(s) {
            return Ok(());
        }
        self.status = Some(s);
        self.ctx
            .inbound
            .send(Inbound::Status(s))
            .await
            .map_err(|_| AdapterError::HubGone)
    }

    /// Wait `delay` while offline, failing deliveries that would take the
    /// gateway's connection as unreachable (the hub retries them later,
    /// in order); puppets go on. `true` on shutdown.
    async fn wait_offline(&mut self, delay: Duration) -> Result<bool, AdapterError> {
        let until = Instant::now() + delay;
        loop {
            self.puppet_actions(None).await?;
            // Without the connection's tick, the puppets' time still runs.
            let tick = self
                .puppets
                .as_ref()
                .map(|_| Instant::now() + Duration::from_secs(1));
            let wake = self.puppet_wake().min(tick).or(tick);
            tokio::select! {
                _ = self.ctx.shutdown.changed() => return Ok(true),
                _ = tokio::time::sleep_until(until) => return Ok(false),
                out = self.ctx.outbound.recv() => match out {
                    Some(out) => self.on_outbound(None, out),
                    None => return Ok(true),
                },
                Some(_) = self.hub_answers.next(), if !self.hub_answers.is_empty() => {}
                Some((id, r)) = next_report(&mut self.puppets) => self.on_report(id, r, None),
                _ = sleep_until_opt(wake) => self.puppet_tick(),
            }
        }
    }

    async fn run_connection(
        &mut self,
        stream: Box<dyn Stream>,
        attempt: &mut u32,
    ) -> Result<Ended, AdapterError> {
        let mut link = Link::open(
            stream,
            Conn::new(&self.cfg, main_identity(&self.cfg)),
            Buffers::MAIN,
        );
        let ended = loop {
            if let Err(e) = link.flush().await {
                break Ended::Lost(format!("write: {e}"));
            }
            // Puppets' reports first: a puppet's JOIN must be known as
            // one before the gateway's connection sees it.
            self.drain_reports(Some(&link.conn.session));
            if let Some(why) = self.take_events(&mut link.conn).await? {
                break Ended::Lost(why);
            }
            self.puppet_actions(Some(&mut link.conn)).await?;
            if link.conn.session.is_registered() {
                *attempt = 0;
                self.set_status(AdapterStatus::Connected).await?;
            } else if link.overdue() {
                break Ended::Lost("registration did not complete in time".into());
            }
            let wake = self.puppet_wake();
            let read = self.hub_answers.len() < MAX_HUB_PENDING;
            tokio::select! {
                _ = self.ctx.shutdown.changed() => {
                    // Every goodbye at once, each bounded by QUIT_WAIT.
                    tokio::join!(link.quit("gateway shutting down"), self.stop_puppets());
                    break Ended::Shutdown;
                }
                input = link.next(read) => match input {
                    Input::Lost(why) => break Ended::Lost(why),
                    Input::Tick => self.on_tick(&mut link.conn).await?,
                    Input::Read => {}
                },
                out = self.ctx.outbound.recv() => match out {
                    Some(out) => self.on_outbound(Some(&mut link.conn), out),
                    None => break Ended::Shutdown,
                },
                Some(answer) = self.hub_answers.next(), if !self.hub_answers.is_empty() => {
                    if let Ok(DeliveryOutcome::Failed(f)) = answer {
                        tracing::warn!(adapter = %self.ctx.name, "irc: the hub refused a message: {f}");
                    }
                }
                Some((id, r)) = next_report(&mut self.puppets) => {
                    self.on_report(id, r, Some(&link.conn.session));
                }
                _ = sleep_until_opt(wake) => self.puppet_tick(),
            }
        };
        self.rejoin.clear();
        let mut held = std::mem::take(&mut self.held);
        link.close("the connection to the IRC server was lost");
        // Held netsplit leaves are shown now: the gateway no longer sees
        // the channel, so it cannot tell whether they came back.
        for ev in held.drain().flat_map(|(_, (_, evs))| evs) {
            self.event_to_hub(ev).await?;
        }
        Ok(ended)
    }

    fn is_puppet(&self, nick: &str) -> bool {
        self.puppets
            .as_ref()
            .is_some_and(|p| p.puppets.is_puppet(nick))
    }

    /// Whether `ev` is something a puppet said or did: not for the hub.
    fn by_puppet(&self, ev: &Event) -> bool {
        match ev {
            Event::Message(p) => self.is_puppet(&p.from),
            Event::Join { nick, .. }
            | Event::Part { nick, .. }
            | Event::Kick { nick, .. }
            | Event::Quit { nick, .. } => self.is_puppet(nick),
            Event::Nick { old, new, .. } => self.is_puppet(old) || self.is_puppet(new),
            _ => false,
        }
    }

    /// Hand the session's events to the hub; `Some(reason)` when the
    /// connection must be given up.
    async fn take_events(&mut self, c: &mut Conn) -> Result<Option<String>, AdapterError> {
        while let Some(mut ev) = c.session.poll_event() {
            if self.by_puppet(&ev) {
                continue;
            }
            if let Event::Names { members, .. } = &mut ev {
                members.retain(|(n, _)| !self.is_puppet(n));
            }
            match &ev {
                Event::Registered { nick } => {
                    tracing::info!(adapter = %self.ctx.name, %nick, "irc: registered");
                    if let Some(p) = self.puppets.as_mut() {
                        p.puppets.set_isupport(c.session.isupport());
                    }
                    let channels: Vec<String> = self.relay.channels().map(str::to_owned).collect();
                    if self.puppets.is_none() {
                        let isupport = c.session.isupport();
                        self.own_nicks =
                            crate::proto::nick::tried_nicks(&self.cfg.nick, isupport.nicklen);
                        self.recover_since = self.recovery_marks(isupport, &channels).await;
                    }
                    for ch in channels {
                        c.session.join(&ch);
                    }
                    continue;
                }
                Event::Fatal(why) => return Ok(Some(why.clone())),
                Event::Message(p) => {
                    if p.echo {
                        c.on_echo(p);
                    } else {
                        self.on_privmsg(c, p).await?;
                    }
                    continue;
                }
                Event::Failed { .. } => {
                    c.on_failed(&ev);
                    continue;
                }
                Event::Kick { channel, nick, .. }
                    if c.session.isupport().same(nick, c.session.nick()) =>
                {
                    tracing::warn!(adapter = %self.ctx.name, %channel, "irc: kicked; rejoining in 5 s");
                    self.rejoin
                        .push((Instant::now() + Duration::from_secs(5), channel.clone()));
                }
                _ => {}
            }
            let me = c.session.nick().to_owned();
            let events = self.relay.room_events(&ev, &me, c.session.isupport());
            match &ev {
                Event::Quit {
                    nick,
                    netsplit: true,
                    ..
                } => {
                    let key = fold(c, nick);
                    let until = Instant::now() + Duration::from_secs(self.cfg.netsplit_hold_secs);
                    self.held.insert(key, (until, events));
                }
                Event::Join { nick, .. } if self.held.remove(&fold(c, nick)).is_some() => {
                    // Back from the split: the leave was never shown, so
                    // the join is not either.
                }
                _ => {
                    for e in events {
                        self.event_to_hub(e).await?;
                    }
                }
            }
        }
        Ok(None)
    }

    async fn event_to_hub(&mut self, e: RoomEvent) -> Result<(), AdapterError> {
        self.ctx
            .inbound
            .send(Inbound::RoomEvent(Box::new(e)))
            .await
            .map_err(|_| AdapterError::HubGone)
    }

    async fn message_to_hub(&mut self, message: Message) -> Result<(), AdapterError> {
        let (reply, answer) = oneshot::channel();
        self.ctx
            .inbound
            .send(Inbound::Message {
                message: Box::new(message),
                reply,
            })
            .await
            .map_err(|_| AdapterError::HubGone)?;
        self.hub_answers.push(answer);
        Ok(())
    }

    async fn on_privmsg(&mut self, c: &mut Conn, p: &Privmsg) -> Result<(), AdapterError> {
        let isupport = c.session.isupport().clone();
        if !p.notice
            && !p.history
            && let Some(reply) = crate::proto::text::ctcp_reply(&p.text)
        {
            // Modern IRC CTCP: queries are answered with a NOTICE, never
            // relayed to the other worlds.
            c.session.privmsg(&p.from, &reply, true, None);
            return Ok(());
        }
        if !isupport.is_channel(&p.target) {
            if !p.notice && !p.history {
                // The gateway has nobody to address a private message to.
                let text = "This is a gateway; private messages to it are not relayed. Talk in a bridged channel.";
                c.session.privmsg(&p.from, text, true, None);
            }
            return Ok(());
        }
        let message = if p.history {
            let Some(since) = self.recover_since.get(&cpimgate_mappings::casefold(
                isupport.casemapping,
                &p.target,
            )) else {
                return Ok(());
            };
            let own = |n: &str| self.own_nicks.iter().any(|c| isupport.same(c, n));
            let m = self.relay.recovered(p, &isupport, *since, own);
            if let Some(m) = &m {
                tracing::debug!(adapter = %self.ctx.name, channel = %p.target, id = %m.id, "irc: a message of the history replay, to the hub (dropped there if taken before)");
            }
            m
        } else {
            self.relay.inbound(p, &isupport)
        };
        let Some(message) = message else {
            return Ok(());
        };
        self.message_to_hub(message).await
    }

    /// Per channel (folded), the time from which its history replay is
    /// taken as possibly missed: that of the channel's newest message in
    /// the bridge's history, else of the bridge's newest message. A bridge
    /// without history (new, or `history.enabled = false`) gets none:
    /// nothing said before the bridge existed is replayed into it.
    fn recovery_marks(
        &self,
        isupport: &ISupport,
        channels: &[String],
    ) -> impl Future<Output = HashMap<String, Timestamp>> + Send + 'static {
        let rooms: Vec<(String, RoomRef)> = channels
            .iter()
            .filter_map(|ch| {
                let room = self.relay.room(isupport, ch)?;
                Some((cpimgate_mappings::casefold(isupport.casemapping, ch), room))
            })
            .collect();
        let history = self.ctx.history.clone();
        let adapter = self.ctx.name.clone();
        async move {
            let mut out = HashMap::new();
            for (key, room) in rooms {
                let query = HistoryQuery {
                    max_messages: RECOVERY_LOOKBACK,
                    since: None,
                };
                let recent = match tokio::time::timeout(HISTORY_WAIT, history.recent(&room, query))
                    .await
                {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) => {
                        tracing::warn!(%adapter, room = %room.address, "irc: no history to start recovery from: {e}");
                        continue;
                    }
                    Err(_) => {
                        tracing::warn!(%adapter, room = %room.address, "irc: the history did not come in time; no recovery");
                        continue;
                    }
                };
                let newest_here = recent
                    .iter()
                    .rev()
                    .find(|m| m.room.as_ref().is_some_and(|r| r.address == room.address));
                if let Some(t) = newest_here.or(recent.last()).and_then(|m| m.datetime) {
                    out.insert(key, t);
                }
            }
            out
        }
    }

    /// What the hub hands over; `c` is the gateway's connection when it is
    /// up.
    fn on_outbound(&mut self, c: Option<&mut Conn>, out: Outbound) {
        match out {
            Outbound::Deliver { message, reply } => {
                let isupport = isupport_of(&c);
                match self.puppets.as_mut() {
                    Some(p) => match self.relay.destination(&message, &isupport) {
                        Ok(target) => {
                            p.puppets.handle_deliver(
                                Instant::now().into_std(),
                                message,
                                reply,
                                target,
                            );
                        }
                        Err(f) => {
                            let _ = reply.send(DeliveryOutcome::Failed(f));
                        }
                    },
                    None => self.deliver(c, &message, reply),
                }
            }
            Outbound::RoomEvent(e) => {
                // Relay mode shows nothing of other worlds' joins and
                // leaves; puppet mode shows the people.
                let isupport = isupport_of(&c);
                if let Some(p) = self.puppets.as_mut()
                    && let Some(channel) = self.relay.channel_of(&e.room.address, &isupport)
                {
                    p.puppets
                        .handle_event(Instant::now().into_std(), &channel, &e.kind);
                }
            }
            Outbound::Report {
                message, outcome, ..
            } => {
                // Tell an IRC sender their message did not get through.
                if let DeliveryOutcome::Failed(f) = outcome
                    && let cpimgate_model::Address::Irc(a) = &message.from.address
                    && let Some(nick) = a.as_nick()
                    && let Some(c) = c
                    && c.session.is_registered()
                {
                    let text = format!("Your message could not be delivered: {f}");
                    c.session.privmsg(nick, &text, true, None);
                }
            }
            _ => {}
        }
    }

    /// Post `message` through the gateway's connection.
    fn deliver(&mut self, c: Option<&mut Conn>, message: &Message, reply: Reply) {
        let Some(c) = c.filter(|c| c.session.is_registered()) else {
            let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                FailureKind::Unreachable,
                "not registered on the IRC server yet",
            )));
            return;
        };
        let me = c.session.nick().to_owned();
        let lines = match self.relay.outbound(
            message,
            Poster::Gateway(&me),
            c.session.isupport(),
            c.user_len,
            c.host_len,
        ) {
            Ok(l) => l,
            Err(f) => {
                let _ = reply.send(DeliveryOutcome::Failed(f));
                return;
            }
        };
        c.queue_message(lines, reply);
    }

    fn drain_reports(&mut self, main: Option<&Session>) {
        let Some(p) = self.puppets.as_mut() else {
            return;
        };
        while let Ok((id, r)) = p.reports.try_recv() {
            p.report(id, shared_only(r, main));
        }
    }

    fn on_report(&mut self, id: ConnId, r: Report, main: Option<&Session>) {
        if let Some(p) = self.puppets.as_mut() {
            p.report(id, shared_only(r, main));
        }
    }

    fn puppet_tick(&mut self) {
        if let Some(p) = self.puppets.as_mut() {
            p.puppets.handle_timeout(Instant::now().into_std());
        }
    }

    fn puppet_wake(&mut self) -> Option<Instant> {
        let p = self.puppets.as_mut()?;
        p.puppets
            .poll_timeout(Instant::now().into_std())
            .map(Instant::from_std)
    }

    /// Carry out what the puppets want done; `c` is the gateway's
    /// connection when it is up.
    async fn puppet_actions(&mut self, mut c: Option<&mut Conn>) -> Result<(), AdapterError> {
        loop {
            let Some(host) = self.puppets.as_mut() else {
                return Ok(());
            };
            let Some(action) = host.puppets.poll_action() else {
                return Ok(());
            };
            match action {
                Action::Open { id, nick, realname } => host.spawn(id, nick, realname),
                Action::Command { id, cmd } => host.command(id, cmd),
                Action::Send {
                    id,
                    nick,
                    message,
                    reply,
                } => {
                    let isupport = isupport_of(&c);
                    let user_len = user_name(&self.cfg).len() + 1;
                    match self.relay.outbound(
                        &message,
                        Poster::Puppet(&nick),
                        &isupport,
                        user_len,
                        64,
                    ) {
                        Ok(lines) => host.command(id, Cmd::Send { lines, reply }),
                        Err(f) => {
                            let _ = reply.send(DeliveryOutcome::Failed(f));
                        }
                    }
                }
                Action::Relay { message, reply } => self.deliver(c.as_deref_mut(), &message, reply),
                Action::StoreNick { who, nick } => {
                    if let Err(e) = host
                        .mappings
                        .set_irc_nick(&self.cfg.network, &who, &nick)
                        .await
                    {
                        tracing::warn!(adapter = %self.ctx.name, user = %who, %nick, "irc: cannot keep the puppet's nick: {e}");
                    }
                }
                Action::Kicked {
                    who,
                    channel,
                    by,
                    reason,
                } => {
                    // An operator kicked a puppet: its user is removed from
                    // the bridged rooms too (a MUC kick, 307), as from the
                    // channel; a rejoin there rejoins the channel.
                    let isupport = isupport_of(&c);
                    if let Some(room) = self.relay.room(&isupport, &channel) {
                        let kind = RoomEventKind::Kick {
                            who,
                            by: Some(by),
                            reason,
                        };
                        self.event_to_hub(self.relay.event(room, kind)).await?;
                    }
                }
                Action::Private {
                    to,
                    channel,
                    message,
                } => {
                    let isupport = isupport_of(&c);
                    let room = channel.and_then(|ch| self.relay.room(&isupport, &ch));
                    if let Some(m) = self.relay.private_inbound(&message, to, room) {
                        self.message_to_hub(m).await?;
                    }
                }
            }
        }
    }

    /// Tell every puppet to QUIT.
    fn quit_puppets(&mut self) {
        if let Some(p) = self.puppets.as_mut() {
            let ids = p.puppets.shutdown(Instant::now().into_std());
            while let Some(action) = p.puppets.poll_action() {
                match action {
                    Action::Command { id, cmd } => p.command(id, cmd),
                    Action::Relay { reply, .. } | Action::Send { reply, .. } => {
                        let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                            FailureKind::Unreachable,
                            "the gateway is shutting down",
                        )));
                    }
                    _ => {}
                }
            }
            tracing::debug!(adapter = %self.ctx.name, "irc: closing {} puppets", ids.len());
        }
    }

    /// Wait (at most [`QUIT_WAIT`]) for the puppets' goodbyes.
    async fn stop_puppets(&mut self) {
        self.quit_puppets();
        let Some(p) = self.puppets.as_mut() else {
            return;
        };
        let handles: Vec<JoinHandle<()>> = p.conns.drain().map(|(_, (_, h))| h).collect();
        let all = futures::future::join_all(handles);
        if tokio::time::timeout(QUIT_WAIT, all).await.is_err() {
            tracing::warn!(adapter = %self.ctx.name, "irc: some puppets did not quit in time");
        }
    }

    async fn on_tick(&mut self, c: &mut Conn) -> Result<(), AdapterError> {
        let now = Instant::now();
        let due: Vec<String> = self
            .held
            .iter()
            .filter(|(_, (until, _))| *until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some((_, events)) = self.held.remove(&k) {
                for e in events {
                    self.event_to_hub(e).await?;
                }
            }
        }
        let (ready, later): (Vec<_>, Vec<_>) = self.rejoin.drain(..).partition(|(t, _)| *t <= now);
        self.rejoin = later;
        for (_, ch) in ready {
            c.session.join(&ch);
        }
        self.puppet_tick();
        Ok(())
    }
}

/// The server's ISUPPORT as the gateway's connection knows it; the
/// defaults while it is down.
fn isupport_of(c: &Option<&mut Conn>) -> ISupport {
    c.as_ref()
        .map(|c| c.session.isupport().clone())
        .unwrap_or_default()
}

fn fold(c: &Conn, nick: &str) -> String {
    cpimgate_mappings::casefold(c.session.isupport().casemapping, nick)
}

pub(crate) async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn user_name(cfg: &IrcConfig) -> String {
    cfg.username.clone().unwrap_or_else(|| cfg.nick.clone())
}

/// Who the gateway's connection registers as.
fn main_identity(cfg: &IrcConfig) -> Identity {
    let sasl = cfg.sasl.as_deref().map(|s| match s {
        SaslConfig::Plain { user, password } => Sasl::Plain {
            user: user.clone(),
            password: password.clone(),
        },
        SaslConfig::External { .. } => Sasl::External,
    });
    Identity {
        nick: cfg.nick.clone(),
        user: user_name(cfg),
        realname: cfg.realname.clone(),
        password: cfg.password.clone(),
        sasl,
    }
}

/// Who a puppet registers as: its nick, the gateway's user name, the
/// remote user's name as real name; no SASL (the account is the
/// gateway's).
pub(crate) fn puppet_identity(cfg: &IrcConfig, nick: &str, realname: &str) -> Identity {
    let realname: String = realname
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    Identity {
        nick: nick.to_owned(),
        user: user_name(cfg),
        realname: if realname.trim().is_empty() {
            cfg.realname.clone()
        } else {
            realname
        },
        password: cfg.password.clone(),
        sasl: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 0..40 {
            let d = backoff(attempt, Duration::from_secs(60));
            assert!(d >= BACKOFF_MIN / 2);
            assert!(d <= Duration::from_secs(60));
        }
    }

    #[test]
    fn a_private_message_to_a_puppet_names_the_channels_its_sender_is_in() {
        #![allow(clippy::unwrap_used)]
        let cfg: IrcConfig =
            toml::from_str("network = \"n\"\nserver = \"127.0.0.1:6667\"\nnick = \"gw\"").unwrap();
        let mut main = Session::new(main_identity(&cfg));
        let nick = main.nick().to_owned();
        for line in [
            format!(":irc.localhost 001 {nick} :Welcome"),
            format!(":irc.localhost 376 {nick} :End"),
            format!(":{nick}!u@h JOIN #a"),
            format!(":{nick}!u@h JOIN #b"),
            ":bob!b@h JOIN #a".to_owned(),
        ] {
            main.handle(crate::proto::IrcMessage::parse(line.as_bytes()).unwrap());
        }
        let private = || Report::Private {
            message: Box::new(Privmsg::plain("Bob", "Queen", "psst")),
            shared: vec!["#a".into(), "#b".into()],
        };
        let Report::Private { shared, .. } = shared_only(private(), Some(&main)) else {
            panic!("not a private message");
        };
        assert_eq!(shared, ["#a"]);
        // Offline, the puppet's channels stand.
        let Report::Private { shared, .. } = shared_only(private(), None) else {
            panic!("not a private message");
        };
        assert_eq!(shared, ["#a", "#b"]);
    }
}
