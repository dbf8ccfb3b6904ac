//! [`five9_call`] and [`CallBuilder`]: the input of `route` in tests.

use crate::{Call, Codec, Direction, Header, Transport};

/// The host name Trunkline answers to in the generated calls.
const GATEWAY_HOST: &str = "trunkline.example.com";

/// A call as Trunkline hands it to `route` for a typical Five9 3rd Party
/// Transfer: extension `1001` dialed over UDP, Five9's call variables
/// (`X-CallANI`, `X-CallDNIS`, `X-CallID`, `X-CallSessionID`,
/// `X-CallCampaign`, `X-CallStartTimestamp`, `X-CallDomainID`), lead fields
/// (`X-first_name`, `X-last_name`, `X-city`, `X-account_number`) and
/// PCMU, PCMA and telephone-event offered.
///
/// ```
/// let call = trunkline_guest_sdk::testing::five9_call().build();
/// assert_eq!(call.dialed.as_deref(), Some("1001"));
/// assert_eq!(call.x_var("CallCampaign"), Some("Spring Renewals"));
/// assert_eq!(call.codecs.len(), 3);
/// ```
pub fn five9_call() -> CallBuilder {
    let sip_call_id = "3c4e1f0a9b7d4e21@198.51.100.20";
    let headers = [
        (
            "Via",
            "SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK5f9a1c7e",
        ),
        ("Max-Forwards", "69"),
        (
            "From",
            "\"Ada Lovelace\" <sip:+14155550123@sbc-us.five9.example.com>;tag=5f9a8c1",
        ),
        ("To", "<sip:1001@trunkline.example.com>"),
        ("Call-ID", sip_call_id),
        ("CSeq", "1 INVITE"),
        (
            "Contact",
            "<sip:+14155550123@198.51.100.20:5060;transport=udp>",
        ),
        (
            "Allow",
            "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY",
        ),
        ("Supported", "replaces, timer"),
        ("User-Agent", "Five9 VCC"),
        ("Content-Type", "application/sdp"),
        ("X-CallANI", "4155550123"),
        ("X-CallDNIS", "8005550199"),
        ("X-CallID", "300000000012345"),
        ("X-CallSessionID", "8F3A2C1D0E9B4A7F8E6D5C4B3A291807"),
        ("X-CallCampaign", "Spring Renewals"),
        ("X-CallStartTimestamp", "2025-03-14 15:09:26.535"),
        ("X-CallDomainID", "131313"),
        ("X-first_name", "Ada"),
        ("X-last_name", "Lovelace"),
        ("X-city", "London"),
        ("X-account_number", "000123456"),
        ("Content-Length", "312"),
    ];
    CallBuilder {
        call: Call {
            call_id: "tl-01J9Z3M4X8K2F9".to_owned(),
            sip_call_id: sip_call_id.to_owned(),
            trunk: "five9".to_owned(),
            direction: Direction::Inbound,
            request_uri: format!("sip:1001@{GATEWAY_HOST}"),
            dialed: Some("1001".to_owned()),
            from_uri: "sip:+14155550123@sbc-us.five9.example.com".to_owned(),
            from_display: Some("Ada Lovelace".to_owned()),
            to_uri: format!("sip:1001@{GATEWAY_HOST}"),
            headers: headers.iter().map(|(n, v)| Header::new(*n, *v)).collect(),
            source_ip: "198.51.100.20".to_owned(),
            source_port: 5060,
            transport: Transport::Udp,
            codecs: vec![
                Codec::new("PCMU", 8000, 0),
                Codec::new("PCMA", 8000, 8),
                Codec::new("telephone-event", 8000, 101),
            ],
        },
    }
}

/// Builds a [`Call`]; start from [`five9_call`].
///
/// ```
/// use trunkline_guest_sdk::testing::five9_call;
/// let call = five9_call()
///     .dialed("2002")
///     .header("X-PolyAi-Auth-Token", "tok-acme")
///     .without_header("X-city")
///     .build();
/// assert_eq!(call.request_uri, "sip:2002@trunkline.example.com");
/// assert_eq!(call.header("x-polyai-auth-token"), Some("tok-acme"));
/// assert_eq!(call.x_var("city"), None);
/// ```
#[derive(Clone, Debug)]
pub struct CallBuilder {
    call: Call,
}

impl CallBuilder {
    /// Sets the dialed extension or DID: the Request-URI user, the `To`
    /// URI and header follow.
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().dialed("+14155550100").build();
    /// assert_eq!(call.to_uri, "sip:+14155550100@trunkline.example.com");
    /// ```
    pub fn dialed(mut self, user: &str) -> Self {
        let uri = format!("sip:{user}@{GATEWAY_HOST}");
        self.call.dialed = Some(user.to_owned());
        self.call.request_uri = uri.clone();
        self.call.to_uri = uri.clone();
        self.set("To", &format!("<{uri}>"))
    }

    /// Makes the Request-URI carry no user part (`sip:host`), so
    /// `dialed` is `None`.
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().no_dialed().build();
    /// assert_eq!(call.dialed, None);
    /// ```
    pub fn no_dialed(mut self) -> Self {
        let uri = format!("sip:{GATEWAY_HOST}");
        self.call.dialed = None;
        self.call.request_uri = uri.clone();
        self.call.to_uri = uri.clone();
        self.set("To", &format!("<{uri}>"))
    }

