//! A small MSRP chat client for the end-to-end tests: a SIP user agent on
//! UDP that joins a room with INVITE (an SDP offer made by
//! `cpimgate_msrp::sdp`), then an MSRP session over TCP written and read
//! with `cpimgate_msrp::codec` (RFC 4975, RFC 7701). It plays a human
//! participant: sends room and private messages, reserves nicknames,
//! and collects what the room sends it (answering each SEND with 200).
//!
//! It is deliberately plain: one request at a time, no retransmissions
//! (loopback UDP does not lose datagrams). MSRP goes over TLS when
//! [`JoinOptions::tls_ca`] names the CA of the focus's certificate. For a
//! benchmark's sender, [`MsrpUa::post`] writes a SEND without waiting for
//! its response and [`MsrpUa::statuses`] collects the responses later.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cpimgate_model::address::{Address, NameAddr};
use cpimgate_model::cpim::{Cpim, CpimBuilder, Limits as CpimLimits};
use cpimgate_msrp::codec::{
    self, Chunker, Limits, MsrpUri, OwnedMessage, Reassembler, ReassemblyEvent, ReassemblyLimits,
    StreamFramer,
};
use cpimgate_msrp::sdp::{self, Local};
use cpimgate_sip::codec::{self as sip, OwnedMessage as SipMessage};
use cpimgate_sip::digest::{DigestClient, DigestRequest};
use cpimgate_sip::transport::{TlsConfig, client_config};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::HarnessError;

/// How long a request waits for its answer.
pub const WAIT: Duration = Duration::from_secs(10);

/// What the participant's SDP says it supports (RFC 7701 §8), and how
/// it connects.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// `a=chatroom: private-messages`.
    pub private_messages: bool,
    /// `a=chatroom: nickname`.
    pub nicknames: bool,
    /// MSRP over TLS (`TCP/TLS/MSRP`, `msrps:`), the focus's certificate
    /// checked against this CA (PEM).
    pub tls_ca: Option<std::path::PathBuf>,
    /// Whether it connects to the MSRP path after the INVITE (a
    /// participant that never does tests the focus's timeout).
    pub connect: bool,
    /// The user and password to answer the focus's digest challenge with.
    pub credentials: Option<(String, String)>,
    /// `a=max-size`: the largest message it takes (RFC 4975 §8.6).
    pub max_size: Option<u64>,
}

impl Default for JoinOptions {
    fn default() -> Self {
        JoinOptions {
            private_messages: true,
            nicknames: true,
            tls_ca: None,
            connect: true,
            credentials: None,
            max_size: None,
        }
    }
}

/// The MSRP connection, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Stream for T {}

/// A message the room sent to this participant.
#[derive(Debug, Clone)]
pub struct Received {
    /// The CPIM From.
    pub from: NameAddr,
    /// The CPIM To.
    pub to: Vec<NameAddr>,
    /// The encapsulated body, as text.
    pub text: String,
    /// The whole message/cpim body.
    pub cpim: Bytes,
}

/// One participant; see the [module docs](self).
#[derive(Debug)]
pub struct MsrpUa {
    aor: String,
    room: String,
    sip: UdpSocket,
    focus: SocketAddr,
    call_id: String,
    from_tag: String,
    to_tag: String,
    cseq: u32,
    /// The MSRP connection (none when [`JoinOptions::connect`] is off).
    stream: Option<Box<dyn Stream>>,
    framer: StreamFramer,
    reassembler: Reassembler,
    own_path: String,
    focus_path: String,
    received: VecDeque<Received>,
    /// The Message-IDs of the messages the room aborted (a chunk with
    /// `#`, RFC 4975 §7.1) after sending some of them.
    aborted: VecDeque<String>,
    /// Responses to this side's requests, by transaction id.
    responses: VecDeque<(String, u16)>,
    /// The REPORTs the room sent: Message-ID, Byte-Range and Status.
    reports: VecDeque<(String, String, String)>,
    next: u64,
    /// The bodies of the NOTIFYs of the room's conference events.
    notifies: VecDeque<String>,
    /// The SDP offer of the INVITE that joined (a re-INVITE sends it again).
    offer: Vec<u8>,
    /// The read buffer, kept between reads.
    buf: Vec<u8>,
    /// Responses to the room's SENDs, written once a read is handled.
    answers: Vec<u8>,
}

/// Bytes asked of the connection per read.
const READ_BUF: usize = 16 * 1024;

fn err(what: impl Into<String>) -> HarnessError {
    HarnessError::Msrp(what.into())
}

