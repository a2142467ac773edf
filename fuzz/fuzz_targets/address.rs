//! Fuzzes the address parsers: any UTF-8 input parsed as an `Address`, a
//! `NameAddr` and a `Jid` must not panic, and whatever parses must read back
//! equal from its `Display` form. XEP-0106 escaping must be reversible and
//! unescaping must not panic, and the component JID mappings must reverse.
#![no_main]

use cpimgate_model::address::{Address, Jid, NameAddr, escape_node, unescape_node};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(a) = s.parse::<Address>() {
        let written = a.to_string();
        let back: Address = written.parse().expect("Display form of an Address parses");
        assert_eq!(back, a, "{written}");
        if let Ok(j) = a.to_component_jid("gw.example.com") {
            let back =
                Address::from_component_jid(&j, "gw.example.com").expect("component JID reverses");
            assert_eq!(back, a, "{j}");
        }
        if let Ok(j) = a.to_room_jid("gw.example.com") {
            Address::from_room_jid(&j, "gw.example.com").expect("room JID reverses");
        }
    }
    if let Ok(n) = s.parse::<NameAddr>() {
        let written = n.to_string();
        let back: NameAddr = written.parse().expect("Display form of a NameAddr parses");
        assert_eq!(back, n, "{written}");
    }
    let _ = NameAddr::parse_with_params(s);
    if let Ok(j) = s.parse::<Jid>() {
        assert_eq!(j.to_string().parse::<Jid>().ok(), Some(j.clone()));
        let _ = Address::from_component_jid(&j, j.domain());
        let _ = Address::from_room_jid(&j, j.domain());
    }
    let escaped = escape_node(s);
    assert_eq!(unescape_node(&escaped).ok().as_deref(), Some(s));
    let _ = unescape_node(s);
});
