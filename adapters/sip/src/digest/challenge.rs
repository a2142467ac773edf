//! The two header values: challenge (`WWW-Authenticate`,
//! `Proxy-Authenticate`, RFC 3261 §20.44, §20.27) and credentials
//! (`Authorization`, `Proxy-Authorization`, RFC 3261 §20.7, §20.28).

use std::fmt::Write as _;

use super::params;
use super::{Algorithm, Error, Qop};

/// A Digest challenge (RFC 7616 §3.3, RFC 2617 §3.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space, shown to users.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// Opaque data the client returns unchanged.
    pub opaque: Option<String>,
    /// The previous request's nonce had expired but its digest was right:
    /// retry without asking the user for the password again.
    pub stale: bool,
    /// The algorithm; MD5 when absent.
    pub algorithm: Algorithm,
    /// The qop values offered, known ones only; empty for RFC 2069
    /// servers. RFC 3261 §22.4 item 8: servers always send one.
    pub qop: Vec<Qop>,
    /// The `domain` parameter, kept as written.
    pub domain: Option<String>,
}

impl Challenge {
    /// Reads a `WWW-Authenticate` / `Proxy-Authenticate` header value.
    ///
    /// Unknown parameters are ignored (RFC 7616 §3.3); an unknown
    /// algorithm is an error, since such a challenge is to be ignored
    /// (RFC 2617 §3.2.1).
    pub fn parse(value: &str) -> Result<Self, Error> {
        let list = params::parse(value)?;
        let algorithm = match params::get(&list, "algorithm") {
            None => Algorithm::Md5,
            Some(token) => Algorithm::from_token(token)
                .ok_or_else(|| Error::UnsupportedAlgorithm(token.to_owned()))?,
        };
        let qop = match params::get(&list, "qop") {
            None => Vec::new(),
            Some(offered) => {
                let known: Vec<Qop> = offered
                    .split(',')
                    .filter_map(|t| Qop::from_token(t.trim()))
                    .collect();
                if known.is_empty() {
                    return Err(Error::UnsupportedQop(offered.to_owned()));
                }
                known
            }
        };
        Ok(Challenge {
            realm: params::require(&list, "realm")?.to_owned(),
            nonce: params::require(&list, "nonce")?.to_owned(),
            opaque: params::get(&list, "opaque").map(str::to_owned),
            // RFC 2617 §3.2.1: stale is TRUE case-insensitively; anything
            // else means false.
            stale: params::get(&list, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            algorithm,
            qop,
            domain: params::get(&list, "domain").map(str::to_owned),
        })
    }

    /// Writes the header value, e.g. `Digest realm="x", nonce="y",
    /// algorithm=SHA-256, qop="auth"`.
    pub fn to_header_value(&self) -> String {
        let mut out = String::from("Digest realm=");
        params::push_quoted(&mut out, &self.realm);
        if let Some(domain) = &self.domain {
            out.push_str(", domain=");
            params::push_quoted(&mut out, domain);
        }
        out.push_str(", nonce=");
        params::push_quoted(&mut out, &self.nonce);
        if let Some(opaque) = &self.opaque {
            out.push_str(", opaque=");
            params::push_quoted(&mut out, opaque);
        }
        if self.stale {
            out.push_str(", stale=TRUE");
        }
        let _ = write!(out, ", algorithm={}", self.algorithm);
        if !self.qop.is_empty() {
            let offered: Vec<&str> = self.qop.iter().map(|q| q.as_str()).collect();
            out.push_str(", qop=");
            params::push_quoted(&mut out, &offered.join(","));
        }
        out
    }
}

/// Digest credentials (RFC 7616 §3.4, RFC 2617 §3.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user's name in the realm.
    pub username: String,
    /// The realm of the challenge answered.
    pub realm: String,
    /// The nonce of the challenge answered.
    pub nonce: String,
    /// The Request-URI (RFC 3261 §22.4 item 3), always quoted in SIP
    /// (item 2).
    pub uri: String,
    /// The computed digest, lowercase hex.
    pub response: String,
    /// The algorithm, when the challenge named one.
    pub algorithm: Option<Algorithm>,
    /// The client nonce; present exactly when `qop` is.
    pub cnonce: Option<String>,
    /// The challenge's opaque, returned.
    pub opaque: Option<String>,
    /// The qop chosen; absent for RFC 2069 compatibility.
    pub qop: Option<Qop>,
    /// The nonce count; present exactly when `qop` is.
    pub nc: Option<u32>,
}

