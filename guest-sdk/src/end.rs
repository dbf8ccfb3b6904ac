//! Everything known about a call when its AI leg ends.

use crate::headers;
use crate::{Attributes, Call, Header};

/// Why the AI leg ended.
///
/// ```
/// use trunkline_guest_sdk::EndReason;
/// assert_eq!(EndReason::CallerHangup.as_str(), "caller-hangup");
/// assert!(EndReason::AgentHangup.ended_by_agent());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// The agent hung up (SIP agent BYE, WebSocket agent closed normally).
    AgentHangup,
    /// The agent asked to end the call through the control API or a
    /// control message.
    AgentRequest,
    /// The caller (Five9) hung up or cancelled.
    CallerHangup,
    /// The trunk's maximum call duration passed.
    MaxDuration,
    /// No media arrived for the configured time.
    MediaTimeout,
    /// Something failed: the agent could not be reached, a protocol error,
    /// shutdown.
    Error,
}

impl EndReason {
    /// The WIT name of the reason (`agent-hangup`, `error`...), suitable for
    /// a header value or handoff data.
    ///
    /// ```
    /// assert_eq!(trunkline_guest_sdk::EndReason::MediaTimeout.as_str(), "media-timeout");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::AgentHangup => "agent-hangup",
            EndReason::AgentRequest => "agent-request",
            EndReason::CallerHangup => "caller-hangup",
            EndReason::MaxDuration => "max-duration",
            EndReason::MediaTimeout => "media-timeout",
            EndReason::Error => "error",
        }
    }

    /// True when the agent ended the call itself (hung up or asked to end),
    /// the normal way for an AI agent to finish its job.
    ///
    /// ```
    /// assert!(!trunkline_guest_sdk::EndReason::Error.ended_by_agent());
    /// ```
    pub fn ended_by_agent(self) -> bool {
        matches!(self, EndReason::AgentHangup | EndReason::AgentRequest)
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything known about a call when it ends; the input of `conclude`.
///
/// ```
/// use trunkline_guest_sdk::testing;
/// let end = testing::call_end(testing::five9_call().build())
///     .target("sip:bot@agents.example")
///     .attribute("contained", "true")
///     .agent_bye_header("X-RouteReason", "resolved")
///     .build();
/// assert_eq!(end.attribute("contained"), Some("true"));
/// assert_eq!(end.agent_bye_header("x-routereason"), Some("resolved"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallEnd {
    /// The call as it was routed.
    pub call: Call,
    /// The target the call was connected to; empty when it never was.
    pub target: String,
    /// The attributes at the end of the call: those from `connect`, then
    /// those set by the agent, DTMF or the control API, later values
    /// replacing earlier ones with the same key.
    pub attributes: Attributes,
    /// The headers of the agent's BYE when a SIP agent hung up, in wire
    /// order; empty otherwise.
    pub agent_bye_headers: Vec<Header>,
    /// The DTMF digits collected during the call, in order (`0-9*#A-D`).
    pub dtmf: String,
    /// Why the call ended.
    pub reason: EndReason,
    /// How long the AI leg lasted in milliseconds, from answer to end; 0
    /// when it was never answered.
    pub duration_ms: u64,
    /// True when the caller is still on the line, so BYE or REFER headers
    /// still reach them; false when the caller hung up first and the
    /// outcome only reaches the Handoff API.
    pub caller_connected: bool,
}

impl CallEnd {
    /// The value of the attribute `key` at the end of the call.
    ///
    /// ```
    /// use trunkline_guest_sdk::testing;
    /// let end = testing::call_end(testing::five9_call().build())
    ///     .attribute("five9.route_reason", "billing")
    ///     .build();
    /// assert_eq!(end.attribute("five9.route_reason"), Some("billing"));
    /// ```
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key)
    }

    /// The first value of the header `name` on the agent's BYE, ignoring
    /// case.
    ///
    /// ```
    /// use trunkline_guest_sdk::testing;
    /// let end = testing::call_end(testing::five9_call().build())
    ///     .agent_bye_header("X-RouteType", "transfer")
    ///     .build();
    /// assert_eq!(end.agent_bye_header("X-ROUTETYPE"), Some("transfer"));
    /// ```
    pub fn agent_bye_header(&self, name: &str) -> Option<&str> {
        headers::find(&self.agent_bye_headers, name)
    }

    /// A value the agent reported either way: the header `header` on its
    /// BYE if present, else the attribute `attribute`.
    ///
    /// The BYE header wins because it is the agent's last word, written as
    /// it hung up; an attribute may have been set earlier in the call (a
    /// provisional route the conversation later changed). Agents that map
    /// attributes to BYE headers themselves (LiveKit's
    /// `attributes_to_headers`) send the same value both ways anyway.
    ///
    /// ```
    /// use trunkline_guest_sdk::testing;
    /// let end = testing::call_end(testing::five9_call().build())
    ///     .attribute("five9.route_type", "end")
    ///     .agent_bye_header("X-RouteType", "transfer")
    ///     .build();
    /// assert_eq!(end.reported("X-RouteType", "five9.route_type"), Some("transfer"));
    /// assert_eq!(end.reported("X-Missing", "five9.route_type"), Some("end"));
    /// ```
    pub fn reported(&self, header: &str, attribute: &str) -> Option<&str> {
        self.agent_bye_header(header)
            .or_else(|| self.attribute(attribute))
    }

    /// True when the call reached an agent.
    ///
    /// ```
    /// use trunkline_guest_sdk::testing;
    /// let end = testing::call_end(testing::five9_call().build()).build();
    /// assert!(!end.was_connected());
    /// ```
    pub fn was_connected(&self) -> bool {
        !self.target.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_match_the_wit() {
        let cases = [
            (EndReason::AgentHangup, "agent-hangup", true),
            (EndReason::AgentRequest, "agent-request", true),
            (EndReason::CallerHangup, "caller-hangup", false),
            (EndReason::MaxDuration, "max-duration", false),
            (EndReason::MediaTimeout, "media-timeout", false),
            (EndReason::Error, "error", false),
        ];
        for (reason, name, by_agent) in cases {
            assert_eq!(reason.as_str(), name);
            assert_eq!(reason.to_string(), name);
            assert_eq!(reason.ended_by_agent(), by_agent, "{name}");
        }
    }
}
