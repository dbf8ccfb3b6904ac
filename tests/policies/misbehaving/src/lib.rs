//! # misbehaving: a test fixture for the host's policy engine
//!
//! Not an example: a policy that fails on demand so the host's tests can
//! check that traps, timeouts, memory exhaustion and invalid answers give
//! the trunk's fallback while the router keeps running. Built with the SDK
//! like any policy; `cargo xtask fixtures` writes
//! `target/test-policies/misbehaving.wasm`.
//!
//! ## Config keys
//!
//! | key | value |
//! |---|---|
//! | `mode` | what `route` does (default `ok`): `ok`, `reject`, `trap`, `loop`, `memory`, `bad-status`, `bad-header`, `crlf` |
//! | `target` | the agent target `route` connects to in `ok`, `bad-header` and `crlf` |
//! | `conclude_mode` | what `conclude` does (default `ok`): `ok`, `trap`, `loop`, `memory`, `too-many-headers`, `bad-header`, `crlf`, `refer-bare` |
//! | `destination` | the destination `conclude` reports in `ok` |
//!
//! - `ok`: connect to `target` (404 when unset) with the attributes
//!   `version` (the marker below), `dialed`, `session` (the call's
//!   `X-CallSessionID`), `headers` (how many INVITE headers arrived) and
//!   `config_keys` (the config keys, comma-separated), `direction`
//!   (`inbound` or `outbound`); logs one info line
//!   holding the marker.
//! - `reject`: reject with 403 and the marker as reason phrase.
//! - `trap`: panic (a Wasm trap). `loop`: never return. `memory`: allocate
//!   1 MiB blocks until the memory cap stops it.
//! - `bad-status`: reject with status 200. `bad-header`: connect with a
//!   header named `X Bad Header`. `crlf`: connect with a header value
//!   holding `\r\n`. These bypass the SDK's builders, which would fix them.
//! - `conclude_mode = ok`: BYE, contained, `X-Fixture-Version: <marker>`,
//!   `X-Routed-Version: <the version attribute set by route>`,
//!   `X-End-Reason: <reason>`, handoff `version`.
//! - `too-many-headers`: 25 BYE headers set directly, past the builder's
//!   limit. `refer-bare`: a REFER to the bare extension `1001`.
//!
//! ## The version marker
//!
//! [`MARKER`] holds `FIXTURE-VERSION-AAAAAAAA` exactly once in the data
//! segment; host tests overwrite those bytes in the `.wasm` file (same
//! length) to make a second version of the policy and tell versions apart
//! by the `version` attribute and headers.

use std::hint::black_box;
use trunkline_guest_sdk::{
    Call, CallEnd, Connect, Decision, Direction, Header, Outcome, Policy, Reject, Transfer, config,
    export_policy, log,
};

/// The version marker, `FIXTURE-VERSION-AAAAAAAA`. A `static` read
/// through `black_box` so the optimiser keeps the bytes in memory instead
/// of folding them into code, which would break binary patching.
pub static MARKER: [u8; 24] = *b"FIXTURE-VERSION-AAAAAAAA";

/// The marker as text, read from the data segment at run time.
pub fn version() -> String {
    String::from_utf8_lossy(black_box(&MARKER)).into_owned()
}

/// The misbehaving fixture.
pub struct Misbehaving;

impl Policy for Misbehaving {
    fn route(call: &Call) -> Decision {
        let mode = config::get_or("mode", "ok");
        let target = config::get("target");
        match mode.as_str() {
            "ok" => {
                let version = version();
                log::info(format!("misbehaving fixture {version} routing"));
                let Some(target) = target else {
                    return Decision::reject(404, format!("no target configured {version}"));
                };
                let keys: Vec<String> = config::entries().into_iter().map(|(k, _)| k).collect();
                Decision::connect(target)
                    .attribute("version", version)
                    .attribute("dialed", call.dialed.clone().unwrap_or_default())
                    .attribute(
                        "session",
                        call.header("X-CallSessionID").unwrap_or_default(),
                    )
                    .attribute("headers", call.headers.len().to_string())
                    .attribute("config_keys", keys.join(","))
                    .attribute(
                        "direction",
                        match call.direction {
                            Direction::Inbound => "inbound",
                            Direction::Outbound => "outbound",
                        },
                    )
            }
            "reject" => Decision::reject(403, version()),
            "trap" => panic!("misbehaving fixture: trap requested"),
            "loop" => spin(),
            "memory" => exhaust_memory(),
            "bad-status" => Decision::Reject(Reject {
                status: 200,
                reason: "OK".to_owned(),
            }),
            "bad-header" => connect_raw(target, "X Bad Header", "value"),
            "crlf" => connect_raw(target, "X-Injected", "ok\r\nX-Evil: yes"),
            other => Decision::reject(400, format!("unknown mode {other}")),
        }
    }