impl Credentials {
    /// Reads an `Authorization` / `Proxy-Authorization` header value.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let list = params::parse(value)?;
        let algorithm = match params::get(&list, "algorithm") {
            None => None,
            Some(token) => Some(
                Algorithm::from_token(token)
                    .ok_or_else(|| Error::UnsupportedAlgorithm(token.to_owned()))?,
            ),
        };
        let qop = match params::get(&list, "qop") {
            None => None,
            Some(token) => Some(Qop::from_token(token).ok_or(Error::InvalidParam { name: "qop" })?),
        };
        let nc = match params::get(&list, "nc") {
            None => None,
            Some(hex) => Some(parse_nc(hex)?),
        };
        let credentials = Credentials {
            username: params::require(&list, "username")?.to_owned(),
            realm: params::require(&list, "realm")?.to_owned(),
            nonce: params::require(&list, "nonce")?.to_owned(),
            uri: params::require(&list, "uri")?.to_owned(),
            response: params::require(&list, "response")?.to_owned(),
            algorithm,
            cnonce: params::get(&list, "cnonce").map(str::to_owned),
            opaque: params::get(&list, "opaque").map(str::to_owned),
            qop,
            nc,
        };
        // RFC 2617 §3.2.2: cnonce and nc go with qop, and only with it.
        if credentials.qop.is_some() {
            if credentials.cnonce.is_none() {
                return Err(Error::MissingParam("cnonce"));
            }
            if credentials.nc.is_none() {
                return Err(Error::MissingParam("nc"));
            }
        }
        Ok(credentials)
    }

    /// Writes the header value in the order of RFC 3261 §22.4's examples.
    /// Fails if a value cannot be quoted.
    pub fn to_header_value(&self) -> Result<String, Error> {
        let quoted: [(&'static str, Option<&str>); 6] = [
            ("username", Some(&self.username)),
            ("realm", Some(&self.realm)),
            ("nonce", Some(&self.nonce)),
            ("uri", Some(&self.uri)),
            ("response", Some(&self.response)),
            ("cnonce", self.cnonce.as_deref()),
        ];
        let mut out = String::from("Digest ");
        for (i, (name, value)) in quoted.iter().enumerate() {
            let Some(value) = value else { continue };
            if !params::is_quotable(value) {
                return Err(Error::ControlCharacters(name));
            }
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(name);
            out.push('=');
            params::push_quoted(&mut out, value);
        }
        if let Some(opaque) = &self.opaque {
            if !params::is_quotable(opaque) {
                return Err(Error::ControlCharacters("opaque"));
            }
            out.push_str(", opaque=");
            params::push_quoted(&mut out, opaque);
        }
        if let Some(algorithm) = self.algorithm {
            let _ = write!(out, ", algorithm={algorithm}");
        }
        if let Some(qop) = self.qop {
            let _ = write!(out, ", qop={}", qop.as_str());
        }
        if let Some(nc) = self.nc {
            let _ = write!(out, ", nc={nc:08x}");
        }
        Ok(out)
    }
}

/// `nc-value = 8LHEX` (RFC 2617 §3.2.2).
fn parse_nc(text: &str) -> Result<u32, Error> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidParam { name: "nc" });
    }
    u32::from_str_radix(text, 16).map_err(|_| Error::InvalidParam { name: "nc" })
}
