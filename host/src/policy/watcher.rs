//! Hot reload: file-system events on the policy folder are hints to rescan.
//!
//! Nothing is loaded because of what an event says (a Modify may be the
//! first of many writes); every hint, and a periodic safety net, triggers a
//! [`PolicyRegistry::rescan`] that diffs the folder by content hash.
//!
//! Operators should drop files atomically: write `NAME.wasm.tmp` (or a
//! dotfile) in the same folder, then `mv` it to `NAME.wasm`. A slow
//! in-place copy also works: a file that does not load while it is still
//! being written is retried once it has been left alone for `settle_ms`.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::RecursiveMode;
use notify_debouncer_full::new_debouncer;

use super::registry::PolicyRegistry;

/// Events closer together than this are coalesced into one rescan.
const DEBOUNCE: Duration = Duration::from_millis(30);
/// A rescan happens at least this often even without events (events can be
/// lost: inotify queue overflow, network file systems).
const SAFETY_RESCAN: Duration = Duration::from_secs(10);

/// A running watcher; dropping it stops watching.
#[must_use = "dropping the watcher stops hot reload"]
pub struct PolicyWatcher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for PolicyWatcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Rescans once, then keeps `registry` in line with its folder until the
/// returned watcher is dropped.
pub fn watch(registry: Arc<PolicyRegistry>) -> Result<PolicyWatcher, notify::Error> {
    let (hint_tx, hint_rx) = mpsc::channel::<()>();
    let events_tx = hint_tx.clone();
    let mut debouncer = new_debouncer(
        DEBOUNCE,
        Some(DEBOUNCE / 3),
        move |result: notify_debouncer_full::DebounceEventResult| {
            let hint = match result {
                // Opening or reading a file changes nothing, and the rescan
                // itself opens every file: hinting on those would rescan
                // forever.
                Ok(events) => events.iter().any(|e| is_change(&e.event.kind)),
                Err(errors) => {
                    tracing::warn!(?errors, "policy folder watch errors; rescanning");
                    true
                }
            };
            if hint {
                let _ = events_tx.send(());
            }
        },
    )?;
    debouncer.watch(registry.dir(), RecursiveMode::NonRecursive)?;
    registry.rescan();

    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("policy-watch".into())
        .spawn(move || {
            // Keep the debouncer alive as long as this thread runs.
            let _debouncer = debouncer;
            let mut next = Instant::now() + SAFETY_RESCAN;
            loop {
                if matches!(stop_rx.try_recv(), Err(mpsc::TryRecvError::Disconnected)) {
                    return;
                }
                let wait = next
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(200));
                match hint_rx.recv_timeout(wait) {
                    Ok(()) => while hint_rx.try_recv().is_ok() {},
                    Err(RecvTimeoutError::Timeout) if Instant::now() < next => continue,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                let report = registry.rescan();
                next = Instant::now() + report.retry_after.unwrap_or(SAFETY_RESCAN);
            }
        })
        .map_err(|e| notify::Error::generic(&format!("cannot start the watcher thread: {e}")))?;
    drop(hint_tx);
    Ok(PolicyWatcher {
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// Whether an event may mean the folder's contents changed (anything but
/// an open, read or close-after-read).
fn is_change(kind: &notify::EventKind) -> bool {
    !matches!(kind, notify::EventKind::Access(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};

    #[test]
    fn reads_are_not_changes() {
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Read),
        ] {
            assert!(!is_change(&kind), "{kind:?}");
        }
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ] {
            assert!(is_change(&kind), "{kind:?}");
        }
    }
}
