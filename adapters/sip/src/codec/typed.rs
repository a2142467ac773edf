//! Typed accessors of [`Message`], parsed on demand (RFC 3261 §20).

use super::addr::NameAddrRef;
use super::error::{ErrorKind, ParseError};
use super::headers::{
    Header, HeaderName, Params, TrimLws, find_byte, is_lws, is_token, split_byte, split_list,
};
use super::message::Message;
use super::via::Via;

/// CSeq (RFC 3261 §20.16): a sequence number and a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number, a 32-bit unsigned integer.
    pub seq: u32,
    /// The method, case-sensitive.
    pub method: &'a str,
}

/// Content-Type (RFC 3261 §20.15): `type/subtype;params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentType<'a> {
    /// m-type, as written (compare without regard to case).
    pub mtype: &'a str,
    /// m-subtype, as written.
    pub subtype: &'a str,
    /// m-parameters.
    pub params: Params<'a>,
}

impl ContentType<'_> {
    /// Whether this is `mtype/subtype`, without regard to case.
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// The Contact header value (RFC 3261 §20.10): `*` or addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (REGISTER removing all bindings, §10.2.2).
    Star,
    /// The addresses, from every Contact line, in order.
    Addresses(Vec<NameAddrRef<'a>>),
}

fn typed_err(h: &Header<'_>, reason: &'static str) -> ParseError {
    ParseError::header(h.offset(), h.kind().as_str(), reason)
}

fn digits<T: std::str::FromStr>(h: &Header<'_>, s: &str) -> Result<T, ParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(typed_err(h, "not a decimal number"));
    }
    s.parse().map_err(|_| typed_err(h, "number out of range"))
}

