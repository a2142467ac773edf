//! SIP and SIPS URIs (RFC 3261 §19.1, grammar in §25.1).
//!
//! ```text
//! SIP-URI   = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
//! userinfo  = ( user / telephone-subscriber ) [ ":" password ] "@"
//! user      = 1*( unreserved / escaped / user-unreserved )
//! user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
//! password  = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
//! uri-parameter = pname [ "=" pvalue ]   ; 1*paramchar each
//! paramchar = param-unreserved / unreserved / escaped
//! param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
//! headers   = "?" header *( "&" header )
//! header    = hname "=" hvalue
//! hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
//! ```

use std::fmt;
use std::str::FromStr;

use super::AddressError;
use super::host::{Host, parse_hostport};
use super::pct::{self, Percent, unreserved_2396};

fn user_char(b: u8) -> bool {
    unreserved_2396(b) || b"&=+$,;?/".contains(&b)
}

fn password_char(b: u8) -> bool {
    unreserved_2396(b) || b"&=+$,".contains(&b)
}

fn param_char(b: u8) -> bool {
    unreserved_2396(b) || b"[]/:&+$".contains(&b)
}

fn header_char(b: u8) -> bool {
    unreserved_2396(b) || b"[]/?:+$".contains(&b)
}

/// A `sip:` or `sips:` URI.
///
/// Components that the grammar percent-encodes (user, password, parameter
/// names and values, headers) are stored decoded and encoded again on
/// output, so that the RFC 7701 style nickname URI below round-trips.
/// Derived equality is structural; [`SipUri::sip_equivalent`] implements
/// the comparison of RFC 3261 §19.1.4.
///
/// ```
/// use cpimgate_model::address::SipUri;
/// let u: SipUri = "sip:Alice%20in%20wonderland@chat.example.com".parse().unwrap();
/// assert_eq!(u.user(), Some("Alice in wonderland"));
/// assert_eq!(u.to_string(), "sip:Alice%20in%20wonderland@chat.example.com");
///
/// let u: SipUri = "sip:alice:secretword@atlanta.com;transport=tcp".parse().unwrap();
/// assert_eq!(u.password(), Some("secretword"));
/// assert_eq!(u.param("Transport"), Some(Some("tcp")));
///
/// let a: SipUri = "sip:%61lice@atlanta.com;transport=TCP".parse().unwrap();
/// let b: SipUri = "sip:alice@AtLanTa.CoM;Transport=tcp".parse().unwrap();
/// assert!(a.sip_equivalent(&b));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SipUri {
    secure: bool,
    user: Option<String>,
    password: Option<String>,
    host: Host,
    port: Option<u16>,
    params: Vec<(String, Option<String>)>,
    headers: Vec<(String, String)>,
}

impl SipUri {
    /// A `sip:` URI `user@host` (no user when `user` is `None`).
    ///
    /// ```
    /// use cpimgate_model::address::SipUri;
    /// let u = SipUri::new(Some("alice@xmpp.example.org"), "gw.example.com").unwrap();
    /// assert_eq!(u.to_string(), "sip:alice%40xmpp.example.org@gw.example.com");
    /// ```
    pub fn new(user: Option<&str>, host: &str) -> Result<SipUri, AddressError> {
        if user.is_some_and(str::is_empty) {
            return Err(AddressError::Invalid {
                what: "SIP user",
                reason: "empty",
            });
        }
        Ok(SipUri {
            secure: false,
            user: user.map(str::to_owned),
            password: None,
            host: host.parse()?,
            port: None,
            params: Vec::new(),
            headers: Vec::new(),
        })
    }

    /// The same URI as `sips:` (`true`) or `sip:` (`false`).
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The same URI with a port.
    pub fn with_port(mut self, port: Option<u16>) -> Self {
        self.port = port;
        self
    }

    /// The same URI with one more uri-parameter (`;name` or `;name=value`).
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> Result<Self, AddressError> {
        if name.is_empty() {
            return Err(AddressError::Invalid {
                what: "SIP URI parameter",
                reason: "empty name",
            });
        }
        self.params
            .push((name.to_owned(), value.map(str::to_owned)));
        Ok(self)
    }

    /// The same URI with one more header (`?name=value`).
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, AddressError> {
        if name.is_empty() {
            return Err(AddressError::Invalid {
                what: "SIP URI header",
                reason: "empty name",
            });
        }
        self.headers.push((name.to_owned(), value.to_owned()));
        Ok(self)
    }

