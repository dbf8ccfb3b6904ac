//! `GET /metrics`: Prometheus (OpenMetrics text) exposition.
//!
//! Nothing is counted twice: the gateway, relay, port pool, transports,
//! policies and store keep their own counters, and [`Exporter`] reads
//! their snapshots at scrape time. Only what the API itself sees (Handoff
//! queries, HTTP requests) is counted here, in [`ApiCounters`].
//! Every name starts with `trunkline_`; counters end in `_total`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::{ApiState, AppState};
use crate::policy::{LATENCY_BUCKETS, PolicyState};

/// What the API counts itself.
#[derive(Debug, Default)]
pub struct ApiCounters {
    handoff: Mutex<BTreeMap<&'static str, u64>>,
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// The listener's connections (open, refused, timed out).
    pub(crate) connections: Arc<super::ConnCounters>,
}

impl ApiCounters {
    /// A Handoff API query answered with `result` (`found`, `not_found`,
    /// `invalid`, `unauthorized`, `error`).
    pub fn handoff(&self, result: &'static str) {
        let mut m = self.handoff.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(result).or_default() += 1;
    }

    /// A request to `route` (the route pattern, never the raw path: ids
    /// would make one series per call) answered with `status`.
    pub fn request(&self, route: &str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(&(route.to_owned(), status)) {
            Some(n) => *n += 1,
            None => {
                m.insert((route.to_owned(), status), 1);
            }
        }
    }

