//! `trunkline policy check|run`: validate a component and dry-run its
//! decisions against a captured INVITE, without a network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Deserialize;

use trunkline::config::{Config, PolicySettings, TrunkConfig};
use trunkline::invite::{self, InviteSource};
use trunkline::policy::{
    Attribute, CallEnd, Decision, EndReason, Header, PolicyEngine, PolicyVersion,
    fallback_decision, fallback_outcome, limit_headers,
};

/// Exit status when the policy itself failed (trap, deadline, bad answer):
/// the JSON still shows what the gateway would have done (the fallback).
const EXIT_POLICY_FAILED: u8 = 3;

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Validate a component: print its world, imports, size and compile time.
    Check {
        /// The component file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Dry-run `route` (and optionally `conclude`) and print the answers as
    /// JSON.
    Run(Box<RunArgs>),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The component file.
    file: PathBuf,
    /// A captured INVITE (SIP text, as sngrep or tshark save it).
    #[arg(long)]
    invite: PathBuf,
    /// A gateway config: supplies the policy's key/values and the trunk.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The trunk name the call arrives on (default: the config's trunk
    /// served by this policy, else `dry-run`).
    #[arg(long)]
    trunk: Option<String>,
    /// The policy name for config look-ups (default: the file stem).
    #[arg(long)]
    name: Option<String>,
    /// The source address of the INVITE.
    #[arg(long, default_value = "127.0.0.1:5060")]
    source: std::net::SocketAddr,
    /// A call end described as JSON (reason, attributes, agent_bye_headers,
    /// dtmf, duration_ms, caller_connected); runs `conclude` too.
    #[arg(long)]
    end: Option<PathBuf>,
    /// Run `conclude` too, with this end reason (agent-hangup,
    /// agent-request, caller-hangup, max-duration, media-timeout, error).
    #[arg(long)]
    reason: Option<String>,
    /// An attribute set during the call, `key=value` (repeatable); implies
    /// `conclude`.
    #[arg(long = "attr")]
    attrs: Vec<String>,
    /// A header on the agent's BYE, `Name: value` (repeatable); implies
    /// `conclude`.
    #[arg(long = "bye-header")]
    bye_headers: Vec<String>,
    /// DTMF digits collected during the call; implies `conclude`.
    #[arg(long)]
    dtmf: Option<String>,
}

pub(crate) fn main(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    super::init_logging("warn");
    match cmd {
        PolicyCommand::Check { file, json } => check(&file, json),
        PolicyCommand::Run(args) => run(*args),
    }
}

fn engine_without_cache(settings: &PolicySettings) -> anyhow::Result<Arc<PolicyEngine>> {
    let mut settings = settings.clone();
    // The CLI reports real compile times and must not write next to the
    // operator's files.
    settings.cache_dir = None;
    settings.max_concurrent = 4;
    Ok(PolicyEngine::new(&settings)?)
}

fn load(
    engine: &Arc<PolicyEngine>,
    file: &Path,
    name: &str,
    config: BTreeMap<String, String>,
) -> anyhow::Result<PolicyVersion> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    engine
        .load(name, &bytes, Arc::new(config))
        .with_context(|| format!("{} is not a usable policy", file.display()))
}

fn stem(file: &Path) -> String {
    file.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("policy")
        .to_owned()
}

fn check(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let engine = engine_without_cache(&PolicySettings::default())?;
    let started = Instant::now();
    let version = load(&engine, file, &stem(file), BTreeMap::new())?;
    let compile_ms = started.elapsed().as_secs_f64() * 1e3;
    let imports = engine.imports_of(&version);
    let world = format!("trunkline:policy/policy@{}", version.contract());
    let report = serde_json::json!({
        "file": file.display().to_string(),
        "name": version.name(),
        "world": world,
        "contract": version.contract(),
        "exports": ["route", "conclude"],
        "imports": imports,
        "size_bytes": version.info().size,
        "sha256": version.hash(),
        "compile_ms": (compile_ms * 10.0).round() / 10.0,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}: ok", file.display());
        println!("  world    {world} (exports route, conclude)");
        println!("  imports  {}", imports.join(", "));
        println!("  size     {} bytes", version.info().size);
        println!("  sha256   {}", version.hash());
        println!("  compile  {compile_ms:.1} ms");
    }
    Ok(ExitCode::SUCCESS)
}

