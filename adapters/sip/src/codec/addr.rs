//! From, To, Contact, Route, Record-Route values: a name-addr or an
//! addr-spec with header parameters (RFC 3261 §20.10, §20.20, §20.39,
//! §25.1).
//!
//! ```text
//! from-spec    = ( name-addr / addr-spec ) *( SEMI from-param )
//! name-addr    = [ display-name ] LAQUOT addr-spec RAQUOT
//! display-name = *(token LWS) / quoted-string
//! ```
//!
//! The URI is kept as the text written; [`NameAddrRef::address`] parses it
//! with the model's [`Address`] parser when it is needed.

use std::borrow::Cow;

use cpimgate_model::address::{Address, AddressError, NameAddr};

use super::headers::{Params, TrimLws, find_byte, find_outside, unquote};

/// A name-addr or addr-spec with its header parameters, borrowed.
///
/// ```
/// use cpimgate_sip::codec::NameAddrRef;
/// // RFC 3261 §20.20
/// let f = NameAddrRef::parse(r#""A. G. Bell" <sip:agb@bell-telephone.com> ;tag=a48s"#).unwrap();
/// assert_eq!(f.display().as_deref(), Some("A. G. Bell"));
/// assert_eq!(f.uri(), "sip:agb@bell-telephone.com");
/// assert_eq!(f.tag(), Some("a48s"));
/// // An addr-spec ends at the first ';': what follows are header
/// // parameters, not URI parameters (RFC 3261 §20.10).
/// let f = NameAddrRef::parse("sip:+12125551212@server.phone2net.com;tag=887s").unwrap();
/// assert_eq!(f.uri(), "sip:+12125551212@server.phone2net.com");
/// assert_eq!(f.tag(), Some("887s"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddrRef<'a> {
    display: Option<&'a str>,
    uri: &'a str,
    params: Params<'a>,
}

/// Why a name-addr could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddrSyntax(pub &'static str);

impl<'a> NameAddrRef<'a> {
    /// Reads one value (not a comma-separated list: see
    /// [`split_list`](super::split_list)).
    pub fn parse(value: &'a str) -> Result<Self, NameAddrSyntax> {
        let t = value.trim_lws();
        if t.is_empty() {
            return Err(NameAddrSyntax("empty value"));
        }
        match find_outside(t, b'<') {
            Some(lt) => {
                let display = t.get(..lt).unwrap_or_default().trim_lws();
                if display.starts_with('"') != display.ends_with('"')
                    || (display.starts_with('"') && display.len() < 2)
                {
                    return Err(NameAddrSyntax("unbalanced quotes in the display name"));
                }
                if !display.starts_with('"') && display.contains('"') {
                    return Err(NameAddrSyntax("a quote inside an unquoted display name"));
                }
                let inner = t.get(lt + 1..).unwrap_or_default();
                let gt = find_byte(inner, b'>').ok_or(NameAddrSyntax("no '>' closing the URI"))?;
                let uri = inner.get(..gt).unwrap_or_default().trim_lws();
                if uri.is_empty() {
                    return Err(NameAddrSyntax("empty URI between '<' and '>'"));
                }
                let params = inner.get(gt + 1..).unwrap_or_default();
                let ptrim = params.trim_lws_start();
                if !ptrim.is_empty() && !ptrim.starts_with(';') {
                    return Err(NameAddrSyntax("text after '>' that is not a parameter"));
                }
                Ok(NameAddrRef {
                    display: (!display.is_empty()).then_some(display),
                    uri,
                    params: Params::new(params),
                })
            }
            None if t.as_bytes().contains(&b'"') => {
                Err(NameAddrSyntax("unbalanced quotes in the display name"))
            }
            None => {
                let end = find_byte(t, b';').unwrap_or(t.len());
                let uri = t.get(..end).unwrap_or_default().trim_lws();
                if uri.is_empty()
                    || uri.bytes().any(|b| matches!(b, b' ' | b'\t' | b'"' | b'>'))
                    || !uri.as_bytes().contains(&b':')
                {
                    return Err(NameAddrSyntax("an addr-spec (a URI with a scheme)"));
                }
                Ok(NameAddrRef {
                    display: None,
                    uri,
                    params: Params::new(t.get(end..).unwrap_or_default()),
                })
            }
        }
    }

    /// The display name, unquoted; `None` when absent.
    pub fn display(&self) -> Option<Cow<'a, str>> {
        self.display.map(unquote)
    }

    /// The display name as written (quotes kept).
    pub fn display_raw(&self) -> Option<&'a str> {
        self.display
    }

    /// The URI as written.
    pub fn uri(&self) -> &'a str {
        self.uri
    }

    /// The header parameters after the address.
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// The `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }

    /// The URI parsed by the model (`sip:`, `sips:`, `tel:`, `im:`, ...).
    pub fn address(&self) -> Result<Address, AddressError> {
        self.uri.parse()
    }

    /// The display name and parsed URI as the model's [`NameAddr`].
    pub fn name_addr(&self) -> Result<NameAddr, AddressError> {
        let address = self.address()?;
        Ok(match self.display() {
            Some(d) => NameAddr::with_display(d.into_owned(), address),
            None => NameAddr::new(address),
        })
    }
}
