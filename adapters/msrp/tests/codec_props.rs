//! Property tests of the MSRP codec: printing and parsing are inverse,
//! the stream framer does not depend on how the stream is cut into reads
//! (nor does its skipping of oversized chunks),
//! chunking and reassembly give the message back whatever the chunk size
//! and the order of arrival, and no input makes the parser panic.

// proptest! bodies are not #[test] functions to clippy.
#![allow(clippy::unwrap_used)]

use cpimgate_msrp::codec::{
    Chunk, Chunker, Continuation, Frame, Limits, OwnedMessage, Reassembler, ReassemblyEvent,
    ReassemblyLimits, StreamFramer, parse,
};
use proptest::prelude::*;

fn tid() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.+%=-]{3,31}"
}

fn uri() -> impl Strategy<Value = String> {
    "msrps?://([a-z]{1,6}@)?[a-z]{1,8}\\.example\\.com(:[0-9]{1,5})?(/[a-zA-Z0-9+=]{1,12})?;tcp"
        .prop_filter("port fits in u16", |u| {
            u.rsplit_once(':')
                .and_then(|(_, p)| p.split(['/', ';']).next())
                .is_none_or(|p| p.parse::<u32>().map_or(true, |n| n <= 65535))
        })
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(uri(), 1..4).prop_map(|v| v.join(" "))
}

/// Headers that the codec interprets, with values that read back, and
/// unknown ones with any text (UTF-8, HTAB inside).
fn header() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        "[a-zA-Z0-9][a-zA-Z0-9.+%=-]{3,31}".prop_map(|v| ("Message-ID".to_owned(), v)),
        (
            1u64..1000,
            prop::option::of(0u64..1000),
            prop::option::of(1000u64..2000)
        )
            .prop_map(|(s, e, t)| {
                let e = e.map(|e| (s + e).to_string()).unwrap_or("*".to_owned());
                let t = t.map(|t| t.to_string()).unwrap_or("*".to_owned());
                ("Byte-Range".to_owned(), format!("{s}-{e}/{t}"))
            }),
        prop_oneof![Just("yes"), Just("no")]
            .prop_map(|v| ("Success-Report".to_owned(), v.to_owned())),
        prop_oneof![Just("yes"), Just("no"), Just("partial")]
            .prop_map(|v| ("Failure-Report".to_owned(), v.to_owned())),
        "[0-9]{3} [0-9]{3}( [ -~]{0,10}[!-~])?".prop_map(|v| ("Status".to_owned(), v)),
        "\"[a-zA-Z é€]{1,12}\"".prop_map(|v| ("Use-Nickname".to_owned(), v)),
        (
            "[A-Za-z][A-Za-z0-9-]{0,10}",
            "([!-~é€🦀]([ \t!-~é€🦀]{0,20}[!-~é€🦀])?)?"
        )
            .prop_map(|(n, v)| (format!("X-{n}"), v)),
    ]
}

fn owned_message() -> impl Strategy<Value = OwnedMessage> {
    let request = (
        tid(),
        prop_oneof![
            Just("SEND".to_owned()),
            Just("REPORT".to_owned()),
            Just("NICKNAME".to_owned()),
            "[A-Z]{1,10}"
        ],
        path(),
        path(),
        prop::collection::vec(header(), 0..6),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..300)),
        prop_oneof![
            Just(Continuation::Complete),
            Just(Continuation::More),
            Just(Continuation::Aborted)
        ],
    )
        .prop_filter_map(
            "the body holds the end-line",
            |(tid, method, to, from, headers, body, flag)| {
                let mut m = OwnedMessage::request(&tid, &method).ok()?;
                m.push_header("To-Path", &to).ok()?;
                m.push_header("From-Path", &from).ok()?;
                for (n, v) in &headers {
                    m.push_header(n, v).ok()?;
                }
                if let Some(b) = body {
                    m.push_header("Content-Type", "text/plain").ok()?;
                    m.set_body(b).ok()?;
                }
                m.set_continuation(flag);
                Some(m)
            },
        );
    let response = (
        tid(),
        100u16..1000,
        prop::option::of("[ -~é]{0,10}[!-~é]"),
        path(),
        uri(),
    )
        .prop_filter_map("builds", |(tid, code, comment, to, from)| {
            let mut m = OwnedMessage::response(&tid, code, comment.as_deref()).ok()?;
            m.push_header("To-Path", &to).ok()?;
            m.push_header("From-Path", &from).ok()?;
            Some(m)
        });
    prop_oneof![3 => request, 1 => response]
}

