//! `trunkline run --config FILE`: start the gateway and serve until SIGINT
//! or SIGTERM.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use trunkline::config::Config;
use trunkline::policy::{PolicyEngine, PolicyRegistry, missing, watcher};

pub(crate) fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    super::init_logging("info");
    let config = Config::load(config_path)?;
    let dir = &config.policy.dir;
    if !dir.is_dir() {
        anyhow::bail!(
            "policy folder {} does not exist (set [policy] dir in {})",
            dir.display(),
            config_path.display()
        );
    }
    let engine = PolicyEngine::new(&config.policy)?;
    let registry = std::sync::Arc::new(PolicyRegistry::new(
        engine,
        dir.clone(),
        std::time::Duration::from_millis(config.policy.settle_ms),
        config.all_policy_values(),
    ));
    let _watcher = watcher::watch(registry.clone())
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    let absent = missing(&registry, config.trunks.iter().map(|t| t.policy.as_str()));
    if !absent.is_empty() {
        tracing::warn!(?absent, dir = %dir.display(),
            "policies named by trunks are not loaded yet; their calls get the trunk fallback");
    }
    tracing::info!(policies = registry.statuses().len(), dir = %dir.display(), "policies loaded");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let config = std::sync::Arc::new(config);
    rt.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let store: std::sync::Arc<dyn trunkline::store::OutcomeStore> =
            std::sync::Arc::new(trunkline::store::MemoryStore::default());
        let (gateway, task) = trunkline::b2bua::start(config.clone(), registry, store, stop_rx)
            .await
            .context("cannot start SIP")?;
        tracing::info!(udp = ?gateway.sip_udp, tcp = ?gateway.sip_tcp, "SIP listening");
        shutdown_signal().await;
        tracing::info!("shutting down: ending calls");
        let _ = stop_tx.send(true);
        let _ = task.await;
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
