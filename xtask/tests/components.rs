//! Builds the example policies and the fixtures with the xtask library and
//! runs them in wasmtime, as the gateway would: the components must import
//! only Trunkline's interfaces, and a call must come back through the SDK's
//! conversions intact.
//!
//! This is not the host's engine (that lives in `host/`); it is the
//! smallest embedding that proves the built files are real, working
//! policies.

use std::path::PathBuf;
use std::sync::OnceLock;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};

wasmtime::component::bindgen!({ path: "../wit", world: "policy" });

use trunkline::policy::log::Level;
use trunkline::policy::types::{Attribute, Codec, EndReason, Header, Transfer, Transport};

/// Built once per test binary: every test reads the same files.
fn built() -> &'static (Vec<PathBuf>, Vec<PathBuf>) {
    static BUILT: OnceLock<(Vec<PathBuf>, Vec<PathBuf>)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = xtask::workspace_root().join("target").join("xtask-tests");
        let policies = xtask::build_policies(&out.join("policies")).expect("build policies");
        let fixtures = xtask::build_fixtures(&out.join("fixtures")).expect("build fixtures");
        (policies, fixtures)
    })
}

/// One engine for every test; compiling a component is the slow part.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut cfg = Config::new();
        cfg.consume_fuel(true);
        Engine::new(&cfg).expect("engine")
    })
}

fn compile(bytes: &[u8]) -> Component {
    Component::new(engine(), bytes).expect("compile component")
}

fn component_bytes(list: &[PathBuf], stem: &str) -> Vec<u8> {
    let path = list
        .iter()
        .find(|p| p.file_stem().and_then(|s| s.to_str()) == Some(stem))
        .unwrap_or_else(|| panic!("{stem} was not built: {list:?}"));
    std::fs::read(path).unwrap()
}

/// The host side of the two imported interfaces.
struct Host {
    config: Vec<(String, String)>,
    logs: Vec<(Level, String)>,
    limits: StoreLimits,
}

impl trunkline::policy::log::Host for Host {
    fn log(&mut self, level: Level, message: String) {
        self.logs.push((level, message));
    }
}

impl trunkline::policy::config::Host for Host {
    fn get(&mut self, key: String) -> Option<String> {
        self.config
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }

    fn entries(&mut self) -> Vec<(String, String)> {
        let mut all = self.config.clone();
        all.sort();
        all
    }
}

impl trunkline::policy::types::Host for Host {}

/// One fresh instance with `config`, 16 MiB of memory and some fuel (so an
/// infinite loop traps instead of hanging the test).
struct Instance {
    store: Store<Host>,
    policy: Policy,
}

impl Instance {
    fn new(component: &Component, config: &[(&str, &str)]) -> wasmtime::Result<Instance> {
        let engine = engine();
        let mut linker = Linker::new(engine);
        Policy::add_to_linker::<_, HasSelf<Host>>(&mut linker, |h| h)?;
        let host = Host {
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            logs: Vec::new(),
            limits: StoreLimitsBuilder::new().memory_size(16 << 20).build(),
        };
        let mut store = Store::new(engine, host);
        store.limiter(|h| &mut h.limits);
        store.set_fuel(200_000_000)?;
        let policy = Policy::instantiate(&mut store, component, &linker)?;
        Ok(Instance { store, policy })
    }

    fn route(&mut self, call: &Call) -> wasmtime::Result<Decision> {
        self.policy.call_route(&mut self.store, call)
    }

    fn conclude(&mut self, end: &CallEnd) -> wasmtime::Result<Outcome> {
        self.policy.call_conclude(&mut self.store, end)
    }
}

fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: value.into(),
    }
}

fn call(dialed: &str, extra: &[(&str, &str)]) -> Call {
    let mut headers = vec![
        header("Call-ID", "abc@198.51.100.20"),
        header("X-CallANI", "4155550123"),
        header("X-CallSessionID", "SESSION-1"),
        header("X-first_name", "Ada"),
    ];
    headers.extend(extra.iter().map(|(n, v)| header(n, v)));
    Call {
        call_id: "tl-1".into(),
        sip_call_id: "abc@198.51.100.20".into(),
        trunk: "five9".into(),
        request_uri: format!("sip:{dialed}@trunkline.example.com"),
        dialed: Some(dialed.into()),
        from_uri: "sip:+14155550123@five9.example.com".into(),
        from_display: None,
        to_uri: format!("sip:{dialed}@trunkline.example.com"),
        headers,
        source_ip: "198.51.100.20".into(),
        source_port: 5060,
        transport: Transport::Udp,
        codecs: vec![Codec {
            name: "PCMU".into(),
            clock_rate: 8000,
            payload_type: 0,
        }],
    }
}

