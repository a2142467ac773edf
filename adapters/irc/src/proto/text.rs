//! Text on IRC: formatting codes, CTCP ACTION, and cutting outgoing text
//! into lines that fit.

/// What a PRIVMSG or NOTICE text is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ctcp<'a> {
    /// Plain text.
    Text(&'a str),
    /// `\x01ACTION text\x01`: `/me text` (Modern IRC CTCP "ACTION").
    Action(&'a str),
    /// Any other CTCP query or reply (VERSION, PING...): command, arguments.
    Other(&'a str, &'a str),
}

/// Tell plain text from CTCP (Modern IRC CTCP "Message syntax": the final
/// `\x01` may be missing).
pub fn ctcp(text: &str) -> Ctcp<'_> {
    let Some(inner) = text.strip_prefix('\x01') else {
        return Ctcp::Text(text);
    };
    let inner = inner.strip_suffix('\x01').unwrap_or(inner);
    let (cmd, args) = inner.split_once(' ').unwrap_or((inner, ""));
    if cmd.eq_ignore_ascii_case("ACTION") {
        Ctcp::Action(args)
    } else {
        Ctcp::Other(cmd, args)
    }
}

/// The answer to a CTCP query the gateway answers (Modern IRC CTCP:
/// `VERSION`, `PING` echoed, `TIME`, `CLIENTINFO`), framed for a NOTICE;
/// `None` for plain text, ACTION and queries it does not answer.
pub fn ctcp_reply(text: &str) -> Option<String> {
    let Ctcp::Other(cmd, args) = ctcp(text) else {
        return None;
    };
    let body = match cmd.to_ascii_uppercase().as_str() {
        "VERSION" => format!("VERSION cpimgate {}", env!("CARGO_PKG_VERSION")),
        "PING" => format!("PING {args}"),
        "TIME" => format!(
            "TIME {}",
            cpimgate_model::time::Timestamp::now().to_rfc3339()
        ),
        "CLIENTINFO" => "CLIENTINFO ACTION CLIENTINFO PING TIME VERSION".to_owned(),
        _ => return None,
    };
    Some(format!("\x01{}\x01", body.trim_end()))
}

/// `text` as a CTCP ACTION.
pub fn action(text: &str) -> String {
    format!("\x01ACTION {text}\x01")
}

/// Remove mIRC formatting (Modern IRC "Formatting"): bold `\x02`, italics
/// `\x1D`, underline `\x1F`, strikethrough `\x1E`, monospace `\x11`,
/// reverse `\x16`, reset `\x0F`, colour `\x03[fg[,bg]]` with one- or
/// two-digit numbers, and hex colour `\x04[RRGGBB[,RRGGBB]]`. Other control
/// characters except tab become nothing as well: they mean nothing to the
/// other worlds and some (form feed, vertical tab) are not valid XML.
pub fn strip_formatting(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            0x03 => {
                i += 1;
                let fg = digits(&b[i..], 2, u8::is_ascii_digit);
                i += fg;
                // A background only follows a foreground.
                if fg > 0 && b.get(i) == Some(&b',') {
                    let n = digits(&b[i + 1..], 2, u8::is_ascii_digit);
                    if n > 0 {
                        i += 1 + n;
                    }
                }
            }
            0x04 => {
                i += 1;
                if digits(&b[i..], 6, u8::is_ascii_hexdigit) == 6 {
                    i += 6;
                    if b.get(i) == Some(&b',') && digits(&b[i + 1..], 6, u8::is_ascii_hexdigit) == 6
                    {
                        i += 7;
                    }
                }
            }
            c if c < 0x20 && c != b'\t' => i += 1,
            0x7f => i += 1,
            _ => {
                // Copy one whole UTF-8 character.
                let len = utf8_len(b[i]);
                let end = (i + len).min(b.len());
                if let Some(s) = text.get(i..end) {
                    out.push_str(s);
                }
                i = end;
            }
        }
    }
    out
}

