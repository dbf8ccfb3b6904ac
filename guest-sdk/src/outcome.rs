//! The answer to `conclude`, and the BYE-header limit.
//!
//! Five9 takes at most 10 custom headers on the BYE that ends the AI leg
//! and turns them into call variables; extra headers are lost on its side.
//! [`Outcome::header`] enforces that limit as headers are added: a header
//! that does not fit, or whose name is not a valid SIP token, goes to the
//! handoff data under [`OVERFLOW_KEY`] as `{"name", "value", "reason"}`,
//! where Five9's scripting can still fetch it from the Handoff API. Nothing
//! is dropped, and each move is logged as a warning.

use crate::headers::{find, is_valid_name, sanitize_value};
use crate::{Header, log};
use serde_json::{Value, json};

/// Five9's limit on custom headers in a BYE.
pub const DEFAULT_MAX_HEADERS: usize = 10;

/// The handoff key holding the headers that did not fit in the BYE.
pub const OVERFLOW_KEY: &str = "overflow_headers";

/// The overflow `reason` of a header past the limit.
pub const REASON_LIMIT: &str = "header-limit";

/// The overflow `reason` of a header whose name is not an RFC 3261 token.
pub const REASON_INVALID_NAME: &str = "invalid-name";

/// How the outcome is delivered to the caller's side.
///
/// ```
/// use trunkline_guest_sdk::{Outcome, Transfer};
/// assert_eq!(Outcome::bye().transfer, Transfer::Bye);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// End the call with a BYE carrying the headers; Five9's "Return After
    /// 3rd Party Call" resumes its IVR script.
    Bye,
    /// Send a REFER to this fully qualified `sip:`/`sips:` URI (e.g.
    /// `sip:queue@five9.example.com`) carrying the headers, then BYE.
    Refer(String),
}

/// What the caller's side is told when the AI leg ends.
///
/// ```
/// use trunkline_guest_sdk::{json, Outcome};
/// let outcome = Outcome::bye()
///     .contained(false)
///     .destination("billing")
///     .header("X-contained", "false")
///     .header("X-destination", "billing")
///     .handoff("intent", json!({"name": "billing", "confidence": 0.93}));
/// assert_eq!(outcome.header_value("x-destination"), Some("billing"));
/// assert_eq!(outcome.handoff_value("intent").unwrap()["name"], "billing");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Did the AI contain the call (no human needed)?
    pub contained: bool,
    /// Where the call should go next (a skill, queue or label); empty when
    /// nowhere.
    pub destination: String,
    /// How to deliver the outcome to the caller's side.
    pub transfer: Transfer,
    /// The headers for the BYE or REFER toward Five9. Prefer
    /// [`Outcome::header`], which keeps this within the limit.
    pub headers: Vec<Header>,
    /// The id the Handoff API files the outcome under; `None` means the
    /// host's default: the caller's `X-CallSessionID`, else the SIP Call-ID.
    pub shared_id: Option<String>,
    /// Extra data for the Handoff API, in order, one value per key.
    pub handoff: Vec<(String, Value)>,
    /// The most headers [`Outcome::header`] puts in `headers`.
    max_headers: usize,
}

impl Default for Outcome {
    fn default() -> Self {
        Self {
            contained: false,
            destination: String::new(),
            transfer: Transfer::Bye,
            headers: Vec::new(),
            shared_id: None,
            handoff: Vec::new(),
            max_headers: DEFAULT_MAX_HEADERS,
        }
    }
}

impl Outcome {
    /// An outcome delivered with a BYE: not contained, no destination, no
    /// headers, the host's default shared id.
    ///
    /// ```
    /// let o = trunkline_guest_sdk::Outcome::bye();
    /// assert!(!o.contained && o.headers.is_empty() && o.shared_id.is_none());
    /// ```
    pub fn bye() -> Self {
        Self::default()
    }