    /// Adds a header after the existing ones (before `Content-Length`),
    /// keeping any header of the same name.
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().header("X-Tier", "gold").build();
    /// assert_eq!(call.headers.last().unwrap().name, "Content-Length");
    /// assert_eq!(call.header("X-Tier"), Some("gold"));
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let at = self
            .call
            .headers
            .iter()
            .position(|h| h.name.eq_ignore_ascii_case("Content-Length"))
            .unwrap_or(self.call.headers.len());
        self.call.headers.insert(at, Header::new(name, value));
        self
    }

    /// Sets a header: replaces the first one with that name (ignoring
    /// case), removes the others, or adds it when there is none.
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().set_header("x-city", "Paris").build();
    /// assert_eq!(call.header_values("X-city"), ["Paris"]);
    /// ```
    pub fn set_header(self, name: &str, value: &str) -> Self {
        self.set(name, value)
    }

    /// Removes every header named `name`, ignoring case.
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().without_header("x-callsessionid").build();
    /// assert_eq!(call.header("X-CallSessionID"), None);
    /// ```
    pub fn without_header(mut self, name: &str) -> Self {
        self.call
            .headers
            .retain(|h| !h.name.eq_ignore_ascii_case(name));
        self
    }

    /// Sets the caller's number: the `From` URI and `X-CallANI`.
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().caller("2125550100").build();
    /// assert_eq!(call.x_var("CallANI"), Some("2125550100"));
    /// assert!(call.from_uri.starts_with("sip:2125550100@"));
    /// ```
    pub fn caller(mut self, ani: &str) -> Self {
        let uri = format!("sip:{ani}@sbc-us.five9.example.com");
        let display = self.call.from_display.clone().unwrap_or_default();
        self.call.from_uri = uri.clone();
        self.set("From", &format!("\"{display}\" <{uri}>;tag=5f9a8c1"))
            .set("X-CallANI", ani)
    }

    /// Sets Five9's session id (`X-CallSessionID`), the Handoff API's
    /// default shared id.
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().session_id("S-1").build();
    /// assert_eq!(call.header("X-CallSessionID"), Some("S-1"));
    /// ```
    pub fn session_id(self, id: &str) -> Self {
        self.set("X-CallSessionID", id)
    }

    /// Sets the campaign name (`X-CallCampaign`).
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().campaign("Collections").build();
    /// assert_eq!(call.x_var("CallCampaign"), Some("Collections"));
    /// ```
    pub fn campaign(self, name: &str) -> Self {
        self.set("X-CallCampaign", name)
    }

    /// Sets the trunk name that admitted the call.
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().trunk("five9-eu").build();
    /// assert_eq!(call.trunk, "five9-eu");
    /// ```
    pub fn trunk(mut self, name: &str) -> Self {
        self.call.trunk = name.to_owned();
        self
    }

    /// Sets the transport the INVITE arrived on.
    ///
    /// ```
    /// use trunkline_guest_sdk::{testing, Transport};
    /// let call = testing::five9_call().transport(Transport::Tls).build();
    /// assert_eq!(call.transport, Transport::Tls);
    /// ```
    pub fn transport(mut self, transport: Transport) -> Self {
        self.call.transport = transport;
        self
    }

    /// Makes it a call Trunkline places through the outbound trunk
    /// `trunk` (direction `Outbound`).
    ///
    /// ```
    /// use trunkline_guest_sdk::{testing, Direction};
    /// let call = testing::five9_call().outbound("five9-out").build();
    /// assert_eq!(call.direction, Direction::Outbound);
    /// assert_eq!(call.trunk, "five9-out");
    /// ```
    pub fn outbound(mut self, trunk: &str) -> Self {
        self.call.direction = Direction::Outbound;
        self.call.trunk = trunk.to_owned();
        self
    }

    /// Replaces the offered codecs.
    ///
    /// ```
    /// use trunkline_guest_sdk::{testing, Codec};
    /// let call = testing::five9_call().codecs(vec![Codec::new("opus", 48000, 111)]).build();
    /// assert!(!call.offers_g711());
    /// ```
    pub fn codecs(mut self, codecs: Vec<Codec>) -> Self {
        self.call.codecs = codecs;
        self
    }

    /// The finished call.
    ///
    /// ```
    /// let call = trunkline_guest_sdk::testing::five9_call().build();
    /// assert_eq!(call.trunk, "five9");
    /// ```
    pub fn build(self) -> Call {
        self.call
    }

    fn set(mut self, name: &str, value: &str) -> Self {
        let mut seen = false;
        self.call.headers.retain_mut(|h| {
            if !h.name.eq_ignore_ascii_case(name) {
                return true;
            }
            if seen {
                return false;
            }
            seen = true;
            h.value = value.to_owned();
            true
        });
        if seen { self } else { self.header(name, value) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_call_is_consistent() {
        let call = five9_call().dialed("777").session_id("S").build();
        assert_eq!(call.header("Call-ID"), Some(call.sip_call_id.as_str()));
        assert_eq!(call.header("To"), Some("<sip:777@trunkline.example.com>"));
        assert_eq!(call.header_values("X-CallSessionID"), ["S"]);
        assert!(call.offers_g711());
        let dup = five9_call()
            .header("X-city", "Paris")
            .set_header("X-CITY", "Rome")
            .build();
        assert_eq!(dup.header_values("x-city"), ["Rome"]);
    }
}
