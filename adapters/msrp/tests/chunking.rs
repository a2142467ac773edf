//! Chunked, interrupted and aborted transfers (RFC 4975 §5.1, §7.1,
//! §7.1.1, §7.3.1) over one byte stream: what the sender's [`Chunker`]s
//! write, the receiver's [`StreamFramer`] and [`Reassembler`] read back.

// The helpers below are not #[test] functions to clippy.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cpimgate_msrp::codec::{
    BuildError, Chunk, Chunker, Continuation, Limits, OwnedMessage, Reassembler, ReassemblyEvent,
    ReassemblyLimits, StreamFramer, parse,
};

fn send(message_id: &str, body: impl Into<Bytes>) -> OwnedMessage {
    let mut m = OwnedMessage::request("unused00", "SEND").unwrap();
    m.push_header("To-Path", "msrp://bob.example.com:8888/9di4eae923wzd;tcp")
        .unwrap();
    m.push_header(
        "From-Path",
        "msrp://alicepc.example.com:7777/iau39soe2843z;tcp",
    )
    .unwrap();
    m.push_header("Message-ID", message_id).unwrap();
    m.push_header("Success-Report", "yes").unwrap();
    m.push_header("Content-Type", "text/plain").unwrap();
    m.set_body(body).unwrap();
    m
}

/// Frames, parses and reassembles a stream; gives the events and the
/// parsed (transaction id, Byte-Range, flag) of each message.
fn receive(stream: &[u8]) -> (Vec<ReassemblyEvent>, Vec<(String, String, Continuation)>) {
    let mut f = StreamFramer::new(Limits::default());
    let mut r = Reassembler::new(ReassemblyLimits::default());
    let mut seen = Vec::new();
    let mut events = Vec::new();
    // Reads of 100 bytes, so that chunks straddle reads.
    for read in stream.chunks(100) {
        f.handle_data(read);
        while let Some(m) = f.poll_event() {
            let m = m.unwrap();
            let p = parse(&m).unwrap();
            p.validate().unwrap();
            seen.push((
                p.transaction_id().to_owned(),
                p.byte_range()
                    .unwrap()
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
                p.continuation(),
            ));
            if p.method() == Some("SEND") {
                r.handle_chunk(&Chunk::from_message(&p).unwrap()).unwrap();
            }
            while let Some(ev) = r.poll_event() {
                events.push(ev);
            }
        }
    }
    assert!(f.buffered().is_empty());
    (events, seen)
}

