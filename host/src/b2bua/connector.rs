//! Calls whose agent is a WebSocket stream or the builtin agent.

use super::gateway::Gateway;
use crate::connector::Report;

impl Gateway {
    pub(crate) fn on_connector(&mut self, key: u64, report: Report) {
        let _ = (key, report);
    }
}