fn digits(b: &[u8], max: usize, is: fn(&u8) -> bool) -> usize {
    b.iter().take(max).take_while(|c| is(c)).count()
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Cut `text` into lines of at most `budget` bytes each: at line breaks
/// first, then at the last space that fits, and inside a word only when a
/// word alone is longer than a line; never inside a UTF-8 character. Empty
/// lines are dropped (an empty PRIVMSG is an error on IRC). `budget` is what
/// is left of the 512 bytes after the prefix the server adds
/// ([`text_budget`]).
pub fn split_lines(text: &str, budget: usize) -> Vec<String> {
    let budget = budget.max(4); // room for one character of any width
    let mut out = Vec::new();
    for line in text.split('\n') {
        let mut rest = line.trim_end_matches('\r');
        while rest.len() > budget {
            let mut cut = budget;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            let (head, _) = rest.split_at(cut);
            let at = match head.rfind(' ') {
                Some(sp) if sp > 0 => sp,
                _ => cut,
            };
            let (piece, tail) = rest.split_at(at);
            out.push(piece.to_owned());
            rest = tail.strip_prefix(' ').unwrap_or(tail);
        }
        if !rest.trim().is_empty() {
            out.push(rest.to_owned());
        }
    }
    out
}

/// The bytes left for the text of `PRIVMSG target :text` after the prefix
/// `:nick!user@host ` the server puts in front of it for the receivers
/// (RFC 1459 §2.3: 512 bytes with CR LF). The user and host parts are
/// their lengths if known, else the server's `USERLEN`/`HOSTLEN` maxima.
pub fn text_budget(
    linelen: usize,
    nick: &str,
    user_len: usize,
    host_len: usize,
    command: &str,
    target: &str,
) -> usize {
    // ":" nick "!" user "@" host " " command " " target " :" text "\r\n"
    let overhead =
        1 + nick.len() + 1 + user_len + 1 + host_len + 1 + command.len() + 1 + target.len() + 2 + 2;
    linelen.saturating_sub(overhead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ctcp_action_and_others() {
        // Modern IRC CTCP, "ACTION": "\x01ACTION writes some specs!\x01"
        assert_eq!(
            ctcp("\x01ACTION writes some specs!\x01"),
            Ctcp::Action("writes some specs!")
        );
        assert_eq!(ctcp("\x01ACTION waves"), Ctcp::Action("waves"));
        assert_eq!(ctcp("\x01VERSION\x01"), Ctcp::Other("VERSION", ""));
        assert_eq!(ctcp("hi"), Ctcp::Text("hi"));
        assert_eq!(action("waves"), "\x01ACTION waves\x01");
    }

    #[test]
    fn ctcp_queries_are_answered() {
        // Modern IRC CTCP, "PING": the reply echoes the query's argument.
        assert_eq!(
            ctcp_reply("\x01PING 1473523796 918320\x01").as_deref(),
            Some("\x01PING 1473523796 918320\x01")
        );
        let v = ctcp_reply("\x01VERSION\x01").expect("VERSION is answered");
        assert!(v.starts_with("\x01VERSION cpimgate "), "{v:?}");
        assert_eq!(ctcp_reply("\x01ACTION waves\x01"), None);
        assert_eq!(ctcp_reply("\x01DCC SEND x\x01"), None);
        assert_eq!(ctcp_reply("hi"), None);
    }

    #[test]
    fn formatting_is_stripped() {
        // Modern IRC Formatting, "Examples":
        // "I love \x033IRC! \x03It is the \x037best protocol ever!"
        assert_eq!(
            strip_formatting("I love \x033IRC! \x03It is the \x037best protocol ever!"),
            "I love IRC! It is the best protocol ever!"
        );
        // "This is a \x1d\x0313,9cool \x03message"
        assert_eq!(
            strip_formatting("This is a \x1d\x0313,9cool \x03message"),
            "This is a cool message"
        );
        // A bare \x03 takes no ",7" after it:
        // "Rules: Don't spam 5\x0313,8,6\x03,7,8, and especially not \x029\x02\x1d!"
        assert_eq!(
            strip_formatting(
                "Rules: Don't spam 5\x0313,8,6\x03,7,8, and especially not \x029\x02\x1d!"
            ),
            "Rules: Don't spam 5,6,7,8, and especially not 9!"
        );
        assert_eq!(strip_formatting("\x04ff0000,00ff00red\x0f ok"), "red ok");
        assert_eq!(strip_formatting("tab\tand\x0cff é"), "tab\tandff é");
    }

    #[test]
    fn splitting_prefers_spaces_and_keeps_characters_whole() {
        assert_eq!(split_lines("one two three", 8), ["one two", "three"]);
        assert_eq!(split_lines("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(split_lines("a\n\nb\r\n", 10), ["a", "b"]);
        // "é" is two bytes: a budget of 5 takes two of them, not two and a half.
        assert_eq!(split_lines("ééééé", 5), ["éé", "éé", "é"]);
    }

    #[test]
    fn budget_counts_the_prefix() {
        // ":alice!~a@host.example PRIVMSG #chan :" + CRLF
        let b = text_budget(512, "alice", 2, 12, "PRIVMSG", "#chan");
        assert_eq!(b, 512 - ":alice!~a@host.example PRIVMSG #chan :\r\n".len());
    }

    proptest! {
        #[test]
        fn split_keeps_every_word_and_fits(text in "[a-zé \\n]{0,300}", budget in 4usize..60) {
            let lines = split_lines(&text, budget);
            for l in &lines {
                prop_assert!(l.len() <= budget);
                prop_assert!(!l.contains('\n'));
            }
            let words = |s: &str| s.split_whitespace().collect::<String>();
            prop_assert_eq!(words(&lines.join(" ")), words(&text));
        }

        #[test]
        fn strip_never_panics_and_leaves_no_controls(text in "\\PC{0,40}|[\\x00-\\x1f\\x03\\x04a-f0-9,]{0,40}") {
            let s = strip_formatting(&text);
            prop_assert!(!s.chars().any(|c| c.is_control() && c != '\t'));
        }
    }
}
