//! The scanner: splits a `message/cpim` body into header lines, separators,
//! body and trailer without copying (RFC 3862 §2, §3).
//!
//! One pass over the header lines, one `Vec` for all of them; the body is
//! never scanned. Every span is recorded so that the parts laid end to end
//! are exactly the input.

use bytes::Bytes;

use super::value::{is_bad_ctl, is_mime_name_char, is_name_char, is_token_char, quoted_len};
use super::{Cpim, CpimError, Limits, Line, LineEnding, Separator};

/// Where one physical line ends.
struct Eol {
    /// Index of the CR or LF that ends the line.
    end: usize,
    /// Index after the LF.
    next: usize,
    ending: LineEnding,
}

fn find_eol(
    raw: &[u8],
    pos: usize,
    limits: &Limits,
    expected: &'static str,
) -> Result<Eol, CpimError> {
    let cap = pos.saturating_add(limits.max_line_len).saturating_add(2);
    let window = &raw[pos..raw.len().min(cap)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let (end, ending) = if i > 0 && window[i - 1] == b'\r' {
                (pos + i - 1, LineEnding::CrLf)
            } else {
                (pos + i, LineEnding::Lf)
            };
            if end - pos > limits.max_line_len {
                return Err(CpimError::LineTooLong {
                    offset: pos,
                    limit: limits.max_line_len,
                });
            }
            Ok(Eol {
                end,
                next: pos + i + 1,
                ending,
            })
        }
        None if raw.len() >= cap => Err(CpimError::LineTooLong {
            offset: pos,
            limit: limits.max_line_len,
        }),
        None => Err(CpimError::Truncated {
            offset: raw.len(),
            expected,
        }),
    }
}

struct Ctx<'a> {
    raw: &'a [u8],
    line_no: usize,
}

impl Ctx<'_> {
    fn bad(&self, offset: usize, reason: &'static str) -> CpimError {
        CpimError::BadHeader {
            offset,
            line: self.line_no,
            reason,
        }
    }

    /// Checks the value part of a line for control characters and the
    /// whole line for UTF-8 (RFC 3862 §2.2).
    fn check_text(&self, start: usize, from: usize, end: usize) -> Result<(), CpimError> {
        if let Some(i) = self.raw[from..end].iter().position(|&b| is_bad_ctl(b)) {
            return Err(self.bad(from + i, "control character in header (RFC 3862 §2.2)"));
        }
        if let Err(e) = std::str::from_utf8(&self.raw[start..end]) {
            return Err(CpimError::InvalidUtf8 {
                offset: start + e.valid_up_to(),
            });
        }
        Ok(())
    }

    /// The error for a line whose name does not end in ':' at `at`.
    fn no_colon(&self, start: usize, at: usize, end: usize) -> CpimError {
        if self.raw[start..end].contains(&b':') {
            self.bad(at, "invalid character in header name (RFC 3862 §3.1)")
        } else {
            CpimError::MissingBlankLine { offset: start }
        }
    }

    /// One CPIM header line, `Name ":" *(";" Parameter) SP Value`
    /// (RFC 3862 §3.6), in `raw[start..end]`.
    fn cpim_line(&self, start: usize, end: usize, ending: LineEnding) -> Result<Line, CpimError> {
        let raw = self.raw;
        let mut p = start;
        while p < end && (is_name_char(raw[p]) || raw[p] == b'.') {
            p += 1;
        }
        let name_end = p;
        if name_end == start {
            return Err(if matches!(raw[start], b' ' | b'\t') {
                self.bad(start, "whitespace at the start of a line (RFC 3862 §2.2)")
            } else {
                self.no_colon(start, start, end)
            });
        }
        if p == end || raw[p] != b':' {
            return Err(self.no_colon(start, p, end));
        }
        let name = &raw[start..name_end];
        let dots = name.iter().filter(|&&b| b == b'.').count();
        if dots > 1 || name[0] == b'.' || name[name.len() - 1] == b'.' {
            return Err(self.bad(
                start,
                "'.' only separates one name-space prefix (RFC 3862 §3.4)",
            ));
        }
        p += 1;
        while p < end && raw[p] == b';' {
            p += 1;
            let n0 = p;
            while p < end && is_name_char(raw[p]) {
                p += 1;
            }
            if p == n0 || p == end || raw[p] != b'=' {
                return Err(self.bad(p, "malformed ';name=value' parameter (RFC 3862 §3.6)"));
            }
            p += 1;
            if p < end && raw[p] == b'"' {
                match quoted_len(&raw[p..end]) {
                    Some(n) => p += n,
                    None => return Err(self.bad(p, "unterminated quoted parameter value")),
                }
            } else {
                let v0 = p;
                while p < end && is_token_char(raw[p]) {
                    p += 1;
                }
                if p == v0 {
                    return Err(self.bad(p, "empty parameter value"));
                }
            }
        }
        // RFC 3862 §3.6: one SP, then the value; further spaces belong to
        // the value. A missing SP is harmless and tolerated.
        let value_start = if p < end && matches!(raw[p], b' ' | b'\t') {
            p + 1
        } else {
            p
        };
        self.check_text(start, name_end, end)?;
        Ok(Line {
            start,
            name_end,
            value_start,
            end,
            ending,
        })
    }

    /// One MIME header line (RFC 5322 §2.2 field) in `raw[start..end]`.
    fn mime_line(&self, start: usize, end: usize, ending: LineEnding) -> Result<Line, CpimError> {
        let raw = self.raw;
        let mut p = start;
        while p < end && is_mime_name_char(raw[p]) {
            p += 1;
        }
        let name_end = p;
        if name_end == start || p == end || raw[p] != b':' {
            return Err(self.no_colon(start, p, end));
        }
        p += 1;
        while p < end && matches!(raw[p], b' ' | b'\t') {
            p += 1;
        }
        self.check_text(start, name_end, end)?;
        Ok(Line {
            start,
            name_end,
            value_start: p,
            end,
            ending,
        })
    }
}

