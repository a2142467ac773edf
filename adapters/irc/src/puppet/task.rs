//! One puppet connection: a tokio task that connects, registers as the
//! puppet's nick, does what the driver tells it ([`Cmd`]) and reports
//! what happens to it ([`Report`]), until it is told to QUIT, the
//! gateway stops, or the connection is lost. It does not reconnect by
//! itself: [`super::Puppets`] decides when to open a new one.
//!
//! It reads the channels it is in only for itself (its JOIN, PART, KICK
//! and NICK, echoes of what it sent): the gateway's own connection relays
//! channel traffic. Private messages to it are reported.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::{Cmd, ConnId, Report};
use crate::config::IrcConfig;
use crate::driver::{Buffers, CONNECT_TIMEOUT, Conn, Input, Link, connect, puppet_identity};
use crate::proto::session::Event;

/// What a puppet task is started with.
pub(crate) struct PuppetSetup {
    /// The connection's id, in every report.
    pub id: ConnId,
    /// The adapter's config (server, TLS, pacing).
    pub cfg: Arc<IrcConfig>,
    /// The TLS connector, when the server is reached over TLS.
    pub tls: Option<tokio_rustls::TlsConnector>,
    /// The nick to register.
    pub nick: String,
    /// The remote user's name, as real name.
    pub realname: String,
    /// Commands from the driver.
    pub cmds: mpsc::Receiver<Cmd>,
    /// Reports to the driver.
    pub reports: mpsc::Sender<(ConnId, Report)>,
    /// The gateway's shutdown signal.
    pub shutdown: watch::Receiver<bool>,
}

/// Run one puppet connection to its end; the last report is
/// [`Report::Closed`].
pub(crate) async fn run(mut s: PuppetSetup) {
    let why = match tokio::time::timeout(CONNECT_TIMEOUT, connect(&s.cfg, s.tls.as_ref())).await {
        Ok(Ok(stream)) => {
            let mut conn = Conn::new(&s.cfg, puppet_identity(&s.cfg, &s.nick, &s.realname));
            // The members of its channels are the gateway connection's to
            // know (one roster per channel, not one per puppet).
            conn.session = conn.session.without_rosters();
            let mut link = Link::open(stream, conn, Buffers::PUPPET);
            let why = serve(&mut s, &mut link).await;
            link.close(&why);
            why
        }
        Ok(Err(e)) => format!("cannot connect: {e}"),
        Err(_) => "connecting timed out".into(),
    };
    let _ = s.reports.send((s.id, Report::Closed(why))).await;
}

async fn serve(s: &mut PuppetSetup, link: &mut Link) -> String {
    let mut channels: Vec<String> = Vec::new();
    loop {
        if let Err(e) = link.flush().await {
            return format!("write: {e}");
        }
        while let Some(ev) = link.conn.session.poll_event() {
            let report = match on_event(&mut link.conn, &mut channels, ev) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(why) => return why,
            };
            if s.reports.send((s.id, report)).await.is_err() {
                link.quit("gateway shutting down").await;
                return "the gateway stopped".into();
            }
        }
        if link.overdue() {
            return "registration did not complete in time".into();
        }
        tokio::select! {
            _ = s.shutdown.changed() => {
                link.quit("gateway shutting down").await;
                return "the gateway is shutting down".into();
            }
            input = link.next(true) => {
                if let Input::Lost(why) = input {
                    return why;
                }
            }
            cmd = s.cmds.recv() => {
                let session = &mut link.conn.session;
                match cmd {
                    Some(Cmd::Join(ch)) => session.join(&ch),
                    Some(Cmd::Part { channel, reason }) => session.part(&channel, &reason),
                    Some(Cmd::Nick(n)) => session.change_nick(&n),
                    Some(Cmd::Send { lines, reply }) => link.conn.queue_message(lines, reply),
                    Some(Cmd::Quit(reason)) => {
                        link.quit(&reason).await;
                        return format!("quit: {reason}");
                    }
                    None => {
                        link.quit("gateway shutting down").await;
                        return "the gateway stopped".into();
                    }
                }
            }
        }
    }
}

/// The report for one event of the puppet's session, if any; `Err` when
/// the connection must be given up.
fn on_event(
    conn: &mut Conn,
    channels: &mut Vec<String>,
    ev: Event,
) -> Result<Option<Report>, String> {
    let session = &conn.session;
    let me = |n: &str| session.isupport().same(n, session.nick());
    Ok(match ev {
        Event::Registered { nick } => Some(Report::Registered {
            nick,
            isupport: Box::new(session.isupport().clone()),
        }),
        Event::Fatal(why) => return Err(why),
        Event::Join { channel, nick, .. } if me(&nick) => {
            channels.push(channel.clone());
            Some(Report::Joined(channel))
        }
        Event::Part { channel, nick, .. } if me(&nick) => {
            channels.retain(|c| !session.isupport().same(c, &channel));
            Some(Report::Left {
                channel,
                kicked: None,
            })
        }
        Event::Kick {
            channel,
            nick,
            by,
            reason,
        } if me(&nick) => {
            channels.retain(|c| !session.isupport().same(c, &channel));
            Some(Report::Left {
                channel,
                kicked: Some((by, reason)),
            })
        }
        // The session already took the new nick as ours.
        Event::Nick { new, .. } if me(&new) => Some(Report::NickChanged(new)),
        Event::Failed {
            code,
            target: Some(t),
            ..
        } if matches!(code.as_str(), "432" | "433" | "436" | "437") => Some(Report::NickRefused(t)),
        // The errors of JOIN (Modern IRC): too many channels, full,
        // invite-only, banned, bad key, registered users only, TLS only.
        Event::Failed {
            code,
            target: Some(channel),
            text,
            ..
        } if matches!(
            code.as_str(),
            "405" | "471" | "473" | "474" | "475" | "477" | "489"
        ) =>
        {
            Some(Report::JoinRefused {
                channel,
                why: format!("{code} {text}"),
            })
        }
        ev @ Event::Failed { .. } => {
            conn.on_failed(&ev);
            None
        }
        Event::Message(p) if p.echo => {
            conn.on_echo(&p);
            None
        }
        Event::Message(p)
            if !p.notice && !p.history && crate::proto::text::ctcp_reply(&p.text).is_some() =>
        {
            // A CTCP query to the puppet (or its channel) is answered, not
            // passed on to the person it stands for.
            if let Some(reply) = crate::proto::text::ctcp_reply(&p.text) {
                conn.session.privmsg(&p.from, &reply, true, None);
            }
            None
        }
        // The channels it is in: the driver keeps those the sender is in
        // too (by the gateway connection's rosters).
        Event::Message(p) if !p.notice && !p.history && me(&p.target) => Some(Report::Private {
            message: p,
            shared: channels.clone(),
        }),
        _ => None,
    })
}
