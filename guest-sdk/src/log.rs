//! Logging into the host's structured log.
//!
//! The host tags every line with the call and the policy version, so a
//! message only needs to say what happened. Long messages are truncated by
//! the host. In native unit tests the lines are captured instead and read
//! back with [`crate::testing::logs`].

/// The severity of a log line.
///
/// ```
/// assert_eq!(trunkline_guest_sdk::log::Level::Warn.as_str(), "warn");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Step-by-step detail, off in production.
    Trace,
    /// Detail useful when debugging a policy.
    Debug,
    /// A normal event worth keeping.
    Info,
    /// Something unexpected that the policy worked around.
    Warn,
    /// Something failed; the call got a degraded answer.
    Error,
}

impl Level {
    /// The lowercase name of the level.
    ///
    /// ```
    /// assert_eq!(trunkline_guest_sdk::log::Level::Info.as_str(), "info");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Writes one line at `level`.
///
/// ```
/// use trunkline_guest_sdk::log::{self, Level};
/// log::log(Level::Info, "routed");
/// assert_eq!(trunkline_guest_sdk::testing::logs().last().unwrap().message, "routed");
/// ```
pub fn log(level: Level, message: impl AsRef<str>) {
    backend::write(level, message.as_ref());
}

/// Writes a trace line.
///
/// ```
/// trunkline_guest_sdk::log::trace("entering route");
/// ```
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message);
}

/// Writes a debug line.
///
/// ```
/// trunkline_guest_sdk::log::debug(format!("dialed {}", "1001"));
/// ```
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message);
}

/// Writes an info line.
///
/// ```
/// trunkline_guest_sdk::log::info("tenant acme");
/// ```
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message);
}

/// Writes a warning line.
///
/// ```
/// trunkline_guest_sdk::log::warn("no destination configured");
/// ```
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message);
}

/// Writes an error line.
///
/// ```
/// trunkline_guest_sdk::log::error("tenant has no agent");
/// ```
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message);
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use super::Level;
    use crate::__bindings::trunkline::policy::log as host;

    pub(super) fn write(level: Level, message: &str) {
        let level = match level {
            Level::Trace => host::Level::Trace,
            Level::Debug => host::Level::Debug,
            Level::Info => host::Level::Info,
            Level::Warn => host::Level::Warn,
            Level::Error => host::Level::Error,
        };
        host::log(level, message);
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod backend {
    use super::Level;
    use crate::testing::LogLine;
    use std::cell::RefCell;

    thread_local! {
        /// Lines written by the current test thread; each test runs on its
        /// own thread, so tests never see each other's lines.
        static CAPTURED: RefCell<Vec<LogLine>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn write(level: Level, message: &str) {
        // Printed too: libtest shows it for a failing test only.
        eprintln!("[policy {}] {message}", level.as_str());
        CAPTURED.with(|lines| {
            lines.borrow_mut().push(LogLine {
                level,
                message: message.to_owned(),
            })
        });
    }

    pub(crate) fn captured() -> Vec<LogLine> {
        CAPTURED.with(|lines| lines.borrow().clone())
    }

    pub(crate) fn clear() {
        CAPTURED.with(|lines| lines.borrow_mut().clear());
    }
}
