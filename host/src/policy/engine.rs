//! The one wasmtime `Engine` of the process, its linker, the epoch ticker
//! that enforces deadlines, and loading (compile, check, pre-instantiate) of
//! policy components.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};
use wasmtime::{Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{Policy, PolicyPre};
use super::cache::ArtifactCache;
use super::context::{DecisionCtx, Imports};
use super::contract::Contract;
use super::error::LoadError;
use super::version::PolicyVersion;
use crate::config::PolicySettings;

/// How often the epoch advances while a decision runs. A deadline fires
/// within one tick of its time; one tick a millisecond costs a thread
/// wake-up a millisecond, only while decisions run.
const EPOCH_TICK: Duration = Duration::from_millis(1);
/// How long the epoch ticker goes on ticking after the last decision
/// before it naps (see the ticker thread in [`PolicyEngine::new`]).
const LINGER: Duration = Duration::from_millis(200);

/// Bytes of a memory slot reset in place (not unmapped) between decisions.
const KEEP_RESIDENT: usize = 4 << 20;

/// The only import namespace a policy may use, in a contract version the
/// host speaks (`contract::CONTRACTS`: 0.2.x or 0.1.x).
const ALLOWED_IMPORT_PREFIX: &str = "trunkline:policy/";
const ALLOWED_IMPORT_VERSIONS: &[&str] = &["@0.2.", "@0.1."];

/// The limits every decision runs under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Epoch ticks until a running decision is interrupted.
    pub(crate) deadline_ticks: u64,
    /// The CPU budget of one decision, as configured.
    pub(crate) deadline_ms: u64,
    /// Milliseconds per epoch tick.
    pub(crate) tick_ms: u64,
    /// The linear-memory cap in bytes.
    pub(crate) memory_bytes: usize,
}

/// Compiles, checks and pre-instantiates policy components; shared by every
/// policy version it produced.
pub struct PolicyEngine {
    engine: Engine,
    linker: Linker<DecisionCtx>,
    limits: Limits,
    cache: Option<ArtifactCache>,
    ticker: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
    /// Decisions running now: the ticker only ticks while one is.
    active: Arc<AtomicUsize>,
    /// Set while the ticker is (about to be) parked.
    parked: Arc<AtomicBool>,
    /// The ticker thread, to wake it when a decision starts.
    ticker_thread: std::thread::Thread,
}

