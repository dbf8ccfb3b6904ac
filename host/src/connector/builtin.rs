//! The builtin agent (`builtin:` targets).

use serde::Deserialize;

/// `[builtin]`: the builtin agent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuiltinSettings {}

impl BuiltinSettings {
    /// Makes relative paths (prompt files) relative to the config's folder.
    pub fn resolve_paths(&mut self, _base: &std::path::Path) {}
}

/// Runs the builtin agent for one call; `name` is the part after
/// `builtin:` (a menu name, empty for the default).
pub async fn run(name: String, session: super::Session, _settings: BuiltinSettings) {
    let _ = name;
    let _ = session
        .report
        .send(super::Report::Failed("builtin agent: not built yet".into()))
        .await;
}