impl<'a> Message<'a> {
    /// The header that may appear once: the first line, or
    /// [`ErrorKind::Duplicate`] when another line has a different value.
    fn single(&self, name: HeaderName) -> Result<Option<&Header<'a>>, ParseError> {
        let mut found = self.headers_named(name);
        let Some(first) = found.next() else {
            return Ok(None);
        };
        if let Some(other) = found.find(|h| h.value() != first.value()) {
            return Err(ParseError::new(
                other.offset(),
                ErrorKind::Duplicate {
                    header: name.as_str(),
                },
            ));
        }
        Ok(Some(first))
    }

    /// Every Via value in order, from every Via line (RFC 3261 §20.42).
    pub fn via(&self) -> impl Iterator<Item = Result<Via<'_>, ParseError>> {
        self.headers_named(HeaderName::Via).flat_map(|h| {
            split_list(h.value()).map(move |v| Via::parse(v).map_err(|r| typed_err(h, r)))
        })
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Result<Option<Via<'_>>, ParseError> {
        self.via().next().transpose()
    }

    fn addr(&self, name: HeaderName) -> Result<Option<NameAddrRef<'_>>, ParseError> {
        let Some(h) = self.single(name)? else {
            return Ok(None);
        };
        NameAddrRef::parse(h.value())
            .map(Some)
            .map_err(|e| typed_err(h, e.0))
    }

    /// From (RFC 3261 §20.20).
    pub fn from(&self) -> Result<Option<NameAddrRef<'_>>, ParseError> {
        self.addr(HeaderName::From)
    }

    /// To (RFC 3261 §20.39).
    pub fn to(&self) -> Result<Option<NameAddrRef<'_>>, ParseError> {
        self.addr(HeaderName::To)
    }

    /// Call-ID (RFC 3261 §20.8): `word [ "@" word ]`.
    pub fn call_id(&self) -> Result<Option<&str>, ParseError> {
        let Some(h) = self.single(HeaderName::CallId)? else {
            return Ok(None);
        };
        let v = h.value();
        if v.is_empty() || v.contains([' ', '\t']) {
            return Err(typed_err(h, "not a word [\"@\" word]"));
        }
        Ok(Some(v))
    }

    /// CSeq (RFC 3261 §20.16): `1*DIGIT LWS Method`.
    pub fn cseq(&self) -> Result<Option<CSeq<'_>>, ParseError> {
        let Some(h) = self.single(HeaderName::CSeq)? else {
            return Ok(None);
        };
        let v = h.value();
        let (seq, method) = v
            .split_once(is_lws)
            .ok_or_else(|| typed_err(h, "not a number and a method"))?;
        let method = method.trim_lws_start();
        if !is_token(method) {
            return Err(typed_err(h, "the method is not a token"));
        }
        Ok(Some(CSeq {
            seq: digits(h, seq)?,
            method,
        }))
    }

    /// Max-Forwards (RFC 3261 §20.22).
    pub fn max_forwards(&self) -> Result<Option<u32>, ParseError> {
        self.number(HeaderName::MaxForwards)
    }

    /// Content-Length (RFC 3261 §20.14).
    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        self.number(HeaderName::ContentLength)
    }

    /// Expires (RFC 3261 §20.19), delta-seconds.
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        self.number(HeaderName::Expires)
    }

    fn number<T: std::str::FromStr>(&self, name: HeaderName) -> Result<Option<T>, ParseError> {
        match self.single(name)? {
            None => Ok(None),
            Some(h) => digits(h, h.value()).map(Some),
        }
    }

    /// Content-Type (RFC 3261 §20.15).
    pub fn content_type(&self) -> Result<Option<ContentType<'_>>, ParseError> {
        let Some(h) = self.single(HeaderName::ContentType)? else {
            return Ok(None);
        };
        let v = h.value();
        let end = find_byte(v, b';').unwrap_or(v.len());
        let (media, params) = v.split_at(end);
        let (mtype, subtype) =
            split_byte(media, b'/').ok_or_else(|| typed_err(h, "not type/subtype"))?;
        let (mtype, subtype) = (mtype.trim_lws(), subtype.trim_lws());
        if !is_token(mtype) || !is_token(subtype) {
            return Err(typed_err(h, "type or subtype is not a token"));
        }
        Ok(Some(ContentType {
            mtype,
            subtype,
            params: Params::new(params),
        }))
    }

    /// Date (RFC 3261 §20.17), unparsed (an RFC 1123 date).
    pub fn date(&self) -> Option<&str> {
        self.header(HeaderName::Date).map(Header::value)
    }

    /// Contact (RFC 3261 §20.10), from every Contact line.
    pub fn contact(&self) -> Result<Option<Contact<'_>>, ParseError> {
        let mut out = Vec::new();
        let mut any = false;
        for (h, v) in self.list(HeaderName::Contact) {
            any = true;
            if v == "*" {
                return Ok(Some(Contact::Star));
            }
            out.push(NameAddrRef::parse(v).map_err(|e| typed_err(h, e.0))?);
        }
        Ok(any.then_some(Contact::Addresses(out)))
    }

    /// Route (RFC 3261 §20.34), every value in order.
    pub fn route(&self) -> Result<Vec<NameAddrRef<'_>>, ParseError> {
        self.addr_list(HeaderName::Route)
    }

    /// Record-Route (RFC 3261 §20.30), every value in order.
    pub fn record_route(&self) -> Result<Vec<NameAddrRef<'_>>, ParseError> {
        self.addr_list(HeaderName::RecordRoute)
    }

    fn addr_list(&self, name: HeaderName) -> Result<Vec<NameAddrRef<'_>>, ParseError> {
        self.list(name)
            .map(|(h, v)| NameAddrRef::parse(v).map_err(|e| typed_err(h, e.0)))
            .collect()
    }

    /// The elements of a list header across all its lines (RFC 3261
    /// §7.3.1), with the line each comes from.
    pub fn list(&self, name: HeaderName) -> impl Iterator<Item = (&Header<'a>, &str)> {
        self.headers_named(name)
            .flat_map(|h| split_list(h.value()).map(move |v| (h, v)))
    }

    /// Allow (RFC 3261 §20.5): the methods.
    pub fn allow(&self) -> impl Iterator<Item = &str> {
        self.list(HeaderName::Allow).map(|(_, v)| v)
    }

    /// Accept (RFC 3261 §20.1): the media ranges as written.
    pub fn accept(&self) -> impl Iterator<Item = &str> {
        self.list(HeaderName::Accept).map(|(_, v)| v)
    }

    /// Supported (RFC 3261 §20.37): the option tags.
    pub fn supported(&self) -> impl Iterator<Item = &str> {
        self.list(HeaderName::Supported).map(|(_, v)| v)
    }

    /// Require (RFC 3261 §20.32): the option tags.
    pub fn require(&self) -> impl Iterator<Item = &str> {
        self.list(HeaderName::Require).map(|(_, v)| v)
    }

    /// WWW-Authenticate values, raw, one per line (RFC 3261 §20.44; never
    /// split on commas, §7.3.1).
    pub fn www_authenticate(&self) -> impl Iterator<Item = &str> {
        self.headers_named(HeaderName::WwwAuthenticate)
            .map(Header::value)
    }

    /// Authorization values, raw, one per line (RFC 3261 §20.7).
    pub fn authorization(&self) -> impl Iterator<Item = &str> {
        self.headers_named(HeaderName::Authorization)
            .map(Header::value)
    }

    /// Checks what every request must carry before a UAS handles it:
    /// To, From, CSeq, Call-ID, Max-Forwards and Via (RFC 3261 §8.1.1),
    /// each well formed, and a CSeq method equal to the request method
    /// (§8.1.1.5). [`ParseError::response_status`] gives the answer
    /// (400 with the problem named). Does nothing for a response.
    pub fn validate_request(&self) -> Result<(), ParseError> {
        let Some(method) = self.method() else {
            return Ok(());
        };
        let missing = |h: &'static str| ParseError::new(0, ErrorKind::MissingHeader(h));
        self.to()?.ok_or_else(|| missing("To"))?;
        self.from()?.ok_or_else(|| missing("From"))?;
        let cseq = self.cseq()?.ok_or_else(|| missing("CSeq"))?;
        self.call_id()?.ok_or_else(|| missing("Call-ID"))?;
        self.max_forwards()?
            .ok_or_else(|| missing("Max-Forwards"))?;
        self.top_via()?.ok_or_else(|| missing("Via"))?;
        for v in self.via() {
            v?;
        }
        if cseq.method != method {
            let offset = self.header(HeaderName::CSeq).map_or(0, Header::offset);
            return Err(ParseError::new(
                offset,
                ErrorKind::CSeqMethodMismatch {
                    cseq: cseq.method.to_owned(),
                    request: method.to_owned(),
                },
            ));
        }
        Ok(())
    }
}
