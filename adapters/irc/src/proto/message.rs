//! IRC messages: RFC 1459 §2.3.1 framing with IRCv3 message tags.
//!
//! ```text
//! <message> ::= ['@' <tags> SPACE] [':' <source> SPACE] <command> <params> CRLF
//! ```
//!
//! [`IrcMessage::parse`] takes one line without its line ending and never
//! panics; [`IrcMessage::to_line`] refuses to write anything that would
//! change the meaning of the line on the wire (a CR, LF or NUL anywhere, a
//! space in a middle parameter), so text from other worlds can never become
//! an IRC command.
//!
//! IRC is bytes: a line that is not UTF-8 is read as Latin-1 (every byte one
//! character), which is what legacy clients send, so nothing is lost and
//! nothing fails.

use std::fmt;

/// The longest line accepted: 8191 bytes of tags (with `@` and the space)
/// plus 512 for the rest (IRCv3 message-tags "Size limit").
pub const MAX_LINE: usize = 8191 + 512;

/// The byte limit of a line without its tags, CRLF included (RFC 1459
/// §2.3).
pub const MAX_BODY: usize = 512;

/// Why a line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Happens when a line is empty or holds only tags and a source.
    #[error("no command in the line")]
    NoCommand,
    /// Happens when a line is longer than [`MAX_LINE`].
    #[error("line of {0} bytes is longer than {MAX_LINE}")]
    TooLong(usize),
    /// Happens when a command is neither letters nor a three-digit numeric.
    #[error("invalid command {0:?}")]
    BadCommand(String),
    /// Happens when a line holds a NUL byte (RFC 1459 §2.3.1).
    #[error("NUL byte at offset {0}")]
    Nul(usize),
}

/// Why a message could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Happens when a parameter, tag or the command holds CR, LF or NUL.
    #[error("{0} holds a line break or NUL")]
    LineBreak(&'static str),
    /// Happens when a parameter other than the last is empty, holds a space
    /// or starts with ':'.
    #[error("middle parameter {0:?} is empty, holds a space or starts with ':'")]
    BadMiddle(String),
    /// Happens when the command is not letters or a numeric.
    #[error("invalid command {0:?}")]
    BadCommand(String),
    /// Happens when a tag key is empty or holds `=`, `;` or a space.
    #[error("invalid tag key {0:?}")]
    BadTagKey(String),
}

/// Who sent a message: `nick!user@host` or a server name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The nick (or the server name).
    pub nick: String,
    /// The user (ident), if given.
    pub user: Option<String>,
    /// The host, if given.
    pub host: Option<String>,
}

impl Source {
    /// Split `nick!user@host`; each part after the nick is optional.
    pub fn parse(s: &str) -> Source {
        let (rest, host) = match s.split_once('@') {
            Some((r, h)) => (r, Some(h.to_owned())),
            None => (s, None),
        };
        let (nick, user) = match rest.split_once('!') {
            Some((n, u)) => (n, Some(u.to_owned())),
            None => (rest, None),
        };
        Source {
            nick: nick.to_owned(),
            user,
            host,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.nick)?;
        if let Some(u) = &self.user {
            write!(f, "!{u}")?;
        }
        if let Some(h) = &self.host {
            write!(f, "@{h}")?;
        }
        Ok(())
    }
}

/// One IRC message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IrcMessage {
    /// Tags in the order given, values unescaped; an empty value is `None`
    /// (IRCv3 message-tags: `foo=` is the same as `foo`).
    pub tags: Vec<(String, Option<String>)>,
    /// The source, if the line had one.
    pub source: Option<Source>,
    /// The command, upper-cased, or a three-digit numeric.
    pub command: String,
    /// The parameters; the trailing one without its ':'.
    pub params: Vec<String>,
}

impl IrcMessage {
    /// A message with `command` and `params`, no tags, no source.
    pub fn new(command: &str, params: &[&str]) -> IrcMessage {
        IrcMessage {
            command: command.to_owned(),
            params: params.iter().map(|p| (*p).to_owned()).collect(),
            ..IrcMessage::default()
        }
    }

