//! The `message/cpim` codec: Common Profile for Instant Messaging, Message
//! Format (RFC 3862).
//!
//! A `message/cpim` body is a block of message headers (RFC 3862 §3, §4), a
//! blank line, then an encapsulated MIME part: its MIME headers, a blank
//! line, its body (§2, §2.4).
//!
//! ```text
//! From: MR SANDERS <im:piglet@100akerwood.com>
//! To: Depressed Donkey <im:eeyore@100akerwood.com>
//! DateTime: 2000-12-13T13:40:00-08:00
//! Subject:;lang=fr beau temps prevu pour aujourd'hui
//! NS: MyFeatures <mid:MessageFeatures@id.foo.com>
//! MyFeatures.WackyMessageOption: Use-silly-font
//!
//! Content-type: text/xml; charset=utf-8
//!
//! <body>...</body>
//! ```
//!
//! # Lossless
//!
//! Gateways "MUST NOT change the Message/CPIM content in any way"
//! (RFC 3862 §6; RFC 3428 §11.5), and signatures cover the bytes. [`Cpim`]
//! therefore keeps the input [`Bytes`] and records every header line as
//! spans (name, parameters, value, line ending), in order, unknown headers
//! included; nothing is unescaped or normalised until a typed accessor is
//! called. [`Cpim::to_bytes`] lays the parts end to end again and gives the
//! input back byte for byte.
//!
//! # Liberal and strict
//!
//! Accepted because it cannot change what a message means: bare LF line
//! endings (kept as given), a missing space after the colon, trailing
//! whitespace, HTAB in values, folded MIME headers, a bare URI without
//! angle brackets in From/To/cc, and a missing blank line before the
//! encapsulated part when the first MIME header is `Content-Type` (as RFC
//! 7701 §9 prints it; see [`Separator::Missing`]).
//!
//! Rejected: control characters and invalid UTF-8 in headers (§2.2), a
//! header name with separators or leading whitespace (§3.1), malformed
//! `;param=` lists (§3.6), two `From` or two `DateTime` headers (which
//! would let a gateway and a client disagree about the sender), and
//! anything beyond the [`Limits`].
//!
//! # Name spaces
//!
//! Headers belong to a name space URI (§3.4): unprefixed names to the
//! default one (`urn:ietf:params:cpim-headers:`, §4, unless an `NS: <uri>`
//! changed it), `prefix.Name` to the URI an earlier `NS: prefix <uri>`
//! declared. The typed accessors ([`Cpim::from`], [`Cpim::to`], ...) read
//! only headers that resolve to the CPIM name space, and [`Cpim::get`]
//! resolves prefixes, so `get("imdn.Message-ID")` finds
//! `NS: i <urn:ietf:params:imdn>` + `i.Message-ID: ...` too.

mod build;
mod error;
mod json;
mod parse;
pub mod value;

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use crate::address::{Address, NameAddr};
use crate::message::Subject;
use crate::time::Timestamp;

pub use build::CpimBuilder;
pub use error::CpimError;

/// The default name space of CPIM headers (RFC 3862 §4).
pub const CPIM_HEADERS_NS: &str = "urn:ietf:params:cpim-headers:";
/// The name space of IMDN headers (RFC 5438 §9), conventionally `imdn`.
pub const IMDN_NS: &str = "urn:ietf:params:imdn";

/// Prefixes that resolve even when a message does not declare them, because
/// senders routinely forget the `NS` line for them.
const WELL_KNOWN: &[(&str, &str)] = &[("imdn", IMDN_NS)];

/// RFC 3862 §6 misspells the default name space; treat both as one.
fn is_cpim_ns(uri: &str) -> bool {
    uri == CPIM_HEADERS_NS || uri == "urn:ietf:params-cpim-headers:"
}

fn same_ns(a: &str, b: &str) -> bool {
    a == b || (is_cpim_ns(a) && is_cpim_ns(b))
}

/// Bounds on what the parser accepts, so that no input can make it work or
/// allocate without limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most headers in one block (CPIM headers; MIME headers counted
    /// apart, folded lines included).
    pub max_headers: usize,
    /// Longest header line, without its line ending.
    pub max_line_len: usize,
    /// Largest encapsulated body (and anything after it).
    pub max_body: usize,
}

impl Default for Limits {
    /// 64 headers, 8 KiB lines, 1 MiB body.
    fn default() -> Self {
        Limits {
            max_headers: 64,
            max_line_len: 8 * 1024,
            max_body: 1024 * 1024,
        }
    }
}

