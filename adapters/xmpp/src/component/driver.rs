//! The tokio driver of component mode: owns the XEP-0114 connection, the
//! reconnect timer and the only reference to the [`Core`].
//!
//! tokio-xmpp's `Component` logs in once and ends its stream when the
//! connection drops; reconnecting is ours. A failed attempt or a lost
//! connection waits `base * 2^n` (capped) with full jitter before the next
//! try, so many gateways restarting together do not hammer the server in
//! step. The hub is told `Connected` / `Disconnected`, which pauses its
//! deliveries to this adapter while the link is down.
//!
//! Nothing here blocks the stream loop on the hub: messages handed to the
//! hub are answered later through a `FuturesUnordered` of reply channels;
//! history asked for by a join (XEP-0045 §7.2.15) is fetched the same way
//! and fed back with [`Core::handle_history`]; a 1:1 delivery that waits
//! for its XEP-0184 receipt keeps its reply channel here, by token, until
//! the core gives its [`Output::Answer`]. The core's receipt deadlines
//! are the one timer besides the reconnect.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cpimgate_mappings::{MappingStore, NickScope};
use cpimgate_model::port::{
    AdapterContext, AdapterError, AdapterStatus, DeliveryOutcome, Failure, FailureKind, History,
    Inbound, Outbound, Reply,
};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, MessageId};
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_xmpp::Component;
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::xmlstream::Timeouts;

use super::core::{Core, Delivery, Output};
use crate::config::ComponentConfig;

type Conn = Component<NoDelayConnector>;

/// Plain TCP to the server's component port, as tokio-xmpp's
/// `TcpServerConnector`, with Nagle off: a stanza goes out at once instead
/// of waiting for the previous one's ACK (the client-mode benchmark showed
/// Nagle in the added p99 latency).
#[derive(Debug, Clone)]
struct NoDelayConnector(DnsConfig);

impl tokio_xmpp::connect::ServerConnector for NoDelayConnector {
    type Stream = tokio::io::BufStream<tokio::net::TcpStream>;

