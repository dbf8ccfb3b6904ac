//! A SIP message with where it goes: what the transaction layer holds and
//! retransmits.

use std::sync::Arc;

use trunkline_sip::message::SipMessage;

use crate::transport::Target;

/// A message and its destination. Cheap to clone (retransmissions).
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    pub(crate) target: Target,
    pub(crate) msg: Arc<SipMessage>,
}

impl Wire {
    pub(crate) fn new(target: Target, msg: SipMessage) -> Wire {
        Wire {
            target,
            msg: Arc::new(msg),
        }
    }

    /// A message already shared (with a leg that keeps it).
    pub(crate) fn shared(target: Target, msg: Arc<SipMessage>) -> Wire {
        Wire { target, msg }
    }
}