    /// Handoff queries by result.
    pub fn handoff_snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.handoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Reads every snapshot on each scrape.
pub(crate) struct Exporter {
    api: ApiState,
    counters: Arc<ApiCounters>,
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

/// A registry holding the exporter, prefix `trunkline`.
pub(crate) fn registry(api: ApiState, counters: Arc<ApiCounters>) -> Registry {
    let mut registry = Registry::with_prefix("trunkline");
    registry.register_collector(Box::new(Exporter { api, counters }));
    registry
}

type Labels = Vec<(&'static str, String)>;

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    let c = ConstCounter::new(v);
    let m = e.encode_descriptor(name, help, None, c.metric_type())?;
    c.encode(m)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> fmt::Result {
    let g = ConstGauge::new(v);
    let m = e.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(m)
}

fn counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, u64)>,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauges(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, i64)>,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn l1(k: &'static str, v: impl ToString) -> Labels {
    vec![(k, v.to_string())]
}

fn l2(k1: &'static str, v1: impl ToString, k2: &'static str, v2: impl ToString) -> Labels {
    vec![(k1, v1.to_string()), (k2, v2.to_string())]
}

fn gauge_value(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl Exporter {
    fn calls(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let g = self.api.gateway.stats.snapshot();
        gauge(
            e,
            "active_calls",
            "Calls in progress.",
            gauge_value(g.active_calls()),
        )?;
        gauge(
            e,
            "calls_open",
            "Call records held in memory: calls in progress, and ended ones until their last transaction ends (the agent INVITE's, 32 s after its 2xx).",
            gauge_value(g.calls_open),
        )?;
        gauge(
            e,
            "sip_dialogs_open",
            "SIP dialogs held (both legs of every call).",
            gauge_value(g.dialogs),
        )?;
        gauge(
            e,
            "call_timers",
            "Call timers queued (ring, maximum duration, session, retransmission), ended calls' included until pruned.",
            gauge_value(g.timers),
        )?;
        counter(
            e,
            "calls_started",
            "Calls admitted and routed.",
            g.calls_started,
        )?;
        counters(
            e,
            "calls_ended",
            "Calls concluded, by end reason and whether the AI contained them.",
            g.calls_ended
                .iter()
                .map(|((reason, contained), n)| (l2("reason", reason, "contained", contained), *n)),
        )?;
        counters(
            e,
            "sip_responses_sent",
            "SIP responses sent, by status code (retransmissions included).",
            g.responses_sent.iter().map(|(s, n)| (l1("status", s), *n)),
        )?;
        gauge(
            e,
            "sip_transactions_open",
            "SIP transactions in progress (client and server).",
            gauge_value(g.transactions),
        )?;
        counter(
            e,
            "sip_overload_refusals",
            "Requests answered statelessly or dropped: the caps on open server transactions were reached.",
            g.overloaded,
        )?;
        counter(
            e,
            "outcome_store_errors",
            "Outcome records the store refused: lost for the Handoff API.",
            g.store_errors,
        )?;
        counters(
            e,
            "connector_events",
            "Events of WebSocket and builtin agents (connect failures, closes, errors).",
            g.connector_events
                .iter()
                .map(|((kind, what), n)| (l2("kind", kind, "event", what), *n)),
        )?;
        counter(
            e,
            "ws_playout_padded_frames",
            "Frames of WebSocket agent audio sent with silence padded into them: where the agent stopped, or fell behind the playout delay.",
            g.playout_padded,
        )?;
        counter(
            e,
            "ws_playout_underruns",
            "Times a WebSocket agent's playout queue ran dry while the agent was still talking (the playout delay then grows).",
            g.playout_underruns,
        )?;
        counters(
            e,
            "auth_lockouts",
            "Digest lockout blocks started, by scope (source, user).",
            ["source", "user"].map(|k| (l1("scope", k), g.lockouts.get(k).copied().unwrap_or(0))),
        )?;
        counters(
            e,
            "auth_lockout_refusals",
            "INVITEs the digest lockout refused with 403 without checking credentials, by reason (blocked, backoff).",
            ["blocked", "backoff"].map(|k| {
                (
                    l1("reason", k),
                    g.lockout_refusals.get(k).copied().unwrap_or(0),
                )
            }),
        )
    }

    fn sip(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let t = self.api.gateway.transport_stats();
        let kinds = [("udp", t.udp), ("tcp", t.tcp), ("tls", t.tls)];
        counters(
            e,
            "sip_messages",
            "SIP messages received (in) and sent (out), by transport.",
            kinds.iter().flat_map(|(k, c)| {
                [
                    (l2("transport", k, "direction", "in"), c.messages_in),
                    (l2("transport", k, "direction", "out"), c.messages_out),
                ]
            }),
        )?;
        counters(
            e,
            "sip_malformed",
            "Input that did not parse as SIP and was dropped, by transport.",
            kinds.iter().map(|(k, c)| (l1("transport", k), c.malformed)),
        )?;
        gauges(
            e,
            "sip_connections_open",
            "Open SIP connections (TCP, TLS).",
            kinds
                .iter()
                .map(|(k, c)| (l1("transport", k), gauge_value(c.connections_open))),
        )
    }

    fn policies(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let stats = self.api.registry.stats();
        let rows = stats.snapshot();
        let select = |want: &dyn Fn(&str) -> bool, label: &'static str| -> Vec<(Labels, u64)> {
            rows.iter()
                .filter(|(_, what, _, _)| want(what))
                .map(|(p, what, l, n)| {
                    let mut labels = l1("policy", p);
                    if *what == "route" || *what == "conclude" {
                        labels.push(("op", what.to_string()));
                    }
                    labels.push((label, l.to_string()));
                    (labels, *n)
                })
                .collect()
        };
        counters(
            e,
            "policy_decisions",
            "Policy decisions by policy, op (route, conclude) and result (ok or an error kind).",
            select(&|w| w == "route" || w == "conclude", "result"),
        )?;
        counters(
            e,
            "policy_fallbacks",
            "Decisions answered by the trunk's fallback instead of the policy.",
            select(&|w| w == "fallback", "op"),
        )?;
        counters(
            e,
            "policy_loads",
            "Policy load events (loaded, reloaded, unloaded).",
            select(&|w| w == "load", "event"),
        )?;
        counters(
            e,
            "policy_load_failures",
            "Policy files that failed to load, by error kind.",
            select(&|w| w == "load-failure", "kind"),
        )?;
        let mut m = e.encode_descriptor(
            "policy_decision_duration_seconds",
            "How long route and conclude took (instantiation and run).",
            None,
            MetricType::Histogram,
        )?;
        for (policy, op, h) in stats.latencies() {
            let labels = l2("policy", policy, "op", op);
            let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                .iter()
                .copied()
                .zip(h.buckets.iter().copied())
                .collect();
            buckets.push((f64::MAX, h.buckets[LATENCY_BUCKETS.len()]));
            m.encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)?;
        }
        let mut by_state: BTreeMap<&'static str, i64> = [
            ("serving", 0),
            ("failed", 0),
            ("pending", 0),
            ("unloaded", 0),
        ]
        .into_iter()
        .collect();
        for s in self.api.registry.statuses() {
            let key = match s.state {
                PolicyState::Serving => "serving",
                PolicyState::Failed => "failed",
                PolicyState::Pending => "pending",
                PolicyState::Unloaded => "unloaded",
            };
            *by_state.entry(key).or_default() += 1;
        }
        gauges(
            e,
            "policies",
            "Policy names by state.",
            by_state.into_iter().map(|(s, n)| (l1("state", s), n)),
        )
    }

