//! Keep-alives of the room's sessions (`keepalive_ms`): an empty SEND on
//! a connection that has been silent that long, which asks for a
//! response (no Failure-Report header: `yes`, RFC 4975 §7.1.1). No
//! response within `response_within_ms` (§7.1.1: 30 seconds) counts as a
//! 408 (§10.4: as a local timeout): the session has failed, it ends with
//! a BYE like one whose connection was lost (§5.4).
//!
//! The sessions are looked at on a tick, a quarter of the shorter of the
//! two times, rather than by a deadline each: a room of thousands would
//! otherwise weigh on every turn of the run loop.

use std::time::{Duration, Instant};

use super::{Driver, token};
use crate::participant;

impl Driver {
    /// How long a SEND that asks for a response waits for it (RFC 4975
    /// §7.1.1).
    pub(super) fn response_within(&self) -> Duration {
        Duration::from_millis(self.config.response_within_ms)
    }

    /// The tick, when keep-alives are on.
    pub(super) fn keepalive_tick(&self) -> Option<Duration> {
        if self.config.keepalive_ms == 0 {
            return None;
        }
        let shorter = self.config.keepalive_ms.min(self.config.response_within_ms);
        Some(Duration::from_millis((shorter / 4).max(10)))
    }

    pub(super) fn keepalive_timeout(&mut self, now: Instant) {
        if self.keepalive_at.is_none_or(|t| t > now) {
            return;
        }
        let Some(tick) = self.keepalive_tick() else {
            self.keepalive_at = None;
            return;
        };
        self.keepalive_at = Some(now + tick);
        let silent = Duration::from_millis(self.config.keepalive_ms);
        let within = self.response_within();
        let mut failed = Vec::new();
        let mut due = Vec::new();
        for (key, s) in &self.sessions {
            let Some(conn) = s.conn else {
                continue;
            };
            match &s.keepalive {
                Some((_, sent)) if now.duration_since(*sent) >= within => failed.push(key.clone()),
                Some(_) => {}
                None if now.duration_since(s.heard) >= silent => due.push((key.clone(), conn)),
                None => {}
            }
        }
        for session in failed {
            tracing::info!(adapter = %self.name, "MSRP session {session}: no response to a keep-alive in {within:?} (408): the session ends");
            self.end_session(&session, true);
        }
        for (session, conn) in due {
            let Some(s) = self.sessions.get_mut(&session) else {
                continue;
            };
            let Some(to) = s.remote_path.first() else {
                continue;
            };
            let tid = token();
            let Ok(send) = participant::bind_send(&tid, to, &s.own_path, &token()) else {
                continue;
            };
            s.keepalive = Some((tid, now));
            self.write(conn, send);
        }
    }
}