    /// Whether this is a `sips:` URI.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The user, decoded.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The password, decoded.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port, when one is written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The uri-parameters in the order written, decoded.
    pub fn params(&self) -> &[(String, Option<String>)] {
        &self.params
    }

    /// The first uri-parameter of that name (compared without regard to
    /// case): `Some(None)` for a parameter without value like `lr`.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The headers in the order written, decoded.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Whether two URIs are equivalent by the rules of RFC 3261 §19.1.4:
    /// never between `sip:` and `sips:`; userinfo case-sensitive; host
    /// case-insensitive; port present in both or neither; parameters
    /// present in both must match, `user`, `ttl`, `method`, `maddr` and
    /// `transport` must be present in both or neither, other parameters
    /// present in one only are ignored; headers must match both ways.
    pub fn sip_equivalent(&self, other: &SipUri) -> bool {
        if self.secure != other.secure
            || self.user != other.user
            || self.password != other.password
            || !self.host.eq_ignore_case(&other.host)
            || self.port != other.port
        {
            return false;
        }
        let params_match = |a: &SipUri, b: &SipUri| {
            a.params.iter().all(|(name, value)| match b.param(name) {
                Some(v) => match (value.as_deref(), v) {
                    (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
                    (x, y) => x == y,
                },
                None => !["user", "ttl", "method", "maddr", "transport"]
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(name)),
            })
        };
        let headers_match = |a: &SipUri, b: &SipUri| {
            a.headers.iter().all(|(name, value)| {
                b.headers
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value)
            })
        };
        params_match(self, other)
            && params_match(other, self)
            && self.headers.len() == other.headers.len()
            && headers_match(self, other)
            && headers_match(other, self)
    }

    /// Parses what follows `sip:` / `sips:`, found at byte `base`.
    pub(super) fn parse_rest(s: &str, base: usize, secure: bool) -> Result<SipUri, AddressError> {
        // The user may hold ';', '?' and '/', but never a raw '@' (nor may
        // anything else), so the first '@' ends the userinfo.
        let (userinfo, rest, rest_base) = match s.find('@') {
            Some(at) => (Some(&s[..at]), &s[at + 1..], base + at + 1),
            None => (None, s, base),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match ui.find(':') {
                    Some(c) => (&ui[..c], Some((&ui[c + 1..], base + c + 1))),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(AddressError::Syntax {
                        offset: base,
                        expected: "a user before '@'",
                    });
                }
                let u = pct::decode(
                    u,
                    base,
                    user_char,
                    false,
                    Percent::Strict,
                    "a user character",
                )?;
                let p = p
                    .map(|(p, at)| {
                        pct::decode(
                            p,
                            at,
                            password_char,
                            false,
                            Percent::Strict,
                            "a password character",
                        )
                    })
                    .transpose()?;
                (Some(u), p)
            }
        };
        let end_hostport = rest.find([';', '?']).unwrap_or(rest.len());
        let (host, port) = parse_hostport(&rest[..end_hostport], rest_base)?;
        let after = &rest[end_hostport..];
        let after_base = rest_base + end_hostport;
        let (params_str, headers_str) = match after.find('?') {
            Some(q) => (&after[..q], Some((&after[q + 1..], after_base + q + 1))),
            None => (after, None),
        };
        let mut params = Vec::new();
        let mut offset = after_base;
        for p in params_str.split(';').skip(1) {
            offset += 1;
            params.push(parse_pair(p, offset, param_char, false)?);
            offset += p.len();
        }
        let mut headers = Vec::new();
        if let Some((h, hbase)) = headers_str {
            let mut offset = hbase;
            for p in h.split('&') {
                let (name, value) = parse_pair(p, offset, header_char, true)?;
                headers.push((name, value.unwrap_or_default()));
                offset += p.len() + 1;
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }
}