fn token() -> String {
    format!("{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default(),
    );
    h.finish()
}

/// The SIP request line and the headers every request of the call has.
fn sip_request(
    method: &str,
    uri: &str,
    local: SocketAddr,
    ids: (&str, &str, &str, &str, u32),
) -> Result<SipMessage, HarnessError> {
    let (aor, room, call_id, from_tag, cseq) = ids;
    let build = || -> Result<SipMessage, sip::BuildError> {
        let mut r = SipMessage::request(method, uri)?;
        r.push_header(
            "Via",
            &format!("SIP/2.0/UDP {local};branch=z9hG4bK{};rport", token()),
        )?;
        r.push_header("Max-Forwards", "70")?;
        r.push_header("From", &format!("<{aor}>;tag={from_tag}"))?;
        r.push_header("To", &format!("<{room}>"))?;
        r.push_header("Call-ID", call_id)?;
        r.push_header("CSeq", &format!("{cseq} {method}"))?;
        Ok(r)
    };
    build().map_err(|e| err(format!("writing {method}: {e}")))
}

/// What an INVITE got: the final status, and the 200 itself.
async fn final_response(sip: &UdpSocket, cseq: u32) -> Result<(u16, Vec<u8>), HarnessError> {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = tokio::time::timeout(WAIT, sip.recv(&mut buf))
            .await
            .map_err(|_| err("no final response to the INVITE"))?
            .map_err(|e| HarnessError::io("reading SIP", e))?;
        let bytes = buf.get(..n).unwrap_or_default().to_vec();
        let Ok(m) = sip::parse(&bytes) else {
            continue;
        };
        // A retransmission of an earlier request's response is not this one's.
        let this = m.cseq().ok().flatten().is_some_and(|c| c.seq == cseq);
        match m.status() {
            Some(s) if s >= 200 && this => return Ok((s, bytes)),
            _ => continue,
        }
    }
}

impl MsrpUa {
    /// Joins `room` (a SIP URI) at the focus `focus` (its SIP address) as
    /// `aor`: INVITE with an MSRP offer, ACK, then the MSRP connection to
    /// the path of the answer, bound by an empty SEND (RFC 4975 §5.4).
    pub async fn join(
        focus: SocketAddr,
        room: &str,
        aor: &str,
        options: JoinOptions,
    ) -> Result<MsrpUa, HarnessError> {
        match Self::invite(focus, room, aor, options).await? {
            Ok(ua) => Ok(ua),
            Err(status) => Err(err(format!("{aor} joining {room}: INVITE got {status}"))),
        }
    }

