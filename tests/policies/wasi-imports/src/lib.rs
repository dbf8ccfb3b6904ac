//! # wasi-imports: a policy the host must refuse
//!
//! Test fixture, not an example. It reads an environment variable and the
//! wall clock through `std`, which on `wasm32-wasip2` become imports of
//! `wasi:cli/environment` and `wasi:clocks/wall-clock` (plus the rest of
//! the WASI world `std` pulls in). A Trunkline policy may import nothing
//! but `trunkline:policy/*`, so the host must reject this component at load
//! with an error naming the WASI import. `cargo xtask fixtures` builds it
//! for `wasm32-wasip2` as-is into `target/test-policies/wasi-imports.wasm`.
//!
//! Config keys: none.

use std::time::{SystemTime, UNIX_EPOCH};
use trunkline_guest_sdk::{Call, CallEnd, Decision, Outcome, Policy, export_policy};

/// The policy that reaches for ambient authority.
pub struct WasiImports;

impl Policy for WasiImports {
    fn route(_call: &Call) -> Decision {
        // Both calls need WASI: exactly what a policy must not do.
        let target = std::env::var("AGENT_TARGET").unwrap_or_else(|_| "builtin:echo".to_owned());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        Decision::connect(target).attribute("routed_at", now.to_string())
    }

    fn conclude(_end: &CallEnd) -> Outcome {
        Outcome::bye()
    }
}

export_policy!(WasiImports);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natively_it_reads_the_clock() {
        let call = trunkline_guest_sdk::testing::five9_call().build();
        let decision = WasiImports::route(&call);
        let at: u64 = decision
            .attribute_value("routed_at")
            .unwrap()
            .parse()
            .unwrap();
        assert!(at > 1_600_000_000);
    }
}