/// `name[=value]` at byte `base`; with `need_value`, the `=` is required.
fn parse_pair(
    s: &str,
    base: usize,
    class: fn(u8) -> bool,
    need_value: bool,
) -> Result<(String, Option<String>), AddressError> {
    let (name, value) = match s.find('=') {
        Some(e) => (&s[..e], Some((&s[e + 1..], base + e + 1))),
        None if need_value => {
            return Err(AddressError::Syntax {
                offset: base + s.len(),
                expected: "'=' after a header name",
            });
        }
        None => (s, None),
    };
    if name.is_empty() {
        return Err(AddressError::Syntax {
            offset: base,
            expected: "a parameter or header name",
        });
    }
    let name = pct::decode(
        name,
        base,
        class,
        false,
        Percent::Strict,
        "a parameter or header character",
    )?;
    let value = value
        .map(|(v, at)| {
            pct::decode(
                v,
                at,
                class,
                false,
                Percent::Strict,
                "a parameter or header character",
            )
        })
        .transpose()?;
    Ok((name, value))
}

impl FromStr for SipUri {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        pct::check_len(s)?;
        if let Some(rest) = pct::strip_scheme(s, "sip") {
            SipUri::parse_rest(rest, 4, false)
        } else if let Some(rest) = pct::strip_scheme(s, "sips") {
            SipUri::parse_rest(rest, 5, true)
        } else {
            Err(AddressError::UnknownScheme { offset: 0 })
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            pct::encode(f, user, user_char)?;
            if let Some(p) = &self.password {
                f.write_str(":")?;
                pct::encode(f, p, password_char)?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for (name, value) in &self.params {
            f.write_str(";")?;
            pct::encode(f, name, param_char)?;
            if let Some(v) = value {
                f.write_str("=")?;
                pct::encode(f, v, param_char)?;
            }
        }
        for (i, (name, value)) in self.headers.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            pct::encode(f, name, header_char)?;
            f.write_str("=")?;
            pct::encode(f, value, header_char)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(s: &str) -> SipUri {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// RFC 3261 §19.1.3, every example.
    #[test]
    fn rfc3261_19_1_3_examples() {
        let u = p("sip:alice@atlanta.com");
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.host(), &Host::Domain("atlanta.com".into()));

        let u = p("sip:alice:secretword@atlanta.com;transport=tcp");
        assert_eq!(u.password(), Some("secretword"));
        assert_eq!(u.params(), &[("transport".into(), Some("tcp".into()))]);

        let u = p("sips:alice@atlanta.com?subject=project%20x&priority=urgent");
        assert!(u.is_secure());
        assert_eq!(
            u.headers(),
            &[
                ("subject".into(), "project x".into()),
                ("priority".into(), "urgent".into())
            ]
        );

        let u = p("sip:+1-212-555-1212:1234@gateway.com;user=phone");
        assert_eq!(u.user(), Some("+1-212-555-1212"));
        assert_eq!(u.password(), Some("1234"));
        assert_eq!(u.param("user"), Some(Some("phone")));

        let u = p("sips:1212@gateway.com");
        assert_eq!(u.user(), Some("1212"));

        let u = p("sip:alice@192.0.2.4");
        assert_eq!(u.host(), &Host::Ipv4("192.0.2.4".parse().unwrap()));

        let u = p("sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com");
        assert_eq!(u.user(), None);
        assert_eq!(u.param("method"), Some(Some("REGISTER")));
        assert_eq!(u.headers(), &[("to".into(), "alice@atlanta.com".into())]);

        // "The last sample URI above has a user field value of
        // "alice;day=tuesday"."
        let u = p("sip:alice;day=tuesday@atlanta.com");
        assert_eq!(u.user(), Some("alice;day=tuesday"));
        assert!(u.params().is_empty());

        for s in [
            "sip:alice@atlanta.com",
            "sip:alice:secretword@atlanta.com;transport=tcp",
            "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:+1-212-555-1212:1234@gateway.com;user=phone",
            "sips:1212@gateway.com",
            "sip:alice@192.0.2.4",
            "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
            "sip:alice;day=tuesday@atlanta.com",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    /// RFC 3261 §19.1.4, the sets of equivalent URIs.
    #[test]
    fn rfc3261_19_1_4_equivalent() {
        for (a, b) in [
            (
                "sip:%61lice@atlanta.com;transport=TCP",
                "sip:alice@AtLanTa.CoM;Transport=tcp",
            ),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
            (
                "sip:carol@chicago.com;newparam=5",
                "sip:carol@chicago.com;security=on",
            ),
            (
                "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            ),
            (
                "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
            ),
        ] {
            assert!(p(a).sip_equivalent(&p(b)), "{a} ~ {b}");
            assert!(p(b).sip_equivalent(&p(a)), "{b} ~ {a}");
        }
    }

    /// RFC 3261 §19.1.4, the sets of URIs that are not equivalent.
    #[test]
    fn rfc3261_19_1_4_not_equivalent() {
        for (a, b) in [
            (
                "SIP:ALICE@AtLanTa.CoM;Transport=udp",
                "sip:alice@AtLanTa.CoM;Transport=UDP",
            ),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            (
                "sip:bob@biloxi.com",
                "sip:bob@biloxi.com:6000;transport=tcp",
            ),
            (
                "sip:carol@chicago.com",
                "sip:carol@chicago.com?Subject=next%20meeting",
            ),
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
            (
                "sip:carol@chicago.com;security=on",
                "sip:carol@chicago.com;security=off",
            ),
            ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
        ] {
            assert!(!p(a).sip_equivalent(&p(b)), "{a} !~ {b}");
            assert!(!p(b).sip_equivalent(&p(a)), "{b} !~ {a}");
        }
        // "Note that equality is not transitive".
        assert!(
            p("sip:carol@chicago.com").sip_equivalent(&p("sip:carol@chicago.com;security=off"))
        );
    }

    /// RFC 7701 §9.2 nicknames ("Alice the great", "Alice in Wonderland")
    /// as the nickname URIs of DESIGN.md, and the XEP-0106 §6.3 sip: URI.
    #[test]
    fn nickname_uris() {
        for (nick, s) in [
            (
                "Alice the great",
                "sip:Alice%20the%20great@chat.example.com",
            ),
            (
                "Alice in Wonderland",
                "sip:Alice%20in%20Wonderland@chat.example.com",
            ),
        ] {
            let u = SipUri::new(Some(nick), "chat.example.com").unwrap();
            assert_eq!(u.to_string(), s);
            assert_eq!(p(s), u);
        }
        let u = p("sip:here%27s_a_wild_%26_%2Fcr%25zy%2F_address@example.com");
        assert_eq!(u.user(), Some("here's_a_wild_&_/cr%zy/_address"));
        // RFC 3261 lets ' & / stand unescaped in a user; they are written so.
        assert_eq!(
            u.to_string(),
            "sip:here's_a_wild_&_/cr%25zy/_address@example.com"
        );
    }

    #[test]
    fn hosts_ports_and_params() {
        let u = p("sip:alice@[2001:db8::10]:5070;lr;maddr=239.255.255.1");
        assert_eq!(u.host(), &Host::Ipv6("2001:db8::10".parse().unwrap()));
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.param("LR"), Some(None));
        assert_eq!(
            u.to_string(),
            "sip:alice@[2001:db8::10]:5070;lr;maddr=239.255.255.1"
        );
        assert_eq!(
            p("sip:host.example.com.").to_string(),
            "sip:host.example.com."
        );
    }

    #[test]
    fn errors_point_at_the_byte() {
        let e = |s: &str| s.parse::<SipUri>().unwrap_err();
        assert_eq!(
            e("sip:alice@atlanta.com:99999"),
            AddressError::Port { offset: 22 }
        );
        assert_eq!(e("sip:al ice@atlanta.com").offset(), Some(6));
        assert_eq!(e("sip:@atlanta.com").offset(), Some(4));
        assert_eq!(
            e("sip:alice@"),
            AddressError::Syntax {
                offset: 10,
                expected: "a host name"
            }
        );
        assert_eq!(e("sip:a%zz@b.com"), AddressError::BadEscape { offset: 5 });
        assert_eq!(
            e("sip:a@[::1"),
            AddressError::Syntax {
                offset: 10,
                expected: "']' closing an IPv6 reference"
            }
        );
        assert_eq!(e("sip:a@b.com;=x").offset(), Some(12));
        assert_eq!(e("sip:a@b.com?x").offset(), Some(13));
        assert!(matches!(
            e("sip:a@1.2.3.999"),
            AddressError::Syntax { offset: 6, .. }
        ));
        assert!(matches!(
            e("sip:a@b.-c.com"),
            AddressError::Syntax { offset: 8, .. }
        ));
        assert!(matches!(e("sip:a@b.com.1"), AddressError::Syntax { .. }));
        assert_eq!(e("http://x"), AddressError::UnknownScheme { offset: 0 });
    }
}
