//! The answer to `route`: connect the call to an agent, or reject it.

use crate::headers::{is_valid_name, sanitize_value};
use crate::{Attributes, Header, log};

/// What happens to a new call.
///
/// Build it with [`Decision::connect`] (then chain [`Decision::attribute`]
/// and [`Decision::header`]) or [`Decision::reject`].
///
/// ```
/// use trunkline_guest_sdk::Decision;
/// let decision = Decision::connect("sip:bot@agents.example")
///     .attribute("tenant", "acme")
///     .header("X-Tenant", "acme");
/// assert_eq!(decision.target(), Some("sip:bot@agents.example"));
///
/// let refused = Decision::reject(404, "Unknown extension");
/// assert_eq!(refused.status(), Some(404));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Bridge the caller to an agent.
    Connect(Connect),
    /// Refuse the call with a SIP final response.
    Reject(Reject),
}

/// Connect the call to an agent.
///
/// ```
/// use trunkline_guest_sdk::{Decision, Connect};
/// let Decision::Connect(connect) = Decision::connect("builtin:echo") else { unreachable!() };
/// assert!(connect.headers.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// Where the agent is: `sip:agent@host[:port]`, `ws://...`, `wss://...`
    /// or `builtin:name`.
    pub target: String,
    /// Attributes attached to the call from the start; agents and
    /// `conclude` see them.
    pub attributes: Attributes,
    /// Extra headers for the agent leg's INVITE. The host refuses the whole
    /// decision if a name is not an RFC 3261 token or a value holds CR/LF;
    /// [`Decision::header`] checks both before they get here.
    pub headers: Vec<Header>,
}

/// Refuse the call with a SIP final response.
///
/// ```
/// use trunkline_guest_sdk::{Decision, Reject};
/// assert_eq!(
///     Decision::reject(403, "Unknown tenant token"),
///     Decision::Reject(Reject { status: 403, reason: "Unknown tenant token".into() })
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// A SIP status from 300 to 699, except 302 (Five9 does not honour
    /// redirects).
    pub status: u16,
    /// The reason phrase; empty picks the standard phrase for `status`.
    pub reason: String,
}

impl Decision {
    /// Connects the call to `target` with no attributes or extra headers.
    ///
    /// ```
    /// let d = trunkline_guest_sdk::Decision::connect("wss://agents.example/stream");
    /// assert_eq!(d.target(), Some("wss://agents.example/stream"));
    /// ```
    pub fn connect(target: impl Into<String>) -> Self {
        Decision::Connect(Connect {
            target: target.into(),
            attributes: Attributes::new(),
            headers: Vec::new(),
        })
    }

    /// Rejects the call with `status` and a reason phrase.
    ///
    /// The host accepts 300-699 except 302; anything else is an invalid
    /// answer that gives the trunk's fallback, so a warning is logged here
    /// where the policy author will see it in tests.
    ///
    /// ```
    /// let d = trunkline_guest_sdk::Decision::reject(404, "Unknown extension");
    /// assert_eq!(d.status(), Some(404));
    /// ```
    pub fn reject(status: u16, reason: impl Into<String>) -> Self {
        if !is_valid_reject_status(status) {
            log::warn(format!(
                "reject status {status} is not 300-699 (or is 302): the host will use the trunk's fallback"
            ));
        }
        Decision::Reject(Reject {
            status,
            reason: sanitize_value(&reason.into()).into_owned(),
        })
    }

