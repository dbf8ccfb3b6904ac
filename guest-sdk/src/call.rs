//! The new call as a policy sees it: [`Call`] and its parts.
//!
//! Five9 sends its call variables as `X-` headers on the INVITE
//! (`X-CallANI`, `X-CallSessionID`, lead fields such as `X-first_name`).
//! Header names are case-insensitive in SIP, so every lookup here ignores
//! case; the values keep exactly what the peer wrote.

use crate::Attributes;
use crate::headers;

/// One SIP header as it arrived on the wire, or as a policy writes it.
///
/// ```
/// use trunkline_guest_sdk::Header;
/// let h = Header::new("X-CallANI", "4155550123");
/// assert_eq!(h.name, "X-CallANI");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The name, with its original case (compact forms are expanded by the
    /// host).
    pub name: String,
    /// The value, without the leading `name:`.
    pub value: String,
}

impl Header {
    /// A header from a name and a value.
    ///
    /// ```
    /// let h = trunkline_guest_sdk::Header::new("X-contained", "true");
    /// assert_eq!(h.value, "true");
    /// ```
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Which way a call goes (contract 0.2.0).
///
/// ```
/// let call = trunkline_guest_sdk::testing::five9_call().build();
/// assert_eq!(call.direction, trunkline_guest_sdk::Direction::Inbound);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The trunk's peer (Five9) called in.
    Inbound,
    /// Trunkline places the call (`POST /v1/calls`) through an outbound
    /// trunk: the call's fields describe the INVITE it sends (`dialed` is
    /// the number in E.164, `from_uri` the caller id, `trunk` the outbound
    /// trunk's name).
    Outbound,
}

/// The transport an INVITE arrived on.
///
/// ```
/// assert_eq!(trunkline_guest_sdk::Transport::Tls.as_str(), "tls");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP, usually port 5060.
    Udp,
    /// TCP, usually port 5060.
    Tcp,
    /// TLS, usually port 5061.
    Tls,
}

impl Transport {
    /// The lowercase name, as in a `Via` header's `transport` parameter.
    ///
    /// ```
    /// assert_eq!(trunkline_guest_sdk::Transport::Udp.as_str(), "udp");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// A codec offered in the caller's SDP, in the caller's order.
///
/// ```
/// let pcmu = trunkline_guest_sdk::Codec::new("PCMU", 8000, 0);
/// assert_eq!(pcmu.payload_type, 0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Codec {
    /// The encoding name, e.g. `PCMU`, `PCMA`, `telephone-event`, `opus`.
    pub name: String,
    /// The RTP clock rate in Hz, e.g. 8000.
    pub clock_rate: u32,
    /// The RTP payload type number the caller chose.
    pub payload_type: u8,
}

impl Codec {
    /// A codec from its name, clock rate and payload type.
    ///
    /// ```
    /// let dtmf = trunkline_guest_sdk::Codec::new("telephone-event", 8000, 101);
    /// assert_eq!(dtmf.clock_rate, 8000);
    /// ```
    pub fn new(name: impl Into<String>, clock_rate: u32, payload_type: u8) -> Self {
        Self {
            name: name.into(),
            clock_rate,
            payload_type,
        }
    }
}

/// Everything a router knows about a new call, taken from the INVITE.
///
/// ```
/// let call = trunkline_guest_sdk::testing::five9_call().dialed("1001").build();
/// assert_eq!(call.dialed.as_deref(), Some("1001"));
/// assert!(call.header("x-callsessionid").is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Trunkline's own id for the call, unique per gateway; the id agents
    /// and the control API use.
    pub call_id: String,
    /// The SIP `Call-ID` of the caller's leg.
    pub sip_call_id: String,
    /// The name of the trunk (from the operator's config) that admitted the
    /// call; for an outbound call, the outbound trunk it goes through.
    pub trunk: String,
    /// Inbound, or a call Trunkline places.
    pub direction: Direction,
    /// The Request-URI exactly as received (`sip:`, `sips:` or `tel:`).
    pub request_uri: String,
    /// The user part of the Request-URI: the dialed extension or DID, e.g.
    /// `1001` or `+14155550100`. `None` when the URI has no user.
    pub dialed: Option<String>,
    /// The URI of the `From` header.
    pub from_uri: String,
    /// The display name of the `From` header, unquoted.
    pub from_display: Option<String>,
    /// The URI of the `To` header.
    pub to_uri: String,
    /// Every header of the INVITE in wire order, with its original case.
    pub headers: Vec<Header>,
    /// The source IP address of the INVITE (IPv4 dotted or IPv6 text).
    pub source_ip: String,
    /// The source port of the INVITE.
    pub source_port: u16,
    /// The transport the INVITE arrived on.
    pub transport: Transport,
    /// The audio codecs offered by the caller, in preference order.
    pub codecs: Vec<Codec>,
}