/// Marks a decision as running while it lives (see [`PolicyEngine::running`]).
pub(crate) struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// Builds the engine (pooling allocator sized by `max_concurrent`,
    /// epoch interruption) and starts its epoch ticker.
    pub fn new(settings: &PolicySettings) -> Result<Arc<PolicyEngine>, LoadError> {
        let memory_bytes = settings.memory_bytes();
        let slots = settings.max_concurrent;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            // wit-component adds small shim/fixup modules next to the main
            // one, each a core instance with a table.
            .total_core_instances(slots.saturating_mul(4))
            .total_memories(slots)
            .total_tables(slots.saturating_mul(4))
            .max_memories_per_module(1)
            .max_memory_size(memory_bytes)
            // Reset the pages a decision dirtied by copying the image back
            // instead of unmapping them: unmapping costs a TLB shootdown
            // and every page faults in again on the next decision, which
            // was ~45% of a decision's time. PAGEMAP_SCAN (Linux 6.7+)
            // finds exactly the dirty pages; elsewhere wasmtime falls back
            // to resetting the low addresses.
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT.min(memory_bytes))
            .table_keep_resident(64 << 10);

        let mut config = wasmtime::Config::new();
        config
            .epoch_interruption(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| LoadError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        Policy::add_to_linker::<DecisionCtx, Imports>(&mut linker, |ctx| ctx)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        // Components built against the first contract keep loading.
        super::bindings::v0_1::Policy::add_to_linker::<DecisionCtx, Imports>(&mut linker, |ctx| {
            ctx
        })
        .map_err(|e| LoadError::Engine(format!("{e:#}")))?;

        let tick_ms = EPOCH_TICK.as_millis().max(1) as u64;
        let limits = Limits {
            // +1: the tick in progress when the decision starts may be
            // almost over, and the deadline must never be shorter than asked.
            deadline_ticks: settings.deadline_ms.div_ceil(tick_ms) + 1,
            deadline_ms: settings.deadline_ms,
            tick_ms,
            memory_bytes,
        };
        let cache = settings
            .cache_path()
            .map(|dir| ArtifactCache::new(dir, &engine));
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let parked = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let (stop, active, parked) = (stop.clone(), active.clone(), parked.clone());
            std::thread::Builder::new()
                .name("policy-epoch".into())
                .spawn(move || {
                    // Ticks only while a decision runs: an idle gateway does
                    // not wake a thousand times a second. A deadline counts
                    // from the epoch when its decision started, so pausing
                    // the epoch while nothing runs changes no deadline.
                    //
                    // It naps only after LINGER without a decision: under
                    // load, decisions follow each other within microseconds,
                    // and waking a parked ticker for each (a futex call, a
                    // thread switch on a 2-core box) doubled the decision
                    // time in `benches/policy.rs`.
                    let mut last_busy = std::time::Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        if active.load(Ordering::SeqCst) > 0 {
                            last_busy = std::time::Instant::now();
                        } else if last_busy.elapsed() >= LINGER {
                            // Announce the nap, then look again: a decision
                            // starting in between either sees the flag and
                            // unparks us, or is seen here.
                            parked.store(true, Ordering::SeqCst);
                            if active.load(Ordering::SeqCst) == 0 {
                                std::thread::park_timeout(Duration::from_millis(100));
                            }
                            parked.store(false, Ordering::SeqCst);
                            continue;
                        }
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| LoadError::Engine(format!("cannot start epoch ticker: {e}")))?
        };
        let ticker_thread = ticker.thread().clone();
        Ok(Arc::new(PolicyEngine {
            engine,
            linker,
            limits,
            cache,
            ticker: Mutex::new(Some((stop, ticker))),
            active,
            parked,
            ticker_thread,
        }))
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Marks a decision as running until the guard drops, waking the epoch
    /// ticker if it was idle.
    pub(crate) fn running(&self) -> Running<'_> {
        self.active.fetch_add(1, Ordering::SeqCst);
        // Only a parked ticker needs the (system-call) wake-up; one that is
        // ticking sees the count on its next tick.
        if self.parked.swap(false, Ordering::SeqCst) {
            self.ticker_thread.unpark();
        }
        Running(&self.active)
    }

    pub(crate) fn wasmtime(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (or fetches from the cache), checks imports and exports, and
    /// pre-instantiates `bytes` as the policy `name`.
    pub fn load(
        self: &Arc<Self>,
        name: &str,
        bytes: &[u8],
        config: Arc<BTreeMap<String, String>>,
    ) -> Result<PolicyVersion, LoadError> {
        let started = Instant::now();
        let hash = hex::encode(Sha256::digest(bytes));
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm);
        }
        // Bytes 4..8 are the version and layer: 1.0 for a core module,
        // 0x0d.1 for a component. A core module is a common mistake (a
        // policy built with plain `cargo build`), so say so precisely.
        if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
            return Err(LoadError::NotComponent(
                "the file is a core WebAssembly module".into(),
            ));
        }
        let (component, from_cache) = self.compile(&hash, bytes)?;
        check_imports(&component, &self.engine)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        // The current contract's exports, else the first contract's; the
        // error names the current one's mismatch.
        let pre = match PolicyPre::new(pre.clone()) {
            Ok(p) => Contract::V0_2(p),
            Err(e) => match super::bindings::v0_1::PolicyPre::new(pre) {
                Ok(p) => Contract::V0_1(p),
                Err(_) => return Err(LoadError::Exports(format!("{e:#}"))),
            },
        };
        let contract = pre.version();
        Ok(PolicyVersion::new(
            name,
            hash,
            pre,
            config,
            self.clone(),
            VersionInfo {
                size: bytes.len(),
                load_time: started.elapsed(),
                from_cache,
                loaded_at: SystemTime::now(),
                contract,
            },
        ))
    }

    fn compile(&self, hash: &str, bytes: &[u8]) -> Result<(Component, bool), LoadError> {
        if let Some(cache) = &self.cache
            && let Some(component) = cache.get(hash)
        {
            return Ok((component, true));
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        if let Some(cache) = &self.cache {
            cache.put(hash, &component);
        }
        Ok((component, false))
    }

    /// The component's imports, as `name` strings, for `policy check`.
    pub fn imports_of(&self, version: &PolicyVersion) -> Vec<String> {
        version
            .component()
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }
}

impl Drop for PolicyEngine {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.ticker.lock()
            && let Some((stop, handle)) = slot.take()
        {
            stop.store(true, Ordering::Relaxed);
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

/// Facts about one load, for the status API and `policy check`.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    /// The component's size in bytes.
    pub size: usize,
    /// How long compiling (or fetching from the cache) and checking took.
    pub load_time: Duration,
    /// Whether the compiled artifact came from the cache.
    pub from_cache: bool,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// The contract version it was built against (`0.2.0`, `0.1.0`).
    pub contract: &'static str,
}

/// Refuses a component that imports anything but Trunkline's own
/// interfaces, naming every offending import: a policy must not reach files,
/// network, environment or clocks.
fn check_imports(component: &Component, engine: &Engine) -> Result<(), LoadError> {
    let forbidden: Vec<String> = component
        .component_type()
        .imports(engine)
        // The world's `use types.{call, ...}` shows up as top-level type
        // imports; types carry no authority (a resource type would also
        // need an instance the linker does not have), so only instances and
        // functions are checked.
        .filter(|(_, item)| !matches!(item.ty, ComponentItem::Type(_)))
        .map(|(name, _)| name)
        .filter(|name| {
            !(name.starts_with(ALLOWED_IMPORT_PREFIX)
                && ALLOWED_IMPORT_VERSIONS.iter().any(|v| name.contains(v)))
        })
        .map(str::to_owned)
        .collect();
    if forbidden.is_empty() {
        Ok(())
    } else {
        Err(LoadError::ForbiddenImports(forbidden))
    }
}
