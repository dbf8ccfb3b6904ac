//! One loaded version of a policy: a pre-instantiated component plus the
//! configuration it runs with. Calls hold an `Arc<PolicyVersion>` from
//! `route` to `conclude`, so a reload never changes the policy under a call.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::{Store, UpdateDeadline};

use super::context::{DecisionCtx, MemoryCap};
use super::contract::{self, Contract};
use super::engine::{Limits, PolicyEngine, VersionInfo};
use super::error::DecisionError;
use super::validate;
use super::{Call, CallEnd, Decision, Outcome};

/// A loaded, checked, pre-instantiated policy component.
pub struct PolicyVersion {
    name: Arc<str>,
    hash: String,
    short: Arc<str>,
    pre: Contract,
    config: Arc<BTreeMap<String, String>>,
    engine: Arc<PolicyEngine>,
    info: VersionInfo,
}

impl std::fmt::Debug for PolicyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyVersion")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl PolicyVersion {
    pub(crate) fn new(
        name: &str,
        hash: String,
        pre: Contract,
        config: Arc<BTreeMap<String, String>>,
        engine: Arc<PolicyEngine>,
        info: VersionInfo,
    ) -> PolicyVersion {
        PolicyVersion {
            name: name.into(),
            short: hash[..12].into(),
            hash,
            pre,
            config,
            engine,
            info,
        }
    }

    /// The policy's name (the file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SHA-256 of the component, hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The first 12 hex digits of the hash, as shown in logs.
    pub fn short_hash(&self) -> &str {
        &self.short
    }

    /// Size, load time, cache use and load moment.
    pub fn info(&self) -> &VersionInfo {
        &self.info
    }

    /// The configuration this version runs with.
    pub fn config(&self) -> &BTreeMap<String, String> {
        &self.config
    }

    pub(crate) fn component(&self) -> &Component {
        self.pre.component()
    }

    /// Runs `route` in a fresh instance and checks the answer.
    pub fn route(&self, call: &Call) -> Result<Decision, DecisionError> {
        let decision = match &self.pre {
            Contract::V0_2(pre) => self.run(&call.call_id, |store| {
                let policy = pre.instantiate(&mut *store).map_err(Stage::Instantiate)?;
                policy.call_route(store, call).map_err(Stage::Call)
            })?,
            Contract::V0_1(pre) => {
                let old = contract::call_v1(call);
                let d = self.run(&call.call_id, |store| {
                    let policy = pre.instantiate(&mut *store).map_err(Stage::Instantiate)?;
                    policy.call_route(store, &old).map_err(Stage::Call)
                })?;
                contract::decision_v2(d)
            }
        };
        validate::decision(&decision)?;
        Ok(decision)
    }

    /// Runs `conclude` in a fresh instance and checks the answer. The
    /// header limit is not applied here (see [`validate::limit_headers`]):
    /// exceeding it is not an error.
    pub fn conclude(&self, end: &CallEnd) -> Result<Outcome, DecisionError> {
        let outcome = match &self.pre {
            Contract::V0_2(pre) => self.run(&end.call.call_id, |store| {
                let policy = pre.instantiate(&mut *store).map_err(Stage::Instantiate)?;
                policy.call_conclude(store, end).map_err(Stage::Call)
            })?,
            Contract::V0_1(pre) => {
                let old = contract::call_end_v1(end);
                let o = self.run(&end.call.call_id, |store| {
                    let policy = pre.instantiate(&mut *store).map_err(Stage::Instantiate)?;
                    policy.call_conclude(store, &old).map_err(Stage::Call)
                })?;
                contract::outcome_v2(o)
            }
        };
        validate::outcome(&outcome)?;
        Ok(outcome)
    }

    /// Runs `f` (instantiate, then call) in a fresh store under the
    /// decision's limits.
    fn run<R>(
        &self,
        call_id: &str,
        f: impl FnOnce(&mut Store<DecisionCtx>) -> Result<R, Stage>,
    ) -> Result<R, DecisionError> {
        let _running = self.engine.running();
        let limits = self.engine.limits();
        let mut store = Store::new(
            self.engine.wasmtime(),
            DecisionCtx {
                policy: self.name.clone(),
                version: self.short.clone(),
                call_id: call_id.to_owned(),
                config: self.config.clone(),
                limiter: MemoryCap {
                    max_bytes: limits.memory_bytes,
                    hit: false,
                },
                log_lines: 0,
            },
        );
        store.limiter(|ctx| &mut ctx.limiter);
        // The deadline covers instantiation too: a start function or a
        // huge data segment counts against the same budget.
        store.set_epoch_deadline(limits.deadline_ticks);
        store.epoch_deadline_callback(deadline_check(limits));
        f(&mut store).map_err(|stage| match stage {
            Stage::Instantiate(e) => classify(e, &store, limits.deadline_ms, true),
            Stage::Call(e) => classify(e, &store, limits.deadline_ms, false),
        })
    }

    /// The contract version the component was built against.
    pub fn contract(&self) -> &'static str {
        self.pre.version()
    }
}

/// Where a decision failed: instantiating the component, or in the call.
enum Stage {
    Instantiate(wasmtime::Error),
    Call(wasmtime::Error),
}

/// Decides, each time the epoch deadline passes, whether the decision has
/// really used up its budget.
///
/// The budget is CPU time of the calling thread, not wall time: on a busy
/// machine a decision may be descheduled for longer than its whole budget
/// (seen with a reload compiling on both cores), and failing calls for the
/// scheduler's choices would make the fallback fire exactly when the
/// gateway is loaded. Wall time is still capped at `WALL_CAP_FACTOR` times
/// the budget so no decision holds a call up for long.
fn deadline_check(
    limits: Limits,
) -> impl FnMut(wasmtime::StoreContextMut<'_, DecisionCtx>) -> wasmtime::Result<UpdateDeadline>
+ Send
+ Sync
+ 'static {
    let budget = Duration::from_millis(limits.deadline_ms);
    let wall_cap = budget * WALL_CAP_FACTOR;
    let cpu_start = thread_cpu_time();
    let wall_start = Instant::now();
    move |_| {
        let used = thread_cpu_time().saturating_sub(cpu_start);
        if used >= budget || wall_start.elapsed() >= wall_cap {
            return Ok(UpdateDeadline::Interrupt);
        }
        // Look again when the rest of the budget could have been spent.
        let rest_ms = (budget - used).as_millis().max(1) as u64;
        Ok(UpdateDeadline::Continue(rest_ms.div_ceil(limits.tick_ms)))
    }
}

/// How many times its CPU budget a decision may take in wall time.
const WALL_CAP_FACTOR: u32 = 4;

/// CPU time used by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given, which is
    // valid and exclusively borrowed for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        // Never happens on Linux; fall back to "no CPU used", leaving the
        // wall-time cap in charge.
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

fn classify(
    e: wasmtime::Error,
    store: &Store<DecisionCtx>,
    deadline_ms: u64,
    instantiating: bool,
) -> DecisionError {
    if store.data().limiter.hit {
        return DecisionError::MemoryCap(root_message(&e));
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => DecisionError::Deadline(deadline_ms),
        Some(trap) => DecisionError::Trap(trap.to_string()),
        None if instantiating => DecisionError::Instantiate(root_message(&e)),
        None => DecisionError::Trap(root_message(&e)),
    }
}

/// The error's own message without the (long) wasm backtrace.
fn root_message(e: &wasmtime::Error) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or_default().to_owned()
}