    /// The INVITE of [`MsrpUa::join`]: the participant, or the status of
    /// a refusal.
    pub async fn invite(
        focus: SocketAddr,
        room: &str,
        aor: &str,
        options: JoinOptions,
    ) -> Result<Result<MsrpUa, u16>, HarnessError> {
        let sip = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::io("binding the UA's SIP socket", e))?;
        let local = sip
            .local_addr()
            .map_err(|e| HarnessError::io("the UA's SIP address", e))?;
        let secure = options.tls_ca.is_some();
        let scheme = if secure { "msrps" } else { "msrp" };
        let own_path = format!("{scheme}://127.0.0.1:9/{};tcp", token());
        let mut tokens = Vec::new();
        if options.nicknames {
            tokens.push("nickname".to_owned());
        }
        if options.private_messages {
            tokens.push("private-messages".to_owned());
        }
        let offer = sdp::offer(&Local {
            host: "127.0.0.1".into(),
            port: 9,
            secure,
            path: own_path.clone(),
            accept_types: vec!["message/cpim".into(), "text/plain".into()],
            accept_wrapped_types: vec!["text/plain".into(), "*".into()],
            max_size: options.max_size,
            chatroom: Some(tokens),
            session_id: 1,
        });
        let (call_id, from_tag) = (format!("{}@127.0.0.1", token()), token());
        let user = aor
            .split_once(':')
            .and_then(|(_, r)| r.split('@').next())
            .unwrap_or("ua");
        let mut cseq = 1;
        let mut authorization = None;
        let (status, ok, to_tag) = loop {
            let mut invite = sip_request(
                "INVITE",
                room,
                local,
                (aor, room, &call_id, &from_tag, cseq),
            )?;
            let mut headers = vec![
                ("Contact", format!("<sip:{user}@{local}>")),
                ("Content-Type", "application/sdp".to_owned()),
            ];
            if let Some(a) = authorization.take() {
                headers.push(("Authorization", a));
            }
            for (n, v) in headers {
                invite
                    .push_header(n, &v)
                    .map_err(|e| err(format!("writing INVITE: {e}")))?;
            }
            invite.set_body(offer.clone());
            sip.send_to(&invite.to_bytes(), focus)
                .await
                .map_err(|e| HarnessError::io("sending INVITE", e))?;
            let (status, bytes) = final_response(&sip, cseq).await?;
            let ok = sip::parse(&bytes)
                .map_err(|e| err(format!("the INVITE's response: {e}")))?
                .to_owned_message();
            let to_tag = ok
                .get("To")
                .and_then(|t| sip::NameAddrRef::parse(t).ok().and_then(|a| a.tag()))
                .unwrap_or_default()
                .to_owned();
            // RFC 3261 §17.1.1.3: the ACK of a non-2xx is the INVITE's
            // transaction's (its Via, its branch); §13.2.2.4: that of a
            // 2xx is a request of its own.
            let mut ack = sip_request("ACK", room, local, (aor, room, &call_id, &from_tag, cseq))?;
            if status != 200 {
                ack.remove_header("Via");
                ack.push_header("Via", invite.get("Via").unwrap_or_default())
                    .map_err(|e| err(format!("writing ACK: {e}")))?;
            }
            ack.remove_header("To");
            ack.push_header("To", &format!("<{room}>;tag={to_tag}"))
                .map_err(|e| err(format!("writing ACK: {e}")))?;
            sip.send_to(&ack.to_bytes(), focus)
                .await
                .map_err(|e| HarnessError::io("sending ACK", e))?;
            // RFC 3261 §22.2: a 401 is answered once with the credentials.
            if status == 401 && cseq == 1 {
                if let Some((name, password)) = &options.credentials {
                    let bytes = ok.to_bytes();
                    let parsed = sip::parse(&bytes).map_err(|e| err(e.to_string()))?;
                    let challenge =
                        DigestClient::choose_header_values(parsed.www_authenticate())
                            .ok_or_else(|| err("a 401 without a challenge we can answer"))?;
                    let request = DigestRequest {
                        method: "INVITE",
                        uri: room,
                        body: offer.as_slice(),
                    };
                    let answer = DigestClient::new(name.clone(), password.clone())
                        .authorize(&challenge, &request, &mut || token())
                        .map_err(|e| err(e.to_string()))?;
                    authorization = Some(answer.to_header_value().map_err(|e| err(e.to_string()))?);
                    cseq += 1;
                    continue;
                }
            }
            break (status, ok, to_tag);
        };
        if status != 200 {
            return Ok(Err(status));
        }
        let ok_bytes = ok.to_bytes();
        let ok = sip::parse(&ok_bytes).map_err(|e| err(e.to_string()))?;
        let answer = sdp::parse(ok.body()).map_err(|e| err(format!("the SDP answer: {e}")))?;
        let focus_path = answer
            .msrp
            .first()
            .and_then(|m| m.path.last())
            .cloned()
            .ok_or_else(|| err("the SDP answer has no MSRP path"))?;
        let uri = MsrpUri::parse(&focus_path).map_err(|e| err(format!("{focus_path}: {e}")))?;
        let addr = format!("{}:{}", uri.host(), uri.port().unwrap_or(2855));
        if !options.connect {
            return Ok(Ok(MsrpUa {
                aor: aor.to_owned(),
                room: room.to_owned(),
                sip,
                focus,
                call_id,
                from_tag,
                to_tag,
                cseq: 1,
                stream: None,
                buf: vec![0u8; READ_BUF],
                answers: Vec::new(),
                framer: StreamFramer::new(Limits::default()),
                reassembler: Reassembler::new(ReassemblyLimits::default()),
                own_path,
                focus_path,
                received: VecDeque::new(),
                aborted: VecDeque::new(),
                responses: VecDeque::new(),
                reports: VecDeque::new(),
                next: 0,
                notifies: VecDeque::new(),
                offer: offer.clone(),
            }));
        }
        let tcp = TcpStream::connect(&addr)
            .await
            .map_err(|e| HarnessError::io(format!("connecting to the MSRP path {addr}"), e))?;
        let stream: Box<dyn Stream> = match &options.tls_ca {
            None => Box::new(tcp),
            Some(ca) => {
                let config = client_config(&TlsConfig {
                    cert_chain: None,
                    private_key: None,
                    ca_file: Some(ca.clone()),
                    use_system_roots: false,
                    require_client_cert: false,
                })
                .map_err(|e| err(format!("TLS client: {e}")))?;
                let name = ServerName::try_from(uri.host().to_owned())
                    .map_err(|e| err(format!("{}: {e}", uri.host())))?;
                let tls = TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| HarnessError::io(format!("TLS with the MSRP path {addr}"), e))?;
                Box::new(tls)
            }
        };
        let mut ua = MsrpUa {
            aor: aor.to_owned(),
            room: room.to_owned(),
            sip,
            focus,
            call_id,
            from_tag,
            to_tag,
            cseq: 1,
            stream: Some(stream),
            framer: StreamFramer::new(Limits::default()),
            reassembler: Reassembler::new(ReassemblyLimits::default()),
            own_path,
            focus_path,
            received: VecDeque::new(),
            aborted: VecDeque::new(),
            responses: VecDeque::new(),
            reports: VecDeque::new(),
            next: 0,
            notifies: VecDeque::new(),
            offer,
            buf: vec![0u8; READ_BUF],
            answers: Vec::new(),
        };
        // RFC 4975 §5.4: the active side sends first; an empty SEND binds.
        let tid = ua.tid();
        let mut bind = ua.request(&tid, "SEND")?;
        bind.push_header("Message-ID", &token())
            .map_err(|e| err(e.to_string()))?;
        let status = ua.transact(&tid, bind.to_bytes()).await?;
        if status != 200 {
            return Err(err(format!("the binding SEND got {status}")));
        }
        Ok(Ok(ua))
    }

    fn connection(&mut self) -> Result<&mut Box<dyn Stream>, HarnessError> {
        self.stream
            .as_mut()
            .ok_or_else(|| err("this participant did not connect"))
    }

    /// The focus's MSRP path for this session (where it listens).
    pub fn focus_path(&self) -> &str {
        &self.focus_path
    }

    /// The REPORTs the room sent so far (Message-ID, Byte-Range, Status),
    /// taken.
    pub fn take_reports(&mut self) -> Vec<(String, String, String)> {
        self.reports.drain(..).collect()
    }

    /// This participant's own MSRP path (its From-Path).
    pub fn own_path(&self) -> &str {
        &self.own_path
    }

    /// Writes `bytes` as they are (a request the codec would not write,
    /// for robustness tests), then waits up to `wait` for a response
    /// with transaction id `tid`: its status, or `None` if none came (the
    /// messages the room sends meanwhile are collected as usual). An
    /// error when the room closed the connection.
    pub async fn raw(
        &mut self,
        bytes: &[u8],
        tid: &str,
        wait: Duration,
    ) -> Result<Option<u16>, HarnessError> {
        self.connection()?
            .write_all(bytes)
            .await
            .map_err(|e| HarnessError::io("writing MSRP", e))?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(i) = self.responses.iter().position(|(t, _)| t == tid) {
                return Ok(self.responses.remove(i).map(|(_, s)| s));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            match self.read_some(deadline).await {
                Ok(()) => {}
                Err(HarnessError::Msrp(e)) if e.contains("nothing from the room in time") => {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for a BYE from the focus on the call and answers it 200.
    pub async fn expect_bye(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let n = tokio::time::timeout_at(deadline, self.sip.recv(&mut buf))
                .await
                .map_err(|_| err(format!("{}: no BYE from the focus", self.aor)))?
                .map_err(|e| HarnessError::io("reading SIP", e))?;
            let bytes = buf.get(..n).unwrap_or_default().to_vec();
            let Ok(m) = sip::parse(&bytes) else {
                continue;
            };
            if m.method() == Some("BYE")
                && m.call_id().ok().flatten() == Some(self.call_id.as_str())
            {
                let ok =
                    SipMessage::response_to(&m, 200, "OK", None).map_err(|e| err(e.to_string()))?;
                self.sip
                    .send_to(&ok.to_bytes(), self.focus)
                    .await
                    .map_err(|e| HarnessError::io("answering BYE", e))?;
                return Ok(());
            }
        }
    }

    fn tid(&mut self) -> String {
        self.next += 1;
        format!("{}{}", token(), self.next)
    }

    fn request(&self, tid: &str, method: &str) -> Result<OwnedMessage, HarnessError> {
        let mut m = OwnedMessage::request(tid, method).map_err(|e| err(e.to_string()))?;
        m.push_header("To-Path", &self.focus_path)
            .and_then(|m| m.push_header("From-Path", &self.own_path))
            .map_err(|e| err(e.to_string()))?;
        Ok(m)
    }

    /// Writes a request and waits for its response's status.
    async fn transact(&mut self, tid: &str, bytes: Bytes) -> Result<u16, HarnessError> {
        self.connection()?
            .write_all(&bytes)
            .await
            .map_err(|e| HarnessError::io("writing MSRP", e))?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(i) = self.responses.iter().position(|(t, _)| t == tid) {
                let (_, status) = self.responses.remove(i).unwrap_or_default();
                return Ok(status);
            }
            self.read_some(deadline).await?;
        }
    }

    /// Reads what the connection has, answering SENDs and collecting
    /// messages and responses; fails at `deadline`.
    async fn read_some(&mut self, deadline: tokio::time::Instant) -> Result<(), HarnessError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(err("this participant did not connect"));
        };
        let n = tokio::time::timeout_at(deadline, stream.read(&mut self.buf))
            .await
            .map_err(|_| err(format!("{}: nothing from the room in time", self.aor)))?
            .map_err(|e| HarnessError::io("reading MSRP", e))?;
        self.handle_read(n).await
    }

    /// Handles what one read put in the buffer: `n` octets, 0 for the
    /// end of the stream. The SENDs it held are answered in one write.
    async fn handle_read(&mut self, n: usize) -> Result<(), HarnessError> {
        if n == 0 {
            return Err(err(format!("{}: the room closed the connection", self.aor)));
        }
        self.framer
            .handle_data(self.buf.get(..n).unwrap_or_default());
        while let Some(frame) = self.framer.poll_event() {
            let frame = frame.map_err(|e| err(format!("MSRP framing: {e}")))?;
            self.take(&frame)?;
        }
        if !self.answers.is_empty() {
            let answers = std::mem::take(&mut self.answers);
            self.connection()?
                .write_all(&answers)
                .await
                .map_err(|e| HarnessError::io("answering SENDs", e))?;
            self.answers = answers;
            self.answers.clear();
        }
        Ok(())
    }

    /// Handles what the connection has now, without waiting.
    async fn read_ready(&mut self) -> Result<(), HarnessError> {
        use futures::FutureExt as _;
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return Err(err("this participant did not connect"));
            };
            match stream.read(&mut self.buf).now_or_never() {
                Some(Ok(n)) => self.handle_read(n).await?,
                Some(Err(e)) => return Err(HarnessError::io("reading MSRP", e)),
                None => return Ok(()),
            }
        }
    }

    fn take(&mut self, frame: &Bytes) -> Result<(), HarnessError> {
        let m = codec::parse(frame).map_err(|e| err(format!("MSRP from the room: {e}")))?;
        if let Some(status) = m.status_code() {
            self.responses
                .push_back((m.transaction_id().to_owned(), status));
            return Ok(());
        }
        if m.method() == Some("REPORT") {
            let value = |name| {
                m.header(name)
                    .map(|h| h.value().to_owned())
                    .unwrap_or_default()
            };
            self.reports.push_back((
                value(codec::HeaderName::MessageId),
                value(codec::HeaderName::ByteRange),
                value(codec::HeaderName::Status),
            ));
            return Ok(());
        }
        if m.method() != Some("SEND") {
            return Ok(());
        }
        if m.wants_response(200) {
            let r = OwnedMessage::response_to(&m, 200, Some("OK"), &self.own_path)
                .map_err(|e| err(e.to_string()))?;
            self.answers.extend_from_slice(&r.to_bytes());
        }
        let chunk = codec::Chunk::from_message(&m).map_err(|e| err(e.to_string()))?;
        self.reassembler
            .handle_chunk(&chunk)
            .map_err(|e| err(e.to_string()))?;
        while let Some(e) = self.reassembler.poll_event() {
            if let ReassemblyEvent::Aborted { message_id, .. } = &e {
                self.aborted.push_back(message_id.clone());
            }
            if let ReassemblyEvent::Complete { body, .. } = e {
                let cpim = Cpim::parse(body.clone(), &CpimLimits::default())
                    .map_err(|e| err(format!("message/cpim from the room: {e}")))?;
                let f = cpim.fields().map_err(|e| err(e.to_string()))?;
                let from = f.from.ok_or_else(|| err("a CPIM without From"))?;
                self.received.push_back(Received {
                    from,
                    to: f.to,
                    text: String::from_utf8_lossy(&cpim.body()).into_owned(),
                    cpim: body,
                });
            }
        }
        Ok(())
    }

    /// Sends `text` From this participant To `to` (the room URI for a
    /// room message, a nickname URI or participant for a private one);
    /// the status of the SEND's response.
    pub async fn send(&mut self, to: &str, text: &str) -> Result<u16, HarnessError> {
        let from = self.aor.clone();
        self.send_as(&from, to, text, usize::MAX).await
    }

    /// [`MsrpUa::send`] with any CPIM From (a spoof), in chunks of
    /// `chunk` octets; the status of the last chunk's response.
    pub async fn send_as(
        &mut self,
        from: &str,
        to: &str,
        text: &str,
        chunk: usize,
    ) -> Result<u16, HarnessError> {
        let m = self.cpim_send(from, to, text)?;
        self.send_chunks(&m, chunk, usize::MAX).await
    }

    /// Sends only the first `chunks` chunks (of `chunk` octets) of a
    /// message of `text` From this participant To `to`, as a sender that
    /// went away mid-message would; the status of the last one's response.
    pub async fn send_cut(
        &mut self,
        to: &str,
        text: &str,
        chunk: usize,
        chunks: usize,
    ) -> Result<u16, HarnessError> {
        let from = self.aor.clone();
        let m = self.cpim_send(&from, to, text)?;
        self.send_chunks(&m, chunk, chunks).await
    }

    /// A SEND of a message/cpim of `text` From `from` To `to`.
    fn cpim_send(
        &mut self,
        from: &str,
        to: &str,
        text: &str,
    ) -> Result<OwnedMessage, HarnessError> {
        let addr = |s: &str| {
            s.parse::<Address>()
                .map(NameAddr::new)
                .map_err(|e| err(format!("{s}: {e}")))
        };
        let cpim = CpimBuilder::new()
            .from(&addr(from)?)
            .to(&addr(to)?)
            .content_type("text/plain;charset=utf-8")
            .body(Bytes::copy_from_slice(text.as_bytes()))
            .build();
        let tid = self.tid();
        let mut m = self.request(&tid, "SEND")?;
        m.push_header("Message-ID", &token())
            .and_then(|m| m.push_header("Content-Type", "message/cpim"))
            .and_then(|m| m.set_body(cpim))
            .map_err(|e| err(e.to_string()))?;
        Ok(m)
    }

    /// Sends `m` in chunks of `chunk` octets, at most `limit` of them,
    /// each waiting for its response; the last status.
    async fn send_chunks(
        &mut self,
        m: &OwnedMessage,
        chunk: usize,
        limit: usize,
    ) -> Result<u16, HarnessError> {
        let mut chunker = Chunker::new(m, chunk.max(1)).map_err(|e| err(e.to_string()))?;
        let mut status = 0;
        let mut sent = 0;
        while !chunker.is_done() && sent < limit {
            let tid = self.tid();
            let Some(c) = chunker.next_chunk(&tid).map_err(|e| err(e.to_string()))? else {
                break;
            };
            sent += 1;
            status = self.transact(&tid, c).await?;
            if status != 200 {
                break;
            }
        }
        Ok(status)
    }

    /// Writes a whole SEND of `text` From this participant To `to`
    /// without waiting for its response (what the connection has read
    /// meanwhile is handled); its transaction id, for
    /// [`MsrpUa::statuses`].
    pub async fn post(&mut self, to: &str, text: &str) -> Result<String, HarnessError> {
        let from = self.aor.clone();
        let m = self.cpim_send(&from, to, text)?;
        let tid = m.transaction_id().to_owned();
        self.connection()?
            .write_all(&m.to_bytes())
            .await
            .map_err(|e| HarnessError::io("writing MSRP", e))?;
        // The room's responses must not pile up unread: its writer cuts
        // a connection that does not read.
        self.read_ready().await?;
        Ok(tid)
    }

    /// The statuses of the responses to `tids` (requests written with
    /// [`MsrpUa::post`]), in their order; fails if one has not come by
    /// `timeout`.
    pub async fn statuses(
        &mut self,
        tids: &[String],
        timeout: Duration,
    ) -> Result<Vec<u16>, HarnessError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let wanted: std::collections::HashSet<&str> = tids.iter().map(String::as_str).collect();
        let mut found = std::collections::HashMap::with_capacity(tids.len());
        loop {
            self.responses.retain(|(tid, status)| {
                let mine = wanted.contains(tid.as_str());
                if mine {
                    found.insert(tid.clone(), *status);
                }
                !mine
            });
            if tids.iter().all(|t| found.contains_key(t)) {
                return Ok(tids
                    .iter()
                    .map(|t| found.get(t).copied().unwrap_or_default())
                    .collect());
            }
            self.read_some(deadline).await?;
        }
    }

    /// NICKNAME (RFC 7701 §7.1); the response's status.
    pub async fn nickname(&mut self, nick: &str) -> Result<u16, HarnessError> {
        let tid = self.tid();
        let mut m = self.request(&tid, "NICKNAME")?;
        let quoted = nick.replace('\\', "\\\\").replace('"', "\\\"");
        m.push_header("Use-Nickname", &format!("\"{quoted}\""))
            .map_err(|e| err(e.to_string()))?;
        self.transact(&tid, m.to_bytes()).await
    }

    /// The next message the room sent.
    pub async fn next_message(&mut self, timeout: Duration) -> Result<Received, HarnessError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(r) = self.received.pop_front() {
                return Ok(r);
            }
            self.read_some(deadline).await?;
        }
    }

    /// The Message-ID of the next message the room aborted after sending
    /// part of it (RFC 4975 §7.1: a chunk with `#`).
    pub async fn expect_aborted(&mut self, timeout: Duration) -> Result<String, HarnessError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(id) = self.aborted.pop_front() {
                return Ok(id);
            }
            self.read_some(deadline)
                .await
                .map_err(|e| err(format!("{}: waiting for an aborted message: {e}", self.aor)))?;
        }
    }

    /// The next message whose text is `text`; others before it are
    /// dropped.
    pub async fn expect_text(&mut self, text: &str) -> Result<Received, HarnessError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            while let Some(r) = self.received.pop_front() {
                if r.text == text {
                    return Ok(r);
                }
            }
            self.read_some(deadline)
                .await
                .map_err(|e| err(format!("{}: waiting for {text:?}: {e}", self.aor)))?;
        }
    }

    /// Fails if a message with `text` comes within `wait`.
    pub async fn expect_no_text(&mut self, text: &str, wait: Duration) -> Result<(), HarnessError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.received.iter().any(|r| r.text == text) {
                return Err(err(format!(
                    "{} got {text:?}, which was not for it",
                    self.aor
                )));
            }
            self.received.clear();
            if tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
            // Timing out is the expected end.
            if self.read_some(deadline).await.is_err() {
                return Ok(());
            }
        }
    }

    /// SUBSCRIBE to the room's conference events (RFC 4575), in a dialog
    /// of its own; the final status. The NOTIFYs come from
    /// [`MsrpUa::next_notify`].
    pub async fn subscribe(&mut self) -> Result<u16, HarnessError> {
        let local = self
            .sip
            .local_addr()
            .map_err(|e| HarnessError::io("the UA's SIP address", e))?;
        let (call_id, tag) = (format!("{}@127.0.0.1", token()), token());
        let mut sub = sip_request(
            "SUBSCRIBE",
            &self.room,
            local,
            (&self.aor, &self.room, &call_id, &tag, 1),
        )?;
        for (n, v) in [
            ("Contact", format!("<sip:ua@{local}>")),
            ("Event", "conference".to_owned()),
            ("Accept", "application/conference-info+xml".to_owned()),
            ("Expires", "600".to_owned()),
        ] {
            sub.push_header(n, &v).map_err(|e| err(e.to_string()))?;
        }
        self.sip
            .send_to(&sub.to_bytes(), self.focus)
            .await
            .map_err(|e| HarnessError::io("sending SUBSCRIBE", e))?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.read_sip(deadline, "SUBSCRIBE").await? {
                return Ok(status);
            }
        }
    }

    /// The body of the next NOTIFY (a conference-info document).
    pub async fn next_notify(&mut self, timeout: Duration) -> Result<String, HarnessError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(body) = self.notifies.pop_front() {
                return Ok(body);
            }
            self.read_sip(deadline, "").await?;
        }
    }

    /// Reads one SIP datagram: a NOTIFY is answered 200 and its body
    /// kept; a final response to `method` is returned.
    async fn read_sip(
        &mut self,
        deadline: tokio::time::Instant,
        method: &str,
    ) -> Result<Option<u16>, HarnessError> {
        let mut buf = vec![0u8; 65536];
        let n = tokio::time::timeout_at(deadline, self.sip.recv(&mut buf))
            .await
            .map_err(|_| err(format!("{}: no SIP message in time", self.aor)))?
            .map_err(|e| HarnessError::io("reading SIP", e))?;
        let bytes = buf.get(..n).unwrap_or_default().to_vec();
        let Ok(m) = sip::parse(&bytes) else {
            return Ok(None);
        };
        if let Some(status) = m.status() {
            let of = m.cseq().ok().flatten().map(|c| c.method.to_owned());
            return Ok((status >= 200 && of.as_deref() == Some(method)).then_some(status));
        }
        if m.method() == Some("NOTIFY") {
            let ok =
                SipMessage::response_to(&m, 200, "OK", None).map_err(|e| err(e.to_string()))?;
            self.sip
                .send_to(&ok.to_bytes(), self.focus)
                .await
                .map_err(|e| HarnessError::io("answering NOTIFY", e))?;
            self.notifies
                .push_back(String::from_utf8_lossy(m.body()).into_owned());
        }
        Ok(None)
    }

    /// A request within the call: the next CSeq, To with the room's tag.
    fn in_call(&mut self, method: &str) -> Result<SipMessage, HarnessError> {
        self.cseq += 1;
        let to_tag = self.to_tag.clone();
        self.call_request(method, self.cseq, &to_tag)
    }

    /// A request of this call with CSeq number `cseq` and To tag `to_tag`.
    fn call_request(
        &self,
        method: &str,
        cseq: u32,
        to_tag: &str,
    ) -> Result<SipMessage, HarnessError> {
        let local = self
            .sip
            .local_addr()
            .map_err(|e| HarnessError::io("the UA's SIP address", e))?;
        let mut m = sip_request(
            method,
            &self.room,
            local,
            (&self.aor, &self.room, &self.call_id, &self.from_tag, cseq),
        )?;
        m.remove_header("To");
        m.push_header("To", &format!("<{}>;tag={to_tag}", self.room))
            .map_err(|e| err(e.to_string()))?;
        Ok(m)
    }

    /// A re-INVITE with the joining offer again (RFC 3261 §14), and the
    /// ACK of its 2xx; `to_tag` replaces the room's tag when given (a
    /// call the room does not know). The status and the last URI of the
    /// answer's MSRP path.
    pub async fn reinvite(
        &mut self,
        to_tag: Option<&str>,
    ) -> Result<(u16, Option<String>), HarnessError> {
        self.cseq += 1;
        let to_tag = to_tag.map_or_else(|| self.to_tag.clone(), str::to_owned);
        let mut invite = self.call_request("INVITE", self.cseq, &to_tag)?;
        let local = self
            .sip
            .local_addr()
            .map_err(|e| HarnessError::io("the UA's SIP address", e))?;
        for (n, v) in [
            ("Contact", format!("<sip:ua@{local}>")),
            ("Content-Type", "application/sdp".to_owned()),
        ] {
            invite.push_header(n, &v).map_err(|e| err(e.to_string()))?;
        }
        invite.set_body(self.offer.clone());
        self.sip
            .send_to(&invite.to_bytes(), self.focus)
            .await
            .map_err(|e| HarnessError::io("sending the re-INVITE", e))?;
        let (status, bytes) = final_response(&self.sip, self.cseq).await?;
        // RFC 3261 §13.2.2.4: the ACK of a 2xx is a request of its own
        // with the INVITE's CSeq number.
        if status == 200 {
            let ack = self.call_request("ACK", self.cseq, &to_tag)?;
            self.sip
                .send_to(&ack.to_bytes(), self.focus)
                .await
                .map_err(|e| HarnessError::io("sending ACK", e))?;
        }
        let path = sip::parse(&bytes)
            .ok()
            .and_then(|m| sdp::parse(m.body()).ok())
            .and_then(|a| a.msrp.first().and_then(|m| m.path.last().cloned()));
        Ok((status, path))
    }

    /// A CANCEL of the INVITE that joined (RFC 3261 §9.1: its Request-URI,
    /// Call-ID, From, To and CSeq number), long answered: its status.
    pub async fn cancel_join(&mut self) -> Result<u16, HarnessError> {
        let local = self
            .sip
            .local_addr()
            .map_err(|e| HarnessError::io("the UA's SIP address", e))?;
        let cancel = sip_request(
            "CANCEL",
            &self.room,
            local,
            (&self.aor, &self.room, &self.call_id, &self.from_tag, 1),
        )?;
        self.sip
            .send_to(&cancel.to_bytes(), self.focus)
            .await
            .map_err(|e| HarnessError::io("sending CANCEL", e))?;
        Ok(final_response(&self.sip, 1).await?.0)
    }

    /// Leaves: BYE; its response's status.
    pub async fn leave(mut self) -> Result<u16, HarnessError> {
        let bye = self.in_call("BYE")?;
        self.sip
            .send_to(&bye.to_bytes(), self.focus)
            .await
            .map_err(|e| HarnessError::io("sending BYE", e))?;
        Ok(final_response(&self.sip, self.cseq).await?.0)
    }
}