    /// Adds (or replaces) an attribute on a connect decision.
    ///
    /// A rejected call has no agent leg to carry attributes: on a
    /// [`Decision::Reject`] this logs a warning and changes nothing.
    ///
    /// ```
    /// let d = trunkline_guest_sdk::Decision::connect("builtin:echo")
    ///     .attribute("tenant", "acme")
    ///     .attribute("tenant", "globex");
    /// assert_eq!(d.as_connect().unwrap().attributes.get("tenant"), Some("globex"));
    /// ```
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        match &mut self {
            Decision::Connect(c) => {
                c.attributes.insert(key, value);
            }
            Decision::Reject(_) => {
                log::warn(format!(
                    "attribute {} ignored: the call is rejected",
                    key.into()
                ));
            }
        }
        self
    }

    /// Adds an extra header to the agent leg's INVITE.
    ///
    /// CR/LF in the value become spaces. A name that is not an RFC 3261
    /// token would make the host refuse the whole decision, so such a
    /// header is left out with a warning instead. On a
    /// [`Decision::Reject`] this logs a warning and changes nothing.
    ///
    /// ```
    /// let d = trunkline_guest_sdk::Decision::connect("sip:bot@agents.example")
    ///     .header("X-Tenant", "acme")
    ///     .header("Bad Name", "dropped");
    /// let headers = &d.as_connect().unwrap().headers;
    /// assert_eq!(headers.len(), 1);
    /// assert_eq!(headers[0].name, "X-Tenant");
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        match &mut self {
            Decision::Connect(c) if is_valid_name(&name) => {
                let value = value.into();
                let clean = sanitize_value(&value);
                if clean != value {
                    log::warn(format!("header {name}: control characters replaced"));
                }
                c.headers.push(Header::new(name, clean.into_owned()));
            }
            Decision::Connect(_) => {
                log::warn(format!("header {name:?} left out: not an RFC 3261 token"));
            }
            Decision::Reject(_) => {
                log::warn(format!("header {name} ignored: the call is rejected"));
            }
        }
        self
    }

    /// The connect part, if the call is connected.
    ///
    /// ```
    /// let d = trunkline_guest_sdk::Decision::connect("builtin:echo");
    /// assert!(d.as_connect().is_some());
    /// ```
    pub fn as_connect(&self) -> Option<&Connect> {
        match self {
            Decision::Connect(c) => Some(c),
            Decision::Reject(_) => None,
        }
    }

    /// The reject part, if the call is rejected.
    ///
    /// ```
    /// let d = trunkline_guest_sdk::Decision::reject(403, "Forbidden");
    /// assert_eq!(d.as_reject().unwrap().reason, "Forbidden");
    /// ```
    pub fn as_reject(&self) -> Option<&Reject> {
        match self {
            Decision::Connect(_) => None,
            Decision::Reject(r) => Some(r),
        }
    }

    /// The agent target of a connect decision.
    ///
    /// ```
    /// assert_eq!(trunkline_guest_sdk::Decision::reject(404, "").target(), None);
    /// ```
    pub fn target(&self) -> Option<&str> {
        self.as_connect().map(|c| c.target.as_str())
    }

    /// The SIP status of a reject decision.
    ///
    /// ```
    /// assert_eq!(trunkline_guest_sdk::Decision::connect("builtin:echo").status(), None);
    /// ```
    pub fn status(&self) -> Option<u16> {
        self.as_reject().map(|r| r.status)
    }

    /// The value of a connect attribute.
    ///
    /// ```
    /// let d = trunkline_guest_sdk::Decision::connect("builtin:echo").attribute("k", "v");
    /// assert_eq!(d.attribute_value("k"), Some("v"));
    /// ```
    pub fn attribute_value(&self, key: &str) -> Option<&str> {
        self.as_connect().and_then(|c| c.attributes.get(key))
    }

    /// The first value of an extra agent-leg header, ignoring case.
    ///
    /// ```
    /// let d = trunkline_guest_sdk::Decision::connect("builtin:echo").header("X-Tenant", "acme");
    /// assert_eq!(d.header_value("x-tenant"), Some("acme"));
    /// ```
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.as_connect()
            .and_then(|c| crate::headers::find(&c.headers, name))
    }
}

/// The statuses the host accepts in a reject.
fn is_valid_reject_status(status: u16) -> bool {
    (300..=699).contains(&status) && status != 302
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn reject_status_range() {
        let cases = [
            (200, false),
            (299, false),
            (300, true),
            (302, false),
            (403, true),
            (404, true),
            (699, true),
            (700, false),
        ];
        for (status, ok) in cases {
            assert_eq!(is_valid_reject_status(status), ok, "{status}");
        }
    }

    #[test]
    fn invalid_reject_status_is_kept_but_logged() {
        testing::clear_logs();
        let d = Decision::reject(200, "OK?");
        assert_eq!(d.status(), Some(200));
        assert!(testing::logs().iter().any(|l| l.message.contains("200")));
    }

    #[test]
    fn header_values_lose_crlf() {
        let d = Decision::connect("builtin:echo").header("X-Note", "a\r\nVia: evil");
        assert_eq!(d.header_value("X-Note"), Some("a Via: evil"));
    }

    #[test]
    fn reject_ignores_connect_builders_with_a_warning() {
        testing::clear_logs();
        let d = Decision::reject(404, "Unknown extension")
            .attribute("k", "v")
            .header("X-A", "b");
        assert_eq!(d, Decision::reject(404, "Unknown extension"));
        assert_eq!(testing::logs().len(), 2);
    }

    #[test]
    fn invalid_header_name_is_left_out_with_a_warning() {
        testing::clear_logs();
        let d = Decision::connect("builtin:echo").header("X Bad", "v");
        assert!(d.as_connect().unwrap().headers.is_empty());
        assert!(testing::logs()[0].message.contains("X Bad"));
    }
}
