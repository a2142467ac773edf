//! XEP-0106: JID Escaping.
//!
//! The localpart of a JID may not hold space `"` `&` `'` `/` `:` `<` `>` `@`
//! (RFC 7622 §3.3.1). XEP-0106 §4 writes each as `\` and two lower-case hex
//! digits, and writes a `\` as `\5c` only where it starts one of those ten
//! sequences (§5.1 rule 7, §5.3): any other backslash stays literal, so that
//! `c:\net` becomes `c\3a\net`. Unescaping turns back exactly the ten
//! sequences, in one left-to-right pass, and leaves every other `\` alone
//! (§5.1 rule 3, §5.3 "Exceptions").
//!
//! Both functions work on any string and never panic (unlike the `jid`
//! crate's `NodeRef::unescape`, which panics on `foo\@x.org`).

use super::AddressError;

/// The ten escape sequences of XEP-0106 §4.2, lower case only ("CASE IS
/// SIGNIFICANT").
const TABLE: [(char, &str); 10] = [
    (' ', "20"),
    ('"', "22"),
    ('&', "26"),
    ('\'', "27"),
    ('/', "2f"),
    (':', "3a"),
    ('<', "3c"),
    ('>', "3e"),
    ('@', "40"),
    ('\\', "5c"),
];

/// The character that `\` + `hex` stands for, when `hex` starts with one of
/// the ten sequences.
fn sequence_at(rest: &str) -> Option<char> {
    let hex = rest.get(..2)?;
    TABLE.iter().find(|(_, h)| *h == hex).map(|(c, _)| *c)
}

/// Escapes a string for use as a JID localpart (XEP-0106 §4.2, §5.2).
///
/// Every space, `"`, `&`, `'`, `/`, `:`, `<`, `>` and `@` is escaped; a `\`
/// is escaped only when it starts a valid escape sequence. Leading and
/// trailing spaces are escaped as `\20` too: XEP-0106 §5.1 rule 6 forbids
/// `\20` at either end of a localpart, but a gateway cannot drop characters
/// of an address of another world without making the mapping ambiguous, so
/// we keep the mapping reversible and let such JIDs exist (RFC 7622 itself
/// allows them). The result may still be too long, empty, or hold control
/// characters: `Jid::new` checks those.
///
/// ```
/// use cpimgate_model::address::escape_node;
/// // XEP-0106 §6.1, examples 1, 2, 8, 9, 12
/// assert_eq!(escape_node("space cadet"), r"space\20cadet");
/// assert_eq!(escape_node(r#"call me "ishmael""#), r"call\20me\20\22ishmael\22");
/// assert_eq!(escape_node("user@host"), r"user\40host");
/// assert_eq!(escape_node(r"c:\net"), r"c\3a\net");
/// assert_eq!(escape_node(r"c:\5commas"), r"c\3a\5c5commas");
/// // DESIGN.md: an im: address of another world as a component JID's localpart
/// assert_eq!(escape_node("alice@atlanta.example.com"), r"alice\40atlanta.example.com");
/// ```
pub fn escape_node(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for (i, c) in s.char_indices() {
        match c {
            '\\' if sequence_at(&s[i + 1..]).is_none() => out.push('\\'),
            _ => match TABLE.iter().find(|(t, _)| *t == c) {
                Some((_, hex)) => {
                    out.push('\\');
                    out.push_str(hex);
                }
                None => out.push(c),
            },
        }
    }
    out
}

