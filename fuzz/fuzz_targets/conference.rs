//! Fuzzes the reading of conference-info documents (RFC 4575 §4, §5,
//! with the nicknames of RFC 7701 §9.6), the NOTIFY bodies a room
//! elsewhere sends the gateway, and the roster view they feed (§4.6): no
//! input may make them panic, and a document applied twice changes
//! nothing the second time unless it is partial.
#![no_main]

use cpimgate_msrp::conference::read::{Roster, State, read};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = read(data) else {
        return;
    };
    let mut roster = Roster::new();
    roster.apply(&doc);
    let again = roster.apply(&doc);
    if doc.state == State::Full {
        assert!(again.is_empty(), "a full document applied twice: {again:?}");
    }
    roster.clear();
    assert!(roster.users().is_empty());
});