    fn media(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let r = self.api.gateway.relay_stats.snapshot();
        let dir = |caller_to_agent: u64, agent_to_caller: u64| {
            [
                (l1("direction", "caller_to_agent"), caller_to_agent),
                (l1("direction", "agent_to_caller"), agent_to_caller),
            ]
        };
        counters(
            e,
            "rtp_packets",
            "RTP packets relayed, by direction.",
            dir(r.packets_a_to_b, r.packets_b_to_a),
        )?;
        counters(
            e,
            "rtp_bytes",
            "RTP bytes (whole packets) relayed, by direction.",
            dir(r.bytes_a_to_b, r.bytes_b_to_a),
        )?;
        counters(
            e,
            "rtp_dropped",
            "RTP packets not relayed, by reason.",
            [
                (l1("reason", "source"), r.dropped_source),
                (l1("reason", "malformed"), r.dropped_malformed),
                (l1("reason", "hold"), r.dropped_hold),
                (l1("reason", "unroutable"), r.dropped_unroutable),
                (l1("reason", "send_error"), r.send_errors),
            ],
        )?;
        counter(
            e,
            "rtp_latches",
            "Latches and re-latches to a media source.",
            r.latches,
        )?;
        counter(
            e,
            "rtp_transcoded",
            "Packets transcoded PCMU <-> PCMA.",
            r.transcoded,
        )?;
        counter(
            e,
            "rtp_dtmf_digits",
            "RFC 4733 key presses detected.",
            r.dtmf_digits,
        )?;
        counter(
            e,
            "media_timeouts",
            "Calls whose media stopped arriving.",
            r.timeouts,
        )?;
        let p = self.api.gateway.ports.stats();
        gauge(
            e,
            "rtp_port_pairs",
            "RTP/RTCP port pairs in the configured range.",
            gauge_value(p.total),
        )?;
        gauge(
            e,
            "rtp_port_pairs_in_use",
            "RTP/RTCP port pairs held by calls.",
            gauge_value(p.in_use),
        )?;
        counter(
            e,
            "rtp_port_exhausted",
            "Calls refused media ports because none was free.",
            p.exhausted,
        )?;
        counter(
            e,
            "rtp_port_bind_conflicts",
            "Port pairs skipped because another program held a port.",
            p.bind_conflicts,
        )
    }

    fn store_and_api(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let s = self.api.store.stats();
        counter(e, "store_writes", "Outcome records stored.", s.writes)?;
        counters(
            e,
            "store_lookups",
            "Outcome store lookups by result.",
            [
                (l1("result", "hit"), s.lookup_hits),
                (l1("result", "miss"), s.lookup_misses),
                (l1("result", "error"), s.lookup_errors),
            ],
        )?;
        counter(
            e,
            "store_expired",
            "Expired outcome records deleted.",
            s.expired_deleted,
        )?;
        counters(
            e,
            "store_redis",
            "Shared (Redis) store events.",
            [
                (l1("event", "write"), s.redis_writes),
                (l1("event", "error"), s.redis_errors),
                (l1("event", "hit"), s.redis_hits),
                (l1("event", "dropped"), s.redis_dropped),
            ],
        )?;
        counters(
            e,
            "handoff_queries",
            "Handoff API queries by result (found, not_found, invalid, unauthorized, error).",
            self.counters
                .handoff_snapshot()
                .into_iter()
                .map(|(r, n)| (l1("result", r), n)),
        )?;
        let requests = self
            .counters
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        counters(
            e,
            "http_requests",
            "HTTP API requests by route pattern and status.",
            requests
                .into_iter()
                .map(|((route, status), n)| (l2("route", route, "status", status), n)),
        )?;
        let c = &self.counters.connections;
        gauge(e, "http_connections", "HTTP connections open.", c.open())?;
        counter(
            e,
            "http_connections_refused",
            "HTTP connections refused (503, closed) over [http] max_connections.",
            c.refused(),
        )?;
        counters(
            e,
            "http_connections_timed_out",
            "HTTP connections closed at a deadline, by phase (header, body, idle).",
            c.timed_out().map(|(phase, n)| (l1("phase", phase), n)),
        )
    }
}

impl Collector for Exporter {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        self.calls(&mut e)?;
        self.sip(&mut e)?;
        self.policies(&mut e)?;
        self.media(&mut e)?;
        self.store_and_api(&mut e)
    }
}

/// The exposition content type of `prometheus_client`'s text encoder.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = String::with_capacity(16 * 1024);
    match prometheus_client::encoding::text::encode(&mut text, &state.metrics) {
        Ok(()) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response(),
    }
}