fn end_of(call: Call, decision: &Decision, attributes: &[(&str, &str)]) -> CallEnd {
    let (target, mut attrs) = match decision {
        Decision::Connect(c) => (c.target.clone(), c.attributes.clone()),
        Decision::Reject(_) => (String::new(), Vec::new()),
    };
    attrs.extend(attributes.iter().map(|(k, v)| Attribute {
        key: k.to_string(),
        value: v.to_string(),
    }));
    CallEnd {
        call,
        target,
        attributes: attrs,
        agent_bye_headers: Vec::new(),
        dtmf: String::new(),
        reason: EndReason::AgentHangup,
        duration_ms: 1000,
        caller_connected: true,
    }
}

fn attribute<'a>(decision: &'a Decision, key: &str) -> Option<&'a str> {
    match decision {
        Decision::Connect(c) => c
            .attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.as_str()),
        Decision::Reject(_) => None,
    }
}

fn header_value<'a>(outcome: &'a Outcome, name: &str) -> Option<&'a str> {
    outcome
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

#[test]
fn policies_import_only_trunkline_and_export_both_functions() {
    let (policies, fixtures) = built();
    assert_eq!(policies.len(), 3, "{policies:?}");
    for path in policies.iter().chain(
        fixtures
            .iter()
            .filter(|p| !p.ends_with("wasi-imports.wasm")),
    ) {
        let bytes = std::fs::read(path).unwrap();
        let interface = xtask::check_policy(&bytes).unwrap();
        assert!(
            interface
                .imports
                .iter()
                .all(|i| i.starts_with("trunkline:policy/")),
            "{path:?}: {:?}",
            interface.imports
        );
        eprintln!(
            "{:<20} {:>7} bytes",
            path.file_name().unwrap().to_string_lossy(),
            bytes.len()
        );
    }
}

#[test]
fn wasi_fixture_imports_wasi_and_fails_the_check() {
    let bytes = component_bytes(&built().1, "wasi-imports");
    let interface = xtask::interface(&bytes).unwrap();
    assert!(
        interface
            .imports
            .iter()
            .any(|i| i.starts_with("wasi:cli/environment"))
    );
    assert!(
        interface
            .imports
            .iter()
            .any(|i| i.starts_with("wasi:clocks/wall-clock"))
    );
    let err = xtask::check_policy(&bytes).unwrap_err().to_string();
    assert!(err.contains("wasi:"), "{err}");
}

#[test]
fn multi_tenant_routes_and_concludes_in_wasmtime() {
    let bytes = component_bytes(&built().0, "multi-tenant");
    let component = compile(&bytes);
    let config = [
        ("token.tok-acme", "acme"),
        ("tenant.acme.agent", "sip:acme@agents.example.com"),
    ];
    let call = call("1001", &[("x-polyai-auth-token", "tok-acme")]);
    let decision = Instance::new(&component, &config)
        .unwrap()
        .route(&call)
        .unwrap();
    let Decision::Connect(connect) = &decision else {
        panic!("expected connect, got {decision:?}");
    };
    assert_eq!(connect.target, "sip:acme@agents.example.com");
    assert_eq!(attribute(&decision, "tenant"), Some("acme"));

    let rejected = Instance::new(&component, &config)
        .unwrap()
        .route(&self::call("1001", &[("X-PolyAi-Auth-Token", "nope")]))
        .unwrap();
    assert!(
        matches!(rejected, Decision::Reject(ref r) if r.status == 403),
        "{rejected:?}"
    );

    let end = end_of(
        call,
        &decision,
        &[("contained", "false"), ("destination", "sales")],
    );
    let mut instance = Instance::new(&component, &config).unwrap();
    let outcome = instance.conclude(&end).unwrap();
    assert!(!outcome.contained);
    assert_eq!(header_value(&outcome, "X-contained"), Some("false"));
    assert_eq!(header_value(&outcome, "X-destination"), Some("sales"));
    assert!(matches!(outcome.transfer, Transfer::Bye));
}