    fn conclude(end: &CallEnd) -> Outcome {
        let mode = config::get_or("conclude_mode", "ok");
        match mode.as_str() {
            "ok" => {
                let version = version();
                Outcome::bye()
                    .contained(true)
                    .destination(config::get("destination").unwrap_or_default())
                    .header("X-Fixture-Version", version.as_str())
                    .header(
                        "X-Routed-Version",
                        end.attribute("version").unwrap_or_default(),
                    )
                    .header("X-End-Reason", end.reason.as_str())
                    .handoff("version", version)
            }
            "trap" => panic!("misbehaving fixture: trap requested in conclude"),
            "loop" => spin(),
            "memory" => exhaust_memory(),
            "too-many-headers" => {
                let mut outcome = Outcome::bye();
                outcome.headers = (1..=25)
                    .map(|i| Header::new(format!("X-Extra-{i}"), i.to_string()))
                    .collect();
                outcome
            }
            "bad-header" => raw_outcome(Header::new("X Bad Header", "value")),
            "crlf" => raw_outcome(Header::new("X-Injected", "ok\r\nX-Evil: yes")),
            "refer-bare" => {
                let mut outcome = Outcome::bye();
                outcome.transfer = Transfer::Refer("1001".to_owned());
                outcome
            }
            other => Outcome::bye().header("X-Unknown-Mode", other),
        }
    }
}

/// A connect decision with one header exactly as given, bypassing the
/// builder's checks.
fn connect_raw(target: Option<String>, name: &str, value: &str) -> Decision {
    Decision::Connect(Connect {
        target: target.unwrap_or_else(|| "builtin:echo".to_owned()),
        attributes: Default::default(),
        headers: vec![Header::new(name, value)],
    })
}

/// An outcome with one header exactly as given.
fn raw_outcome(header: Header) -> Outcome {
    let mut outcome = Outcome::bye();
    outcome.headers = vec![header];
    outcome
}

/// Never returns; `black_box` keeps the loop from being optimised into
/// something the deadline cannot interrupt differently.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Allocates and touches 1 MiB blocks until allocation fails, which aborts
/// (a trap) once the host's memory cap refuses to grow memory.
fn exhaust_memory() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(black_box(vec![0xA5; 1 << 20]));
        black_box(&hoard);
    }
}

export_policy!(Misbehaving);

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_guest_sdk::testing::{call_end, five9_call, with_config};

    #[test]
    fn ok_mode_carries_the_marker() {
        let call = five9_call().dialed("1001").build();
        let decision = with_config(&[("target", "builtin:echo")], || Misbehaving::route(&call));
        assert_eq!(decision.target(), Some("builtin:echo"));
        assert_eq!(
            decision.attribute_value("version"),
            Some("FIXTURE-VERSION-AAAAAAAA")
        );
        assert_eq!(decision.attribute_value("config_keys"), Some("target"));
        let end = call_end(call).routed(&decision).build();
        let outcome = with_config(&[], || Misbehaving::conclude(&end));
        assert_eq!(
            outcome.header_value("X-Fixture-Version"),
            Some("FIXTURE-VERSION-AAAAAAAA")
        );
        assert_eq!(
            outcome.header_value("X-Routed-Version"),
            Some("FIXTURE-VERSION-AAAAAAAA")
        );
    }

    #[test]
    fn invalid_answers_are_produced_as_asked() {
        let call = five9_call().build();
        let route = |mode: &str| with_config(&[("mode", mode)], || Misbehaving::route(&call));
        assert_eq!(route("bad-status").status(), Some(200));
        assert_eq!(
            route("bad-header").as_connect().unwrap().headers[0].name,
            "X Bad Header"
        );
        assert!(
            route("crlf").as_connect().unwrap().headers[0]
                .value
                .contains("\r\n")
        );
        assert_eq!(route("nonsense").status(), Some(400));

        let end = call_end(call.clone()).build();
        let conclude =
            |mode: &str| with_config(&[("conclude_mode", mode)], || Misbehaving::conclude(&end));
        assert_eq!(conclude("too-many-headers").headers.len(), 25);
        assert_eq!(
            conclude("refer-bare").transfer,
            Transfer::Refer("1001".into())
        );
    }

    #[test]
    fn trap_mode_panics() {
        let call = five9_call().build();
        let result = std::panic::catch_unwind(|| {
            with_config(&[("mode", "trap")], || Misbehaving::route(&call))
        });
        assert!(result.is_err());
    }
}
