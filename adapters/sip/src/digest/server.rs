//! The server side: challenging and verifying (RFC 3261 §22.1, §22.4;
//! RFC 7616 §3.3, §3.4, §5).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::challenge::{Challenge, Credentials};
use super::{Algorithm, DigestRequest, Qop, ResponseInput, compute_response, hex};

/// Where the server finds a user's password.
pub trait PasswordLookup {
    /// The password of `username` in `realm`, if the user exists.
    fn password(&self, username: &str, realm: &str) -> Option<String>;
}

impl<F: Fn(&str, &str) -> Option<String>> PasswordLookup for F {
    fn password(&self, username: &str, realm: &str) -> Option<String> {
        self(username, realm)
    }
}

/// The outcome of checking credentials, each failure its own.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The credentials are right and the nonce is fresh.
    Authenticated {
        /// Who.
        username: String,
    },
    /// The digest is right but the nonce has expired: challenge again
    /// with `stale=TRUE` (RFC 7616 §3.3), the client retries without
    /// asking its user.
    Stale,
    /// The realm is not ours.
    WrongRealm,
    /// The nonce is not one we issued (forged, tampered or garbled).
    InvalidNonce,
    /// The algorithm is not one we offer.
    WrongAlgorithm,
    /// The `uri` parameter is not the Request-URI (checked only when
    /// enabled, RFC 3261 §22.4 item 6).
    UriMismatch,
    /// No such user. Answer it like [`Verdict::WrongResponse`] on the
    /// wire, so as not to tell which users exist.
    UnknownUser,
    /// The digest does not match: wrong password, or altered parameters.
    WrongResponse,
    /// The header value could not be read.
    Malformed(super::Error),
}

/// Issues challenges and verifies credentials for one realm.
///
/// Nonces are stateless (RFC 7616 §5.4): `hex(time) hex(salt) hex(mac)`
/// where `mac` is HMAC-SHA-256 over realm, time and salt with the server's
/// secret, truncated to 128 bits. A nonce is valid if the MAC checks, and
/// fresh for `nonce_lifetime` after its time. Several gateway instances
/// that share the secret accept each other's nonces.
///
/// Not done: replay protection by `nc`. A stateless nonce cannot remember
/// which counts it has seen, so a captured request can be replayed until
/// its nonce expires (RFC 7616 §5.5); keep the lifetime short, or put a
/// per-nonce `nc` table in front of [`DigestServer::verify`].
pub struct DigestServer {
    realm: String,
    secret: Vec<u8>,
    nonce_lifetime: Duration,
    algorithms: Vec<Algorithm>,
    qop: Vec<Qop>,
    check_uri: bool,
}

impl fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestServer")
            .field("realm", &self.realm)
            .field("secret", &"<redacted>")
            .field("nonce_lifetime", &self.nonce_lifetime)
            .field("algorithms", &self.algorithms)
            .field("qop", &self.qop)
            .field("check_uri", &self.check_uri)
            .finish()
    }
}

/// Hex digits of time and salt, and of the truncated MAC.
const STAMP_HEX: usize = 32;
const MAC_BYTES: usize = 16;

impl DigestServer {
    /// A server for `realm` whose nonces are signed with `secret`.
    ///
    /// Defaults: nonces fresh for 5 minutes; challenges for SHA-256 then
    /// MD5 (RFC 8760, UAS behaviour: one challenge per algorithm, the
    /// preferred first);
    /// qop `auth`; the `uri` parameter must equal the Request-URI.
    pub fn new(realm: impl Into<String>, secret: Vec<u8>) -> Self {
        DigestServer {
            realm: realm.into(),
            secret,
            nonce_lifetime: Duration::from_secs(300),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            qop: vec![Qop::Auth],
            check_uri: true,
        }
    }

    /// How long a nonce stays fresh.
    pub fn with_nonce_lifetime(mut self, lifetime: Duration) -> Self {
        self.nonce_lifetime = lifetime;
        self
    }

    /// The algorithms to offer, preferred first; an empty list keeps the
    /// current one.
    pub fn with_algorithms(mut self, algorithms: Vec<Algorithm>) -> Self {
        if !algorithms.is_empty() {
            self.algorithms = algorithms;
        }
        self
    }

    /// The qop values to offer (RFC 3261 §22.4 item 8: at least one);
    /// an empty list keeps the current one.
    pub fn with_qop(mut self, qop: Vec<Qop>) -> Self {
        if !qop.is_empty() {
            self.qop = qop;
        }
        self
    }

    /// Whether the `uri` parameter must equal the Request-URI. RFC 3261
    /// §22.4 item 6 allows them to differ after forwarding by a proxy.
    pub fn with_uri_check(mut self, check: bool) -> Self {
        self.check_uri = check;
        self
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The challenge for the preferred algorithm.
    pub fn challenge(&self, now: SystemTime, stale: bool) -> Challenge {
        let algorithm = self.algorithms.first().copied().unwrap_or(Algorithm::Md5);
        self.challenge_for(now, algorithm, stale)
    }

    /// RFC 3261 §22.4: the user of the first of `authorizations` (a
    /// request's Authorization header values) that authenticates a user
    /// `accept` takes; else the challenges to send, stale (RFC 7616
    /// §3.3) when a right digest only had an expired nonce. `refused`
    /// hears every other verdict.
    pub fn authenticate<'a>(
        &self,
        now: SystemTime,
        request: &DigestRequest<'_>,
        authorizations: impl IntoIterator<Item = &'a str>,
        passwords: &dyn PasswordLookup,
        accept: impl Fn(&str) -> bool,
        mut refused: impl FnMut(&Verdict),
    ) -> Result<String, Vec<Challenge>> {
        let mut stale = false;
        for value in authorizations {
            match self.verify_header(now, request, value, passwords) {
                Verdict::Authenticated { username } if accept(&username) => return Ok(username),
                Verdict::Stale => stale = true,
                other => refused(&other),
            }
        }
        Err(self.challenges(now, stale))
    }