proptest! {
    #[test]
    fn parse_of_print_is_identity(m in owned_message()) {
        let bytes = m.to_bytes();
        let p = parse(&bytes).map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(&bytes))))?;
        prop_assert_eq!(p.to_owned_message(), m.clone());
        prop_assert_eq!(p.to_bytes(), bytes.to_vec());
        // The paths that were generated read back.
        prop_assert!(p.to_path().is_ok() && p.from_path().is_ok());
    }

    #[test]
    fn framing_does_not_depend_on_reads(
        msgs in prop::collection::vec(owned_message(), 1..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let printed: Vec<Vec<u8>> = msgs.iter().map(|m| m.to_bytes().to_vec()).collect();
        let stream = printed.concat();
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut f = StreamFramer::new(Limits::default());
        let mut got = Vec::new();
        let mut last = 0;
        for c in cuts.into_iter().chain([stream.len()]) {
            f.handle_data(&stream[last..c]);
            last = c;
            while let Some(m) = f.poll_event() {
                got.push(m.map_err(|e| TestCaseError::fail(e.to_string()))?.to_vec());
            }
        }
        prop_assert_eq!(got, printed);
        prop_assert!(f.buffered().is_empty());
    }

    #[test]
    fn skipping_oversized_chunks_does_not_depend_on_reads(
        msgs in prop::collection::vec(owned_message(), 1..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        // RFC 4975 §10.5: a chunk past the limit is cut off and its
        // head yielded; the stream goes on with the next message.
        const MAX: usize = 64;
        let printed: Vec<Vec<u8>> = msgs.iter().map(|m| m.to_bytes().to_vec()).collect();
        let stream = printed.concat();
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.sort_unstable();
        // Each frame (whether oversized, its bytes), and what is left.
        type Framed = (Vec<(bool, Vec<u8>)>, usize);
        let run = |cuts: &[usize]| -> Result<Framed, TestCaseError> {
            let mut f = StreamFramer::new(Limits { max_chunk: MAX, ..Limits::default() });
            let mut got = Vec::new();
            let mut last = 0;
            for &c in cuts.iter().chain([&stream.len()]) {
                f.handle_data(&stream[last..c]);
                last = c;
                while let Some(ev) = f.poll_frame() {
                    match ev.map_err(|e| TestCaseError::fail(e.to_string()))? {
                        Frame::Message(m) => got.push((false, m.to_vec())),
                        Frame::Oversized(h) => got.push((true, h.to_vec())),
                    }
                }
            }
            Ok((got, f.buffered().len()))
        };
        let (whole, left) = run(&[])?;
        prop_assert_eq!(left, 0);
        prop_assert_eq!(whole.len(), msgs.len());
        for ((m, p), (over, bytes)) in msgs.iter().zip(&printed).zip(&whole) {
            let body = m.body().map_or(0, |b| b.len());
            prop_assert_eq!(*over, body > MAX);
            if *over {
                let head = parse(bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(head.transaction_id(), m.transaction_id());
                prop_assert_eq!(head.body_len(), 0);
            } else {
                prop_assert_eq!(bytes, p);
            }
        }
        prop_assert_eq!(run(&cuts)?, (whole, 0));
    }

    #[test]
    fn chunk_then_reassemble_in_any_order(
        body in prop::collection::vec(any::<u8>(), 0..6000),
        size in 1usize..3000,
        order in any::<prop::sample::Index>(),
        duplicate in any::<bool>(),
    ) {
        let mut m = OwnedMessage::request("a1b2c3d4", "SEND").unwrap();
        m.push_header("To-Path", "msrp://b.example.com:1/s1;tcp").unwrap();
        m.push_header("From-Path", "msrp://a.example.com:2/s2;tcp").unwrap();
        m.push_header("Message-ID", "m1e2s3s4").unwrap();
        m.push_header("Content-Type", "application/octet-stream").unwrap();
        m.set_body(body.clone()).unwrap();
        let mut c = Chunker::new(&m, size).unwrap();
        let mut chunks = Vec::new();
        let mut n = 0;
        while let Some(ch) = c.next_chunk(&format!("t{n:07}")).unwrap() {
            n += 1;
            chunks.push(ch);
        }
        prop_assert_eq!(chunks.len(), body.len().div_ceil(size).max(1));
        // A rotation and a reversal give many orders; a duplicate of the
        // first chunk may come anywhere.
        let k = order.index(chunks.len());
        chunks.rotate_left(k);
        if k % 2 == 1 {
            chunks.reverse();
        }
        if duplicate {
            let again = chunks[0].clone();
            chunks.insert(k.min(chunks.len() - 1), again);
        }
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut done = Vec::new();
        for ch in &chunks {
            let p = parse(ch).unwrap();
            p.validate().unwrap();
            r.handle_chunk(&Chunk::from_message(&p).unwrap()).unwrap();
            while let Some(ev) = r.poll_event() {
                done.push(ev);
            }
        }
        let Some(ReassemblyEvent::Complete { body: got, message_id, .. }) = done.first() else {
            return Err(TestCaseError::fail(format!("no message: {done:?}")));
        };
        prop_assert_eq!(message_id.as_str(), "m1e2s3s4");
        prop_assert_eq!(&got[..], &body[..]);
    }

    #[test]
    fn interrupted_chunks_reassemble(
        body in prop::collection::vec(any::<u8>(), 1..5000),
        pieces in prop::collection::vec((1usize..700, any::<bool>()), 1..40),
    ) {
        let mut m = OwnedMessage::request("a1b2c3d4", "SEND").unwrap();
        m.push_header("To-Path", "msrp://b.example.com:1/s1;tcp").unwrap();
        m.push_header("From-Path", "msrp://a.example.com:2/s2;tcp").unwrap();
        m.push_header("Message-ID", "m1e2s3s4").unwrap();
        m.push_header("Content-Type", "application/octet-stream").unwrap();
        m.set_body(body.clone()).unwrap();
        let mut c = Chunker::new(&m, 2048).unwrap();
        let mut stream = Vec::new();
        let mut n = 0;
        let mut it = pieces.iter().cycle();
        while !c.is_done() {
            let head = c.start_chunk(&format!("t{n:07}")).unwrap().unwrap();
            n += 1;
            stream.extend_from_slice(&head);
            // Write pieces until an interruption is drawn or all is written.
            loop {
                let (len, interrupt) = *it.next().unwrap();
                let piece = c.poll_body(len);
                stream.extend_from_slice(&piece);
                if interrupt || piece.is_empty() {
                    break;
                }
            }
            stream.extend_from_slice(&c.end_chunk());
        }
        let mut f = StreamFramer::new(Limits::default());
        f.handle_data(&stream);
        let mut r = Reassembler::new(ReassemblyLimits::default());
        while let Some(fr) = f.poll_event() {
            let fr = fr.unwrap();
            let p = parse(&fr).unwrap();
            r.handle_chunk(&Chunk::from_message(&p).unwrap()).unwrap();
        }
        let Some(ReassemblyEvent::Complete { body: got, .. }) = r.poll_event() else {
            return Err(TestCaseError::fail("not complete"));
        };
        prop_assert_eq!(&got[..], &body[..]);
    }

    #[test]
    fn no_input_panics(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&data).map(|m| (m.validate(), m.to_path(), m.byte_range(), m.status()));
        let limits = Limits { max_head: 256, max_headers: 8, max_chunk: 256 };
        let mut f = StreamFramer::new(limits);
        let mut skipping = StreamFramer::new(Limits { max_chunk: 8, ..limits });
        for b in data.chunks(3) {
            f.handle_data(b);
            while f.poll_event().is_some() {}
            skipping.handle_data(b);
            while skipping.poll_frame().is_some() {}
        }
    }

    #[test]
    fn msrp_like_input_frames_alike(
        parts in prop::collection::vec(prop_oneof![
            Just(b"MSRP abcd SEND\r\n".to_vec()),
            Just(b"MSRP abcd 200 OK\r\n".to_vec()),
            Just(b"To-Path: msrp://a.example.com:1/s;tcp\r\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"-------abcd$\r\n".to_vec()),
            Just(b"-------abcd+".to_vec()),
            Just(b"-------abce#\r\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"x".to_vec()),
        ], 0..30),
        step in 1usize..9,
    ) {
        let data = parts.concat();
        let limits = Limits { max_head: 128, max_headers: 8, max_chunk: 64 };
        let run = |step: usize| {
            let mut f = StreamFramer::new(limits);
            let mut out = Vec::new();
            for b in data.chunks(step) {
                f.handle_data(b);
                while let Some(ev) = f.poll_event() {
                    out.push(ev.map(|b| b.to_vec()));
                }
            }
            out
        };
        prop_assert_eq!(run(data.len().max(1)), run(step));
    }
}
