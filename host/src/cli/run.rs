//! `trunkline run --config FILE`: start the gateway and the HTTP API, serve
//! until SIGINT or SIGTERM, then drain.
//!
//! Shutdown: `/readyz` turns 503 and new INVITEs get `503`; calls in
//! progress may go on for `[gateway] drain_secs`; the rest are ended
//! through `conclude` (their outcomes stored); the store is flushed last.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use trunkline::config::Config;
use trunkline::policy::{PolicyEngine, PolicyRegistry, missing, watcher};

pub(crate) fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    // Secrets from the config never reach a log line, whoever writes it.
    let secrets = trunkline::redact::Secrets::global();
    for k in &config.http.keys {
        secrets.add(&k.key);
    }
    for t in &config.trunks {
        for password in t.auth.iter().flat_map(|a| a.users.values()) {
            secrets.add(password);
        }
    }
    super::init_logging_as(&config.log.filter, config.log.format);
    let dir = &config.policy.dir;
    if !dir.is_dir() {
        anyhow::bail!(
            "policy folder {} does not exist (set [policy] dir in {})",
            dir.display(),
            config_path.display()
        );
    }
    let engine = PolicyEngine::new(&config.policy)?;
    let registry = Arc::new(PolicyRegistry::new(
        engine,
        dir.clone(),
        Duration::from_millis(config.policy.settle_ms),
        config.all_policy_values(),
    ));
    let _watcher = watcher::watch(registry.clone())
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    let wanted: Vec<String> = config.trunks.iter().map(|t| t.policy.clone()).collect();
    let absent = missing(&registry, wanted.iter().map(String::as_str));
    if !absent.is_empty() {
        tracing::warn!(?absent, dir = %dir.display(),
            "policies named by trunks are not loaded yet; their calls get the trunk fallback");
    }
    tracing::info!(policies = registry.statuses().len(), dir = %dir.display(), "policies loaded");
    let store = trunkline::store::open(&config.store)
        .with_context(|| format!("cannot open the outcome store ({:?})", config.store.backend))?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let config = Arc::new(config);
    rt.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (gateway, task) =
            trunkline::b2bua::start(config.clone(), registry.clone(), store.clone(), stop_rx.clone())
                .await
                .context("cannot start SIP")?;
        tracing::info!(udp = ?gateway.sip_udp, tcp = ?gateway.sip_tcp, "SIP listening");

        let ready = Arc::new(AtomicBool::new(false));
        let http = if config.http.enabled {
            let listener = tokio::net::TcpListener::bind(config.http.listen)
                .await
                .with_context(|| format!("cannot listen for HTTP on {}", config.http.listen))?;
            tracing::info!(addr = %config.http.listen, keys = config.http.keys.len(), "HTTP listening");
            let state = trunkline::http::ApiState {
                config: config.clone(),
                gateway: gateway.clone(),
                store: store.clone(),
                registry: registry.clone(),
                ready: ready.clone(),
            };
            Some(tokio::spawn(trunkline::http::serve(listener, state, stop_rx.clone())))
        } else {
            None
        };
        // Ready once every policy a trunk names is serving.
        {
            let (registry, ready) = (registry.clone(), ready.clone());
            tokio::spawn(async move {
                loop {
                    if missing(&registry, wanted.iter().map(String::as_str)).is_empty() {
                        ready.store(true, Ordering::SeqCst);
                        tracing::info!("ready");
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }

        shutdown_signal().await;
        ready.store(false, Ordering::SeqCst);
        gateway.drain().await;
        let limit = Duration::from_secs(config.gateway.drain_secs);
        let started = Instant::now();
        let active = gateway.active_calls().await.unwrap_or(0);
        tracing::info!(active, drain_secs = limit.as_secs(), "shutting down: draining calls");
        loop {
            let active = gateway.active_calls().await.unwrap_or(0);
            if active == 0 {
                break;
            }
            if started.elapsed() >= limit {
                tracing::info!(active, "drain time over: ending the remaining calls");
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = shutdown_signal() => {
                    tracing::info!(active, "second signal: ending the remaining calls");
                    break;
                }
            }
        }
        let _ = stop_tx.send(true);
        let _ = task.await;
        if let Err(e) = store.flush() {
            tracing::error!(error = %e, "outcome store flush failed");
        }
        if let Some(http) = http {
            let _ = http.await;
        }
        tracing::info!("stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