    /// An outcome delivered with a REFER to `uri`, then BYE.
    ///
    /// Five9 silently drops a REFER to a bare extension and the host refuses
    /// one, so a `uri` that is not `sip:`/`sips:` with a host is logged as a
    /// warning here.
    ///
    /// ```
    /// use trunkline_guest_sdk::{Outcome, Transfer};
    /// let o = Outcome::refer("sip:queue@five9.example.com");
    /// assert_eq!(o.transfer, Transfer::Refer("sip:queue@five9.example.com".into()));
    /// ```
    pub fn refer(uri: impl Into<String>) -> Self {
        let uri = uri.into();
        if !is_qualified_sip_uri(&uri) {
            log::warn(format!(
                "REFER target {uri:?} is not a fully qualified sip:/sips: URI; the host will refuse it"
            ));
        }
        Self {
            transfer: Transfer::Refer(uri),
            ..Self::default()
        }
    }

    /// Sets whether the AI contained the call.
    ///
    /// ```
    /// assert!(trunkline_guest_sdk::Outcome::bye().contained(true).contained);
    /// ```
    pub fn contained(mut self, contained: bool) -> Self {
        self.contained = contained;
        self
    }

    /// Sets where the call should go next.
    ///
    /// ```
    /// let o = trunkline_guest_sdk::Outcome::bye().destination("sales");
    /// assert_eq!(o.destination, "sales");
    /// ```
    pub fn destination(mut self, destination: impl Into<String>) -> Self {
        self.destination = destination.into();
        self
    }

    /// Files the outcome under `id` instead of the host's default.
    ///
    /// ```
    /// let o = trunkline_guest_sdk::Outcome::bye().shared_id("lead-42");
    /// assert_eq!(o.shared_id.as_deref(), Some("lead-42"));
    /// ```
    pub fn shared_id(mut self, id: impl Into<String>) -> Self {
        self.shared_id = Some(id.into());
        self
    }