/// How a line ended. RFC 3862 §2.2 wants CRLF; real clients send LF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineEnding {
    /// CR LF.
    CrLf,
    /// A bare LF.
    Lf,
}

impl LineEnding {
    /// The bytes of this line ending.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            LineEnding::CrLf => b"\r\n",
            LineEnding::Lf => b"\n",
        }
    }
}

/// The separator between the CPIM headers and the encapsulated part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Separator {
    /// A blank line, as RFC 3862 §2 wants.
    Blank(LineEnding),
    /// None: the CPIM headers ran straight into the encapsulated part's
    /// `Content-Type`, as in the examples of RFC 7701 §9.
    Missing,
}

/// A byte range of the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// One header line as spans into the input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Line {
    start: usize,
    name_end: usize,
    value_start: usize,
    /// End of the line (of its last physical line when folded), before the
    /// line ending.
    end: usize,
    ending: LineEnding,
}

/// A borrowed view of one header line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    line: &'a str,
    start: usize,
    name_len: usize,
    value_at: usize,
    ending: LineEnding,
}

impl<'a> Header<'a> {
    /// The name as written (`From`, `imdn.Message-ID`, `Content-type`).
    pub fn name(&self) -> &'a str {
        self.line.get(..self.name_len).unwrap_or_default()
    }

    /// The name-space prefix, if the name has one (RFC 3862 §3.4).
    pub fn prefix(&self) -> Option<&'a str> {
        self.name().split_once('.').map(|(p, _)| p)
    }

    /// The name without its prefix.
    pub fn local_name(&self) -> &'a str {
        self.name().split_once('.').map_or(self.name(), |(_, l)| l)
    }

    /// The raw text between the colon and the value: the parameters
    /// (`;lang=fr`) and the space.
    pub fn params_raw(&self) -> &'a str {
        self.line
            .get(self.name_len + 1..self.value_at)
            .unwrap_or_default()
    }

    /// A parameter's value, unquoted and unescaped (RFC 3862 §3.6).
    pub fn param(&self, name: &str) -> Option<Cow<'a, str>> {
        value::params(self.params_raw().trim_end_matches([' ', '\t']))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The `;lang=` parameter (RFC 3862 §3.3).
    pub fn lang(&self) -> Option<Cow<'a, str>> {
        self.param("lang")
    }

    /// The value exactly as written, escapes and trailing whitespace
    /// included (a folded MIME header keeps its line breaks).
    pub fn value_raw(&self) -> &'a str {
        self.line.get(self.value_at..).unwrap_or_default()
    }

    /// The value with RFC 3862 §2.3 escapes undone. Meant for CPIM
    /// headers; for MIME headers see [`Header::value_unfolded`].
    pub fn value(&self) -> Cow<'a, str> {
        value::unescape(self.value_raw())
    }

    /// The value of a MIME header with folding removed (RFC 5322 §2.2.3)
    /// and whitespace trimmed; MIME headers know no backslash escapes.
    pub fn value_unfolded(&self) -> Cow<'a, str> {
        let v = self.value_raw().trim_matches([' ', '\t']);
        if v.contains(['\r', '\n']) {
            Cow::Owned(v.replace("\r\n", "").replace('\n', ""))
        } else {
            Cow::Borrowed(v)
        }
    }

    /// Where the line lies in the body, without its line ending.
    pub fn span(&self) -> Span {
        Span {
            start: self.start,
            end: self.start + self.line.len(),
        }
    }

    /// How the line ended.
    pub fn ending(&self) -> LineEnding {
        self.ending
    }
}

/// A name-space declaration (`NS: prefix <uri>`, RFC 3862 §4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NsDecl<'a> {
    /// The prefix; `None` declares the default name space.
    pub prefix: Option<&'a str>,
    /// The name-space URI.
    pub uri: &'a str,
}

/// The typed CPIM fields of a message (see [`Cpim::fields`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fields {
    /// `From` (RFC 3862 §4.1).
    pub from: Option<NameAddr>,
    /// `To`s (§4.2).
    pub to: Vec<NameAddr>,
    /// `cc`s (§4.3).
    pub cc: Vec<NameAddr>,
    /// `DateTime` (§4.4).
    pub datetime: Option<Timestamp>,
    /// `Subject`s (§4.5).
    pub subject: Vec<Subject>,
    /// The IMDN `Message-ID` (RFC 5438 §6.3).
    pub imdn_message_id: Option<String>,
}