    async fn connect(
        &self,
        jid: &tokio_xmpp::jid::Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<
        (
            tokio_xmpp::xmlstream::PendingFeaturesRecv<Self::Stream>,
            sasl::common::ChannelBinding,
        ),
        tokio_xmpp::Error,
    > {
        let tcp = self.0.resolve().await?;
        tcp.set_nodelay(true)?;
        let header = tokio_xmpp::xmlstream::StreamHeader {
            to: Some(std::borrow::Cow::Borrowed(jid.domain().as_str())),
            from: None,
            id: None,
        };
        let pending = tokio_xmpp::xmlstream::initiate_stream(
            tokio::io::BufStream::new(tcp),
            ns,
            header,
            timeouts,
        )
        .await?;
        Ok((pending, sasl::common::ChannelBinding::None))
    }
}
type Connecting = Pin<Box<dyn Future<Output = Result<Conn, tokio_xmpp::Error>> + Send>>;
type Answer = Pin<Box<dyn Future<Output = (MessageId, DeliveryOutcome)> + Send>>;
type Fetch = Pin<Box<dyn Future<Output = (u64, Result<Vec<Message>, Failure>)> + Send>>;

/// How long a join waits for its history before it goes on without.
const HISTORY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the loop waits on besides the connection and the hub.
#[derive(Default)]
struct Waiting {
    /// The hub's answers to messages handed in.
    answers: FuturesUnordered<Answer>,
    /// History fetches for joins.
    fetches: FuturesUnordered<Fetch>,
    /// Reply channels of deliveries waiting for a receipt, by token.
    replies: HashMap<u64, Reply>,
}

/// First wait after a failure.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Longest wait between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long the goodbye may take at shutdown.
const GOODBYE: Duration = Duration::from_secs(3);

/// Exponential backoff with full jitter.
#[derive(Debug, Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let cap = BACKOFF_BASE
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(BACKOFF_MAX);
        self.attempt = self.attempt.saturating_add(1);
        // Never less than the base, so a flapping server is not spun on.
        BACKOFF_BASE + cap.mul_f64(rand::random::<f64>())
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

fn split_server(server: &str) -> Result<(String, u16), AdapterError> {
    let (host, port) = server
        .rsplit_once(':')
        .ok_or_else(|| AdapterError::Config(format!("server {server:?}: expected host:port")))?;
    let port = port
        .parse()
        .map_err(|_| AdapterError::Config(format!("server {server:?}: bad port")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_owned(), port))
}

fn connect(domain: &str, secret: &str, host: &str, port: u16) -> Connecting {
    let (domain, secret, host) = (domain.to_owned(), secret.to_owned(), host.to_owned());
    Box::pin(async move {
        Component::new_with_connector(
            &domain,
            &secret,
            NoDelayConnector(DnsConfig::no_srv(&host, port)),
            Timeouts::tight(),
        )
        .await
    })
}

async fn next_stanza(conn: &mut Option<Conn>) -> Option<tokio_xmpp::Stanza> {
    match conn {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

async fn connecting(c: &mut Option<Connecting>) -> Result<Conn, tokio_xmpp::Error> {
    match c {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Run component mode until shutdown.
pub async fn run(
    config: ComponentConfig,
    mappings: MappingStore,
    mut ctx: AdapterContext,
) -> Result<(), AdapterError> {
    let (host, port) = split_server(&config.server)?;
    let receipt_wait = config.receipt_wait().map_err(AdapterError::Config)?;
    let mut core = Core::new(&config.domain, &ctx.name, config.max_body, mappings.clone())
        .map_err(AdapterError::Config)?
        .with_history_on_join(config.history_on_join)
        .with_receipt_wait(receipt_wait);
    let history = ctx.history.clone();
    let mut conn: Option<Conn> = None;
    let mut pending_connect: Option<Connecting> =
        Some(connect(&config.domain, &config.secret, &host, port));
    let mut retry_at: Option<Instant> = None;
    let mut backoff = Backoff::default();
    let mut w = Waiting::default();

    loop {
        let mut lost = false;
        tokio::select! {
            _ = ctx.shutdown.changed() => {
                core.handle_shutdown();
                // The goodbye: unavailable presences, then the stream's end.
                let _ = tokio::time::timeout(GOODBYE, async {
                    flush(&mut core, &mut conn, &ctx, &mappings, &history, &mut w).await;
                    if let Some(c) = conn.as_mut() {
                        let _ = c.send_end().await;
                    }
                })
                .await;
                return Ok(());
            }
            r = connecting(&mut pending_connect) => {
                pending_connect = None;
                match r {
                    Ok(c) => {
                        tracing::info!(adapter = %ctx.name, domain = %config.domain, "component connected");
                        backoff.reset();
                        conn = Some(c);
                        status(&ctx, AdapterStatus::Connected).await?;
                    }
                    Err(e) => {
                        let wait = backoff.next();
                        tracing::warn!(adapter = %ctx.name, server = %config.server, "component connection failed: {e}; retrying in {wait:?}");
                        retry_at = Some(Instant::now() + wait);
                    }
                }
            }
            _ = sleep_until(retry_at) => {
                retry_at = None;
                pending_connect = Some(connect(&config.domain, &config.secret, &host, port));
            }
            s = next_stanza(&mut conn) => match s {
                Some(stanza) => core.handle_stanza(stanza, Timestamp::now()),
                None => lost = true,
            },
            out = ctx.outbound.recv() => match out {
                Some(Outbound::Deliver { message, reply }) => {
                    let broke = || DeliveryOutcome::Failed(Failure::new(FailureKind::Unreachable, "the XMPP connection broke"));
                    if conn.is_none() {
                        let _ = reply.send(DeliveryOutcome::Failed(Failure::new(FailureKind::Unreachable, "the XMPP server is not connected")));
                    } else {
                        match core.handle_deliver(&message, Instant::now().into_std()) {
                            Ok(Delivery::Sent) => {
                                lost = !flush(&mut core, &mut conn, &ctx, &mappings, &history, &mut w).await;
                                // The server has it; only a receipt would say more.
                                let _ = reply.send(if lost { broke() } else { DeliveryOutcome::Accepted });
                            }
                            Ok(Delivery::AwaitingReceipt(token)) => {
                                w.replies.insert(token, reply);
                                lost = !flush(&mut core, &mut conn, &ctx, &mappings, &history, &mut w).await;
                                if lost && let Some(reply) = w.replies.remove(&token) {
                                    let _ = reply.send(broke());
                                }
                            }
                            Err(f) => {
                                let _ = reply.send(DeliveryOutcome::Failed(f));
                            }
                        }
                    }
                }
                Some(Outbound::RoomEvent(e)) => core.handle_room_event(&e),
                Some(Outbound::Report { message, outcome, .. }) => core.handle_report(&message, &outcome),
                Some(_) => {}
                None => return Err(AdapterError::HubGone),
            },
            Some((id, outcome)) = w.answers.next(), if !w.answers.is_empty() => {
                core.handle_hub_answer(&id, outcome);
            }
            Some((token, result)) = w.fetches.next(), if !w.fetches.is_empty() => {
                core.handle_history(token, result, Timestamp::now());
            }
            _ = sleep_until(core.poll_timeout().map(Instant::from_std)) => {
                core.handle_timeout(Instant::now().into_std());
            }
        }
        if !lost {
            lost = !flush(&mut core, &mut conn, &ctx, &mappings, &history, &mut w).await;
        }
        if lost {
            tracing::warn!(adapter = %ctx.name, "component connection lost");
            conn = None;
            core.handle_disconnect();
            flush(&mut core, &mut conn, &ctx, &mappings, &history, &mut w).await;
            status(&ctx, AdapterStatus::Disconnected).await?;
            retry_at = Some(Instant::now() + backoff.next());
        }
    }
}

async fn status(ctx: &AdapterContext, s: AdapterStatus) -> Result<(), AdapterError> {
    ctx.inbound
        .send(Inbound::Status(s))
        .await
        .map_err(|_| AdapterError::HubGone)
}

/// Drain the core's outputs. Returns `false` when sending on the
/// connection failed (the connection is then lost).
async fn flush<D: super::core::Directory>(
    core: &mut Core<D>,
    conn: &mut Option<Conn>,
    ctx: &AdapterContext,
    mappings: &MappingStore,
    history: &Arc<dyn History>,
    w: &mut Waiting,
) -> bool {
    let mut ok = true;
    while let Some(o) = core.poll_output() {
        match o {
            Output::Transmit(s) => match conn.as_mut() {
                Some(c) if ok => {
                    if let Err(e) = c.send(*s).await {
                        tracing::warn!(adapter = %ctx.name, "sending a stanza failed: {e}");
                        ok = false;
                    }
                }
                _ => tracing::debug!(adapter = %ctx.name, "not connected; stanza dropped"),
            },
            Output::ToHub(message) => {
                let id = message.id.clone();
                let (tx, rx) = oneshot::channel();
                if ctx
                    .inbound
                    .send(Inbound::Message { message, reply: tx })
                    .await
                    .is_err()
                {
                    tracing::warn!(adapter = %ctx.name, "the hub is gone");
                    continue;
                }
                w.answers.push(Box::pin(async move {
                    let outcome = rx.await.unwrap_or_else(|_| {
                        DeliveryOutcome::Failed(Failure::new(
                            FailureKind::Internal,
                            "the hub dropped the message",
                        ))
                    });
                    (id, outcome)
                }));
            }
            Output::FetchHistory { token, room, query } => {
                let fetch = history.recent(&room, query);
                w.fetches.push(Box::pin(async move {
                    let result = tokio::time::timeout(HISTORY_TIMEOUT, fetch)
                        .await
                        .unwrap_or_else(|_| {
                            Err(Failure::new(
                                FailureKind::Timeout,
                                "the history did not come in time",
                            ))
                        });
                    (token, result)
                }));
            }
            Output::Answer { token, outcome } => {
                if let Some(reply) = w.replies.remove(&token) {
                    let _ = reply.send(outcome);
                }
            }
            Output::Event(e) => {
                let _ = ctx.inbound.send(Inbound::RoomEvent(e)).await;
            }
            Output::Reserve {
                bridge,
                nick,
                owner,
            } => {
                if let Err(e) = mappings
                    .reserve_nick(&NickScope::Bridge(bridge), &nick, &owner)
                    .await
                {
                    tracing::warn!(adapter = %ctx.name, %nick, %owner, "nickname reservation failed: {e}");
                }
            }
            Output::Release {
                bridge,
                nick,
                owner,
            } => {
                if let Err(e) = mappings
                    .release_nick(&NickScope::Bridge(bridge), &nick, &owner)
                    .await
                {
                    tracing::warn!(adapter = %ctx.name, %nick, "releasing a nickname failed: {e}");
                }
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::default();
        for _ in 0..40 {
            let d = b.next();
            assert!(d >= BACKOFF_BASE && d <= BACKOFF_BASE + BACKOFF_MAX);
        }
        b.reset();
        assert!(b.next() <= BACKOFF_BASE * 2);
    }

    #[test]
    fn server_is_host_and_port() {
        assert!(matches!(split_server("127.0.0.1:5347"), Ok((h, 5347)) if h == "127.0.0.1"));
        assert!(matches!(split_server("[::1]:5347"), Ok((h, 5347)) if h == "::1"));
        assert!(split_server("localhost").is_err());
        assert!(split_server("localhost:x").is_err());
    }
}
