//! What the server says it supports: RPL_ISUPPORT (005) and the case
//! mapping it names (Modern IRC "Feature Advertisement", "CASEMAPPING").

use std::collections::HashMap;

use cpimgate_mappings::{CaseMapping, casefold};

/// The parts of ISUPPORT the adapter uses, with the defaults of a server
/// that says nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ISupport {
    /// `CASEMAPPING`.
    pub casemapping: CaseMapping,
    /// `NICKLEN`; 9 by RFC 1459 §1.2 when absent.
    pub nicklen: usize,
    /// `CHANTYPES`; `#&` when absent.
    pub chantypes: String,
    /// `PREFIX` modes and their symbols, e.g. `[('o','@'), ('v','+')]`.
    pub prefix: Vec<(char, char)>,
    /// `NETWORK`.
    pub network: Option<String>,
    /// `LINELEN`, if the server raised the 512-byte limit.
    pub linelen: usize,
    /// Every token as given (value `""` when none).
    pub raw: HashMap<String, String>,
}

impl Default for ISupport {
    fn default() -> Self {
        ISupport {
            casemapping: CaseMapping::Rfc1459,
            nicklen: 9,
            chantypes: "#&".into(),
            prefix: vec![('o', '@'), ('v', '+')],
            network: None,
            linelen: 512,
            raw: HashMap::new(),
        }
    }
}

impl ISupport {
    /// Take the tokens of one 005 line: its parameters between the client's
    /// nick and the trailing "are supported by this server".
    pub fn apply(&mut self, params: &[String]) {
        let n = params.len();
        if n < 2 {
            return;
        }
        for token in &params[1..n - 1] {
            if let Some(neg) = token.strip_prefix('-') {
                self.raw.remove(neg);
                continue;
            }
            let (k, v) = token.split_once('=').unwrap_or((token, ""));
            self.raw.insert(k.to_owned(), v.to_owned());
            match k {
                // An unknown mapping (e.g. `rfc7613`) falls back to ASCII
                // folding, which never merges two nicks the server keeps
                // apart by more than case.
                "CASEMAPPING" => self.casemapping = v.parse().unwrap_or(CaseMapping::Ascii),
                "NICKLEN" | "MAXNICKLEN" => {
                    if let Ok(n) = v.parse::<usize>() {
                        self.nicklen = n.clamp(1, 256);
                    }
                }
                "CHANTYPES" => self.chantypes = v.to_owned(),
                "NETWORK" => self.network = Some(v.to_owned()),
                "LINELEN" => {
                    if let Ok(n) = v.parse::<usize>() {
                        self.linelen = n.clamp(512, 16384);
                    }
                }
                "PREFIX" => {
                    // PREFIX=(ov)@+
                    if let Some((modes, symbols)) =
                        v.strip_prefix('(').and_then(|r| r.split_once(')'))
                    {
                        self.prefix = modes.chars().zip(symbols.chars()).collect();
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether `a` and `b` name the same nick or channel here.
    pub fn same(&self, a: &str, b: &str) -> bool {
        casefold(self.casemapping, a) == casefold(self.casemapping, b)
    }

    /// Whether `target` names a channel.
    pub fn is_channel(&self, target: &str) -> bool {
        target
            .chars()
            .next()
            .is_some_and(|c| self.chantypes.contains(c))
    }

    /// `@+nick` → (`nick`, `"@+"`): the membership prefixes of a NAMES entry
    /// (multi-prefix gives several) split from the nick; a `nick!user@host`
    /// form (userhost-in-names) is cut to the nick.
    pub fn split_names_entry<'a>(&self, entry: &'a str) -> (&'a str, &'a str) {
        let cut = entry
            .char_indices()
            .find(|(_, c)| !self.prefix.iter().any(|(_, s)| s == c))
            .map_or(entry.len(), |(i, _)| i);
        let (prefixes, rest) = entry.split_at(cut);
        let nick = rest.split(['!', '@']).next().unwrap_or(rest);
        (nick, prefixes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn inspircd_tokens() {
        // As InspIRCd 3.15 sends them (seen on the test server).
        let mut s = ISupport::default();
        s.apply(&params(
            "t1 AWAYLEN=200 CASEMAPPING=rfc1459 CHANTYPES=# NICKLEN=30 PREFIX=(ov)@+ NETWORK=TestNet are",
        ));
        assert_eq!(s.casemapping, CaseMapping::Rfc1459);
        assert_eq!(s.nicklen, 30);
        assert_eq!(s.network.as_deref(), Some("TestNet"));
        assert!(s.is_channel("#x"));
        assert!(!s.is_channel("&x"));
        assert_eq!(s.prefix, [('o', '@'), ('v', '+')]);
        s.apply(&params("t1 -NETWORK x"));
        assert!(!s.raw.contains_key("NETWORK"));
    }

    #[test]
    fn casemapping_from_the_server() {
        // RFC 1459 §2.2: {}| are the lower case of []\.
        let mut s = ISupport::default();
        assert!(s.same("Wiz[away]", "wiz{AWAY}"));
        s.apply(&params("t1 CASEMAPPING=ascii are"));
        assert!(!s.same("a[", "a{"));
        s.apply(&params("t1 CASEMAPPING=rfc7613 are"));
        assert_eq!(s.casemapping, CaseMapping::Ascii);
    }

    #[test]
    fn names_entries() {
        let s = ISupport::default();
        assert_eq!(s.split_names_entry("@+alice"), ("alice", "@+"));
        assert_eq!(s.split_names_entry("bob!b@host"), ("bob", ""));
        assert_eq!(s.split_names_entry("@"), ("", "@"));
    }
}
