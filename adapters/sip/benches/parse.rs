//! SIP parse speed beside the `rsip` crate, on RFC 3428 §10 F1.
//!
//! `cargo bench -p cpimgate-sip --bench parse`
//!
//! "full" parses the message and reads the typed top Via, From, To, CSeq
//! and Call-ID, which is what a UAS needs to answer; rsip's "full" does
//! the same through its typed headers.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use cpimgate_sip::codec::parse;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rsip::headers::ToTypedHeader;
use rsip::message::HeadersExt;

const F1: &[u8] = include_bytes!("../tests/fixtures/rfc3428-10-f1.sip");

fn ours_full(bytes: &[u8]) -> usize {
    let m = parse(bytes).unwrap();
    let via = m.top_via().unwrap().unwrap();
    let from = m.from().unwrap().unwrap();
    let to = m.to().unwrap().unwrap();
    let cseq = m.cseq().unwrap().unwrap();
    let call_id = m.call_id().unwrap().unwrap();
    via.branch().unwrap().len()
        + from.tag().unwrap().len()
        + to.uri().len()
        + cseq.seq as usize
        + call_id.len()
}

fn rsip_full(bytes: &[u8]) -> usize {
    let m = rsip::SipMessage::try_from(bytes).unwrap();
    let via = m.via_header().unwrap().typed().unwrap();
    let from = m.from_header().unwrap().typed().unwrap();
    let to = m.to_header().unwrap().typed().unwrap();
    let cseq = m.cseq_header().unwrap().typed().unwrap();
    let call_id = m.call_id_header().unwrap();
    via.branch().unwrap().to_string().len()
        + from.tag().unwrap().to_string().len()
        + to.uri.to_string().len()
        + cseq.seq as usize
        + call_id.to_string().len()
}

fn bench(c: &mut Criterion) {
    // Both read the message (their Display forms of branch and tag differ,
    // so only the sums are compared loosely).
    assert!(ours_full(F1) > 0 && rsip_full(F1) > 0);
    let mut g = c.benchmark_group("sip parse RFC 3428 F1");
    g.throughput(Throughput::Elements(1));
    g.bench_function("cpimgate parse", |b| {
        b.iter(|| parse(black_box(F1)).unwrap().headers().len())
    });
    g.bench_function("cpimgate full", |b| b.iter(|| ours_full(black_box(F1))));
    g.bench_function("rsip parse", |b| {
        b.iter(|| rsip::SipMessage::try_from(black_box(F1)).unwrap())
    });
    g.bench_function("rsip full", |b| b.iter(|| rsip_full(black_box(F1))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
