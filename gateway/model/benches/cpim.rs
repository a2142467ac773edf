//! message/cpim parse and serialize speed.
//!
//! `cargo bench -p cpimgate-model --bench cpim`
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use bytes::Bytes;
use cpimgate_model::cpim::{Cpim, CpimBuilder, Limits};
use cpimgate_model::{Message, NameAddr, Origin, World};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A typical chat message of about 200 bytes (RFC 7701 §9.3 with IMDN).
const TEXT: &[u8] = b"From: <sip:alice@atlanta.example.com>\r\n\
To: <sip:chatroom22@chat.example.com>\r\n\
DateTime: 2009-03-02T15:02:31-03:00\r\n\
NS: imdn <urn:ietf:params:imdn>\r\n\
imdn.Message-ID: 34jk324j\r\n\
\r\n\
Content-Type: text/plain\r\n\
\r\n\
Hello guys, how are you today?";

/// The largest RFC example (RFC 3862 §5.1).
const RFC3862_5_1: &[u8] = include_bytes!("../tests/fixtures/cpim/rfc3862-5.1.cpim");

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let text = Bytes::from_static(TEXT);
    let big = Bytes::from_static(RFC3862_5_1);

    let mut g = c.benchmark_group("cpim");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("parse {}B text", TEXT.len()), |b| {
        b.iter(|| Cpim::parse(black_box(text.clone()), &limits).unwrap())
    });
    let parsed = Cpim::parse(text.clone(), &limits).unwrap();
    g.bench_function(format!("to_bytes {}B text", TEXT.len()), |b| {
        b.iter(|| black_box(&parsed).to_bytes())
    });
    g.bench_function(format!("parse {}B rfc3862 5.1", RFC3862_5_1.len()), |b| {
        b.iter(|| Cpim::parse(black_box(big.clone()), &limits).unwrap())
    });
    let origin = Origin {
        world: World::Msrp,
        adapter: "bench".into(),
        native_id: None,
    };
    g.bench_function("Message::from_cpim text (typed fields)", |b| {
        b.iter(|| Message::from_cpim(black_box(text.clone()), origin.clone(), &limits).unwrap())
    });
    let from: NameAddr = "<sip:alice@atlanta.example.com>".parse().unwrap();
    let to: NameAddr = "<sip:chatroom22@chat.example.com>".parse().unwrap();
    g.bench_function("CpimBuilder text", |b| {
        b.iter(|| {
            CpimBuilder::new()
                .from(black_box(&from))
                .to(&to)
                .imdn_message_id("34jk324j")
                .content_type("text/plain")
                .body(Bytes::from_static(b"Hello guys, how are you today?"))
                .build()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
