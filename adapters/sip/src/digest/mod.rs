//! Digest authentication for SIP (RFC 3261 §22, on RFC 2617 and
//! RFC 7616).
//!
//! Both sides, sans-IO: strings and instants in, strings out.
//!
//! * [`Challenge`] is a `WWW-Authenticate` or `Proxy-Authenticate` header
//!   value, [`Credentials`] an `Authorization` or `Proxy-Authorization`
//!   one; each parses ([`Challenge::parse`]) and writes itself
//!   ([`Challenge::to_header_value`]).
//! * [`DigestClient`] answers challenges: it picks the strongest one it
//!   supports ([`DigestClient::choose`]), counts `nc` per nonce and
//!   computes the response for MD5, MD5-sess, SHA-256 and SHA-256-sess,
//!   with `qop=auth`, `qop=auth-int`, or no qop for RFC 2069 peers.
//! * [`DigestServer`] issues stateless nonces (a timestamp and an HMAC
//!   over it with a secret, so they expire and cannot be forged) and
//!   verifies credentials against a [`PasswordLookup`], each failure its
//!   own [`Verdict`].
//!
//! A UAS challenges with 401 and `WWW-Authenticate`, a proxy with 407 and
//! `Proxy-Authenticate`; the answer goes in `Authorization` or
//! `Proxy-Authorization` accordingly (RFC 3261 §22.2, §22.3). The values
//! are the same; this module does not care which header carries them.
//!
//! Not supported: SHA-512-256, `userhash`, `username*` and `charset`
//! (RFC 7616 §3.4.4, §4), and `Authentication-Info` (RFC 2617 §3.2.3).
//! A challenge naming an unsupported algorithm is refused with
//! [`Error::UnsupportedAlgorithm`] so that the client picks another one.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use cpimgate_sip::digest::{Challenge, DigestClient, DigestRequest, DigestServer, Verdict};
//!
//! let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
//! let server = DigestServer::new("gw.example.com", b"a long random secret".to_vec());
//! let header = server.challenge(now, false).to_header_value();
//!
//! let challenge = Challenge::parse(&header).expect("our own challenge parses");
//! let mut client = DigestClient::new("alice", "secret");
//! let request = DigestRequest { method: "MESSAGE", uri: "sip:bob@gw.example.com", body: b"hi" };
//! let credentials = client
//!     .authorize(&challenge, &request, &mut || "0a4f113b".to_owned())
//!     .expect("challenge is supported");
//!
//! let lookup = |user: &str, _realm: &str| (user == "alice").then(|| "secret".to_owned());
//! let verdict = server.verify(now, &request, &credentials, &lookup);
//! assert_eq!(verdict, Verdict::Authenticated { username: "alice".into() });
//! ```

mod challenge;
mod client;
mod params;
mod server;

#[cfg(test)]
mod tests;

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256};

pub use self::challenge::{Challenge, Credentials};
pub use self::client::{CnonceSource, DigestClient, RandomCnonce};
pub use self::server::{DigestServer, PasswordLookup, Verdict};

/// The hash algorithm of a challenge (RFC 7616 §3.3, RFC 2617 §3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, the default when no algorithm is given.
    Md5,
    /// `MD5-sess`: A1 hashed once per nonce and cnonce.
    Md5Sess,
    /// `SHA-256` (RFC 7616).
    Sha256,
    /// `SHA-256-sess` (RFC 7616).
    Sha256Sess,
}

impl Algorithm {
    /// All supported algorithms, strongest first.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Md5,
        Algorithm::Md5Sess,
    ];

    /// The token used in the `algorithm` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Reads an `algorithm` token; case-insensitive (RFC 7616 §3.3).
    pub fn from_token(token: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(token))
    }

    /// Whether A1 is the session variant (RFC 7616 §3.4.2).
    pub fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// A preference rank, higher is stronger (RFC 7616 §3.7: SHA-256
    /// before MD5); plain before -sess at equal hash.
    fn strength(self) -> u8 {
        match self {
            Algorithm::Sha256 => 4,
            Algorithm::Sha256Sess => 3,
            Algorithm::Md5 => 2,
            Algorithm::Md5Sess => 1,
        }
    }

    /// `H(data)` as lowercase hex (RFC 7616 §3.4.1).
    pub(crate) fn hash(self, parts: &[&[u8]]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => {
                let mut h = Md5::new();
                for part in parts {
                    h.update(part);
                }
                hex(&h.finalize())
            }
            Algorithm::Sha256 | Algorithm::Sha256Sess => {
                let mut h = Sha256::new();
                for part in parts {
                    h.update(part);
                }
                hex(&h.finalize())
            }
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Quality of protection (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: authentication only.
    Auth,
    /// `auth-int`: authentication and integrity of the body.
    AuthInt,
}

impl Qop {
    /// The token.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    /// Reads a qop token; case-insensitive.
    pub fn from_token(token: &str) -> Option<Self> {
        [Qop::Auth, Qop::AuthInt]
            .into_iter()
            .find(|q| q.as_str().eq_ignore_ascii_case(token))
    }
}

/// The request being authenticated: what A2 is made of (RFC 7616 §3.4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestRequest<'a> {
    /// The request method, `REGISTER`, `MESSAGE`, ...
    pub method: &'a str,
    /// The `uri` parameter: the Request-URI (RFC 3261 §22.4 item 3).
    pub uri: &'a str,
    /// The message body, hashed for `qop=auth-int`; empty when there is
    /// none (RFC 3261 §22.4 item 7).
    pub body: &'a [u8],
}

