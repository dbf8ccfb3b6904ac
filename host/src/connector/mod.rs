//! Agents that are not SIP endpoints: a WebSocket audio stream (`ws://`,
//! `wss://`) and the builtin agent (`builtin:`).
//!
//! The gateway treats both alike. When a policy routes a call to such a
//! target it creates a media *tap* (the relay's in-process leg, see
//! `trunkline_relay::tap`) and spawns the connector with a [`Session`]:
//!
//! 1. the connector connects (WebSocket handshake; the builtin agent is
//!    ready at once) and reports [`Report::Ready`], or [`Report::Failed`]
//!    (the caller then gets the trunk's connect-failure answer);
//! 2. on `Ready` the gateway answers the caller and starts the relay: the
//!    caller's audio arrives on `media.from_relay` as 20 ms G.711 frames in
//!    the tap's law, and frames sent on `media.to_relay` are played to the
//!    caller (the connector paces them at real time);
//! 3. DTMF from the caller arrives as [`Input::Dtmf`];
//! 4. the connector reports attributes, an end or a transfer as they happen
//!    ([`Report`]); these feed `conclude` exactly like the control API;
//! 5. when the call ends for any other reason the connector gets
//!    [`Input::Stop`] and must finish promptly (the WebSocket agent gets its
//!    `stop` event). A connector whose peer goes away reports
//!    [`Report::Closed`]; the call then ends through `conclude`.
//!
//! Every report carries the call's key; the gateway ignores reports for
//! calls it no longer has.

pub mod builtin;
pub mod ws;

use tokio::sync::mpsc;
use trunkline_media::g711::Law;
use trunkline_relay::TapHandle;

use crate::b2bua::GatewayEvent;
use crate::policy::{Attribute, Header};

/// What kind of non-SIP agent a target names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorTarget {
    /// `ws://` or `wss://` URL (a `#...` fragment carries client options,
    /// see [`ws`]).
    WebSocket(String),
    /// `builtin:` or `builtin:NAME` (a named menu from the config).
    Builtin(String),
}

impl ConnectorTarget {
    /// Reads a policy's target; `None` for SIP (and anything else).
    pub fn parse(target: &str) -> Option<ConnectorTarget> {
        let scheme = target.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "ws" | "wss" => Some(ConnectorTarget::WebSocket(target.to_owned())),
            "builtin" => Some(ConnectorTarget::Builtin(
                target["builtin:".len()..].trim().to_owned(),
            )),
            _ => None,
        }
    }
}

/// What the connector knows about its call.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// Trunkline's call id (`tl-…`), the key of the control API.
    pub call_id: String,
    /// The caller leg's SIP Call-ID.
    pub sip_call_id: String,
    /// The id the outcome will be filed under for the Handoff API.
    pub shared_id: String,
    /// The trunk the call came in on.
    pub trunk: String,
    /// The policy's target (the URL, or `builtin:NAME`).
    pub target: String,
    /// Caller (From URI) and called (Request-URI user / DID).
    pub from: String,
    /// The Request-URI.
    pub to: String,
    /// The routing attributes from the policy's decision.
    pub attributes: Vec<Attribute>,
    /// The caller's `X-` headers (Five9 call variables), in wire order.
    pub x_headers: Vec<Header>,
}

impl CallContext {
    /// The decision attribute `key`, if set.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .rev()
            .find(|a| a.key == key)
            .map(|a| a.value.as_str())
    }
}

/// From the gateway to a running connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The caller pressed a key (RFC 4733 event ended).
    Dtmf {
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
        /// How long it was held, in ms.
        duration_ms: u32,
    },
    /// A transfer the agent asked for left the caller with it.
    TransferFailed {
        /// `busy`, `no-answer`, ..., or `refused` (it could not start).
        failure: String,
        /// The SIP status behind it.
        status: Option<u16>,
        /// For `refused`: why.
        reason: Option<String>,
    },
    /// The call is ending (`reason` is the end reason's text, such as
    /// `caller-hangup`): stop and release the tap.
    Stop {
        /// Why.
        reason: String,
    },
}

/// How the agent ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentEnd {
    /// The agent asked to end it (control message, menu finished): reason
    /// `agent-request`.
    Request,
    /// The agent hung up (its `stop`/close without a request): reason
    /// `agent-hangup`.
    Hangup,
}

/// From a connector to the gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// Connected: answer the caller and start the media.
    Ready,
    /// Could not connect (before `Ready`): the caller gets the trunk's
    /// failure answer; the text is logged.
    Failed(String),
    /// Set call attributes (replacing same-named ones).
    SetAttributes(Vec<Attribute>),
    /// End the call after setting `attributes`.
    End {
        /// Set first.
        attributes: Vec<Attribute>,
        /// Request or hang-up.
        how: AgentEnd,
    },
    /// Hand the caller back to Five9 toward `destination`: sets
    /// `contained=false` and `destination`, then ends (agent-request).
    Transfer {
        /// Where the caller should go next (a queue, skill, or `sip:` URI).
        destination: String,
        /// Further attributes.
        attributes: Vec<Attribute>,
    },
    /// Dial a transfer target and bridge the caller to it (cold or warm).
    DialTransfer(crate::b2bua::TransferRequest),
    /// Key presses toward the caller or the transfer target.
    SendDtmf {
        /// The keys.
        digits: String,
        /// Toward the transfer target.
        to_target: bool,
    },
    /// Warm: complete (`true`) or cancel the transfer.
    FinishTransfer {
        /// Complete, else cancel.
        complete: bool,
    },
    /// The agent went away mid-call (socket closed or errored); the text
    /// becomes the `agent.error` attribute and the call ends
    /// (`agent-hangup`).
    Closed(String),
}

/// A connector's way to report to the gateway.
#[derive(Debug, Clone)]
pub struct Reporter {
    key: u64,
    events: mpsc::Sender<GatewayEvent>,
}

impl Reporter {
    pub(crate) fn new(key: u64, events: mpsc::Sender<GatewayEvent>) -> Reporter {
        Reporter { key, events }
    }

    /// Sends `report`; `false` when the gateway has stopped.
    pub async fn send(&self, report: Report) -> bool {
        self.events
            .send(GatewayEvent::Connector(self.key, report))
            .await
            .is_ok()
    }

    /// A reporter whose reports go to `events` (tests).
    #[doc(hidden)]
    pub fn for_test(key: u64, events: mpsc::Sender<GatewayEvent>) -> Reporter {
        Reporter::new(key, events)
    }
}

/// Everything a connector runs with.
#[derive(Debug)]
pub struct Session {
    /// The call.
    pub call: CallContext,
    /// The tap: caller audio in, audio to play out (frames in `law`).
    pub media: TapHandle,
    /// The tap's law.
    pub law: Law,
    /// DTMF and stop orders.
    pub input: mpsc::Receiver<Input>,
    /// Reports to the gateway.
    pub report: Reporter,
}

/// Frames buffered each way on a connector's tap (2 s of 20 ms frames).
pub const TAP_CAPACITY: usize = 100;