fn complete(events: &[ReassemblyEvent], id: &str) -> Bytes {
    events
        .iter()
        .find_map(|e| match e {
            ReassemblyEvent::Complete {
                message_id, body, ..
            } if message_id == id => Some(body.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{id} not complete in {events:?}"))
}

#[test]
fn rfc4975_5_1_figure_3_from_the_chunker() {
    // The sender of Figure 3 interrupts its first chunk after 4 bytes.
    let m = send("4564dpWd", "abcdEFGH");
    let mut c = Chunker::new(&m, 2048).unwrap();
    let mut stream = c.start_chunk("dkei38sd").unwrap().unwrap().to_vec();
    stream.extend_from_slice(&c.poll_body(4));
    stream.extend_from_slice(&c.end_chunk());
    stream.extend_from_slice(&c.next_chunk("dkei38ia").unwrap().unwrap());
    assert!(c.is_done());
    let text = String::from_utf8(stream.clone()).unwrap();
    assert!(text.contains(
        "Byte-Range: 1-*/8\r\nContent-Type: text/plain\r\n\r\nabcd\r\n-------dkei38sd+\r\n"
    ));
    assert!(text.ends_with(
        "Byte-Range: 5-8/8\r\nContent-Type: text/plain\r\n\r\nEFGH\r\n-------dkei38ia$\r\n"
    ));
    let (events, seen) = receive(&stream);
    assert_eq!(&complete(&events, "4564dpWd")[..], b"abcdEFGH");
    assert_eq!(seen[0].2, Continuation::More);
    assert_eq!(seen[1].2, Continuation::Complete);
}

/// Two large messages share a connection (§7.1.1: "the device SHOULD
/// implement some scheme to alternate between them"): each chunk is
/// interrupted after 3000 bytes for the other, and a response and a
/// REPORT go out between chunks (§7.1.1: a SEND larger than 2048 bytes
/// MUST be interrupted for pending responses and REPORTs).
#[test]
fn two_messages_interleaved_with_a_response_between() {
    let a: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let b: Vec<u8> = (0..9_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut ca = Chunker::new(&send("msgAAAA1", a.clone()), 2048).unwrap();
    let mut cb = Chunker::new(&send("msgBBBB2", b.clone()), 2048).unwrap();
    let mut stream = Vec::new();
    let mut n = 0;
    while !(ca.is_done() && cb.is_done()) {
        for c in [&mut ca, &mut cb] {
            if let Some(head) = c.start_chunk(&format!("tx{n:06}")).unwrap() {
                n += 1;
                stream.extend_from_slice(&head);
                stream.extend_from_slice(&c.poll_body(1000));
                stream.extend_from_slice(&c.poll_body(2000));
                stream.extend_from_slice(&c.end_chunk());
                let mut ok = OwnedMessage::response("resp0001", 200, Some("OK")).unwrap();
                ok.push_header("To-Path", "msrp://bob.example.com:8888/9di4eae923wzd;tcp")
                    .unwrap();
                ok.push_header(
                    "From-Path",
                    "msrp://alicepc.example.com:7777/iau39soe2843z;tcp",
                )
                .unwrap();
                stream.extend_from_slice(&ok.to_bytes());
            }
        }
    }
    let (events, seen) = receive(&stream);
    assert_eq!(&complete(&events, "msgAAAA1")[..], &a[..]);
    assert_eq!(&complete(&events, "msgBBBB2")[..], &b[..]);
    // 7 chunks of A (3000 bytes each, the last 2000), 3 of B, each
    // followed by a response.
    assert_eq!(seen.len(), 2 * (7 + 3));
    assert_eq!(seen[0].1, "1-*/20000");
    assert_eq!(seen[2].1, "1-*/9000");
    assert_eq!(seen[4].1, "3001-*/20000");
}

/// A sender aborts a message in the middle of its second chunk (§7.1,
/// §7.3.2); the receiver reports it and keeps nothing of it, and another
/// message on the same connection is not disturbed.
#[test]
fn aborted_message() {
    let mut ca = Chunker::new(&send("msgAAAA1", vec![b'x'; 5000]), 2048).unwrap();
    let mut cb = Chunker::new(&send("msgBBBB2", "short"), 2048).unwrap();
    let mut stream = ca.next_chunk("tx000001").unwrap().unwrap().to_vec();
    stream.extend_from_slice(&cb.next_chunk("tx000002").unwrap().unwrap());
    stream.extend_from_slice(&ca.start_chunk("tx000003").unwrap().unwrap());
    stream.extend_from_slice(&ca.poll_body(100));
    stream.extend_from_slice(&ca.abort().unwrap());
    assert!(ca.is_done());
    assert_eq!(ca.next_chunk("tx000004").unwrap(), None);
    let (events, seen) = receive(&stream);
    assert_eq!(seen[2].2, Continuation::Aborted);
    assert_eq!(&complete(&events, "msgBBBB2")[..], b"short");
    assert!(events.contains(&ReassemblyEvent::Aborted {
        message_id: "msgAAAA1".to_owned(),
        received: 2048,
    }));
}

/// §7.1: the sender must not put the end-line in the body; a transaction
/// id whose end-line is in the rest of the body is refused, and another
/// id works.
#[test]
fn end_line_in_body_needs_another_transaction_id() {
    let body = "abc\r\n-------tx000001$\r\ndef";
    let mut c = Chunker::new(&send("msgCCCC3", body), 2048).unwrap();
    assert_eq!(
        c.next_chunk("tx000001"),
        Err(BuildError::EndLineInBody("tx000001".to_owned()))
    );
    let chunk = c.next_chunk("tx000002").unwrap().unwrap();
    let (events, _) = receive(&chunk);
    assert_eq!(&complete(&events, "msgCCCC3")[..], body.as_bytes());
}

/// §7.1.1: a body over 2048 bytes in one chunk gets `*` as range-end; an
/// empty message is one chunk `1-0/0`.
#[test]
fn range_end_star_above_2048_and_empty_message() {
    let mut c = Chunker::new(&send("msgDDDD4", vec![b'z'; 3000]), 5000).unwrap();
    let chunk = c.next_chunk("tx000001").unwrap().unwrap();
    let p = parse(&chunk).unwrap();
    assert_eq!(p.byte_range().unwrap().unwrap().to_string(), "1-*/3000");
    assert_eq!(p.body_len(), 3000);
    let mut c = Chunker::new(&send("msgEEEE5", ""), 2048).unwrap();
    let chunk = c.next_chunk("tx000002").unwrap().unwrap();
    let p = parse(&chunk).unwrap();
    assert_eq!(p.byte_range().unwrap().unwrap().to_string(), "1-0/0");
    assert_eq!(p.body(), Some(&b""[..]));
    assert!(c.is_done());
    let (events, _) = receive(&chunk);
    assert!(complete(&events, "msgEEEE5").is_empty());
}

/// A success REPORT per chunk (§7.1.3) covers the bytes the chunk carried.
#[test]
fn success_reports_per_chunk() {
    let mut c = Chunker::new(&send("msgFFFF6", vec![b'q'; 5000]), 2048).unwrap();
    let own = "msrp://bob.example.com:8888/9di4eae923wzd;tcp";
    let mut ranges = Vec::new();
    let mut n = 0;
    while let Some(ch) = c.next_chunk(&format!("tx{n:06}")).unwrap() {
        n += 1;
        let p = parse(&ch).unwrap();
        let r = OwnedMessage::success_report(&p, "rep00001", own)
            .unwrap()
            .unwrap();
        ranges.push(r.header("Byte-Range").unwrap().to_owned());
    }
    assert_eq!(ranges, ["1-2048/5000", "2049-4096/5000", "4097-5000/5000"]);
}
