//! Fuzzes the IRC line codec and the text helpers: any bytes parsed as an
//! IRC line must not panic, and whatever parses must write back to a line
//! that reads back equal. Formatting removal, CTCP splitting, line
//! splitting and nick mapping must not panic on any text.
#![no_main]

use cpimgate_irc::proto::{IrcMessage, ISupport, nick, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = IrcMessage::parse(data)
        && let Ok(line) = m.to_line()
    {
        let back = IrcMessage::parse(line.as_bytes()).expect("a written line parses");
        assert_eq!(back, m, "{line}");
    }
    let s = String::from_utf8_lossy(data);
    let _ = text::strip_formatting(&s);
    let _ = text::ctcp(&s);
    let budget = usize::from(data.first().copied().unwrap_or(0));
    for l in text::split_lines(&s, budget) {
        assert!(l.len() <= budget.max(4));
    }
    let n = nick::ircify(&s, budget.max(1));
    assert!(nick::is_valid(&n, budget.max(1)), "{n:?}");
    let mut isupport = ISupport::default();
    isupport.apply(&s.split(' ').map(str::to_owned).collect::<Vec<_>>());
    let _ = isupport.split_names_entry(&s);
});
