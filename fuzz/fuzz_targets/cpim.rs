//! Fuzzes the message/cpim parser (RFC 3862): no input may make it panic,
//! and whatever parses must serialize back to exactly the input, so that a
//! relayed message leaves byte for byte unchanged. The typed accessors must
//! not panic either, and a parsed message must convert
//! to a `Message` and back to the same bytes.
#![no_main]

use cpimgate_model::cpim::{Cpim, Limits};
use cpimgate_model::{Message, Origin, World};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits reach the limit paths with short inputs.
    let limits = Limits {
        max_headers: 16,
        max_line_len: 256,
        max_body: 4096,
    };
    let Ok(c) = Cpim::parse_slice(data, &limits) else {
        return;
    };
    assert_eq!(&c.to_bytes()[..], data);
    let _ = (c.from(), c.to(), c.cc(), c.datetime(), c.subject());
    let _ = (c.ns(), c.require(), c.get("imdn.Message-ID"), c.content_type());
    let _ = c.fields();
    let origin = Origin {
        world: World::Local,
        adapter: "fuzz".into(),
        native_id: None,
    };
    if let Ok(m) = Message::from_parsed_cpim(&c, origin) {
        assert_eq!(&m.to_cpim()[..], data);
    }
});