/// Unescapes a JID localpart (XEP-0106 §4.3, §5.3).
///
/// Only the ten sequences of §4.3 are unescaped, lower case, in one pass:
/// `\5c27` gives `\27`, not `'`. Anything else after a `\` stays as it is.
///
/// Fails, with the byte offset, when `s` holds one of the nine characters
/// that only appear escaped (space, `"`, `&`, `'`, `/`, `:`, `<`, `>`, `@`):
/// such a string is not an escaped localpart. Other checks of a localpart
/// (length, control characters) are `Jid::new`'s. For every string `s`,
/// `unescape_node(&escape_node(s)) == Ok(s)`.
///
/// ```
/// use cpimgate_model::address::unescape_node;
/// assert_eq!(unescape_node(r"d\27artagnan").unwrap(), "d'artagnan");
/// assert_eq!(unescape_node(r"c\3a\5c5commas").unwrap(), r"c:\5commas");
/// // XEP-0106 §5.3 "Exceptions": not modified
/// assert_eq!(unescape_node(r"\2plus\2is\4").unwrap(), r"\2plus\2is\4");
/// assert_eq!(unescape_node(r"foob\41r").unwrap(), r"foob\41r");
/// // Upper-case hex is not an escape sequence
/// assert_eq!(unescape_node(r"a\3Ab").unwrap(), r"a\3Ab");
/// // A raw '@' is not part of a localpart (this is where `jid` 0.12 panics)
/// assert!(unescape_node(r"foo\@x.org").is_err());
/// ```
pub fn unescape_node(s: &str) -> Result<String, AddressError> {
    if let Some((offset, _)) = s
        .char_indices()
        .find(|&(_, c)| TABLE[..9].iter().any(|(t, _)| *t == c))
    {
        return Err(AddressError::Jid {
            offset,
            reason: "character not allowed in a localpart",
        });
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match sequence_at(after) {
            Some(c) => {
                out.push(c);
                rest = &after[2..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Characters a JID localpart may not hold raw: the nine of RFC 7622
/// §3.3.1, whitespace and control characters (PRECIS IdentifierClass).
pub(super) fn forbidden_in_localpart(c: char) -> bool {
    matches!(c, '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@')
        || c.is_whitespace()
        || c.is_control()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// XEP-0106 §6.1 "Jabber Identifiers", the whole table: user input,
    /// escaped localpart.
    const XEP0106_6_1: [(&str, &str); 12] = [
        ("space cadet", r"space\20cadet"),
        (r#"call me "ishmael""#, r"call\20me\20\22ishmael\22"),
        ("at&t guy", r"at\26t\20guy"),
        ("d'artagnan", r"d\27artagnan"),
        ("/.fanboy", r"\2f.fanboy"),
        ("::foo::", r"\3a\3afoo\3a\3a"),
        ("<foo>", r"\3cfoo\3e"),
        ("user@host", r"user\40host"),
        (r"c:\net", r"c\3a\net"),
        (r"c:\\net", r"c\3a\\net"),
        (r"c:\cool stuff", r"c\3a\cool\20stuff"),
        (r"c:\5commas", r"c\3a\5c5commas"),
    ];

    #[test]
    fn xep0106_table() {
        for (input, escaped) in XEP0106_6_1 {
            assert_eq!(escape_node(input), escaped, "escape {input}");
            assert_eq!(unescape_node(escaped).unwrap(), input, "unescape {escaped}");
        }
    }

    /// XEP-0106 §5.3 "Exceptions" and the strings that look escaped
    /// (§5.2 `wv:` example, §6.7 IRC example).
    #[test]
    fn xep0106_exceptions() {
        for s in [r"\2plus\2is\4", r"foo\bar", r"foob\41r"] {
            assert_eq!(escape_node(s), s);
            assert_eq!(unescape_node(s).unwrap(), s);
        }
        // §5.2: <wv:\3and\2is\5cool@example.com>
        assert_eq!(escape_node(r"\3and\2is\5cool"), r"\5c3and\2is\5c5cool");
        assert_eq!(
            unescape_node(r"\5c3and\2is\5c5cool").unwrap(),
            r"\3and\2is\5cool"
        );
        // §6.7 IRC (the domain is not part of the localpart)
        assert_eq!(
            escape_node(r#"somenick!user"&'/:<>\3address"#),
            r"somenick!user\22\26\27\2f\3a\3c\3e\5c3address"
        );
        // §6.2 / §6.3 / §6.4 e-mail, sip:, im: once decoded
        assert_eq!(
            escape_node("here's_a_wild_&_/cr%zy/_address"),
            r"here\27s_a_wild_\26_\2fcr%zy\2f_address"
        );
        // §6.5 wv:
        assert_eq!(
            escape_node(r#"here's_a_wild_&_/cr%zy/_address_for:<wv>("IMPS")"#),
            r"here\27s_a_wild_\26_\2fcr%zy\2f_address_for\3a\3cwv\3e(\22IMPS\22)"
        );
        // §6.6 LDAP: "\E9" is upper case and not one of the ten: literal
        assert_eq!(
            unescape_node(r"CN=D\27Artagnan\20Saint-Andr\E9,O=Example\20\26\20Company,\20Inc.,DC=example,DC=com")
                .unwrap(),
            r"CN=D'Artagnan Saint-Andr\E9,O=Example & Company, Inc.,DC=example,DC=com"
        );
    }

    #[test]
    fn edges() {
        assert_eq!(escape_node(""), "");
        assert_eq!(escape_node(r"\"), r"\");
        assert_eq!(unescape_node(r"\").unwrap(), r"\");
        assert_eq!(unescape_node(r"a\5").unwrap(), r"a\5");
        assert_eq!(unescape_node(r"a\5c").unwrap(), r"a\");
        assert_eq!(unescape_node("\\\u{e9}").unwrap(), "\\\u{e9}");
        assert_eq!(escape_node(" x "), r"\20x\20");
        assert_eq!(unescape_node(r"\20x\20").unwrap(), " x ");
        assert_eq!(
            unescape_node(r"foo\@x.org"),
            Err(AddressError::Jid {
                offset: 4,
                reason: "character not allowed in a localpart"
            })
        );
        assert_eq!(unescape_node("").unwrap(), "");
        assert!(unescape_node("a b").is_err());
        for s in [
            r"\\27", "\\ ", "\\@", "\\2@", r"\5c", r"\\5c", "a\\", "\\\\\\",
        ] {
            assert_eq!(unescape_node(&escape_node(s)).unwrap(), s, "{s}");
        }
    }
}
