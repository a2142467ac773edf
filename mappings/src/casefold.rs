//! Case folding of IRC nicks and channels (the `CASEMAPPING` ISUPPORT token,
//! <https://modern.ircdocs.horse/#casemapping-parameter>) and of RFC 7701
//! nicknames (the PRECIS Nickname profile, RFC 7700 §2).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::MappingError;

/// How an IRC network compares nicks and channel names, as announced in its
/// `CASEMAPPING` ISUPPORT token.
///
/// | mapping | folds |
/// | --- | --- |
/// | `ascii` | `A-Z` to `a-z` |
/// | `rfc1459` (the default) | `A-Z` to `a-z`, and `[]\~` to `{}\|^` |
/// | `strict-rfc1459` | `A-Z` to `a-z`, and `[]\` to `{}\|` |
///
/// Non-ASCII characters are never folded (no IRC mapping in use does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseMapping {
    /// `ascii`: only `A-Z` fold.
    Ascii,
    /// `rfc1459`: `A-Z[]\~` fold to `a-z{}|^`. What RFC 1459 §2.2 says and
    /// what a network that announces nothing is assumed to use.
    #[default]
    Rfc1459,
    /// `strict-rfc1459`: `A-Z[]\` fold to `a-z{}|` (not `~`).
    StrictRfc1459,
}

impl CaseMapping {
    /// The ISUPPORT token value.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseMapping::Ascii => "ascii",
            CaseMapping::Rfc1459 => "rfc1459",
            CaseMapping::StrictRfc1459 => "strict-rfc1459",
        }
    }

    fn fold_char(self, c: char) -> char {
        match (self, c) {
            (_, 'A'..='Z') => c.to_ascii_lowercase(),
            (CaseMapping::Ascii, _) => c,
            (_, '[') => '{',
            (_, ']') => '}',
            (_, '\\') => '|',
            (CaseMapping::Rfc1459, '~') => '^',
            _ => c,
        }
    }
}

impl fmt::Display for CaseMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CaseMapping {
    type Err = MappingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ascii" => Ok(CaseMapping::Ascii),
            "rfc1459" => Ok(CaseMapping::Rfc1459),
            "strict-rfc1459" => Ok(CaseMapping::StrictRfc1459),
            _ => Err(MappingError::invalid(
                "CASEMAPPING",
                s,
                "expected ascii, rfc1459 or strict-rfc1459",
            )),
        }
    }
}

/// Folds an IRC nick or channel name by `mapping`, so that two names are the
/// same on the network exactly when their folded forms are equal.
///
/// ```
/// use cpimgate_mappings::{casefold, CaseMapping};
/// assert_eq!(casefold(CaseMapping::Rfc1459, "Alice[m]~"), "alice{m}^");
/// assert_eq!(casefold(CaseMapping::StrictRfc1459, "Alice[m]~"), "alice{m}~");
/// assert_eq!(casefold(CaseMapping::Ascii, "Alice[m]~"), "alice[m]~");
/// ```
pub fn casefold(mapping: CaseMapping, s: &str) -> String {
    s.chars().map(|c| mapping.fold_char(c)).collect()
}

/// The comparison key of a nickname in a reservation or an MSRP room.
///
/// RFC 7700 §2 (PRECIS Nickname profile): non-ASCII spaces become ASCII
/// spaces, leading and trailing spaces go, runs of spaces become one, then
/// Unicode lower case and NFKC (repeated until stable, so the key of a key is
/// itself). On top of that the `rfc1459` IRC folding is applied, because a
/// bridge may include an IRC channel where `Alice[m]` and `alice{m}` are one
/// nick: reservations are deliberately conservative.
///
/// ```
/// use cpimgate_mappings::nick_key;
/// assert_eq!(nick_key("  Alice\u{3000}in   Wonderland "), "alice in wonderland");
/// assert_eq!(nick_key("Bob[away]"), nick_key("bob{AWAY}"));
/// ```
pub fn nick_key(nick: &str) -> String {
    let mut key = nick.to_owned();
    // The steps do not commute (NFKC turns U+210C into `H` and U+0384 into a
    // space and a combining accent): iterate to a fixed point, which real
    // input reaches in one or two rounds.
    for _ in 0..4 {
        let next = casefold(
            CaseMapping::Rfc1459,
            &collapse_spaces(&key)
                .to_lowercase()
                .nfkc()
                .collect::<String>(),
        );
        if next == key {
            break;
        }
        key = next;
    }
    key
}

/// RFC 7700 §2.1 additional mapping rules: every white space becomes an
/// ASCII space, none at either end, no runs.
fn collapse_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(char::is_whitespace).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1459_folds_specials() {
        assert_eq!(casefold(CaseMapping::Rfc1459, "[]\\~"), "{}|^");
        assert_eq!(casefold(CaseMapping::StrictRfc1459, "[]\\~"), "{}|~");
        assert_eq!(casefold(CaseMapping::Ascii, "[]\\~"), "[]\\~");
        // Non-ASCII letters are left alone, as every IRC mapping does.
        assert_eq!(casefold(CaseMapping::Rfc1459, "ÉCOLE"), "École");
    }

    #[test]
    fn casemapping_parses_isupport_values() {
        assert_eq!(
            "RFC1459".parse::<CaseMapping>().ok(),
            Some(CaseMapping::Rfc1459)
        );
        assert_eq!(
            "strict-rfc1459".parse::<CaseMapping>().ok(),
            Some(CaseMapping::StrictRfc1459)
        );
        assert_eq!(
            "ascii".parse::<CaseMapping>().ok(),
            Some(CaseMapping::Ascii)
        );
        assert!("rfc7613".parse::<CaseMapping>().is_err());
    }

    #[test]
    fn nick_key_handles_compatibility_characters() {
        assert_eq!(nick_key("\u{210C}ello"), "hello");
        assert_eq!(nick_key("ＡＬＩＣＥ"), "alice");
        assert_eq!(
            nick_key(&nick_key("\u{210C}ello")),
            nick_key("\u{210C}ello")
        );
    }

    proptest::proptest! {
        #[test]
        fn casefold_is_idempotent(s in "\\PC{0,24}", m in proptest::sample::select(vec![
            CaseMapping::Ascii, CaseMapping::Rfc1459, CaseMapping::StrictRfc1459,
        ])) {
            let once = casefold(m, &s);
            proptest::prop_assert_eq!(casefold(m, &once), once.clone());
            // Folding never changes the length: keys stay aligned with names.
            proptest::prop_assert_eq!(once.chars().count(), s.chars().count());
            // rfc1459 folds at least what the others fold.
            let wide = casefold(CaseMapping::Rfc1459, &s);
            proptest::prop_assert_eq!(casefold(CaseMapping::Rfc1459, &once), wide);
        }

        #[test]
        fn nick_key_is_idempotent(s in "\\PC{0,24}") {
            let key = nick_key(&s);
            proptest::prop_assert_eq!(nick_key(&key), key);
        }
    }
}