/// Why a header value could not be read or an answer not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Happens when the value is empty or starts with something other than
    /// an auth-scheme token.
    #[error("no authentication scheme")]
    MissingScheme,
    /// Happens when the scheme is not Digest (SIP refuses Basic, RFC 3261
    /// §22.4).
    #[error("scheme {0:?} is not Digest")]
    NotDigest(String),
    /// Happens when the parameter list breaks the grammar at `offset`.
    #[error("malformed Digest parameters at byte {offset}: expected {expected}")]
    Syntax {
        /// Byte offset in the header value.
        offset: usize,
        /// What was expected there.
        expected: &'static str,
    },
    /// Happens when a parameter appears twice.
    #[error("parameter {0:?} appears twice")]
    DuplicateParam(String),
    /// Happens when a required parameter is missing.
    #[error("parameter {0:?} is missing")]
    MissingParam(&'static str),
    /// Happens when a parameter's value is not of its syntax (`nc` not 8
    /// hex digits, `qop` of the credentials not a known token).
    #[error("parameter {name:?} has an invalid value")]
    InvalidParam {
        /// The parameter.
        name: &'static str,
    },
    /// Happens when the algorithm is not one of [`Algorithm`]: RFC 2617
    /// §3.2.1 says to ignore such a challenge.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// Happens when the challenge offers qop values, none of them known.
    #[error("no supported qop among {0:?}")]
    UnsupportedQop(String),
    /// Happens when a -sess algorithm comes without qop: its A1 needs a
    /// cnonce, which may only be sent with qop (RFC 3261 §22.4 item 8).
    #[error("{0} needs qop")]
    SessionWithoutQop(Algorithm),
    /// Happens when a value to be written contains control characters
    /// (a quoted-string cannot carry them, RFC 3261 §25).
    #[error("{0} contains control characters")]
    ControlCharacters(&'static str),
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The parts of a response computation (RFC 7616 §3.4.1, RFC 2617 §3.2.2).
pub(crate) struct ResponseInput<'a> {
    pub algorithm: Algorithm,
    pub username: &'a str,
    pub realm: &'a str,
    pub password: &'a str,
    pub nonce: &'a str,
    pub cnonce: Option<&'a str>,
    pub nc: Option<u32>,
    pub qop: Option<Qop>,
    pub request: &'a DigestRequest<'a>,
}

/// The `response` parameter:
/// `KD(H(A1), nonce:nc:cnonce:qop:H(A2))` with qop,
/// `KD(H(A1), nonce:H(A2))` without (RFC 2069 compatibility).
pub(crate) fn compute_response(input: &ResponseInput<'_>) -> String {
    let alg = input.algorithm;
    let cnonce = input.cnonce.unwrap_or_default();
    let mut ha1 = alg.hash(&[
        input.username.as_bytes(),
        b":",
        input.realm.as_bytes(),
        b":",
        input.password.as_bytes(),
    ]);
    if alg.is_session() {
        // RFC 7616 §3.4.2: A1 = H(user:realm:passwd):nonce:cnonce.
        ha1 = alg.hash(&[
            ha1.as_bytes(),
            b":",
            input.nonce.as_bytes(),
            b":",
            cnonce.as_bytes(),
        ]);
    }
    let ha2 = match input.qop {
        // RFC 7616 §3.4.3: A2 = Method:request-uri:H(entity-body).
        Some(Qop::AuthInt) => {
            let body = alg.hash(&[input.request.body]);
            alg.hash(&[
                input.request.method.as_bytes(),
                b":",
                input.request.uri.as_bytes(),
                b":",
                body.as_bytes(),
            ])
        }
        _ => alg.hash(&[
            input.request.method.as_bytes(),
            b":",
            input.request.uri.as_bytes(),
        ]),
    };
    match input.qop {
        Some(qop) => {
            let nc = format!("{:08x}", input.nc.unwrap_or(1));
            alg.hash(&[
                ha1.as_bytes(),
                b":",
                input.nonce.as_bytes(),
                b":",
                nc.as_bytes(),
                b":",
                cnonce.as_bytes(),
                b":",
                qop.as_str().as_bytes(),
                b":",
                ha2.as_bytes(),
            ])
        }
        None => alg.hash(&[
            ha1.as_bytes(),
            b":",
            input.nonce.as_bytes(),
            b":",
            ha2.as_bytes(),
        ]),
    }
}
