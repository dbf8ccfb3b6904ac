//! Checks on what a policy answered. A component is untrusted code: its
//! answers are checked before they reach the wire, and a broken answer is
//! treated like a trap (fallback, logged, counted).

use trunkline_sip::message::{NameAddr, Scheme};

use super::error::DecisionError;
use super::{Decision, Header, Outcome, Transfer};

/// Headers a policy must not set: the host owns them, and a policy value
/// would break the dialog or the framing.
const HOST_OWNED: &[&str] = &[
    "via",
    "from",
    "to",
    "call-id",
    "cseq",
    "contact",
    "content-length",
    "content-type",
    "max-forwards",
    "route",
    "record-route",
    "refer-to",
    // The host writes it on the REFER, and the dialog refuses a second one
    // (the REFER then never went out; found by fuzzing).
    "referred-by",
    "authorization",
    "proxy-authorization",
    "www-authenticate",
    "proxy-authenticate",
];

/// Longest header value accepted from a policy (bytes). Larger values would
/// push a UDP BYE past the MTU for no good reason; put them in handoff data.
const MAX_HEADER_VALUE: usize = 4096;

/// Checks a `route` answer.
pub(crate) fn decision(d: &Decision) -> Result<(), DecisionError> {
    match d {
        Decision::Reject(r) => {
            if !(400..=699).contains(&r.status) {
                return invalid(format!(
                    "reject status {} is not a SIP failure (400-699)",
                    r.status
                ));
            }
            text("reject reason", &r.reason, 256)
        }
        Decision::Connect(c) => {
            target(&c.target)?;
            for a in &c.attributes {
                if a.key.is_empty() {
                    return invalid("attribute with an empty key".into());
                }
                text("attribute key", &a.key, 256)?;
                no_nul("attribute value", &a.value)?;
            }
            headers(&c.headers)
        }
    }
}

/// Checks a `conclude` answer.
pub(crate) fn outcome(o: &Outcome) -> Result<(), DecisionError> {
    text("destination", &o.destination, 1024)?;
    if let Transfer::Refer(uri) = &o.transfer {
        refer_target(uri)?;
    }
    headers(&o.headers)?;
    if let Some(id) = &o.shared_id {
        if id.is_empty() {
            return invalid("shared id is empty".into());
        }
        text("shared id", id, 256)?;
    }
    for f in &o.handoff {
        if f.key.is_empty() {
            return invalid("handoff field with an empty key".into());
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&f.json) {
            return invalid(format!("handoff field `{}` is not JSON: {e}", f.key));
        }
    }
    Ok(())
}

/// Splits an outcome's headers at the trunk's limit: the first `limit` go
/// on the wire, the rest are returned for the handoff record. Five9 reads at
/// most 10 custom headers; the host enforces the limit whatever the policy
/// sent, and never drops the excess.
pub fn limit_headers(headers: &mut Vec<Header>, limit: usize) -> Vec<Header> {
    if headers.len() <= limit {
        return Vec::new();
    }
    headers.split_off(limit)
}

fn headers(hs: &[Header]) -> Result<(), DecisionError> {
    for h in hs {
        if h.name.is_empty() || !h.name.bytes().all(is_token_byte) {
            return invalid(format!("header name {:?} is not an RFC 3261 token", h.name));
        }
        // Compact forms too: `t` is To. The dialog refuses them, so an
        // outcome with one lost its BYE (found by fuzzing), and the agent's
        // INVITE would have carried a second To.
        let long = trunkline_sip::rfc::expand_compact(&h.name).unwrap_or(&h.name);
        if HOST_OWNED.contains(&long.to_ascii_lowercase().as_str()) {
            return invalid(format!("header `{}` is owned by the host", h.name));
        }
        if h.value.len() > MAX_HEADER_VALUE {
            return invalid(format!(
                "header `{}` value is {} bytes (max {MAX_HEADER_VALUE})",
                h.name,
                h.value.len()
            ));
        }
        if h.value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return invalid(format!("header `{}` value contains CR, LF or NUL", h.name));
        }
    }
    Ok(())
}

