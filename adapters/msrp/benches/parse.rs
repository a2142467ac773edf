//! MSRP parse and framing speed on a SEND carrying a 200-byte
//! message/cpim body (a chat-room message as in RFC 7701 §9.3).
//!
//! `cargo bench -p cpimgate-msrp --bench parse`
//!
//! "parse" reads the start line, the header lines and finds the end-line;
//! "parse + typed" also reads To-Path and From-Path into MSRP URIs,
//! Message-ID, Byte-Range and Content-Type, which is what a switch needs
//! to forward the message; "frame 1000" cuts a stream of 1000 such SENDs
//! arriving in 16 KiB reads; "frame + parse 1000" parses each too.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use cpimgate_msrp::codec::{Limits, OwnedMessage, StreamFramer, parse};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn send() -> Vec<u8> {
    let mut cpim = String::from(
        "To: <sip:chatroom22@chat.example.com;transport=tcp>\r\n\
         From: <sip:alice@atlanta.example.com>\r\n\
         DateTime: 2009-03-02T15:02:31-03:00\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         Hello guys, how are you today?",
    );
    while cpim.len() < 200 {
        cpim.push('!');
    }
    assert_eq!(cpim.len(), 200);
    let mut m = OwnedMessage::request("3490visdm", "SEND").unwrap();
    m.push_header(
        "To-Path",
        "msrp://chat.example.com:12763/kjhd37s2s20w2a;tcp",
    )
    .unwrap();
    m.push_header(
        "From-Path",
        "msrp://client.atlanta.example.com:7654/jshA7weztas;tcp",
    )
    .unwrap();
    m.push_header("Message-ID", "99s9s2").unwrap();
    m.push_header("Byte-Range", "1-200/200").unwrap();
    m.push_header("Content-Type", "message/cpim").unwrap();
    m.set_body(cpim).unwrap();
    m.to_bytes().to_vec()
}

fn typed(bytes: &[u8]) -> usize {
    let m = parse(bytes).unwrap();
    let to = m.to_path().unwrap().unwrap();
    let from = m.from_path().unwrap().unwrap();
    let id = m.message_id().unwrap().unwrap();
    let range = m.byte_range().unwrap().unwrap();
    let ct = m.content_type().unwrap().unwrap();
    to[0].host().len() + from.len() + id.len() + range.start as usize + ct.subtype().len()
}

fn bench(c: &mut Criterion) {
    let one = send();
    let stream: Vec<u8> = one.repeat(1000);
    let mut g = c.benchmark_group("msrp SEND 200-byte message/cpim");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse", |b| {
        b.iter(|| parse(black_box(&one)).unwrap().body_len())
    });
    g.bench_function("parse + typed", |b| b.iter(|| typed(black_box(&one))));
    g.finish();

    let mut g = c.benchmark_group("msrp stream of 1000 SENDs");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("frame 1000", |b| {
        b.iter(|| {
            let mut f = StreamFramer::new(Limits::default());
            let mut n = 0;
            for read in black_box(&stream).chunks(16 * 1024) {
                f.handle_data(read);
                while let Some(m) = f.poll_event() {
                    n += m.unwrap().len();
                }
            }
            n
        })
    });
    g.bench_function("frame + parse 1000", |b| {
        b.iter(|| {
            let mut f = StreamFramer::new(Limits::default());
            let mut n = 0;
            for read in black_box(&stream).chunks(16 * 1024) {
                f.handle_data(read);
                while let Some(m) = f.poll_event() {
                    n += parse(&m.unwrap()).unwrap().body_len();
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
