//! [`call_end`] and [`CallEndBuilder`]: the input of `conclude` in tests.

use crate::{Attributes, Call, CallEnd, Decision, EndReason, Header};

/// Starts the input of `conclude` for `call`: an agent hang-up after 42 s
/// with the caller still on the line, not yet connected to any target.
///
/// ```
/// use trunkline_guest_sdk::{testing, EndReason};
/// let end = testing::call_end(testing::five9_call().build()).build();
/// assert_eq!(end.reason, EndReason::AgentHangup);
/// assert!(end.caller_connected);
/// ```
pub fn call_end(call: Call) -> CallEndBuilder {
    CallEndBuilder {
        end: CallEnd {
            call,
            target: String::new(),
            attributes: Attributes::new(),
            agent_bye_headers: Vec::new(),
            dtmf: String::new(),
            reason: EndReason::AgentHangup,
            duration_ms: 42_000,
            caller_connected: true,
        },
    }
}

/// Builds a [`CallEnd`]; start from [`call_end`].
///
/// ```
/// use trunkline_guest_sdk::{testing, Decision};
/// let call = testing::five9_call().build();
/// let decision = Decision::connect("sip:bot@agents.example").attribute("tenant", "acme");
/// let end = testing::call_end(call)
///     .routed(&decision)
///     .attribute("contained", "true")
///     .build();
/// assert_eq!(end.target, "sip:bot@agents.example");
/// assert_eq!(end.attribute("tenant"), Some("acme"));
/// ```
#[derive(Clone, Debug)]
pub struct CallEndBuilder {
    end: CallEnd,
}

impl CallEndBuilder {
    /// Applies what `route` decided, as the host does: a connect sets the
    /// target and the starting attributes; a reject leaves the call
    /// unconnected.
    ///
    /// ```
    /// use trunkline_guest_sdk::{testing, Decision};
    /// let end = testing::call_end(testing::five9_call().build())
    ///     .routed(&Decision::reject(404, "Unknown extension"))
    ///     .build();
    /// assert!(!end.was_connected());
    /// ```
    pub fn routed(mut self, decision: &Decision) -> Self {
        if let Some(connect) = decision.as_connect() {
            self.end.target = connect.target.clone();
            let later = std::mem::take(&mut self.end.attributes);
            self.end.attributes = connect.attributes.clone();
            self.end.attributes.extend(later);
        }
        self
    }

    /// Sets the target the call was connected to.
    ///
    /// ```
    /// let end = trunkline_guest_sdk::testing::call_end(trunkline_guest_sdk::testing::five9_call().build())
    ///     .target("builtin:echo")
    ///     .build();
    /// assert!(end.was_connected());
    /// ```
    pub fn target(mut self, target: &str) -> Self {
        self.end.target = target.to_owned();
        self
    }

    /// Sets an attribute as the agent would during the call (later values
    /// win).
    ///
    /// ```
    /// use trunkline_guest_sdk::testing;
    /// let end = testing::call_end(testing::five9_call().build())
    ///     .attribute("lead.qualified", "false")
    ///     .attribute("lead.qualified", "true")
    ///     .build();
    /// assert_eq!(end.attribute("lead.qualified"), Some("true"));
    /// ```
    pub fn attribute(mut self, key: &str, value: &str) -> Self {
        self.end.attributes.insert(key, value);
        self
    }

    /// Adds a header to the agent's BYE (a SIP agent hung up).
    ///
    /// ```
    /// use trunkline_guest_sdk::testing;
    /// let end = testing::call_end(testing::five9_call().build())
    ///     .agent_bye_header("X-RouteReason", "billing")
    ///     .build();
    /// assert_eq!(end.agent_bye_headers.len(), 1);
    /// ```
    pub fn agent_bye_header(mut self, name: &str, value: &str) -> Self {
        self.end.agent_bye_headers.push(Header::new(name, value));
        self
    }

    /// Sets the DTMF digits collected during the call.
    ///
    /// ```
    /// use trunkline_guest_sdk::testing;
    /// let end = testing::call_end(testing::five9_call().build()).dtmf("1#").build();
    /// assert_eq!(end.dtmf, "1#");
    /// ```
    pub fn dtmf(mut self, digits: &str) -> Self {
        self.end.dtmf = digits.to_owned();
        self
    }

    /// Sets why the call ended.
    ///
    /// ```
    /// use trunkline_guest_sdk::{testing, EndReason};
    /// let end = testing::call_end(testing::five9_call().build()).reason(EndReason::Error).build();
    /// assert_eq!(end.reason, EndReason::Error);
    /// ```
    pub fn reason(mut self, reason: EndReason) -> Self {
        self.end.reason = reason;
        self
    }

    /// Sets how long the AI leg lasted.
    ///
    /// ```
    /// use trunkline_guest_sdk::testing;
    /// let end = testing::call_end(testing::five9_call().build()).duration_ms(0).build();
    /// assert_eq!(end.duration_ms, 0);
    /// ```
    pub fn duration_ms(mut self, ms: u64) -> Self {
        self.end.duration_ms = ms;
        self
    }

    /// The caller hung up first: reason `caller-hangup`, caller no longer
    /// connected, so only the Handoff API will see the outcome.
    ///
    /// ```
    /// use trunkline_guest_sdk::{testing, EndReason};
    /// let end = testing::call_end(testing::five9_call().build()).caller_hung_up().build();
    /// assert_eq!((end.reason, end.caller_connected), (EndReason::CallerHangup, false));
    /// ```
    pub fn caller_hung_up(mut self) -> Self {
        self.end.reason = EndReason::CallerHangup;
        self.end.caller_connected = false;
        self
    }

    /// Sets whether the caller is still on the line.
    ///
    /// ```
    /// use trunkline_guest_sdk::testing;
    /// let end = testing::call_end(testing::five9_call().build()).caller_connected(false).build();
    /// assert!(!end.caller_connected);
    /// ```
    pub fn caller_connected(mut self, connected: bool) -> Self {
        self.end.caller_connected = connected;
        self
    }

    /// The finished call end.
    ///
    /// ```
    /// use trunkline_guest_sdk::testing;
    /// let end = testing::call_end(testing::five9_call().build()).build();
    /// assert_eq!(end.duration_ms, 42_000);
    /// ```
    pub fn build(self) -> CallEnd {
        self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::five9_call;

    #[test]
    fn routed_attributes_come_before_agent_ones() {
        let decision = Decision::connect("builtin:echo")
            .attribute("contained", "false")
            .attribute("tenant", "acme");
        let end = call_end(five9_call().build())
            .attribute("contained", "true")
            .routed(&decision)
            .build();
        assert_eq!(end.attribute("contained"), Some("true"));
        assert_eq!(
            end.attributes.keys().collect::<Vec<_>>(),
            ["contained", "tenant"]
        );
    }
}
