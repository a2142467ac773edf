//! The client side: answering a challenge (RFC 3261 §22.2, §22.3;
//! RFC 7616 §3.4).

use std::collections::HashMap;
use std::fmt;

use super::challenge::{Challenge, Credentials};
use super::params;
use super::{DigestRequest, Error, Qop, ResponseInput, compute_response, hex};

/// Where client nonces come from: [`RandomCnonce`] in production, a
/// closure returning fixed values in tests.
pub trait CnonceSource {
    /// A fresh client nonce: printable, without `"` or `\` to keep it
    /// simple for peers.
    fn cnonce(&mut self) -> String;
}

impl<F: FnMut() -> String> CnonceSource for F {
    fn cnonce(&mut self) -> String {
        self()
    }
}

/// 128 random bits as hex (RFC 7616 §5.4: the cnonce should be
/// unpredictable).
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomCnonce;

impl CnonceSource for RandomCnonce {
    fn cnonce(&mut self) -> String {
        hex(&rand::random::<[u8; 16]>())
    }
}

/// Answers Digest challenges for one user.
///
/// It counts `nc` per nonce (RFC 7616 §3.4: "the count of the number of
/// requests ... the client has sent with the nonce value"): one count per
/// realm, reset when that realm's server hands out a new nonce.
pub struct DigestClient {
    username: String,
    password: String,
    counts: HashMap<String, (String, u32)>,
}

impl fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestClient")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("realms", &self.counts.len())
            .finish()
    }
}

impl DigestClient {
    /// A client for `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        DigestClient {
            username: username.into(),
            password: password.into(),
            counts: HashMap::new(),
        }
    }

    /// The strongest of several challenges (RFC 7616 §3.7: a client picks
    /// the first it supports in the server's order of preference; we rank
    /// by algorithm, SHA-256 over MD5, and keep the server's order for
    /// ties).
    pub fn choose(challenges: &[Challenge]) -> Option<&Challenge> {
        challenges
            .iter()
            .fold(None, |best: Option<&Challenge>, c| match best {
                Some(b) if b.algorithm.strength() >= c.algorithm.strength() => Some(b),
                _ => Some(c),
            })
    }

    /// Parses several header values and picks the strongest challenge
    /// among those this client supports; values that do not parse, or name
    /// an unknown algorithm, are skipped (RFC 2617 §3.2.1).
    pub fn choose_header_values<'v>(
        values: impl IntoIterator<Item = &'v str>,
    ) -> Option<Challenge> {
        let parsed: Vec<Challenge> = values
            .into_iter()
            .filter_map(|v| Challenge::parse(v).ok())
            .collect();
        Self::choose(&parsed).cloned()
    }

    /// The credentials answering `challenge` for `request`.
    ///
    /// qop `auth` is chosen when offered, else `auth-int`; a challenge
    /// without qop gets an RFC 2069 answer (no cnonce, no nc).
    pub fn authorize(
        &mut self,
        challenge: &Challenge,
        request: &DigestRequest<'_>,
        cnonces: &mut dyn CnonceSource,
    ) -> Result<Credentials, Error> {
        if !params::is_quotable(&self.username) {
            return Err(Error::ControlCharacters("username"));
        }
        if !params::is_quotable(request.uri) {
            return Err(Error::ControlCharacters("uri"));
        }
        let qop = if challenge.qop.contains(&Qop::Auth) {
            Some(Qop::Auth)
        } else {
            challenge.qop.first().copied()
        };
        if qop.is_none() && challenge.algorithm.is_session() {
            return Err(Error::SessionWithoutQop(challenge.algorithm));
        }
        let (cnonce, nc) = match qop {
            Some(_) => {
                let entry = self
                    .counts
                    .entry(challenge.realm.clone())
                    .or_insert_with(|| (challenge.nonce.clone(), 0));
                if entry.0 != challenge.nonce {
                    *entry = (challenge.nonce.clone(), 0);
                }
                entry.1 = entry.1.wrapping_add(1);
                let cnonce = cnonces.cnonce();
                if !params::is_quotable(&cnonce) {
                    return Err(Error::ControlCharacters("cnonce"));
                }
                (Some(cnonce), Some(entry.1))
            }
            None => (None, None),
        };
        let response = compute_response(&ResponseInput {
            algorithm: challenge.algorithm,
            username: &self.username,
            realm: &challenge.realm,
            password: &self.password,
            nonce: &challenge.nonce,
            cnonce: cnonce.as_deref(),
            nc,
            qop,
            request,
        });
        Ok(Credentials {
            username: self.username.clone(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: request.uri.to_owned(),
            response,
            algorithm: Some(challenge.algorithm),
            cnonce,
            opaque: challenge.opaque.clone(),
            qop,
            nc,
        })
    }
}
