//! A small XML writer for conference-info documents: just elements,
//! attributes and text, escaped so that no input becomes markup (XML 1.0
//! §2.4, §3.3.3).

/// Writes a document into a string, one element per line.
#[derive(Debug)]
pub(crate) struct Writer {
    out: String,
    depth: usize,
}

impl Writer {
    /// A document with the XML declaration (RFC 4575 §4.1: XML 1.0 in
    /// UTF-8).
    pub(crate) fn new() -> Writer {
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        Writer { out, depth: 0 }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push(' ');
        }
    }

    fn open_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_attr(v, &mut self.out);
            self.out.push('"');
        }
    }

    /// `<name attrs>`; children follow until [`Writer::end`].
    pub(crate) fn start(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.open_tag(name, attrs);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    /// `</name>`.
    pub(crate) fn end(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// `<name attrs/>`.
    pub(crate) fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.open_tag(name, attrs);
        self.out.push_str("/>\n");
    }

    /// `<name>text</name>`.
    pub(crate) fn text(&mut self, name: &str, text: &str) {
        self.open_tag(name, &[]);
        self.out.push('>');
        escape_text(text, &mut self.out);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// The document.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// Whether XML 1.0 allows the character at all (§2.2 `Char`): not the C0
/// controls but TAB, LF and CR, and not U+FFFE or U+FFFF. Even as a
/// character reference these are not well-formed, so they are replaced.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Attribute values: markup characters and both quotes as entities; TAB,
/// LF and CR as character references, else attribute-value normalization
/// (XML 1.0 §3.3.3) would turn them into spaces.
pub(crate) fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Character data: `&`, `<` and `>` (the last for `]]>`) as entities; CR
/// as a character reference, else end-of-line handling (XML 1.0 §2.11)
/// would drop it.
pub(crate) fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}
