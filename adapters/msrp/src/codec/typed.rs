//! Typed accessors of a [`Message`]: each reads its header when asked
//! (RFC 4975 §7.1, §7.1.1, §7.1.2, §9; RFC 4976 §7.1; RFC 7701 §7.1), and
//! the check of what each method needs.

use std::borrow::Cow;

use super::error::{ErrorKind, ParseError};
use super::headers::{
    ByteRange, ContentType, FailureReport, Header, HeaderName, Status, SuccessReport, is_ident,
    nickname,
};
use super::message::{Continuation, Message};
use super::uri::{MsrpUri, parse_path};

impl<'a> Message<'a> {
    /// The only header of this name; a second one is an error.
    fn single(&self, name: HeaderName) -> Result<Option<&Header<'a>>, ParseError> {
        let mut found = None;
        for h in self.headers.iter().filter(|h| h.kind == name) {
            if found.is_some() {
                return Err(ParseError::new(
                    h.offset,
                    ErrorKind::Duplicate {
                        header: name.as_str(),
                    },
                ));
            }
            found = Some(h);
        }
        Ok(found)
    }

    fn path(&self, name: HeaderName) -> Result<Option<Vec<MsrpUri<'a>>>, ParseError> {
        let Some(h) = self.single(name)? else {
            return Ok(None);
        };
        parse_path(h.value)
            .map(Some)
            .map_err(|e| ParseError::header(h.offset, name.as_str(), e.0))
    }

    /// To-Path (RFC 4975 §7.1): the URIs to the destination, the next hop
    /// first. `Ok(None)` when absent.
    pub fn to_path(&self) -> Result<Option<Vec<MsrpUri<'a>>>, ParseError> {
        self.path(HeaderName::ToPath)
    }

    /// From-Path (RFC 4975 §7.1): the URIs back to the sender, the
    /// previous hop first.
    pub fn from_path(&self) -> Result<Option<Vec<MsrpUri<'a>>>, ParseError> {
        self.path(HeaderName::FromPath)
    }

    /// Use-Path (RFC 4976 §7.1), in a 200 to AUTH.
    pub fn use_path(&self) -> Result<Option<Vec<MsrpUri<'a>>>, ParseError> {
        self.path(HeaderName::UsePath)
    }

    /// Message-ID (RFC 4975 §7.1.1), an ident.
    pub fn message_id(&self) -> Result<Option<&'a str>, ParseError> {
        let Some(h) = self.single(HeaderName::MessageId)? else {
            return Ok(None);
        };
        if !is_ident(h.value) {
            return Err(ParseError::header(
                h.offset,
                "Message-ID",
                "not an ident (4 to 32 characters)",
            ));
        }
        Ok(Some(h.value))
    }

    /// Byte-Range (RFC 4975 §7.1.1).
    pub fn byte_range(&self) -> Result<Option<ByteRange>, ParseError> {
        let Some(h) = self.single(HeaderName::ByteRange)? else {
            return Ok(None);
        };
        h.value
            .parse()
            .map(Some)
            .map_err(|reason| ParseError::header(h.offset, "Byte-Range", reason))
    }

    /// Success-Report, `No` when absent (RFC 4975 §7.1.1).
    pub fn success_report(&self) -> Result<SuccessReport, ParseError> {
        let Some(h) = self.single(HeaderName::SuccessReport)? else {
            return Ok(SuccessReport::default());
        };
        SuccessReport::parse(h.value).ok_or(ParseError::header(
            h.offset,
            "Success-Report",
            "not yes or no",
        ))
    }

    /// Failure-Report, `Yes` when absent (RFC 4975 §7.1.1).
    pub fn failure_report(&self) -> Result<FailureReport, ParseError> {
        let Some(h) = self.single(HeaderName::FailureReport)? else {
            return Ok(FailureReport::default());
        };
        FailureReport::parse(h.value).ok_or(ParseError::header(
            h.offset,
            "Failure-Report",
            "not yes, no or partial",
        ))
    }

    /// Status of a REPORT (RFC 4975 §7.1.3), e.g. `000 200 OK`.
    pub fn status(&self) -> Result<Option<Status<'a>>, ParseError> {
        let Some(h) = self.single(HeaderName::Status)? else {
            return Ok(None);
        };
        Status::parse(h.value).map(Some).ok_or(ParseError::header(
            h.offset,
            "Status",
            "not namespace SP status-code [SP comment]",
        ))
    }

    /// Content-Type (RFC 4975 §7.1, §9).
    pub fn content_type(&self) -> Result<Option<ContentType<'a>>, ParseError> {
        let Some(h) = self.single(HeaderName::ContentType)? else {
            return Ok(None);
        };
        ContentType::parse(h.value)
            .map(Some)
            .ok_or(ParseError::header(
                h.offset,
                "Content-Type",
                "not type/subtype",
            ))
    }

    /// The nickname of Use-Nickname (RFC 7701 §7.1), unquoted.
    pub fn use_nickname(&self) -> Result<Option<Cow<'a, str>>, ParseError> {
        let Some(h) = self.single(HeaderName::UseNickname)? else {
            return Ok(None);
        };
        nickname(h.value).map(Some).ok_or(ParseError::header(
            h.offset,
            "Use-Nickname",
            "not a quoted string of 1 to 1023 bytes",
        ))
    }

    /// Whether the request holds a whole message (RFC 4975 §7.3.1): no
    /// Byte-Range or one starting at 1, and the flag `$`.
    pub fn is_whole_message(&self) -> Result<bool, ParseError> {
        Ok(self.continuation == Continuation::Complete
            && self.byte_range()?.is_none_or(|r| r.start == 1))
    }

    /// Whether a response with this code is to be sent to this request
    /// (RFC 4975 §7.2, §7.1.4, §7.1.2): never to a REPORT, never with
    /// Failure-Report `no`, only an error with `partial`, always
    /// otherwise. An unreadable Failure-Report counts as absent.
    pub fn wants_response(&self, code: u16) -> bool {
        match self.method() {
            None | Some("REPORT") => false,
            Some(_) => match self.failure_report().unwrap_or_default() {
                FailureReport::Yes => true,
                FailureReport::No => false,
                FailureReport::Partial => code != 200,
            },
        }
    }

    /// Checks what RFC 4975 makes mandatory: To-Path and From-Path with
    /// MSRP URIs (§7.1, §7.2); in SEND a Message-ID (§7.1.1); in REPORT a
    /// Message-ID and a Status but no Success-Report or Failure-Report
    /// (§7.1.2); in NICKNAME a Use-Nickname (RFC 7701 §7.1); a
    /// Content-Type with a body and no MIME header without one (§7.1);
    /// every interpreted header readable.
    pub fn validate(&self) -> Result<(), ParseError> {
        let missing = |h| ParseError::new(0, ErrorKind::MissingHeader(h));
        self.to_path()?.ok_or(missing("To-Path"))?;
        self.from_path()?.ok_or(missing("From-Path"))?;
        self.byte_range()?;
        self.content_type()?;
        let forbid = |name: HeaderName| match self.header(name) {
            Some(h) => Err(ParseError::new(
                h.offset,
                ErrorKind::Forbidden {
                    header: name.as_str(),
                },
            )),
            None => Ok(()),
        };
        match self.method() {
            // §7.2: "a response is never chunked", its flag is `$`.
            None if self.continuation != Continuation::Complete => {
                return Err(ParseError::new(
                    self.input.len().saturating_sub(3),
                    ErrorKind::ResponseNotComplete,
                ));
            }
            None => {}
            Some("SEND") => {
                self.message_id()?.ok_or(missing("Message-ID"))?;
                self.success_report()?;
                self.failure_report()?;
            }
            Some("REPORT") => {
                self.message_id()?.ok_or(missing("Message-ID"))?;
                self.status()?.ok_or(missing("Status"))?;
                forbid(HeaderName::SuccessReport)?;
                forbid(HeaderName::FailureReport)?;
            }
            Some("NICKNAME") => {
                self.use_nickname()?.ok_or(missing("Use-Nickname"))?;
                forbid(HeaderName::SuccessReport)?;
                forbid(HeaderName::FailureReport)?;
            }
            Some(_) => {
                self.message_id()?;
                self.success_report()?;
                self.failure_report()?;
            }
        }
        if self.body.is_some() {
            self.content_type()?.ok_or(missing("Content-Type"))?;
        } else if let Some(h) = self.headers.iter().find(|h| h.kind.is_mime()) {
            return Err(ParseError::new(
                h.offset,
                ErrorKind::Forbidden {
                    header: h.kind.as_str(),
                },
            ));
        }
        Ok(())
    }
}