#[test]
fn route_reason_and_lead_data_run_in_wasmtime() {
    let bytes = component_bytes(&built().0, "route-reason");
    let component = compile(&bytes);
    let config = [("did.+14155550100", "wss://agents.example.com/a")];
    let call = call("+14155550100", &[]);
    let decision = Instance::new(&component, &config)
        .unwrap()
        .route(&call)
        .unwrap();
    let end = end_of(
        call,
        &decision,
        &[
            ("five9.route_type", "transfer"),
            ("five9.route_value", "billing"),
            ("meta.intent", "pay"),
        ],
    );
    let outcome = Instance::new(&component, &config)
        .unwrap()
        .conclude(&end)
        .unwrap();
    assert_eq!(header_value(&outcome, "X-RouteValue"), Some("billing"));
    assert_eq!(
        header_value(&outcome, "X-MetaData"),
        Some(r#"{"intent":"pay"}"#)
    );
    let metadata = outcome
        .handoff
        .iter()
        .find(|f| f.key == "metadata")
        .unwrap();
    assert_eq!(metadata.json, r#"{"intent":"pay"}"#);

    let bytes = component_bytes(&built().0, "lead-data");

    let component = compile(&bytes);
    let config = [
        ("did.+13453453453", "sip:q@agents.example.com"),
        ("skill.qualified", "Closers"),
    ];
    let call = self::call("+13453453453", &[]);
    let decision = Instance::new(&component, &config)
        .unwrap()
        .route(&call)
        .unwrap();
    assert_eq!(attribute(&decision, "var.first_name"), Some("Ada"));
    let end = end_of(call, &decision, &[("lead.qualified", "true")]);
    let outcome = Instance::new(&component, &config)
        .unwrap()
        .conclude(&end)
        .unwrap();
    assert_eq!(outcome.destination, "Closers");
    assert_eq!(header_value(&outcome, "X-LeadQualified"), Some("true"));
}

const MARKER: &[u8] = b"FIXTURE-VERSION-AAAAAAAA";

#[test]
fn misbehaving_marker_is_patchable() {
    let bytes = component_bytes(&built().1, "misbehaving");
    let component = compile(&bytes);
    assert_eq!(xtask::count_occurrences(&bytes, MARKER), 1);
    let config = [("target", "builtin:echo")];

    let mut instance = Instance::new(&component, &config).unwrap();
    let decision = instance.route(&call("1001", &[])).unwrap();
    assert_eq!(
        attribute(&decision, "version"),
        Some("FIXTURE-VERSION-AAAAAAAA")
    );
    assert_eq!(attribute(&decision, "session"), Some("SESSION-1"));
    assert!(
        instance
            .store
            .data()
            .logs
            .iter()
            .any(|(_, m)| m.contains("FIXTURE-VERSION-AAAAAAAA"))
    );

    let at = bytes
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .unwrap();
    let mut patched = bytes.clone();
    patched[at..at + MARKER.len()].copy_from_slice(b"FIXTURE-VERSION-BBBBBBBB");
    let decision = Instance::new(&compile(&patched), &config)
        .unwrap()
        .route(&call("1001", &[]))
        .unwrap();
    assert_eq!(
        attribute(&decision, "version"),
        Some("FIXTURE-VERSION-BBBBBBBB")
    );
}

#[test]
fn misbehaving_modes_fail_as_asked() {
    let bytes = component_bytes(&built().1, "misbehaving");
    let component = compile(&bytes);
    for mode in ["trap", "loop", "memory"] {
        let result = Instance::new(&component, &[("mode", mode)])
            .unwrap()
            .route(&call("1", &[]));
        assert!(result.is_err(), "mode {mode} returned {result:?}");
    }
    let route = |mode: &str| {
        Instance::new(&component, &[("mode", mode), ("target", "builtin:echo")])
            .unwrap()
            .route(&call("1", &[]))
            .unwrap()
    };
    assert!(matches!(route("bad-status"), Decision::Reject(r) if r.status == 200));
    assert!(
        matches!(route("bad-header"), Decision::Connect(c) if c.headers[0].name == "X Bad Header")
    );
    assert!(matches!(route("crlf"), Decision::Connect(c) if c.headers[0].value.contains("\r\n")));

    let end = end_of(call("1", &[]), &route("ok"), &[]);
    for mode in ["trap", "loop", "memory"] {
        let result = Instance::new(&component, &[("conclude_mode", mode)])
            .unwrap()
            .conclude(&end);
        assert!(result.is_err(), "conclude_mode {mode} returned {result:?}");
    }
    let outcome = Instance::new(&component, &[("conclude_mode", "too-many-headers")])
        .unwrap()
        .conclude(&end)
        .unwrap();
    assert_eq!(outcome.headers.len(), 25);
    let outcome = Instance::new(&component, &[])
        .unwrap()
        .conclude(&end)
        .unwrap();
    assert_eq!(
        header_value(&outcome, "X-Routed-Version"),
        Some("FIXTURE-VERSION-AAAAAAAA")
    );
}