fn target(t: &str) -> Result<(), DecisionError> {
    // `builtin:` alone names the builtin agent's default menu; the other
    // schemes need something after them.
    let ok_scheme = t.eq_ignore_ascii_case("builtin:")
        || ["sip:", "sips:", "ws://", "wss://", "builtin:"]
            .iter()
            // `get`: a target starting with a multi-byte character has no
            // char boundary where the scheme would end (a policy's answer
            // panicked the gateway here; found by fuzzing).
            .any(|s| {
                t.len() > s.len() && t.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s))
            });
    if !ok_scheme {
        return invalid(format!(
            "target {t:?} is not sip:, sips:, ws://, wss:// or builtin:"
        ));
    }
    if t.bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return invalid(format!(
            "target {t:?} contains whitespace or control characters"
        ));
    }
    Ok(())
}

/// A REFER target must be a fully qualified `sip:`/`sips:` URI with a host:
/// Five9 silently drops a REFER to a bare extension.
fn refer_target(uri: &str) -> Result<(), DecisionError> {
    let lower = uri.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("sip:")
        .or_else(|| lower.strip_prefix("sips:"));
    let fully_qualified = rest.is_some_and(|r| {
        r.split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && host_part(host))
    });
    // And what the dialog will put in Refer-To must read as a sip: URI
    // with a user: otherwise the REFER is never built and Five9 gets a BYE
    // while the outcome says "refer" (found by fuzzing).
    let readable = NameAddr::parse(uri)
        .and_then(|n| n.parsed_uri())
        .is_some_and(|u| matches!(u.scheme, Scheme::Sip | Scheme::Sips) && u.user.is_some());
    if !fully_qualified
        || !readable
        || uri
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return invalid(format!(
            "REFER target {uri:?} is not a fully qualified sip: URI (sip:user@host)"
        ));
    }
    Ok(())
}

fn host_part(host: &str) -> bool {
    let host = host.split([';', '?']).next().unwrap_or_default();
    let name = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') {
            h
        } else {
            host
        }
    });
    !name.is_empty() && (name.contains('.') || name.starts_with('[') || name == "localhost")
}

fn text(what: &str, s: &str, max: usize) -> Result<(), DecisionError> {
    if s.len() > max {
        return invalid(format!("{what} is {} bytes (max {max})", s.len()));
    }
    if s.chars().any(|c| c.is_control()) {
        return invalid(format!("{what} {s:?} contains control characters"));
    }
    Ok(())
}

fn no_nul(what: &str, s: &str) -> Result<(), DecisionError> {
    if s.contains('\0') {
        return invalid(format!("{what} contains NUL"));
    }
    Ok(())
}

/// RFC 3261 §25.1 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn invalid(msg: String) -> Result<(), DecisionError> {
    Err(DecisionError::Invalid(msg))
}

#[cfg(test)]
mod tests {
    use super::super::{Attribute, Connect, HandoffField, Reject};
    use super::*;