    /// Add a tag.
    pub fn with_tag(mut self, key: &str, value: Option<&str>) -> IrcMessage {
        self.tags.push((key.to_owned(), value.map(str::to_owned)));
        self
    }

    /// The value of tag `key`; the last one wins (IRCv3 message-tags:
    /// "disregard all but the final occurrence").
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether tag `key` is present, with or without a value.
    pub fn has_tag(&self, key: &str) -> bool {
        self.tags.iter().any(|(k, _)| k == key)
    }

    /// Parameter `i`, if present.
    pub fn param(&self, i: usize) -> Option<&str> {
        self.params.get(i).map(String::as_str)
    }

    /// The source's nick, if any.
    pub fn nick(&self) -> Option<&str> {
        self.source.as_ref().map(|s| s.nick.as_str())
    }

    /// Read one line, without its CR LF.
    pub fn parse(line: &[u8]) -> Result<IrcMessage, ParseError> {
        if line.len() > MAX_LINE {
            return Err(ParseError::TooLong(line.len()));
        }
        if let Some(at) = line.iter().position(|&b| b == 0) {
            return Err(ParseError::Nul(at));
        }
        let text = decode(line);
        let mut rest: &str = &text;
        let mut msg = IrcMessage::default();

        if let Some(after) = rest.strip_prefix('@') {
            let (tags, r) = after.split_once(' ').unwrap_or((after, ""));
            msg.tags = parse_tags(tags);
            rest = r;
        }
        rest = rest.trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(':') {
            let (source, r) = after.split_once(' ').unwrap_or((after, ""));
            msg.source = Some(Source::parse(source));
            rest = r;
        }
        rest = rest.trim_start_matches(' ');
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if command.is_empty() {
            return Err(ParseError::NoCommand);
        }
        if !valid_command(command) {
            return Err(ParseError::BadCommand(command.chars().take(32).collect()));
        }
        msg.command = command.to_ascii_uppercase();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                msg.params.push(trailing.to_owned());
                break;
            }
            let (p, r) = rest.split_once(' ').unwrap_or((rest, ""));
            msg.params.push(p.to_owned());
            rest = r;
        }
        Ok(msg)
    }

    /// Write the message as one line, without CR LF.
    pub fn to_line(&self) -> Result<String, EncodeError> {
        let mut out = String::with_capacity(64);
        if !self.tags.is_empty() {
            out.push('@');
            for (i, (k, v)) in self.tags.iter().enumerate() {
                if k.is_empty() || k.contains(['=', ';', ' ', '\r', '\n', '\0']) {
                    return Err(EncodeError::BadTagKey(k.clone()));
                }
                if i > 0 {
                    out.push(';');
                }
                out.push_str(k);
                if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                    out.push('=');
                    escape_tag_value(v, &mut out)?;
                }
            }
            out.push(' ');
        }
        if let Some(s) = &self.source {
            let s = s.to_string();
            if s.is_empty() || s.contains([' ', '\r', '\n', '\0']) {
                return Err(EncodeError::LineBreak("the source"));
            }
            out.push(':');
            out.push_str(&s);
            out.push(' ');
        }
        if !valid_command(&self.command) {
            return Err(EncodeError::BadCommand(self.command.clone()));
        }
        out.push_str(&self.command);
        let last = self.params.len().saturating_sub(1);
        for (i, p) in self.params.iter().enumerate() {
            if p.contains(['\r', '\n', '\0']) {
                return Err(EncodeError::LineBreak("a parameter"));
            }
            out.push(' ');
            if i == last {
                if p.is_empty() || p.starts_with(':') || p.contains(' ') {
                    out.push(':');
                }
            } else if p.is_empty() || p.starts_with(':') || p.contains(' ') {
                return Err(EncodeError::BadMiddle(p.clone()));
            }
            out.push_str(p);
        }
        Ok(out)
    }
}