    /// One challenge per offered algorithm, preferred first: one
    /// `WWW-Authenticate` (or `Proxy-Authenticate`) header field each.
    pub fn challenges(&self, now: SystemTime, stale: bool) -> Vec<Challenge> {
        self.algorithms
            .iter()
            .map(|&a| self.challenge_for(now, a, stale))
            .collect()
    }

    fn challenge_for(&self, now: SystemTime, algorithm: Algorithm, stale: bool) -> Challenge {
        Challenge {
            realm: self.realm.clone(),
            nonce: self.nonce(now),
            opaque: None,
            stale,
            algorithm,
            qop: self.qop.clone(),
            domain: None,
        }
    }

    fn mac(&self, stamp: &str) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).ok()?;
        mac.update(self.realm.as_bytes());
        mac.update(b":");
        mac.update(stamp.as_bytes());
        Some(mac)
    }

    /// A fresh nonce: time, salt and their MAC.
    fn nonce(&self, now: SystemTime) -> String {
        let stamp = format!("{:016x}{:016x}", seconds(now), rand::random::<u64>());
        let tag = self
            .mac(&stamp)
            .map(|m| m.finalize().into_bytes())
            .map(|bytes| hex(bytes.get(..MAC_BYTES).unwrap_or_default()))
            .unwrap_or_default();
        stamp + &tag
    }

    /// The time a nonce was issued at, if we issued it.
    fn nonce_time(&self, nonce: &str) -> Option<u64> {
        if nonce.len() != STAMP_HEX + 2 * MAC_BYTES || !nonce.is_ascii() {
            return None;
        }
        let (stamp, tag) = nonce.split_at(STAMP_HEX);
        let tag = unhex(tag)?;
        self.mac(stamp)?.verify_truncated_left(&tag).ok()?;
        u64::from_str_radix(stamp.get(..16)?, 16).ok()
    }

    /// Checks a credentials header value; see [`verify`](Self::verify).
    pub fn verify_header(
        &self,
        now: SystemTime,
        request: &DigestRequest<'_>,
        header_value: &str,
        passwords: &dyn PasswordLookup,
    ) -> Verdict {
        match Credentials::parse(header_value) {
            Ok(credentials) => self.verify(now, request, &credentials, passwords),
            Err(error) => Verdict::Malformed(error),
        }
    }

    /// Checks credentials for `request`: realm, algorithm, nonce, uri,
    /// user, digest, then freshness (a stale verdict only for a right
    /// digest, RFC 2617 §3.2.1). Answers without qop (RFC 2069) are
    /// accepted, as RFC 3261 §22.4 requires.
    pub fn verify(
        &self,
        now: SystemTime,
        request: &DigestRequest<'_>,
        credentials: &Credentials,
        passwords: &dyn PasswordLookup,
    ) -> Verdict {
        if credentials.realm != self.realm {
            return Verdict::WrongRealm;
        }
        let algorithm = credentials.algorithm.unwrap_or(Algorithm::Md5);
        if !self.algorithms.contains(&algorithm) {
            return Verdict::WrongAlgorithm;
        }
        let Some(issued) = self.nonce_time(&credentials.nonce) else {
            return Verdict::InvalidNonce;
        };
        if self.check_uri && credentials.uri != request.uri {
            return Verdict::UriMismatch;
        }
        if let Some(qop) = credentials.qop
            && !self.qop.contains(&qop)
        {
            return Verdict::WrongResponse;
        }
        let Some(password) = passwords.password(&credentials.username, &self.realm) else {
            return Verdict::UnknownUser;
        };
        // A2 uses the uri parameter, as the client computed it.
        let as_signed = DigestRequest {
            uri: &credentials.uri,
            ..*request
        };
        let expected = compute_response(&ResponseInput {
            algorithm,
            username: &credentials.username,
            realm: &self.realm,
            password: &password,
            nonce: &credentials.nonce,
            cnonce: credentials.cnonce.as_deref(),
            nc: credentials.nc,
            qop: credentials.qop,
            request: &as_signed,
        });
        if !constant_time_eq(
            expected.as_bytes(),
            credentials.response.to_ascii_lowercase().as_bytes(),
        ) {
            return Verdict::WrongResponse;
        }
        if seconds(now) > issued.saturating_add(self.nonce_lifetime.as_secs()) {
            return Verdict::Stale;
        }
        Verdict::Authenticated {
            username: credentials.username.clone(),
        }
    }
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = char::from(*pair.first()?).to_digit(16)?;
            let lo = char::from(*pair.get(1)?).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

/// Compares without an early exit, so that timing tells nothing of how
/// much of a digest was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