/// A call end as `--end FILE.json` describes it; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct EndSpec {
    reason: Option<String>,
    target: Option<String>,
    attributes: BTreeMap<String, String>,
    agent_bye_headers: Vec<HeaderSpec>,
    dtmf: String,
    duration_ms: u64,
    caller_connected: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum HeaderSpec {
    Pair(String, String),
    Line(String),
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let name = args.name.clone().unwrap_or_else(|| stem(&args.file));
    let trunk = pick_trunk(&config, &name, args.trunk.as_deref())?;
    let text = std::fs::read(&args.invite)
        .with_context(|| format!("cannot read {}", args.invite.display()))?;
    let (call, warning) = invite::call_from_capture(
        &text,
        &InviteSource {
            trunk: trunk.name.clone(),
            addr: args.source,
            transport: trunkline::policy::Transport::Udp,
            call_id: "dry-run".into(),
        },
    )
    .with_context(|| format!("{} is not a usable INVITE", args.invite.display()))?;
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    let end = end_spec(&args)?;

    let engine = engine_without_cache(&config.policy)?;
    let version = load(&engine, &args.file, &name, config.policy_values(&name))?;
    let mut failed = false;

    let (decision, route_error) = match version.route(&call) {
        Ok(d) => (d, None),
        Err(e) => {
            failed = true;
            (fallback_decision(&trunk.fallback), Some(e.to_string()))
        }
    };
    let mut out = serde_json::json!({
        "policy": name,
        "version": version.hash(),
        "trunk": trunk.name,
        "call": call,
        "decision": decision,
        "route_error": route_error,
    });

    if let Some(spec) = end {
        let end = call_end(call, &decision, spec)?;
        let (mut outcome, conclude_error) = match version.conclude(&end) {
            Ok(o) => (o, None),
            Err(e) => {
                failed = true;
                (fallback_outcome(&trunk, &e), Some(e.to_string()))
            }
        };
        let overflow = limit_headers(&mut outcome.headers, trunk.header_limit);
        out["call_end"] = serde_json::json!({
            "reason": end.reason, "attributes": end.attributes, "agent_bye_headers": end.agent_bye_headers,
            "dtmf": end.dtmf, "duration_ms": end.duration_ms, "caller_connected": end.caller_connected,
            "target": end.target,
        });
        out["outcome"] = serde_json::to_value(&outcome)?;
        out["overflow_headers"] = serde_json::to_value(&overflow)?;
        out["conclude_error"] = serde_json::to_value(conclude_error)?;
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(if failed {
        ExitCode::from(EXIT_POLICY_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn pick_trunk(config: &Config, policy: &str, wanted: Option<&str>) -> anyhow::Result<TrunkConfig> {
    if let Some(name) = wanted {
        return config
            .trunk(name)
            .cloned()
            .with_context(|| format!("no trunk `{name}` in the config"));
    }
    Ok(config
        .trunks
        .iter()
        .find(|t| t.policy == policy)
        .cloned()
        .unwrap_or_else(|| TrunkConfig::new("dry-run", policy)))
}

fn end_spec(args: &RunArgs) -> anyhow::Result<Option<EndSpec>> {
    let mut spec = match &args.end {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            Some(
                serde_json::from_str::<EndSpec>(&text)
                    .with_context(|| format!("{} is not a call-end description", p.display()))?,
            )
        }
        None => None,
    };
    let inline = args.reason.is_some()
        || !args.attrs.is_empty()
        || !args.bye_headers.is_empty()
        || args.dtmf.is_some();
    if inline {
        let s = spec.get_or_insert_with(EndSpec::default);
        if let Some(r) = &args.reason {
            s.reason = Some(r.clone());
        }
        for a in &args.attrs {
            let (k, v) = a
                .split_once('=')
                .with_context(|| format!("--attr {a:?} is not key=value"))?;
            s.attributes.insert(k.to_owned(), v.to_owned());
        }
        for h in &args.bye_headers {
            s.agent_bye_headers.push(HeaderSpec::Line(h.clone()));
        }
        if let Some(d) = &args.dtmf {
            s.dtmf = d.clone();
        }
    }
    Ok(spec)
}

fn call_end(
    call: trunkline::policy::Call,
    decision: &Decision,
    spec: EndSpec,
) -> anyhow::Result<CallEnd> {
    let reason = match spec.reason.as_deref().unwrap_or("agent-hangup") {
        "agent-hangup" => EndReason::AgentHangup,
        "agent-request" => EndReason::AgentRequest,
        "caller-hangup" => EndReason::CallerHangup,
        "max-duration" => EndReason::MaxDuration,
        "media-timeout" => EndReason::MediaTimeout,
        "error" => EndReason::Error,
        other => bail!(
            "unknown end reason {other:?} (agent-hangup, agent-request, caller-hangup, max-duration, media-timeout, error)"
        ),
    };
    let (target, mut attributes) = match decision {
        Decision::Connect(c) => (c.target.clone(), c.attributes.clone()),
        Decision::Reject(_) => (String::new(), Vec::new()),
    };
    for (key, value) in spec.attributes {
        attributes.retain(|a| a.key != key);
        attributes.push(Attribute { key, value });
    }
    let mut bye = Vec::new();
    for h in spec.agent_bye_headers {
        let (name, value) = match h {
            HeaderSpec::Pair(n, v) => (n, v),
            HeaderSpec::Line(l) => {
                let (n, v) = l
                    .split_once(':')
                    .with_context(|| format!("BYE header {l:?} is not `Name: value`"))?;
                (n.trim().to_owned(), v.trim().to_owned())
            }
        };
        bye.push(Header { name, value });
    }
    Ok(CallEnd {
        call,
        target: spec.target.unwrap_or(target),
        attributes,
        agent_bye_headers: bye,
        dtmf: spec.dtmf,
        reason,
        duration_ms: spec.duration_ms,
        caller_connected: spec
            .caller_connected
            .unwrap_or(reason != EndReason::CallerHangup),
    })
}