    /// Sets the handoff field `key`, replacing an earlier value. Setting
    /// [`OVERFLOW_KEY`] replaces the headers that overflowed so far.
    ///
    /// ```
    /// use trunkline_guest_sdk::{json, Outcome};
    /// let o = Outcome::bye().handoff("score", 7).handoff("score", json!(8));
    /// assert_eq!(o.handoff_value("score"), Some(&json!(8)));
    /// assert_eq!(o.handoff.len(), 1);
    /// ```
    pub fn handoff(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        let value = value.into();
        match self.handoff.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => *old = value,
            None => self.handoff.push((key, value)),
        }
        self
    }

    /// Sets a header for the BYE or REFER, within the header limit.
    ///
    /// A header with the same name (ignoring case) gets the new value in
    /// place. CR/LF in the value become spaces. When the limit is reached,
    /// or the name is not an RFC 3261 token, the header goes to the handoff
    /// data under [`OVERFLOW_KEY`] with a warning instead.
    ///
    /// ```
    /// use trunkline_guest_sdk::{outcome::OVERFLOW_KEY, Outcome};
    /// let mut o = Outcome::bye().max_headers(1);
    /// o = o.header("X-contained", "true").header("X-destination", "sales");
    /// assert_eq!(o.headers.len(), 1);
    /// let overflow = o.handoff_value(OVERFLOW_KEY).unwrap();
    /// assert_eq!(overflow[0]["name"], "X-destination");
    /// assert_eq!(overflow[0]["reason"], "header-limit");
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        let raw = value.into();
        let value = sanitize_value(&raw).into_owned();
        if value != raw {
            log::warn(format!("BYE header {name}: control characters replaced"));
        }
        if !is_valid_name(&name) {
            log::warn(format!(
                "BYE header {name:?} is not an RFC 3261 token; moved to handoff data"
            ));
            self.push_overflow(&name, &value, REASON_INVALID_NAME);
            return self;
        }
        if let Some(h) = self
            .headers
            .iter_mut()
            .find(|h| h.name.eq_ignore_ascii_case(&name))
        {
            h.value = value;
        } else if self.update_overflowed(&name, &value) {
            // Already past the limit under this name; it stays there.
        } else if self.headers.len() < self.max_headers {
            self.headers.push(Header::new(name, value));
        } else {
            log::warn(format!(
                "BYE header {name} is over the limit of {}; moved to handoff data",
                self.max_headers
            ));
            self.push_overflow(&name, &value, REASON_LIMIT);
        }
        self
    }

    /// Sets the header limit (Five9's is [`DEFAULT_MAX_HEADERS`]). Headers
    /// already set are rebalanced in order: the first `max` stay, the rest
    /// move to the handoff data, and a raised limit brings overflowed
    /// headers back.
    ///
    /// ```
    /// let o = trunkline_guest_sdk::Outcome::bye()
    ///     .header("X-A", "1")
    ///     .header("X-B", "2")
    ///     .max_headers(1);
    /// assert_eq!(o.headers.len(), 1);
    /// assert_eq!(o.max_headers(2).headers.len(), 2);
    /// ```
    pub fn max_headers(mut self, max: usize) -> Self {
        self.max_headers = max;
        let mut all = std::mem::take(&mut self.headers);
        all.extend(self.take_overflow(REASON_LIMIT));
        let moved = all.len().saturating_sub(max);
        if moved > 0 {
            log::warn(format!(
                "{moved} BYE header(s) over the limit of {max}; moved to handoff data"
            ));
        }
        for h in all {
            if self.headers.len() < max {
                self.headers.push(h);
            } else {
                self.push_overflow(&h.name, &h.value, REASON_LIMIT);
            }
        }
        self
    }

    /// The current header limit.
    ///
    /// ```
    /// assert_eq!(trunkline_guest_sdk::Outcome::bye().header_limit(), 10);
    /// ```
    pub fn header_limit(&self) -> usize {
        self.max_headers
    }

    /// The value of the BYE header `name`, ignoring case.
    ///
    /// ```
    /// let o = trunkline_guest_sdk::Outcome::bye().header("X-RouteType", "transfer");
    /// assert_eq!(o.header_value("x-routetype"), Some("transfer"));
    /// ```
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// The handoff field `key`.
    ///
    /// ```
    /// let o = trunkline_guest_sdk::Outcome::bye().handoff("tenant", "acme");
    /// assert_eq!(o.handoff_value("tenant").unwrap(), "acme");
    /// ```
    pub fn handoff_value(&self, key: &str) -> Option<&Value> {
        self.handoff.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Appends one entry to the overflow array, creating it if needed.
    fn push_overflow(&mut self, name: &str, value: &str, reason: &str) {
        let entry = json!({ "name": name, "value": value, "reason": reason });
        match self.overflow_array() {
            Some(list) => list.push(entry),
            None => self.handoff.push((OVERFLOW_KEY.to_owned(), json!([entry]))),
        }
    }

    /// Gives an overflowed header named `name` the new `value`; false when
    /// there is none.
    fn update_overflowed(&mut self, name: &str, value: &str) -> bool {
        let Some(list) = self.overflow_array() else {
            return false;
        };
        let Some(entry) = list.iter_mut().find(|e| {
            e["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        }) else {
            return false;
        };
        entry["value"] = Value::from(value);
        true
    }

    /// Removes the overflow entries with `reason`, as headers in order.
    fn take_overflow(&mut self, reason: &str) -> Vec<Header> {
        let Some(list) = self.overflow_array() else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        list.retain(|e| {
            if e["reason"] != reason {
                return true;
            }
            let name = e["name"].as_str().unwrap_or_default();
            let value = e["value"].as_str().unwrap_or_default();
            taken.push(Header::new(name, value));
            false
        });
        if list.is_empty() {
            self.handoff.retain(|(k, _)| k != OVERFLOW_KEY);
        }
        taken
    }

    /// The overflow array, if the handoff data holds one.
    fn overflow_array(&mut self) -> Option<&mut Vec<Value>> {
        self.handoff
            .iter_mut()
            .find(|(k, _)| k == OVERFLOW_KEY)
            .and_then(|(_, v)| v.as_array_mut())
    }
}

/// True for `sip:`/`sips:` URIs with a host part (`user@host` or `host`).
fn is_qualified_sip_uri(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("sips:")
        .or_else(|| lower.strip_prefix("sip:"));
    // The host refuses anything but `sip:user@host`: Five9 silently drops a
    // REFER to a bare extension or a bare host.
    match rest.and_then(|r| r.split_once('@')) {
        Some((user, host)) => {
            let host = host.split([';', '?']).next().unwrap_or_default();
            !user.is_empty() && (host.contains('.') || host.starts_with('['))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn overflow(o: &Outcome) -> Vec<(String, String, String)> {
        o.handoff_value(OVERFLOW_KEY)
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|e| {
                        (
                            e["name"].as_str().unwrap().to_owned(),
                            e["value"].as_str().unwrap().to_owned(),
                            e["reason"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn eleventh_header_goes_to_handoff_with_a_warning() {
        testing::clear_logs();
        let mut o = Outcome::bye();
        for i in 0..11 {
            o = o.header(format!("X-H{i}"), i.to_string());
        }
        assert_eq!(o.headers.len(), 10);
        assert_eq!(
            overflow(&o),
            [("X-H10".into(), "10".into(), REASON_LIMIT.into())]
        );
        let warnings = testing::logs();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].message.contains("X-H10"));
    }

    #[test]
    fn same_name_replaces_in_place_or_in_overflow() {
        let o = Outcome::bye()
            .max_headers(1)
            .header("X-A", "1")
            .header("X-B", "2")
            .header("x-a", "3")
            .header("X-b", "4");
        assert_eq!(o.headers, [Header::new("X-A", "3")]);
        assert_eq!(
            overflow(&o),
            [("X-B".into(), "4".into(), REASON_LIMIT.into())]
        );
    }

    #[test]
    fn invalid_names_and_crlf() {
        let o = Outcome::bye()
            .header("X Bad", "kept")
            .header("X-Note", "line\r\nInjected: 1");
        assert_eq!(o.header_value("X-Note"), Some("line Injected: 1"));
        assert_eq!(
            overflow(&o),
            [("X Bad".into(), "kept".into(), REASON_INVALID_NAME.into())]
        );
    }

    #[test]
    fn limit_changes_rebalance_in_order() {
        let o = Outcome::bye()
            .header("X Bad", "v")
            .header("X-1", "1")
            .header("X-2", "2")
            .header("X-3", "3")
            .max_headers(1);
        assert_eq!(o.headers, [Header::new("X-1", "1")]);
        assert_eq!(overflow(&o).len(), 3);
        let o = o.max_headers(10);
        assert_eq!(o.headers.len(), 3);
        // Only the invalid name stays behind.
        assert_eq!(
            overflow(&o),
            [("X Bad".into(), "v".into(), REASON_INVALID_NAME.into())]
        );
        let o = Outcome::bye()
            .header("X-1", "1")
            .max_headers(0)
            .max_headers(5);
        assert_eq!(o.handoff_value(OVERFLOW_KEY), None);
        assert_eq!(o.headers.len(), 1);
    }

    #[test]
    fn refer_targets() {
        let cases = [
            ("sip:queue@sbc-us.five9.com", true),
            ("SIPS:queue@sbc-us.five9.com", true),
            // Five9 drops a REFER without a user part, and the host refuses it.
            ("sip:five9.example.com", false),
            ("sip:@five9.example.com", false),
            ("sip:queue@five9.example.com;transport=tcp", true),
            ("sip:queue@[2001:db8::1]", true),
            ("sip:1001", false),
            ("1001", false),
            ("tel:+14155550100", false),
        ];
        for (uri, ok) in cases {
            assert_eq!(is_qualified_sip_uri(uri), ok, "{uri}");
        }
        testing::clear_logs();
        let _ = Outcome::refer("sip:1001");
        assert_eq!(testing::logs().len(), 1);
    }
}
