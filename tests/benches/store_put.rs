//! What writing the outcome record adds to call teardown:
//! `cargo bench -p trunkline-tests --bench store_put`.
//!
//! The gateway calls `put` on its core task right before the BYE to Five9,
//! so each `put` is timed on its own (not a batch mean): p50, p99, p99.9
//! and max, for the embedded store holding 100k records, with
//! `sync = "normal"` (the default: survives `kill -9`) and `sync = "full"`
//! (fsync per write: survives power loss). Lookups by shared id (what the
//! Handoff API does) are timed the same way. Target: p99 of a normal `put`
//! ≤ 0.2 ms. Figures go to stdout.

#[path = "outcomes.rs"]
mod outcomes;

use std::time::{Duration, Instant};

use trunkline::store::{self, OutcomeStore, StoreBackend, StoreSettings, SyncMode};

const EXISTING: u64 = 100_000;
const PUTS: u64 = 20_000;
const FULL_PUTS: u64 = 500;
const LOOKUPS: u64 = 20_000;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let now = outcomes::now_ms();
    {
        let store = open(&path, SyncMode::Normal);
        let start = Instant::now();
        for i in 0..EXISTING {
            store.put(outcomes::record(i, now - 1000)).unwrap();
        }
        store.flush().unwrap();
        println!(
            "seeded {EXISTING} records in {:.2} s",
            start.elapsed().as_secs_f64()
        );
    }
    let store = open(&path, SyncMode::Normal);
    report(
        "put, sync=normal",
        time(
            PUTS,
            |i| outcomes::record(EXISTING + i, now),
            |r| store.put(r).unwrap(),
        ),
    );
    report(
        "by_shared_id",
        time(
            LOOKUPS,
            |i| format!("seed-{}", (i * 7919) % EXISTING),
            |id| assert!(std::hint::black_box(store.by_shared_id(&id)).is_some()),
        ),
    );
    drop(store);
    let store = open(&path, SyncMode::Full);
    report(
        "put, sync=full",
        time(
            FULL_PUTS,
            |i| outcomes::record(EXISTING + PUTS + i, now),
            |r| store.put(r).unwrap(),
        ),
    );
}

fn open(path: &std::path::Path, sync: SyncMode) -> std::sync::Arc<dyn OutcomeStore> {
    store::open(&StoreSettings {
        backend: StoreBackend::Embedded,
        path: path.to_owned(),
        sync,
        ..StoreSettings::default()
    })
    .unwrap()
}

/// Each of `n` runs of `run`, timed alone; its input is made by `make`
/// outside the timing (the gateway builds the record before `put` too).
fn time<T>(n: u64, mut make: impl FnMut(u64) -> T, mut run: impl FnMut(T)) -> Vec<Duration> {
    let mut samples: Vec<Duration> = (0..n)
        .map(|i| {
            let input = make(i);
            let start = Instant::now();
            run(input);
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples
}

fn report(what: &str, samples: Vec<Duration>) {
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{what:<18} n={:<6} p50 {:>8.1} µs  p99 {:>8.1} µs  p99.9 {:>8.1} µs  max {:>8.1} µs",
        samples.len(),
        us(at(0.5)),
        us(at(0.99)),
        us(at(0.999)),
        us(samples[samples.len() - 1]),
    );
}
