//! Per-packet costs on the relay's hot path (target: 2.5 µs per packet in
//! total), and the micro-benchmark behind the G.711 encoder's table choice.
//!
//! Run: `cargo bench -p trunkline-media --bench codec -- --warm-up-time 1 --measurement-time 2`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use trunkline_media::g711::{self, Law};
use trunkline_media::resample::{Downsampler, Upsampler};
use trunkline_media::rtp::{RtpHeader, RtpPacketMut, StreamRewriter};

/// One 20 ms G.711 packet's worth of samples.
const FRAME: usize = 160;

fn speech_like(len: usize) -> Vec<i16> {
    (0..len)
        .map(|n| {
            let t = n as f64 / 8000.0;
            (9000.0 * (2.0 * std::f64::consts::PI * 300.0 * t).sin()
                + 3000.0 * (2.0 * std::f64::consts::PI * 2100.0 * t).sin()) as i16
        })
        .collect()
}

/// Alternative 1: a 64 KiB table indexed by the whole sample.
fn build_table_64k() -> Vec<u8> {
    (0..=u16::MAX)
        .map(|u| g711::ulaw_encode(u as i16))
        .collect()
}

/// Alternative 2: compute the segment per sample with a leading-zero count.
#[inline]
fn ulaw_computed(x: i16) -> u8 {
    let v = x >> 2;
    let (sign, mag) = if v < 0 {
        (0u8, !v as u16)
    } else {
        (0x80u8, v as u16)
    };
    let biased = (mag + 33).min(0x1FFF);
    let segment = 10 - biased.leading_zeros() as u16;
    let mantissa = (biased >> (segment + 1)) & 0x0F;
    sign | (!((segment << 4) | mantissa) as u8 & 0x7F)
}

fn g711_codec(c: &mut Criterion) {
    let linear = speech_like(FRAME);
    let mut ulaw = [0u8; FRAME];
    g711::encode_ulaw(&linear, &mut ulaw);
    let mut alaw = [0u8; FRAME];
    let mut pcm = [0i16; FRAME];

    let mut g = c.benchmark_group("g711_160");
    g.bench_function("transcode_ulaw_to_alaw", |b| {
        b.iter(|| g711::transcode_ulaw_to_alaw(black_box(&ulaw), &mut alaw))
    });
    g.bench_function("transcode_in_place", |b| {
        let mut buf = ulaw;
        b.iter(|| g711::transcode_in_place(Law::Ulaw, Law::Alaw, black_box(&mut buf)))
    });
    g.bench_function("decode_ulaw", |b| {
        b.iter(|| g711::decode_ulaw(black_box(&ulaw), &mut pcm))
    });
    g.bench_function("encode_ulaw", |b| {
        b.iter(|| g711::encode_ulaw(black_box(&linear), &mut alaw))
    });
    g.bench_function("encode_alaw", |b| {
        b.iter(|| g711::encode_alaw(black_box(&linear), &mut alaw))
    });
    g.finish();

    let table_64k = build_table_64k();
    for x in i16::MIN..=i16::MAX {
        assert_eq!(
            ulaw_computed(x),
            g711::ulaw_encode(x),
            "computed encoder at {x}"
        );
    }
    let mut g = c.benchmark_group("ulaw_encode_strategy_160");
    g.bench_function("table_16k_shifted", |b| {
        b.iter(|| g711::encode_ulaw(black_box(&linear), &mut ulaw))
    });
    g.bench_function("table_64k", |b| {
        b.iter(|| {
            for (o, &s) in ulaw.iter_mut().zip(black_box(&linear)) {
                *o = table_64k[s as u16 as usize];
            }
        })
    });
    g.bench_function("computed_clz", |b| {
        b.iter(|| {
            for (o, &s) in ulaw.iter_mut().zip(black_box(&linear)) {
                *o = ulaw_computed(s);
            }
        })
    });
    g.finish();
}

fn relay_packet(c: &mut Criterion) {
    // Receive PCMU from Five9, rewrite the header for the agent leg, turn it
    // into PCMA in place: everything the relay does to a packet but I/O.
    let mut packet = [0u8; 12 + FRAME];
    let header = RtpHeader {
        payload_type: 0,
        sequence: 1,
        timestamp: 0,
        ssrc: 0x1234,
        marker: false,
    };
    let mut payload = [0u8; FRAME];
    g711::encode_ulaw(&speech_like(FRAME), &mut payload);
    header.write_packet(&payload, &mut packet).unwrap();
    let mut rewriter = StreamRewriter::new(0xABCD, 100, 1000, 8000);
    let now = Instant::now();
    let mut seq = 1u16;
    c.bench_function("relay_packet_rewrite_transcode_160", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            let mut p = RtpPacketMut::parse(black_box(&mut packet)).unwrap();
            rewriter.rewrite(&mut p, now);
            g711::transcode_in_place(Law::Ulaw, Law::Alaw, p.payload_mut());
        })
    });
}

fn resample(c: &mut Criterion) {
    let narrow = speech_like(FRAME);
    let wide = speech_like(2 * FRAME);
    let mut up = Upsampler::new();
    let mut down = Downsampler::new();
    let mut out_wide = [0i16; 2 * FRAME];
    let mut out_narrow = [0i16; FRAME];
    let mut g = c.benchmark_group("resample_20ms");
    g.bench_function("up_8k_to_16k", |b| {
        b.iter(|| up.process(black_box(&narrow), &mut out_wide))
    });
    g.bench_function("down_16k_to_8k", |b| {
        b.iter(|| down.process(black_box(&wide), &mut out_narrow))
    });
    g.finish();
}

criterion_group!(benches, g711_codec, relay_packet, resample);
criterion_main!(benches);
