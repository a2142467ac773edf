//! Nicknames of other worlds as valid IRC nicks.
//!
//! RFC 2812 §2.3.1: `nickname = ( letter / special ) *( letter / digit /
//! special / "-" )`, `special = "[" "]" "\" "`" "_" "^" "{" "|" "}"`, at
//! most `NICKLEN` characters. [`ircify`] makes a candidate from any
//! nickname (`Alice in wonderland` → `Alice_in_wonderland`,
//! `alice@atlanta.example.com` → `alice`); [`candidates`] gives the
//! alternatives to try when a nick is taken (433) or already given to
//! someone else in the mapping table, which keeps the choice so the same
//! person keeps the same nick.

/// Characters RFC 2812 §2.3.1 allows besides letters and digits.
const SPECIAL: &str = "[]\\`_^{|}";

fn allowed(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || SPECIAL.contains(c) || (!first && (c.is_ascii_digit() || c == '-'))
}

/// A valid IRC nick of at most `nicklen` characters made from `nick`.
///
/// The part before an `@` of an address-like nick is used; letters with
/// diacritics lose them where a plain ASCII letter is obvious (`é` → `e`);
/// anything else not allowed becomes `_`, with runs collapsed; a nick that
/// would start with a digit or `-` gets a leading `_`. Never empty.
pub fn ircify(nick: &str, nicklen: usize) -> String {
    let nicklen = nicklen.max(1);
    let base = nick.trim();
    let base = base
        .strip_prefix("sip:")
        .or_else(|| base.strip_prefix("xmpp:"))
        .or_else(|| base.strip_prefix("im:"))
        .unwrap_or(base);
    let base = match base.split_once('@') {
        Some((local, _)) if !local.is_empty() => local,
        _ => base,
    };
    let mut out = String::with_capacity(base.len().min(nicklen));
    for c in base.chars() {
        let c = fold_diacritic(c);
        let first = out.is_empty();
        if allowed(c, first) {
            out.push(c);
        } else if first && (c.is_ascii_digit() || c == '-') {
            out.push('_');
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
        if out.len() >= nicklen {
            break;
        }
    }
    let trimmed = out.trim_end_matches('_');
    let mut out = if trimmed.is_empty() {
        out
    } else {
        trimmed.to_owned()
    };
    if out.is_empty() {
        out.push('_');
    }
    out.truncate(nicklen);
    out
}

/// How many nicks a connection tries for the nick it wants before it
/// gives up (see [`tried_nicks`]).
pub const NICK_TRIES: usize = 50;

/// The nicks a connection that wants `wanted` tries, in order, at most
/// [`NICK_TRIES`]: the one it registers with is among them.
pub fn tried_nicks(wanted: &str, nicklen: usize) -> Vec<String> {
    let base = ircify(wanted, nicklen);
    candidates(&base, nicklen.max(2)).take(NICK_TRIES).collect()
}

/// The nicks to try for `base`, in order: `base`, then `base_`, `base2`,
/// `base3`, ... each cut so the whole fits `nicklen`.
pub fn candidates(base: &str, nicklen: usize) -> impl Iterator<Item = String> + '_ {
    let nicklen = nicklen.max(2);
    std::iter::once(cut(base, nicklen).to_owned())
        .chain(std::iter::once(format!("{}_", cut(base, nicklen - 1))))
        .chain((2u32..).map(move |n| {
            let suffix = n.to_string();
            format!(
                "{}{suffix}",
                cut(base, nicklen.saturating_sub(suffix.len()).max(1))
            )
        }))
}

fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The plain letter of a Latin letter with a diacritic, for the common
/// cases; anything else as given.
fn fold_diacritic(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
        'ç' => 'c',
        'Ç' => 'C',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'È' | 'É' | 'Ê' | 'Ë' => 'E',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
        'ñ' => 'n',
        'Ñ' => 'N',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'O',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
        'ý' | 'ÿ' => 'y',
        'Ý' => 'Y',
        _ => c,
    }
}

/// Whether `nick` is a valid IRC nick of at most `nicklen` characters.
pub fn is_valid(nick: &str, nicklen: usize) -> bool {
    let mut chars = nick.chars();
    chars.next().is_some_and(|c| allowed(c, true))
        && chars.all(|c| allowed(c, false))
        && nick.len() <= nicklen
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nicknames_of_other_worlds() {
        assert_eq!(ircify("Alice in wonderland", 30), "Alice_in_wonderland");
        assert_eq!(ircify("alice@atlanta.example.com", 30), "alice");
        assert_eq!(ircify("sip:bob@biloxi.example.com", 30), "bob");
        assert_eq!(ircify("Zoë", 30), "Zoe");
        assert_eq!(ircify("1337", 30), "_1337");
        assert_eq!(ircify("-dash", 30), "_-dash");
        assert_eq!(ircify("日本", 30), "_");
        assert_eq!(ircify("a very long nickname indeed", 9), "a_very_lo");
        assert_eq!(ircify("Bob [away]", 30), "Bob_[away]");
    }

    #[test]
    fn candidates_fit_and_differ() {
        let c: Vec<String> = candidates("alice", 6).take(4).collect();
        assert_eq!(c, ["alice", "alice_", "alice2", "alice3"]);
        let c: Vec<String> = candidates("abcdefghi", 9).take(3).collect();
        assert_eq!(c, ["abcdefghi", "abcdefgh_", "abcdefgh2"]);
    }

    proptest! {
        #[test]
        fn always_valid(nick in "\\PC{0,40}", nicklen in 1usize..40) {
            let n = ircify(&nick, nicklen);
            prop_assert!(is_valid(&n, nicklen), "{:?} from {:?}", n, nick);
            for c in candidates(&n, nicklen.max(2)).take(10) {
                prop_assert!(is_valid(&c, nicklen.max(2)), "{:?}", c);
            }
        }
    }
}
