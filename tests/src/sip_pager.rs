//! A SIP pager-mode client (RFC 3428) on UDP for load and fault tests:
//! one MESSAGE at a time, retransmitted like an RFC 3261 non-INVITE client
//! transaction (Timer E from T1 = 500 ms, doubling, capped at T2 = 4 s)
//! until a final response or the caller's deadline. sipp does the same
//! but reports counts only; a fault test needs to know *which* messages
//! got their 202.
//!
//! Each MESSAGE has a fresh Call-ID, From tag and branch; a response is
//! matched to it by the branch of its top Via, so late answers to an
//! earlier MESSAGE are skipped.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::HarnessError;

/// T1 of RFC 3261 §17.1.2.2.
const T1: Duration = Duration::from_millis(500);
/// T2 of RFC 3261 §17.1.2.2.
const T2: Duration = Duration::from_secs(4);

/// One UDP socket sending MESSAGEs to one server.
#[derive(Debug)]
pub struct SipPager {
    sock: UdpSocket,
    server: SocketAddr,
    user: String,
    n: u64,
}

impl SipPager {
    /// A pager for `sip:<user>@127.0.0.1:<port>` sending to `server`.
    pub async fn bind(server: SocketAddr, user: &str) -> Result<SipPager, HarnessError> {
        let sock = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::io("binding a UDP socket", e))?;
        Ok(SipPager {
            sock,
            server,
            user: user.to_owned(),
            n: 0,
        })
    }

    /// Send `text` (text/plain) to `uri`, retransmitting until a final
    /// response or until `within` has passed: the final status, or `None`
    /// when there was none in time.
    pub async fn message(
        &mut self,
        uri: &str,
        text: &str,
        within: Duration,
    ) -> Result<Option<u16>, HarnessError> {
        self.n += 1;
        let n = self.n;
        let local = self
            .sock
            .local_addr()
            .map_err(|e| HarnessError::io("reading the local address", e))?;
        let user = &self.user;
        let branch = format!("z9hG4bK{user}{n}x{}", local.port());
        let request = format!(
            "MESSAGE {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{local}>;tag={user}{n}\r\n\
             To: <{uri}>\r\n\
             Call-ID: {user}-{n}-{}@127.0.0.1\r\n\
             CSeq: 1 MESSAGE\r\n\
             Content-Type: text/plain\r\n\
             Content-Length: {}\r\n\r\n{text}",
            local.port(),
            text.len()
        );
        let deadline = Instant::now() + within;
        let mut interval = T1;
        let mut buf = vec![0; 65_536];
        loop {
            // A refused send (the server's port is closed: ICMP) is a lost
            // datagram, as on a real network; the timer sends it again.
            let _ = self.sock.send_to(request.as_bytes(), self.server).await;
            let resend = (Instant::now() + interval).min(deadline);
            interval = (interval * 2).min(T2);
            loop {
                match tokio::time::timeout_at(resend, self.sock.recv_from(&mut buf)).await {
                    Err(_) => break,
                    // ICMP port unreachable shows as an error on Linux.
                    Ok(Err(_)) => {}
                    Ok(Ok((len, _))) => {
                        let answer = String::from_utf8_lossy(&buf[..len]);
                        if !answer.contains(&format!("branch={branch}")) {
                            continue;
                        }
                        let status: u16 = answer
                            .get(8..11)
                            .and_then(|s| s.parse().ok())
                            .unwrap_or_default();
                        if status >= 200 {
                            return Ok(Some(status));
                        }
                    }
                }
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }
}
