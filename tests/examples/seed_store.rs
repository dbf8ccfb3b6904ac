//! Fills an embedded outcome store with realistic records, for the Handoff
//! API benchmark (`tests/bench/handoff.sh`):
//!
//! ```text
//! cargo run --release -p trunkline-tests --example seed_store -- PATH N
//! ```
//!
//! Writes records `seed-0` … `seed-{N-1}` (call ids `tl-seed-…`, tenant
//! `five9`) that ended within the last hour, through the store's own `put`,
//! and prints how long that took.

#[path = "../benches/outcomes.rs"]
mod outcomes;

use std::time::Instant;

use trunkline::store::{self, StoreBackend, StoreSettings};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(n)) = (args.next(), args.next()) else {
        return Err("usage: seed_store PATH N".into());
    };
    let n: u64 = n.parse()?;
    let settings = StoreSettings {
        backend: StoreBackend::Embedded,
        path: path.into(),
        ..StoreSettings::default()
    };
    let store = store::open(&settings)?;
    let now = outcomes::now_ms();
    let start = Instant::now();
    for i in 0..n {
        // Spread over the last hour, all well inside the 24 h retention.
        store.put(outcomes::record(i, now - (n - i) * 3_600_000 / n.max(1)))?;
    }
    store.flush()?;
    println!(
        "seeded {n} records into {} in {:.1} s",
        settings.path.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
