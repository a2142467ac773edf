//! Text that crosses into XMPP.
//!
//! Text from other worlds goes into a stanza as character data: the XML
//! writer escapes `<`, `&` and `]]>`, so it never becomes markup. What XML
//! 1.0 cannot carry at all (most C0 controls, U+FFFE, U+FFFF, lone
//! surrogates cannot occur in a `str`) is replaced by U+FFFD, not passed.

use std::borrow::Cow;

/// Whether XML 1.0 allows `c` in character data (XML 1.0 §2.2 `Char`).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// `s` with every character XML cannot carry replaced by U+FFFD.
pub fn xml_safe(s: &str) -> Cow<'_, str> {
    if s.chars().all(is_xml_char) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(
            s.chars()
                .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_replaced_markup_is_kept_as_text() {
        assert_eq!(xml_safe("a\u{0}b\u{1b}c"), "a\u{FFFD}b\u{FFFD}c");
        assert!(matches!(xml_safe("<b>]]>&"), Cow::Borrowed("<b>]]>&")));
        assert_eq!(xml_safe("tab\tnl\ncr\r"), "tab\tnl\ncr\r");
        assert_eq!(xml_safe("\u{FFFE}"), "\u{FFFD}");
    }
}
