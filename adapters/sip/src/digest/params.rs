//! The `Digest` auth-param list shared by challenges and credentials
//! (RFC 3261 §25: `digest-cln *(COMMA digest-cln)`, RFC 7616 §3.3–3.4).
//!
//! The reader is lenient where peers are known to differ: any linear white
//! space around `=` and `,`, empty list elements, unquoted values that are
//! not strict tokens (base64 nonces), parameter names in any case. It never
//! panics and says where it stopped on input it cannot read.

use super::Error;

/// One `name=value` of the list; the name lowercased, the value unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    pub name: String,
    pub value: String,
}

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 3261 §25 `token` characters.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_lws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_lws) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        // Only ASCII bytes are kept, so both ends are char boundaries.
        self.text.get(start..self.pos).unwrap_or_default()
    }

    fn syntax(&self, expected: &'static str) -> Error {
        Error::Syntax {
            offset: self.pos,
            expected,
        }
    }

    /// `quoted-string`, the opening quote already seen (RFC 3261 §25:
    /// `DQUOTE *(qdtext / quoted-pair) DQUOTE`).
    fn quoted(&mut self) -> Result<String, Error> {
        let mut out = Vec::new();
        let bytes = self.text.as_bytes();
        loop {
            match bytes.get(self.pos) {
                None => return Err(self.syntax("closing quote")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    // quoted-pair excludes CR and LF (RFC 3261 §25); other
                    // controls are refused too, so values stay printable.
                    match bytes.get(self.pos + 1) {
                        Some(&escaped)
                            if (escaped >= 0x20 && escaped != 0x7f) || escaped == b'\t' =>
                        {
                            out.push(escaped);
                            self.pos += 2;
                        }
                        _ => return Err(self.syntax("character after backslash")),
                    }
                }
                Some(b'\r' | b'\n') => {
                    // Folding inside a quoted-string reads as one SP (RFC
                    // 3261 §7.3.1): values never carry CR or LF.
                    while self.peek().is_some_and(is_lws) {
                        self.pos += 1;
                    }
                    out.push(b' ');
                }
                Some(&b) if (b < 0x20 && b != b'\t') || b == 0x7f => {
                    return Err(self.syntax("qdtext"));
                }
                Some(&b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        // The input was UTF-8 and only ASCII backslashes were dropped.
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Reads `Digest name=value, ...`: the scheme must be Digest (any case).
pub(crate) fn parse(text: &str) -> Result<Vec<Param>, Error> {
    let mut r = Reader { text, pos: 0 };
    r.skip_lws();
    let scheme = r.take_while(is_token);
    if scheme.is_empty() {
        return Err(Error::MissingScheme);
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(Error::NotDigest(scheme.to_owned()));
    }
    if !r.skip_lws() && r.peek().is_some() {
        return Err(r.syntax("white space after the scheme"));
    }
    let mut params: Vec<Param> = Vec::new();
    loop {
        while r.peek() == Some(b',') || r.skip_lws() {
            if r.peek() == Some(b',') {
                r.pos += 1;
            }
        }
        if r.peek().is_none() {
            break;
        }
        let name = r.take_while(is_token);
        if name.is_empty() {
            return Err(r.syntax("parameter name"));
        }
        let name = name.to_ascii_lowercase();
        r.skip_lws();
        if r.peek() != Some(b'=') {
            return Err(r.syntax("'='"));
        }
        r.pos += 1;
        r.skip_lws();
        let value = if r.peek() == Some(b'"') {
            r.pos += 1;
            r.quoted()?
        } else {
            let value = r.take_while(|b| b.is_ascii_graphic() && b != b',' && b != b'"');
            if value.is_empty() {
                return Err(r.syntax("parameter value"));
            }
            value.to_owned()
        };
        if params.iter().any(|p| p.name == name) {
            return Err(Error::DuplicateParam(name));
        }
        params.push(Param { name, value });
        r.skip_lws();
        match r.peek() {
            None | Some(b',') => {}
            Some(_) => return Err(r.syntax("',' between parameters")),
        }
    }
    Ok(params)
}

/// The value of parameter `name`, if present.
pub(crate) fn get<'p>(params: &'p [Param], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.value.as_str())
}

/// The value of a required parameter.
pub(crate) fn require<'p>(params: &'p [Param], name: &'static str) -> Result<&'p str, Error> {
    get(params, name).ok_or(Error::MissingParam(name))
}

/// Whether `value` can be written as a quoted-string: no control
/// characters but HTAB (RFC 3261 §25 `qdtext`, `quoted-pair`).
pub(crate) fn is_quotable(value: &str) -> bool {
    !value.chars().any(|c| c.is_ascii_control() && c != '\t')
}

/// Appends `value` as a quoted-string (RFC 3261 §25), escaping `"` and `\`.
/// Control characters, which the caller should have refused with
/// [`is_quotable`], are written as spaces: a CR or LF never gets out.
pub(crate) fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if c.is_ascii_control() && c != '\t' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out.push('"');
}