/// The prefix that marks a header as a Five9 call variable.
const X_PREFIX: &str = "X-";

impl Call {
    /// The first value of the header `name`, ignoring case.
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call()
    ///     .header("X-PolyAi-Auth-Token", "tok-1")
    ///     .build();
    /// assert_eq!(call.header("x-polyai-auth-token"), Some("tok-1"));
    /// assert_eq!(call.header("X-Missing"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::find(&self.headers, name)
    }

    /// Every value of the header `name` in wire order, ignoring case.
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().build();
    /// assert_eq!(call.header_values("via").len(), 1);
    /// ```
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        headers::find_all(&self.headers, name)
    }

    /// The call variables: every `X-` header (any case of the prefix) with
    /// the prefix stripped, in wire order. `X-first_name: Ada` becomes
    /// `first_name = Ada`, the way Five9 lead data is used by agents.
    ///
    /// Names that differ only in case are one variable: the first spelling
    /// is kept and the later value wins.
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().build();
    /// let vars = call.x_variables();
    /// assert_eq!(vars.get("CallCampaign"), Some("Spring Renewals"));
    /// assert_eq!(vars.get("first_name"), Some("Ada"));
    /// ```
    pub fn x_variables(&self) -> Attributes {
        let mut vars = Attributes::new();
        for (name, value) in self.x_headers() {
            vars.insert_ignore_case(name, value);
        }
        vars
    }

    /// The call variable `name` (the `X-` header `X-<name>`), ignoring case;
    /// the last value when the header is repeated, as in
    /// [`Call::x_variables`].
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().build();
    /// assert_eq!(call.x_var("FIRST_NAME"), Some("Ada"));
    /// assert_eq!(call.x_var("CallANI"), call.header("X-CallANI"));
    /// ```
    pub fn x_var(&self, name: &str) -> Option<&str> {
        self.x_headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .last()
    }

    /// `(name without prefix, value)` for every `X-` header with a
    /// non-empty name after the prefix.
    fn x_headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().filter_map(|h| {
            let prefix = h.name.get(..X_PREFIX.len())?;
            let rest = &h.name[X_PREFIX.len()..];
            (prefix.eq_ignore_ascii_case(X_PREFIX) && !rest.is_empty())
                .then_some((rest, h.value.as_str()))
        })
    }

    /// True when the caller offered a G.711 codec (PCMU or PCMA).
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().build();
    /// assert!(call.offers_g711());
    /// ```
    pub fn offers_g711(&self) -> bool {
        self.codecs
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case("PCMU") || c.name.eq_ignore_ascii_case("PCMA"))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing;

    #[test]
    fn x_variables_strip_prefix_in_wire_order() {
        let call = testing::five9_call()
            .header("x-lower", "1")
            .header("X-", "no name")
            .header("Xylophone", "not a variable")
            .header("x-FIRST_NAME", "Grace")
            .build();
        let vars = call.x_variables();
        let names: Vec<_> = vars.keys().collect();
        assert_eq!(names.first(), Some(&"CallANI"));
        assert!(names.contains(&"lower"));
        assert!(!names.iter().any(|n| n.is_empty() || *n == "ylophone"));
        // The first spelling stays, the later value wins.
        assert_eq!(vars.get("first_name"), Some("Grace"));
        assert_eq!(vars.get("FIRST_NAME"), None);
        assert_eq!(call.x_var("first_name"), Some("Grace"));
    }

    #[test]
    fn header_lookup_ignores_case() {
        let call = testing::five9_call().build();
        for name in ["X-CallSessionID", "x-callsessionid", "X-CALLSESSIONID"] {
            assert!(call.header(name).is_some(), "{name}");
        }
        assert_eq!(call.header_values("X-Nope"), Vec::<&str>::new());
    }

    #[test]
    fn short_header_names_are_not_variables() {
        let call = testing::five9_call().header("X", "1").build();
        assert_eq!(call.x_var(""), None);
    }
}
