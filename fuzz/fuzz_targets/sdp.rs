//! Fuzzes the SDP reading of MSRP media lines (RFC 4975 §8, RFC 7701 §8)
//! and the answer a chat room makes (RFC 3264 §6): no input may make them
//! panic; whatever reads is written and read back to the same MSRP lines,
//! and an answer, when one is made, reads.
#![no_main]

use cpimgate_msrp::sdp::{Local, answer, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = parse(data) else {
        return;
    };
    let mut written = Vec::new();
    if sdp.session.write(&mut written).is_ok() {
        if let Ok(again) = parse(&written) {
            assert_eq!(again.msrp, sdp.msrp);
        }
    }
    for local in [
        Local::room("chat.example.com", 2855, "msrp://chat.example.com:2855/a;tcp"),
        Local::room("chat.example.com", 2856, "msrps://chat.example.com:2856/b;tcp"),
    ] {
        if let Ok((bytes, agreed)) = answer(&sdp, &local) {
            let ours = parse(&bytes).expect("our answer reads");
            assert_eq!(ours.msrp.len(), 1);
            assert_eq!(agreed.remote_path, sdp.msrp[0].path);
        }
    }
});
