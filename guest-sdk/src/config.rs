//! The policy's own configuration.
//!
//! The operator writes a key/value table for each policy in the gateway's
//! config (an extension table, a token table, skill names). A policy reads
//! it here; it has no other way to learn about its environment. In native
//! unit tests the table is set with [`crate::testing::with_config`].

/// The value for `key`, if the operator set one.
///
/// ```
/// use trunkline_guest_sdk::{config, testing};
/// testing::with_config(&[("default_agent", "sip:bot@agents.example")], || {
///     assert_eq!(config::get("default_agent").as_deref(), Some("sip:bot@agents.example"));
///     assert_eq!(config::get("missing"), None);
/// });
/// ```
pub fn get(key: &str) -> Option<String> {
    backend::get(key)
}

/// Every key/value pair, sorted by key.
///
/// ```
/// use trunkline_guest_sdk::{config, testing};
/// testing::with_config(&[("b", "2"), ("a", "1")], || {
///     assert_eq!(
///         config::entries(),
///         [("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())]
///     );
/// });
/// ```
pub fn entries() -> Vec<(String, String)> {
    backend::entries()
}

/// The value for `key`, or `default` when the operator set none.
///
/// ```
/// use trunkline_guest_sdk::config;
/// assert_eq!(config::get_or("token_header", "X-PolyAi-Auth-Token"), "X-PolyAi-Auth-Token");
/// ```
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_owned())
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use crate::__bindings::trunkline::policy::config as host;

    pub(super) fn get(key: &str) -> Option<String> {
        host::get(key)
    }

    pub(super) fn entries() -> Vec<(String, String)> {
        host::entries()
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod backend {
    use std::cell::RefCell;

    thread_local! {
        /// The table `testing::with_config` installed on this thread, kept
        /// sorted by key like the host's.
        static TABLE: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn get(key: &str) -> Option<String> {
        TABLE.with(|t| {
            t.borrow()
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        })
    }

    pub(super) fn entries() -> Vec<(String, String)> {
        TABLE.with(|t| t.borrow().clone())
    }

    /// Installs `table` and returns the one it replaces. Later duplicates of
    /// a key win, as in a TOML table written twice.
    pub(crate) fn replace(table: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut sorted: Vec<(String, String)> = Vec::with_capacity(table.len());
        for (k, v) in table {
            match sorted.iter_mut().find(|(key, _)| key == k) {
                Some(entry) => entry.1 = (*v).to_owned(),
                None => sorted.push(((*k).to_owned(), (*v).to_owned())),
            }
        }
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        restore(sorted)
    }

    /// Puts back a table returned by [`replace`].
    pub(crate) fn restore(table: Vec<(String, String)>) -> Vec<(String, String)> {
        TABLE.with(|t| std::mem::replace(&mut *t.borrow_mut(), table))
    }
}
