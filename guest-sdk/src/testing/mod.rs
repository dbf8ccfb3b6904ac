//! Native test harness: run a policy's logic in `cargo test`, no Wasm.
//!
//! [`five9_call`] builds the call Trunkline would hand `route` for a
//! typical Five9 3rd Party Transfer INVITE; [`call_end`] builds the input
//! of `conclude`; [`with_config`] installs the policy's config table for
//! the duration of a closure; [`logs`] returns the lines the policy logged.
//! Config and logs are per thread, and libtest runs each test on its own
//! thread, so tests do not see each other's state.
//!
//! ```
//! use trunkline_guest_sdk::{config, log, testing};
//! let call = testing::five9_call().dialed("+14155550100").build();
//! testing::with_config(&[("did.+14155550100", "sip:bot@agents.example")], || {
//!     let key = format!("did.{}", call.dialed.as_deref().unwrap());
//!     log::info(format!("looking up {key}"));
//!     assert!(config::get(&key).is_some());
//! });
//! assert!(testing::logs()[0].message.contains("did.+14155550100"));
//! ```

mod call;
mod end;

pub use call::{CallBuilder, five9_call};
pub use end::{CallEndBuilder, call_end};

use crate::{config, log};

/// One captured log line.
///
/// ```
/// use trunkline_guest_sdk::{log, testing};
/// log::warn("careful");
/// let line = &testing::logs()[0];
/// assert_eq!((line.level, line.message.as_str()), (log::Level::Warn, "careful"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// The severity.
    pub level: log::Level,
    /// The message as the policy wrote it.
    pub message: String,
}

/// The lines logged on this thread so far, oldest first.
///
/// ```
/// trunkline_guest_sdk::log::error("boom");
/// assert_eq!(trunkline_guest_sdk::testing::logs().len(), 1);
/// ```
pub fn logs() -> Vec<LogLine> {
    log::backend::captured()
}

/// Forgets the lines logged on this thread so far.
///
/// ```
/// use trunkline_guest_sdk::{log, testing};
/// log::info("old");
/// testing::clear_logs();
/// assert!(testing::logs().is_empty());
/// ```
pub fn clear_logs() {
    log::backend::clear();
}

/// Runs `f` with `entries` as the policy's config, then restores the
/// previous table (also when `f` panics, so a failed assertion does not
/// leak config into the next test on the thread).
///
/// ```
/// use trunkline_guest_sdk::{config, testing};
/// let tenant = testing::with_config(&[("token.abc", "acme")], || config::get("token.abc"));
/// assert_eq!(tenant.as_deref(), Some("acme"));
/// assert_eq!(config::get("token.abc"), None);
/// ```
pub fn with_config<R>(entries: &[(&str, &str)], f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Vec<(String, String)>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.0.take() {
                config::backend::restore(previous);
            }
        }
    }
    let _restore = Restore(Some(config::backend::replace(entries)));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_config_restores_after_a_panic() {
        let result = std::panic::catch_unwind(|| {
            with_config(&[("k", "v")], || panic!("policy bug"));
        });
        assert!(result.is_err());
        assert_eq!(config::get("k"), None);
    }

    #[test]
    fn nested_config_and_later_duplicates() {
        with_config(&[("a", "1"), ("a", "2")], || {
            assert_eq!(config::get("a").as_deref(), Some("2"));
            with_config(&[("b", "3")], || assert_eq!(config::get("a"), None));
            assert_eq!(config::entries().len(), 1);
        });
    }
}
