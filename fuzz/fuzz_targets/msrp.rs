//! Fuzzes the MSRP codec (RFC 4975 §7, §9): no input may make the parser,
//! the typed accessors, the checks, the builders, the stream framer or
//! the reassembler panic; whatever parses prints back exactly its bytes
//! and its owned copy prints and parses back to the same message; the
//! framer yields the same messages and errors whether the input comes in
//! one read, byte by byte or in reads of 7, and every message it cuts
//! ends where the parser sees its end-line; chunking the input as a body
//! and reassembling it gives it back.
#![no_main]

use cpimgate_msrp::codec::{
    Chunk, Chunker, ErrorKind, Limits, OwnedMessage, Reassembler, ReassemblyEvent,
    ReassemblyLimits, StreamFramer, parse_with,
};
use libfuzzer_sys::fuzz_target;

const OWN: &str = "msrp://fuzz.example.com:2855/fz9s;tcp";

fn frames(data: &[u8], limits: Limits, step: usize) -> Vec<Result<Vec<u8>, (ErrorKind, usize)>> {
    let mut f = StreamFramer::new(limits);
    let mut out = Vec::new();
    for piece in data.chunks(step.max(1)) {
        f.handle_data(piece);
        while let Some(ev) = f.poll_event() {
            out.push(ev.map(|b| b.to_vec()).map_err(|e| (e.kind, e.offset)));
        }
    }
    out
}

fn exercise(data: &[u8], limits: &Limits) {
    let Ok(m) = parse_with(data, limits) else {
        return;
    };
    assert_eq!(m.to_bytes(), m.as_bytes());
    let _ = (m.to_path(), m.from_path(), m.use_path(), m.message_id());
    let _ = (m.byte_range(), m.success_report(), m.failure_report());
    let _ = (m.status(), m.content_type(), m.use_nickname(), m.is_whole_message());
    let _ = (m.received_range(), m.wants_response(200), m.body_len());
    for u in m.to_path().ok().flatten().unwrap_or_default() {
        let _ = (u.host(), u.port(), u.session_id(), u.params().count());
        assert_eq!(u.to_string(), u.as_str());
    }
    let owned = m.to_owned_message();
    let printed = owned.to_bytes();
    let again = parse_with(&printed, &Limits::default()).expect("a printed message parses");
    assert_eq!(again.to_owned_message(), owned);
    if m.validate().is_ok() && m.is_request() {
        if m.method() != Some("REPORT") {
            let r = OwnedMessage::response_to(&m, 200, Some("OK"), OWN)
                .expect("a valid request can be answered");
            parse_with(&r.to_bytes(), &Limits::default())
                .expect("a response parses")
                .validate()
                .expect("a response is valid");
            if m.method() == Some("SEND") {
                if let Ok(Some(rep)) = OwnedMessage::failure_report(&m, "fz8rep00", OWN, 400, None) {
                    parse_with(&rep.to_bytes(), &Limits::default())
                        .expect("a REPORT parses")
                        .validate()
                        .expect("a REPORT is valid");
                }
                let _ = OwnedMessage::success_report(&m, "fz8rep01", OWN);
                let mut r = Reassembler::new(ReassemblyLimits {
                    max_message: 1 << 16,
                    max_partial: 4,
                });
                if let Ok(c) = Chunk::from_message(&m) {
                    let _ = r.handle_chunk(&c);
                    while r.poll_event().is_some() {}
                }
            }
        }
    }
}

fn chunk_roundtrip(data: &[u8]) {
    let Some((&size, body)) = data.split_first() else {
        return;
    };
    let mut m = OwnedMessage::request("fz8send0", "SEND").expect("a SEND");
    m.push_header("To-Path", OWN).expect("To-Path");
    m.push_header("From-Path", OWN).expect("From-Path");
    m.push_header("Message-ID", "fz8msgid").expect("Message-ID");
    m.push_header("Content-Type", "application/octet-stream")
        .expect("Content-Type");
    if m.set_body(body.to_vec()).is_err() {
        return;
    }
    let Ok(mut c) = Chunker::new(&m, usize::from(size) + 1) else {
        return;
    };
    let mut r = Reassembler::new(ReassemblyLimits::default());
    let mut n = 0u32;
    loop {
        let tid = format!("fz8c{n:04}");
        n += 1;
        let chunk = match c.next_chunk(&tid) {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(_) => return, // the body holds this end-line
        };
        let p = parse_with(&chunk, &Limits::default()).expect("a chunk parses");
        p.validate().expect("a chunk is valid");
        r.handle_chunk(&Chunk::from_message(&p).expect("a chunk reads"))
            .expect("chunks reassemble");
    }
    match r.poll_event() {
        Some(ReassemblyEvent::Complete { body: got, .. }) => assert_eq!(&got[..], body),
        other => panic!("reassembly gave {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    // Small limits reach the limit paths with short inputs.
    let limits = Limits {
        max_head: 1024,
        max_headers: 32,
        max_chunk: 4096,
    };
    exercise(data, &limits);
    let whole = frames(data, limits, data.len());
    assert_eq!(whole, frames(data, limits, 1));
    assert_eq!(whole, frames(data, limits, 7));
    for frame in whole.iter().flatten() {
        exercise(frame, &limits);
        if let Err(e) = parse_with(frame, &limits) {
            assert!(
                !matches!(e.kind, ErrorKind::Incomplete | ErrorKind::TrailingBytes),
                "the framer and the parser disagree on the end: {e}"
            );
        }
    }
    chunk_roundtrip(data);
});