/// A parsed `message/cpim` body: the input bytes plus the spans of its
/// parts. Immutable, like the messages it models (RFC 3862 §6); build a new
/// one with [`CpimBuilder`].
#[derive(Clone, Debug)]
pub struct Cpim {
    raw: Bytes,
    /// CPIM headers, then MIME headers.
    lines: Vec<Line>,
    mime_start: usize,
    separator: Separator,
    mime_separator: LineEnding,
    body_start: usize,
    body_end: usize,
}

impl PartialEq for Cpim {
    /// Two parses are equal when their bytes are: the spans follow.
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for Cpim {}

fn bad_value(h: &Header<'_>, reason: impl Into<String>) -> CpimError {
    CpimError::BadValue {
        header: h.name().to_owned(),
        offset: h.start + h.value_at,
        reason: reason.into(),
    }
}

/// Parses a From/To/cc value into a [`NameAddr`].
fn name_addr(h: &Header<'_>) -> Result<NameAddr, CpimError> {
    let raw = value::split_name_addr(h.value_raw()).map_err(|r| bad_value(h, r))?;
    let address: Address = raw.uri.parse().map_err(|e| bad_value(h, format!("{e}")))?;
    let display = raw.display.map(|d| value::unescape(d).into_owned());
    Ok(NameAddr { display, address })
}

impl Cpim {
    /// Parses a `message/cpim` body, keeping `raw` (no copy).
    pub fn parse(raw: Bytes, limits: &Limits) -> Result<Cpim, CpimError> {
        parse::parse(raw, limits)
    }

    /// Parses a copy of `raw`.
    pub fn parse_slice(raw: &[u8], limits: &Limits) -> Result<Cpim, CpimError> {
        parse::parse(Bytes::copy_from_slice(raw), limits)
    }

    /// The bytes this message was parsed from.
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// Writes the message back from its parts; for a parsed message that is
    /// exactly the input.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.raw.len());
        let (cpim, mime) = self.lines.split_at(self.mime_start);
        for l in cpim {
            out.put_slice(&self.raw[l.start..l.end]);
            out.put_slice(l.ending.as_bytes());
        }
        if let Separator::Blank(e) = self.separator {
            out.put_slice(e.as_bytes());
        }
        for l in mime {
            out.put_slice(&self.raw[l.start..l.end]);
            out.put_slice(l.ending.as_bytes());
        }
        out.put_slice(self.mime_separator.as_bytes());
        out.put_slice(&self.raw[self.body_start..]);
        out.freeze()
    }

