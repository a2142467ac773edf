//! Registration of gateway addresses with a registrar (RFC 3261 §10),
//! sans-IO: requests out, responses and the time in.
//!
//! A [`Binding`] keeps one address of record bound to one Contact of the
//! gateway: it says when a REGISTER is due ([`Binding::poll_timeout`]),
//! writes it ([`Binding::request`]) and reads the final response
//! ([`Binding::handle_response`]): a 2xx gives the interval the registrar
//! granted and schedules the refresh before it runs out (§10.2.4); a
//! 401/407 is answered once with digest credentials (§22.2); a 423 asks
//! again with its Min-Expires (§10.2.8); anything else, a timeout or a
//! transport error waits and tries again, each time longer. One Call-ID
//! per binding and an increasing CSeq (§10.2: "the same Call-ID for all
//! registrations during a single boot cycle").
//!
//! ```text
//!   Due --request--> Pending --2xx--> Registered --(refresh time)--> Due
//!                       |  \--401/407 (once)--> request again
//!                       |  \--423--> Due now, with Min-Expires
//!                       \--other, timeout--> Failed --(backoff)--> Due
//! ```
//!
//! [`Binding::unregister`] writes the REGISTER with `Expires: 0` that
//! removes the binding when the gateway stops (§10.2.2).

use std::time::{Duration, Instant};

use cpimgate_model::address::Address;

use crate::codec::{self, BuildError, Contact, HeaderName, OwnedMessage};
use crate::digest::{DigestClient, DigestRequest, RandomCnonce};
use crate::transport::TransportKind;

/// The first wait after a failed registration; it doubles up to
/// [`RETRY_MAX`].
pub const RETRY_BASE: Duration = Duration::from_secs(5);
/// The longest wait between two failed registrations.
pub const RETRY_MAX: Duration = Duration::from_secs(600);

/// Where a binding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A REGISTER is due at this time.
    Due(Instant),
    /// A REGISTER is out; its final response is awaited.
    Pending,
    /// Bound until `until`; refreshed at `refresh`.
    Registered {
        /// When the registrar drops the binding without a refresh.
        until: Instant,
        /// When the refresh is sent.
        refresh: Instant,
    },
    /// Removed (after [`Binding::unregister`]) or given up.
    Stopped,
}

/// What a final response meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Bound for this long (or unbound, after an `Expires: 0`).
    Registered(Duration),
    /// The binding was removed.
    Unregistered,
    /// Send the request again at once: with credentials (401/407), or
    /// with a longer interval (423).
    SendAgain,
    /// Refused or lost; the next attempt is due after this wait.
    Failed {
        /// The status and reason, or what happened instead.
        why: String,
        /// How long until the next attempt.
        retry_in: Duration,
    },
}

/// The transport-dependent parts of a REGISTER.
#[derive(Debug, Clone)]
pub struct Hop<'a> {
    /// The transport the Via names.
    pub transport: TransportKind,
    /// The Via sent-by and the Contact's host and port, `host:port`.
    pub sent_by: &'a str,
    /// The Via branch.
    pub branch: &'a str,
    /// A Route to the outbound proxy (`<sip:...;lr>`), if any.
    pub route: Option<&'a str>,
}

/// One address of record bound to a gateway Contact; see the
/// [module docs](self).
#[derive(Debug)]
pub struct Binding {
    aor: String,
    registrar: String,
    address: Address,
    expires: u32,
    call_id: String,
    from_tag: String,
    cseq: u32,
    state: State,
    failures: u32,
    client: Option<DigestClient>,
    realm: Option<String>,
    /// The Authorization to send with the next request, once.
    authorization: Option<(&'static str, String)>,
    /// Whether the request out answers a challenge already.
    answered_challenge: bool,
    /// The Contact URI of the last request.
    contact: Option<String>,
    /// The interval asked for by the request out (0: unregistering).
    asked: u32,
    /// Whether the binding is being removed: every request is `Expires: 0`.
    removing: bool,
}

impl Binding {
    /// A binding of `aor` for the user `address` of another world,
    /// registered at `registrar` for `expires` seconds, due at once.
    /// `client` answers the registrar's challenges (of `realm` only, when
    /// given).
    pub fn new(
        aor: String,
        registrar: String,
        address: Address,
        expires: u32,
        ids: (String, String),
        client: Option<(DigestClient, Option<String>)>,
        now: Instant,
    ) -> Binding {
        let (client, realm) = match client {
            Some((c, r)) => (Some(c), r),
            None => (None, None),
        };
        Binding {
            aor,
            registrar,
            address,
            expires,
            call_id: ids.0,
            from_tag: ids.1,
            cseq: 0,
            state: State::Due(now),
            failures: 0,
            client,
            realm,
            authorization: None,
            answered_challenge: false,
            contact: None,
            asked: 0,
            removing: false,
        }
    }

    /// The address of record.
    pub fn aor(&self) -> &str {
        &self.aor
    }

    /// The user of another world it stands for.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The registrar's URI, the REGISTER's Request-URI.
    pub fn registrar(&self) -> &str {
        &self.registrar
    }