fn too_many(offset: usize, limits: &Limits) -> CpimError {
    CpimError::TooManyHeaders {
        offset,
        limit: limits.max_headers,
    }
}

pub(super) fn parse(raw: Bytes, limits: &Limits) -> Result<Cpim, CpimError> {
    let buf: &[u8] = &raw;
    let mut cx = Ctx {
        raw: buf,
        line_no: 1,
    };
    let mut lines: Vec<Line> = Vec::with_capacity(12);
    let mut pos = 0;

    // RFC 3862 §2: the message headers, up to a blank line.
    let separator = loop {
        let eol = find_eol(buf, pos, limits, "blank line after the CPIM headers")?;
        if eol.end == pos {
            let sep = Separator::Blank(eol.ending);
            pos = eol.next;
            cx.line_no += 1;
            break sep;
        }
        let line = cx.cpim_line(pos, eol.end, eol.ending)?;
        // RFC 7701 §9 prints its CPIM examples without the blank line before
        // the encapsulated part and clients copied it. No CPIM header is
        // called Content-Type, so its first MIME header marks the start.
        if buf[line.start..line.name_end].eq_ignore_ascii_case(b"Content-Type") {
            break Separator::Missing;
        }
        if lines.len() >= limits.max_headers {
            return Err(too_many(pos, limits));
        }
        lines.push(line);
        pos = eol.next;
        cx.line_no += 1;
    };
    let mime_start = lines.len();
    let mut mime_lines = 0usize;

    // RFC 3862 §2.4: the MIME headers of the encapsulated part.
    let mime_separator = loop {
        let eol = find_eol(
            buf,
            pos,
            limits,
            "blank line after the MIME headers of the encapsulated part",
        )?;
        if eol.end == pos {
            let sep = eol.ending;
            pos = eol.next;
            break sep;
        }
        // Folded lines count too, so that folding cannot dodge the limit.
        if mime_lines >= limits.max_headers {
            return Err(too_many(pos, limits));
        }
        if matches!(buf[pos], b' ' | b'\t') {
            // RFC 5322 §2.2.3 folding: the line continues the header above.
            let has_header = lines.len() > mime_start;
            let Some(last) = lines.last_mut().filter(|_| has_header) else {
                return Err(cx.bad(pos, "continuation line without a header above it"));
            };
            cx.check_text(pos, pos, eol.end)?;
            last.end = eol.end;
            last.ending = eol.ending;
        } else {
            lines.push(cx.mime_line(pos, eol.end, eol.ending)?);
        }
        mime_lines += 1;
        pos = eol.next;
        cx.line_no += 1;
    };

    let rest = buf.len() - pos;
    if rest > limits.max_body {
        return Err(CpimError::BodyTooLarge {
            offset: pos,
            size: rest,
            limit: limits.max_body,
        });
    }
    let mut body_end = buf.len();
    if let Some(cl) = lines[mime_start..]
        .iter()
        .find(|l| buf[l.start..l.name_end].eq_ignore_ascii_case(b"Content-Length"))
    {
        let v = buf[cl.value_start..cl.end].trim_ascii_end();
        let n = (!v.is_empty() && v.len() <= 19 && v.iter().all(u8::is_ascii_digit))
            .then(|| v.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
            .ok_or_else(|| CpimError::BadValue {
                header: "Content-Length".to_owned(),
                offset: cl.value_start,
                reason: "not a decimal number".to_owned(),
            })?;
        if n > limits.max_body {
            return Err(CpimError::BodyTooLarge {
                offset: pos,
                size: n,
                limit: limits.max_body,
            });
        }
        if n > rest {
            return Err(CpimError::Truncated {
                offset: buf.len(),
                expected: "as many body bytes as Content-Length announces",
            });
        }
        body_end = pos + n;
    }

    Ok(Cpim {
        lines,
        mime_start,
        separator,
        mime_separator,
        body_start: pos,
        body_end,
        raw,
    })
}