    fn h(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    fn connect(target: &str, headers: Vec<Header>) -> Decision {
        Decision::Connect(Connect {
            target: target.into(),
            attributes: vec![Attribute {
                key: "tenant".into(),
                value: "acme".into(),
            }],
            headers,
        })
    }

    fn outcome(transfer: Transfer, headers: Vec<Header>) -> Outcome {
        Outcome {
            contained: true,
            destination: "sales".into(),
            transfer,
            headers,
            shared_id: None,
            handoff: vec![HandoffField {
                key: "score".into(),
                json: "12".into(),
            }],
        }
    }

    #[test]
    fn decisions() {
        let cases: Vec<(Decision, Option<&str>)> = vec![
            (
                connect("sip:agent@127.0.0.1:5080", vec![h("X-Tenant", "acme")]),
                None,
            ),
            (connect("wss://agent.example.com/stream", vec![]), None),
            (connect("builtin:menu", vec![]), None),
            (connect("builtin:", vec![]), None),
            (connect("sip:", vec![]), Some("not sip:")),
            (connect("http://x", vec![]), Some("not sip:")),
            (connect("sip:a b@h", vec![]), Some("whitespace")),
            // Found by the policy_answer fuzz target: a multi-byte character
            // where a scheme would end panicked the check (and the gateway).
            (connect("@7 B\u{fffd}x", vec![]), Some("not sip:")),
            (connect("sip\u{e9}:agent@h", vec![]), Some("not sip:")),
            (connect("builti\u{fffd}", vec![]), Some("not sip:")),
            (
                connect("sip:a@h", vec![h("X Bad", "v")]),
                Some("not an RFC 3261 token"),
            ),
            (
                connect("sip:a@h", vec![h("X-Inj", "v\r\nVia: evil")]),
                Some("CR, LF"),
            ),
            (
                connect("sip:a@h", vec![h("Call-ID", "x")]),
                Some("owned by the host"),
            ),
            // Found by the policy_answer fuzz target: compact forms of
            // host-owned headers passed, and the dialog then refused the BYE.
            (
                connect("sip:a@h", vec![h("t", "<sip:x@evil>")]),
                Some("owned by the host"),
            ),
            (
                connect("sip:a@h", vec![h("I", "second-call-id")]),
                Some("owned by the host"),
            ),
            (
                connect("sip:a@h", vec![h("r", "<sip:x@evil>")]),
                Some("owned by the host"),
            ),
            (connect("sip:a@h", vec![h("s", "a subject")]), None),
            (
                connect("sip:a@h", vec![h("X-Big", &"a".repeat(5000))]),
                Some("max 4096"),
            ),
            (
                Decision::Reject(Reject {
                    status: 404,
                    reason: "Unknown extension".into(),
                }),
                None,
            ),
            (
                Decision::Reject(Reject {
                    status: 200,
                    reason: "OK".into(),
                }),
                Some("200"),
            ),
            (
                Decision::Reject(Reject {
                    status: 302,
                    reason: String::new(),
                }),
                Some("302"),
            ),
            (
                Decision::Reject(Reject {
                    status: 486,
                    reason: "a\r\nb".into(),
                }),
                Some("control"),
            ),
        ];
        for (d, want) in cases {
            match (decision(&d), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{e} should say {w}"),
                (got, want) => panic!("{d:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn outcomes() {
        let cases: Vec<(Outcome, Option<&str>)> = vec![
            (outcome(Transfer::Bye, vec![h("X-contained", "true")]), None),
            (
                outcome(Transfer::Bye, vec![h("v", "SIP/2.0/UDP 203.0.113.9")]),
                Some("owned by the host"),
            ),
            (
                outcome(
                    Transfer::Refer("sip:sales@five9.example.com".into()),
                    vec![h("b", "<sip:policy@example.com>")],
                ),
                Some("owned by the host"),
            ),
            (
                outcome(
                    Transfer::Refer("sip:sales@five9.example.com".into()),
                    vec![],
                ),
                None,
            ),
            (
                outcome(
                    Transfer::Refer("sips:q@10.0.0.1:5061;transport=tls".into()),
                    vec![],
                ),
                None,
            ),
            (
                outcome(Transfer::Refer("sip:1234".into()), vec![]),
                Some("fully qualified"),
            ),
            // Found by the policy_answer fuzz target: passed the check, but
            // the dialog could not read it, so no REFER was sent.
            (
                outcome(Transfer::Refer("sip:w~@~\u{e9}#x.example".into()), vec![]),
                Some("fully qualified"),
            ),
            (
                outcome(Transfer::Refer("1234".into()), vec![]),
                Some("fully qualified"),
            ),
            (
                outcome(Transfer::Refer("sip:q@".into()), vec![]),
                Some("fully qualified"),
            ),
            (
                outcome(Transfer::Bye, vec![h("X-a", "1\n2")]),
                Some("CR, LF"),
            ),
        ];
        for (o, want) in cases {
            match (outcome_check(&o), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{e} should say {w}"),
                (got, want) => panic!("{o:?}: got {got:?}, want {want:?}"),
            }
        }
        let mut bad_json = outcome(Transfer::Bye, vec![]);
        bad_json.handoff[0].json = "{not json".into();
        assert!(outcome_check(&bad_json).is_err());
        let mut empty_id = outcome(Transfer::Bye, vec![]);
        empty_id.shared_id = Some(String::new());
        assert!(outcome_check(&empty_id).is_err());
    }

    fn outcome_check(o: &Outcome) -> Result<(), DecisionError> {
        super::outcome(o)
    }

    #[test]
    fn header_limit_keeps_order_and_returns_the_rest() {
        let mut hs: Vec<Header> = (0..13).map(|i| h(&format!("X-H{i}"), "v")).collect();
        let spill = limit_headers(&mut hs, 10);
        assert_eq!(hs.len(), 10);
        assert_eq!(hs[9].name, "X-H9");
        assert_eq!(
            spill.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
            ["X-H10", "X-H11", "X-H12"]
        );
        let mut few = vec![h("X-a", "1")];
        assert!(limit_headers(&mut few, 10).is_empty());
    }
}
