//! Fuzzes the SIP codec (RFC 3261 §7, §18.3): no input may make the
//! parser, the typed accessors, the request check or the stream framer
//! panic; whatever parses prints back exactly its bytes, its owned copy
//! prints and parses back to the same message, and the framer yields the
//! same messages whether the input comes in one read or byte by byte.
#![no_main]

use cpimgate_sip::codec::{Limits, OwnedMessage, StreamFramer, parse_datagram, parse_with};
use libfuzzer_sys::fuzz_target;

fn frames(data: &[u8], limits: Limits, step: usize) -> Vec<String> {
    let mut f = StreamFramer::new(limits);
    let mut out = Vec::new();
    for piece in data.chunks(step.max(1)) {
        f.handle_data(piece);
        while let Some(ev) = f.poll_event() {
            // How much was buffered when a limit was hit depends on the
            // reads: compare the kind of an error, not its figures.
            out.push(match ev {
                Ok(ev) => format!("{ev:?}"),
                Err(e) => format!("{:?}", std::mem::discriminant(&e.kind)),
            });
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    // Small limits reach the limit paths with short inputs.
    let limits = Limits {
        max_message: 8192,
        max_headers: 32,
        max_line: 512,
    };
    if let Ok(Some(m)) = parse_datagram(data, &limits) {
        assert_eq!(m.to_bytes(), m.as_bytes());
        let _ = (m.from(), m.to(), m.cseq(), m.call_id(), m.contact());
        let _ = (m.max_forwards(), m.content_length(), m.content_type());
        let _ = (m.route(), m.record_route(), m.expires(), m.date());
        for v in m.via().flatten() {
            let _ = (v.branch(), v.rport(), v.received(), v.ttl(), v.maddr());
        }
        if let Ok(Some(f)) = m.from() {
            let _ = (f.name_addr(), f.tag(), f.display());
        }
        let owned = m.to_owned_message();
        let printed = owned.to_bytes();
        if let Ok(again) = parse_with(&printed, &Limits::default()) {
            assert_eq!(again.to_owned_message(), owned.finalized());
        }
        if let Err(e) = m.validate_request() {
            let s = e.response_status();
            let r = OwnedMessage::response_to(&m, s.code, &s.reason, Some("fz"))
                .expect("a response to a parsed request builds");
            assert!(parse_with(&r.to_bytes(), &Limits::default()).is_ok());
        }
    }
    assert_eq!(frames(data, limits, data.len()), frames(data, limits, 1));
});