    fn header_at(&self, l: &Line) -> Header<'_> {
        // Validated as UTF-8 by the parser; a folded MIME line was
        // validated piece by piece and CR/LF are ASCII.
        let line = std::str::from_utf8(&self.raw[l.start..l.end]).unwrap_or_default();
        Header {
            line,
            start: l.start,
            name_len: l.name_end - l.start,
            value_at: l.value_start - l.start,
            ending: l.ending,
        }
    }

    /// The CPIM message headers, in order (RFC 3862 §3).
    pub fn headers(&self) -> impl ExactSizeIterator<Item = Header<'_>> + '_ {
        self.lines[..self.mime_start]
            .iter()
            .map(|l| self.header_at(l))
    }

    /// The MIME headers of the encapsulated part, in order (RFC 3862 §2.4).
    pub fn mime_headers(&self) -> impl ExactSizeIterator<Item = Header<'_>> + '_ {
        self.lines[self.mime_start..]
            .iter()
            .map(|l| self.header_at(l))
    }

    /// The first MIME header called `name` (case-insensitive, RFC 2045 §1).
    pub fn mime_header(&self, name: &str) -> Option<Header<'_>> {
        self.mime_headers()
            .find(|h| h.name().eq_ignore_ascii_case(name))
    }

    /// The encapsulated part's `Content-Type`, unfolded.
    pub fn content_type(&self) -> Option<Cow<'_, str>> {
        self.mime_header("Content-Type").map(|h| h.value_unfolded())
    }

    /// What separates the CPIM headers from the encapsulated part.
    pub fn separator(&self) -> Separator {
        self.separator
    }

    /// The encapsulated body (no copy). With a `Content-Length` it is that
    /// many bytes; without, the rest of the input (RFC 3862 §2: the
    /// transport frames the message).
    pub fn body(&self) -> Bytes {
        self.raw.slice(self.body_start..self.body_end)
    }

    /// Where the body lies.
    pub fn body_span(&self) -> Span {
        Span {
            start: self.body_start,
            end: self.body_end,
        }
    }

    /// Bytes after a body shortened by `Content-Length` (often a CRLF).
    pub fn trailer(&self) -> &[u8] {
        &self.raw[self.body_end..]
    }

    /// The line ending used throughout, or `None` when mixed.
    pub fn line_ending(&self) -> Option<LineEnding> {
        let mut all = self.lines.iter().map(|l| l.ending).chain(
            match self.separator {
                Separator::Blank(e) => Some(e),
                Separator::Missing => None,
            }
            .into_iter()
            .chain([self.mime_separator]),
        );
        let first = all.next()?;
        all.all(|e| e == first).then_some(first)
    }

    /// The CPIM headers with the name space each belongs to (RFC 3862
    /// §3.4): `(header, name-space URI, name within it)`. The URI is `None`
    /// for a prefix that no earlier `NS` declares and that is not well
    /// known (`imdn`).
    pub fn resolved(&self) -> impl Iterator<Item = (Header<'_>, Option<&str>, &str)> + '_ {
        let mut decls: Vec<NsDecl<'_>> = Vec::new();
        self.headers().map(move |h| {
            let (ns, local) = match h.name().split_once('.') {
                Some((p, local)) => {
                    let declared = decls.iter().rev().find(|d| d.prefix == Some(p));
                    let ns = declared.map(|d| d.uri).or_else(|| {
                        WELL_KNOWN
                            .iter()
                            .find(|(w, _)| *w == p)
                            .map(|(_, uri)| *uri)
                    });
                    (ns, local)
                }
                None => {
                    let default = decls.iter().rev().find(|d| d.prefix.is_none());
                    (Some(default.map_or(CPIM_HEADERS_NS, |d| d.uri)), h.name())
                }
            };
            // `NS` always declares, whatever the default name space: else
            // a message could never declare a second one.
            if h.name() == "NS" {
                if let Ok(raw) = value::split_name_addr(h.value_raw()) {
                    decls.push(NsDecl {
                        prefix: raw.display,
                        uri: raw.uri,
                    });
                }
            }
            (h, ns, local)
        })
    }

    /// Every header named `name` in name space `ns`.
    pub fn get_all_ns<'s, 'q>(
        &'s self,
        ns: &'q str,
        name: &'q str,
    ) -> impl Iterator<Item = Header<'s>> + use<'s, 'q> {
        self.resolved()
            .filter(move |(_, n, l)| *l == name && n.is_some_and(|n| same_ns(n, ns)))
            .map(|(h, _, _)| h)
    }

    /// The first header named `name` in name space `ns`.
    pub fn get_ns<'s>(&'s self, ns: &str, name: &str) -> Option<Header<'s>> {
        self.get_all_ns(ns, name).next()
    }

    /// Every header matching `qname`, which is `Name` (the CPIM name space)
    /// or `prefix.Name`. The prefix is resolved through this message's `NS`
    /// declarations, then the well-known ones (`imdn`); an unknown prefix
    /// matches the name as written.
    pub fn get_all<'s>(&'s self, qname: &'s str) -> Box<dyn Iterator<Item = Header<'s>> + 's> {
        let Some((p, local)) = qname.split_once('.') else {
            return Box::new(self.get_all_ns(CPIM_HEADERS_NS, qname));
        };
        let declared = self
            .headers()
            .find_map(|h| {
                (h.name() == "NS")
                    .then(|| value::split_name_addr(h.value_raw()).ok())
                    .flatten()
                    .filter(|raw| raw.display == Some(p))
                    .map(|raw| raw.uri)
            })
            .or_else(|| WELL_KNOWN.iter().find(|(w, _)| *w == p).map(|(_, u)| *u));
        match declared {
            Some(ns) => Box::new(self.get_all_ns(ns, local)),
            None => Box::new(self.headers().filter(move |h| h.name() == qname)),
        }
    }

    /// The first header matching `qname` (see [`Cpim::get_all`]).
    pub fn get<'s>(&'s self, qname: &'s str) -> Option<Header<'s>> {
        self.get_all(qname).next()
    }

    fn single(&self, name: &'static str) -> Result<Option<Header<'_>>, CpimError> {
        let mut it = self.get_all_ns(CPIM_HEADERS_NS, name);
        let first = it.next();
        match it.next() {
            Some(dup) => Err(bad_value(&dup, format!("more than one {name} header"))),
            None => Ok(first),
        }
    }

    /// The sender (`From`, RFC 3862 §4.1). Two `From` headers are an error.
    pub fn from(&self) -> Result<Option<NameAddr>, CpimError> {
        self.single("From")?.map(|h| name_addr(&h)).transpose()
    }

    /// The recipients (`To`, RFC 3862 §4.2), in order.
    pub fn to(&self) -> Result<Vec<NameAddr>, CpimError> {
        self.get_all_ns(CPIM_HEADERS_NS, "To")
            .map(|h| name_addr(&h))
            .collect()
    }

    /// The courtesy-copy recipients (`cc`, RFC 3862 §4.3), in order.
    pub fn cc(&self) -> Result<Vec<NameAddr>, CpimError> {
        self.get_all_ns(CPIM_HEADERS_NS, "cc")
            .map(|h| name_addr(&h))
            .collect()
    }

    /// When it was sent (`DateTime`, RFC 3862 §4.4). Two `DateTime`
    /// headers are an error.
    pub fn datetime(&self) -> Result<Option<Timestamp>, CpimError> {
        self.single("DateTime")?
            .map(|h| {
                Timestamp::parse_rfc3339(h.value_raw().trim_end_matches([' ', '\t']))
                    .map_err(|e| bad_value(&h, e.to_string()))
            })
            .transpose()
    }

    /// The subjects (`Subject`, RFC 3862 §4.5), unescaped, with their
    /// `;lang=` (§3.3).
    pub fn subject(&self) -> Vec<Subject> {
        self.get_all_ns(CPIM_HEADERS_NS, "Subject")
            .map(|h| Subject {
                lang: h.lang().map(Cow::into_owned),
                text: h.value().into_owned(),
            })
            .collect()
    }

    /// The name-space declarations (`NS`, RFC 3862 §4.6), in order.
    pub fn ns(&self) -> Result<Vec<NsDecl<'_>>, CpimError> {
        self.headers()
            .filter(|h| h.name() == "NS")
            .map(|h| {
                let raw = value::split_name_addr(h.value_raw()).map_err(|r| bad_value(&h, r))?;
                if raw.quoted
                    || raw
                        .display
                        .is_some_and(|p| !p.bytes().all(value::is_name_char))
                {
                    return Err(bad_value(&h, "NS prefix is not a name (RFC 3862 §4.6)"));
                }
                Ok(NsDecl {
                    prefix: raw.display,
                    uri: raw.uri,
                })
            })
            .collect()
    }

    /// The header names and features the sender requires the recipient to
    /// understand (`Require`, RFC 3862 §3.5, §4.7), as written.
    pub fn require(&self) -> Vec<&str> {
        self.get_all_ns(CPIM_HEADERS_NS, "Require")
            .flat_map(|h| h.value_raw().split(','))
            .map(|s| s.trim_matches([' ', '\t']))
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The `Message-ID` of the IMDN name space (RFC 5438 §6.3), unescaped.
    pub fn imdn_message_id(&self) -> Option<Cow<'_, str>> {
        self.get_ns(IMDN_NS, "Message-ID").map(|h| h.value())
    }

    /// All typed fields in one pass over the headers, with the same rules
    /// as the single accessors: cheaper when a caller wants them all.
    pub fn fields(&self) -> Result<Fields, CpimError> {
        let mut f = Fields::default();
        let mut seen_datetime = false;
        for (h, ns, local) in self.resolved() {
            match ns {
                Some(ns) if is_cpim_ns(ns) => match local {
                    "From" if f.from.is_some() => {
                        return Err(bad_value(&h, "more than one From header"));
                    }
                    "From" => f.from = Some(name_addr(&h)?),
                    "To" => f.to.push(name_addr(&h)?),
                    "cc" => f.cc.push(name_addr(&h)?),
                    "DateTime" if seen_datetime => {
                        return Err(bad_value(&h, "more than one DateTime header"));
                    }
                    "DateTime" => {
                        seen_datetime = true;
                        let v = h.value_raw().trim_end_matches([' ', '\t']);
                        f.datetime = Some(
                            Timestamp::parse_rfc3339(v)
                                .map_err(|e| bad_value(&h, e.to_string()))?,
                        );
                    }
                    "Subject" => f.subject.push(Subject {
                        lang: h.lang().map(Cow::into_owned),
                        text: h.value().into_owned(),
                    }),
                    _ => {}
                },
                Some(IMDN_NS) if local == "Message-ID" && f.imdn_message_id.is_none() => {
                    f.imdn_message_id = Some(h.value().into_owned());
                }
                _ => {}
            }
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests;