    /// Where it stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the registrar holds the binding now.
    pub fn is_registered(&self, now: Instant) -> bool {
        matches!(self.state, State::Registered { until, .. } if now < until)
    }

    /// When a REGISTER is due, unless one is out or it stopped.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Due(at) => Some(at),
            State::Registered { refresh, .. } => Some(refresh),
            State::Pending | State::Stopped => None,
        }
    }

    /// Whether a REGISTER is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.poll_timeout().is_some_and(|at| at <= now)
    }

    /// The Contact URI for a hop: the gateway address of the user on the
    /// gateway's own host and port, with the transport
    /// (`sip:bob%40xmpp.example.org@192.0.2.1:5060;transport=udp`).
    pub fn contact_uri(&self, hop: &Hop<'_>) -> Result<String, BuildError> {
        let (host, port) = split_host_port(hop.sent_by);
        let uri = self
            .address
            .to_gateway_sip(host)
            .map_err(|_| BuildError::Value("Contact".to_owned()))?
            .with_port(port)
            .with_param(
                "transport",
                Some(&hop.transport.as_via_str().to_ascii_lowercase()),
            )
            .map_err(|_| BuildError::Value("Contact".to_owned()))?;
        Ok(uri.to_string())
    }

    /// The REGISTER that is due: it binds the Contact for the configured
    /// interval (§10.2.1), with credentials when it answers a challenge;
    /// once [`Binding::unregister`] was called, it removes the binding.
    pub fn request(&mut self, hop: &Hop<'_>) -> Result<OwnedMessage, BuildError> {
        let expires = if self.removing {
            0
        } else {
            self.asked.max(self.expires).max(1)
        };
        self.build(hop, expires)
    }

    /// The REGISTER with `Expires: 0` that removes the binding
    /// (§10.2.2), whatever request was out; `None` when no REGISTER was
    /// ever sent (or it is removed already). A challenge to it is answered
    /// like any other.
    pub fn unregister(&mut self, hop: &Hop<'_>) -> Option<Result<OwnedMessage, BuildError>> {
        if self.contact.is_none() || self.state == State::Stopped {
            return None;
        }
        self.removing = true;
        self.answered_challenge = false;
        self.authorization = None;
        Some(self.build(hop, 0))
    }

    fn build(&mut self, hop: &Hop<'_>, expires: u32) -> Result<OwnedMessage, BuildError> {
        let contact = self.contact_uri(hop)?;
        self.cseq += 1;
        let mut r = OwnedMessage::request("REGISTER", &self.registrar)?;
        r.push_header(
            "Via",
            &format!(
                "SIP/2.0/{} {};branch={};rport",
                hop.transport.as_via_str(),
                hop.sent_by,
                hop.branch
            ),
        )?;
        r.push_header("Max-Forwards", "70")?;
        if let Some(route) = hop.route {
            r.push_header("Route", route)?;
        }
        // §10.2: To and From are the address of record (the gateway
        // registers its own users, not a third party's).
        r.push_header("To", &format!("<{}>", self.aor))?;
        r.push_header("From", &format!("<{}>;tag={}", self.aor, self.from_tag))?;
        r.push_header("Call-ID", &self.call_id)?;
        r.push_header("CSeq", &format!("{} REGISTER", self.cseq))?;
        r.push_header("Contact", &format!("<{contact}>"))?;
        r.push_header("Expires", &expires.to_string())?;
        // Kept until a final response: the same REGISTER sent again to the
        // next server of an RFC 3263 list (§4.3) carries them too.
        if let Some((name, value)) = &self.authorization {
            r.push_header(name, value)?;
        }
        self.contact = Some(contact);
        self.asked = expires;
        self.state = State::Pending;
        Ok(r)
    }

    /// A final response to the REGISTER out.
    pub fn handle_response(&mut self, now: Instant, response: &codec::Message<'_>) -> Outcome {
        let status = response.status().unwrap_or(500);
        let reason = response.reason().unwrap_or_default();
        self.authorization = None;
        if (200..300).contains(&status) {
            self.answered_challenge = false;
            self.failures = 0;
            if self.removing {
                self.state = State::Stopped;
                return Outcome::Unregistered;
            }
            let granted = self.granted(response);
            if granted == 0 {
                // The registrar lists no binding of ours: it kept none.
                return self.fail(now, format!("{status} {reason} without our Contact"), None);
            }
            let granted = Duration::from_secs(u64::from(granted));
            self.state = State::Registered {
                until: now + granted,
                refresh: now + refresh_after(granted),
            };
            return Outcome::Registered(granted);
        }
        if matches!(status, 401 | 407) && !self.answered_challenge {
            if let Some(value) = self.answer_challenge(status, response) {
                self.authorization = Some(value);
                self.answered_challenge = true;
                self.state = State::Due(now);
                return Outcome::SendAgain;
            }
        }
        // §10.2.8: the interval was too brief; ask again with the least
        // the registrar takes.
        if status == 423 {
            let min = response
                .header(HeaderName::MinExpires)
                .and_then(|h| h.value().trim().parse::<u32>().ok());
            if let Some(min) = min.filter(|m| *m > self.asked) {
                self.asked = min;
                self.expires = self.expires.max(min);
                self.answered_challenge = false;
                self.state = State::Due(now);
                return Outcome::SendAgain;
            }
        }
        if self.removing {
            // Refused: nothing more is tried on the way out.
            self.state = State::Stopped;
            return Outcome::Failed {
                why: format!("{status} {reason}"),
                retry_in: Duration::ZERO,
            };
        }
        let retry_after = response
            .header(HeaderName::RetryAfter)
            .and_then(|h| h.value().split([' ', ';', '(']).next()?.parse::<u64>().ok())
            .map(Duration::from_secs);
        self.fail(now, format!("{status} {reason}"), retry_after)
    }

    /// The REGISTER out got no final response (timer F) or could not be
    /// sent.
    pub fn handle_failure(&mut self, now: Instant, why: &str) -> Outcome {
        if self.removing {
            self.state = State::Stopped;
            return Outcome::Failed {
                why: why.to_owned(),
                retry_in: Duration::ZERO,
            };
        }
        self.fail(now, why.to_owned(), None)
    }

    fn fail(&mut self, now: Instant, why: String, retry_after: Option<Duration>) -> Outcome {
        self.answered_challenge = false;
        self.authorization = None;
        let backoff = RETRY_BASE
            .saturating_mul(1 << self.failures.min(16))
            .min(RETRY_MAX);
        self.failures = self.failures.saturating_add(1);
        let mut retry_in = retry_after.map_or(backoff, |r| r.clamp(RETRY_BASE, RETRY_MAX));
        // A binding that still holds is refreshed before it runs out.
        if let State::Registered { until, .. } = self.state {
            let left = until.saturating_duration_since(now);
            if left > Duration::ZERO {
                retry_in = retry_in.min(left / 2);
            }
        }
        self.state = State::Due(now + retry_in);
        Outcome::Failed { why, retry_in }
    }

    /// The interval granted to our Contact: its `expires` parameter, else
    /// the Expires header, else what was asked (§10.2.4); 0 when the
    /// response lists other Contacts but not ours.
    fn granted(&self, response: &codec::Message<'_>) -> u32 {
        let header = || response.expires().ok().flatten();
        let Ok(Some(Contact::Addresses(list))) = response.contact() else {
            return header().unwrap_or(self.asked);
        };
        let ours = self
            .contact
            .as_deref()
            .and_then(|c| c.parse::<Address>().ok());
        for c in &list {
            let same = match (&ours, c.address()) {
                (Some(Address::Sip(a)), Ok(Address::Sip(b))) => a.sip_equivalent(&b),
                _ => false,
            };
            if same {
                let param = c
                    .params()
                    .get("expires")
                    .flatten()
                    .and_then(|v| v.parse::<u32>().ok());
                return param.or_else(header).unwrap_or(self.asked);
            }
        }
        if list.is_empty() {
            header().unwrap_or(self.asked)
        } else {
            0
        }
    }

    fn answer_challenge(
        &mut self,
        status: u16,
        response: &codec::Message<'_>,
    ) -> Option<(&'static str, String)> {
        let client = self.client.as_mut()?;
        let (challenge_header, answer_header) = if status == 401 {
            (HeaderName::WwwAuthenticate, "Authorization")
        } else {
            (HeaderName::ProxyAuthenticate, "Proxy-Authorization")
        };
        let realm = self.realm.as_deref();
        let challenge = DigestClient::choose_header_values(
            response
                .headers_named(challenge_header)
                .map(codec::Header::value),
        )
        .filter(|c| realm.is_none_or(|want| want == c.realm))?;
        let request = DigestRequest {
            method: "REGISTER",
            uri: &self.registrar,
            body: b"",
        };
        let credentials = client
            .authorize(&challenge, &request, &mut RandomCnonce)
            .ok()?;
        Some((answer_header, credentials.to_header_value().ok()?))
    }
}

/// When to refresh a binding granted for `granted`: half-way through a
/// short one, ten minutes before the end of a long one (§10.2.4 only asks
/// for "before the expiration interval has elapsed").
pub fn refresh_after(granted: Duration) -> Duration {
    let early = (granted / 2).min(Duration::from_secs(600));
    granted.saturating_sub(early).max(Duration::from_secs(1))
}

/// `host:port` (or `[v6]:port`) into the host and the port, if any.
fn split_host_port(sent_by: &str) -> (&str, Option<u16>) {
    if let Some(rest) = sent_by.strip_prefix('[') {
        if let Some((host, port)) = rest.split_once(']') {
            let port = port.strip_prefix(':').and_then(|p| p.parse().ok());
            return (&sent_by[..host.len() + 2], port);
        }
    }
    match sent_by.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().ok()),
        _ => (sent_by, None),
    }
}

#[cfg(test)]
mod tests;