impl fmt::Display for IrcMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_line() {
            Ok(l) => f.write_str(&l),
            Err(e) => write!(f, "<unwritable: {e}>"),
        }
    }
}

/// UTF-8 if it is, Latin-1 otherwise.
pub fn decode(line: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(line) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => std::borrow::Cow::Owned(line.iter().map(|&b| char::from(b)).collect()),
    }
}

fn valid_command(c: &str) -> bool {
    (!c.is_empty() && c.bytes().all(|b| b.is_ascii_alphabetic()))
        || (c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_tags(s: &str) -> Vec<(String, Option<String>)> {
    s.split(';')
        .filter(|t| !t.is_empty())
        .map(|t| match t.split_once('=') {
            // A value that unescapes to nothing (`\\` alone) is no value.
            Some((k, v)) => {
                let v = unescape_tag_value(v);
                (k.to_owned(), (!v.is_empty()).then_some(v))
            }
            None => (t.to_owned(), None),
        })
        .collect()
}

/// IRCv3 message-tags "Escaping values": `\:` `\s` `\\` `\r` `\n`; a lone
/// trailing backslash is dropped, as is a backslash before any other
/// character.
pub fn unescape_tag_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn escape_tag_value(v: &str, out: &mut String) -> Result<(), EncodeError> {
    for c in v.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\0' => return Err(EncodeError::LineBreak("a tag value")),
            c => out.push(c),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn p(line: &str) -> IrcMessage {
        IrcMessage::parse(line.as_bytes()).unwrap()
    }

    #[test]
    fn rfc1459_examples() {
        // RFC 1459 §4.4.1: ":Angel PRIVMSG Wiz :Hello are you receiving this message ?"
        let m = p(":Angel PRIVMSG Wiz :Hello are you receiving this message ?");
        assert_eq!(m.nick(), Some("Angel"));
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, ["Wiz", "Hello are you receiving this message ?"]);
        // RFC 1459 §4.2.1: ":WiZ JOIN #Twilight_zone"
        let m = p(":WiZ JOIN #Twilight_zone");
        assert_eq!(m.params, ["#Twilight_zone"]);
        // RFC 1459 §4.1.2: ":WiZ NICK Kilroy"
        assert_eq!(p(":WiZ NICK Kilroy").params, ["Kilroy"]);
        // RFC 1459 §4.2.8: "KICK &Melbourne Matthew"
        let m = p("KICK &Melbourne Matthew");
        assert!(m.source.is_none());
        assert_eq!(m.params, ["&Melbourne", "Matthew"]);
    }

    #[test]
    fn message_tags_examples() {
        // IRCv3 message-tags, "Examples".
        let m = p("@aaa=bbb;ccc;example.com/ddd=eee :nick!ident@host.com PRIVMSG me :Hello");
        assert_eq!(m.tag("aaa"), Some("bbb"));
        assert!(m.has_tag("ccc"));
        assert_eq!(m.tag("ccc"), None);
        assert_eq!(m.tag("example.com/ddd"), Some("eee"));
        let s = m.source.as_ref().unwrap();
        assert_eq!(
            (s.nick.as_str(), s.user.as_deref(), s.host.as_deref()),
            ("nick", Some("ident"), Some("host.com"))
        );
        assert_eq!(m.params, ["me", "Hello"]);
        // server-time, IRCv3 server-time "Examples".
        let m = p("@time=2011-10-19T16:40:51.620Z :Angel!angel@example.org PRIVMSG Wiz :Hello");
        assert_eq!(m.tag("time"), Some("2011-10-19T16:40:51.620Z"));
    }

    #[test]
    fn tag_value_escapes_round_trip() {
        assert_eq!(unescape_tag_value(r"a\:b\sc\\d\re\nf"), "a;b c\\d\re\nf");
        assert_eq!(unescape_tag_value(r"test\"), "test");
        assert_eq!(unescape_tag_value(r"\b"), "b");
        let m = IrcMessage::new("TAGMSG", &["#c"]).with_tag("+x", Some("a; b\\"));
        let line = m.to_line().unwrap();
        assert_eq!(line, r"@+x=a\:\sb\\ TAGMSG #c");
        assert_eq!(p(&line), m);
    }

    #[test]
    fn empty_tag_value_is_no_value_and_last_wins() {
        // Found by the fuzzer: a lone backslash unescapes to nothing.
        let m = p("@c=\\ PING x");
        assert_eq!(m.tags, [("c".to_owned(), None)]);
        assert_eq!(p(&m.to_line().unwrap()), m);
        let m = p("@a=;b=1;b=2 PING x");
        assert_eq!(m.tag("a"), None);
        assert!(m.has_tag("a"));
        assert_eq!(m.tag("b"), Some("2"));
    }

    #[test]
    fn numerics_and_trailing_forms() {
        let m = p(":irc.localhost 001 t1 :Welcome to the TestNet IRC Network t1!t1@127.0.0.1");
        assert_eq!(m.command, "001");
        assert_eq!(m.params.len(), 2);
        // An empty trailing parameter is a parameter.
        assert_eq!(p("TOPIC #c :").params, ["#c", ""]);
        // Extra spaces between parameters are tolerated.
        assert_eq!(p("MODE  #c   +o  x").params, ["#c", "+o", "x"]);
        assert_eq!(p("privmsg #c hi").command, "PRIVMSG");
    }

    #[test]
    fn bad_lines_are_errors() {
        assert_eq!(IrcMessage::parse(b""), Err(ParseError::NoCommand));
        assert_eq!(IrcMessage::parse(b"@a=b :src"), Err(ParseError::NoCommand));
        assert_eq!(IrcMessage::parse(b"PRIV\0MSG"), Err(ParseError::Nul(4)));
        assert!(matches!(
            IrcMessage::parse(b"12 x"),
            Err(ParseError::BadCommand(_))
        ));
        assert!(matches!(
            IrcMessage::parse(&vec![b'A'; MAX_LINE + 1]),
            Err(ParseError::TooLong(_))
        ));
    }

    #[test]
    fn latin1_is_read_not_refused() {
        let m = IrcMessage::parse(b"PRIVMSG #c :caf\xe9").unwrap();
        assert_eq!(m.params[1], "café");
    }

    #[test]
    fn text_cannot_become_a_command() {
        let m = IrcMessage::new("PRIVMSG", &["#c", "hi\r\nQUIT :bye"]);
        assert_eq!(m.to_line(), Err(EncodeError::LineBreak("a parameter")));
        let m = IrcMessage::new("PRIVMSG", &["#c x", "hi"]);
        assert!(matches!(m.to_line(), Err(EncodeError::BadMiddle(_))));
        let m = IrcMessage::new("PRIVMSG", &["#c", ":-) hi"]);
        assert_eq!(m.to_line().unwrap(), "PRIVMSG #c ::-) hi");
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = IrcMessage::parse(&bytes);
        }

        #[test]
        fn written_lines_read_back(
            cmd in "[A-Z]{1,10}",
            middles in proptest::collection::vec("[^\\s:\\x00][^\\s\\x00]{0,10}", 0..5),
            trailing in "[^\\r\\n\\x00]{0,40}",
            tag in proptest::option::of("[^\\x00\\r\\n]{1,20}"),
        ) {
            let mut params = middles.clone();
            params.push(trailing);
            let mut m = IrcMessage { command: cmd, params, ..IrcMessage::default() };
            if let Some(t) = tag {
                m.tags.push(("example.com/t".into(), Some(t)));
            }
            let line = m.to_line().unwrap();
            prop_assert_eq!(IrcMessage::parse(line.as_bytes()).unwrap(), m);
        }
    }
}
