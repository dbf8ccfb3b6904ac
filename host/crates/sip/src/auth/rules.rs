//! What a response must satisfy beyond its hash, and the outcome types of
//! verification.

use crate::message::Uri;

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Authenticated as this username.
    Ok(String),
    /// The password was right but the nonce is not usable: send a fresh
    /// challenge with `stale=true`.
    Stale,
    /// No credentials for our realm: send a challenge.
    Missing,
    /// Credentials that failed: send a fresh challenge, or 403 after
    /// repeated failures. The [`Failure`] must not reach the peer.
    Invalid(Failure),
}

/// Why credentials failed, for logs and metrics only: telling a peer
/// whether the user or the password was wrong helps guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The header could not be read, lacked a parameter, or the message is
    /// not a request.
    Malformed,
    /// An algorithm this trunk does not offer.
    Algorithm,
    /// A `qop` other than `auth`, or none while RFC 2069 is refused.
    Qop,
    /// `uri` is not the Request-URI (RFC 2617 §3.2.2.5).
    UriMismatch,
    /// No such user in the realm, or no HA1 of this algorithm's family.
    UnknownUser,
    /// The response does not match: wrong password, most likely.
    WrongResponse,
}

/// `nc`: 1 to 8 hex digits (RFC 7616 says exactly 8; shorter ones are read
/// rather than failed, and hashed as written either way).
pub(crate) fn parse_nc(nc: &str) -> Option<u32> {
    let valid = !nc.is_empty() && nc.len() <= 8 && nc.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| u32::from_str_radix(nc, 16).ok()).flatten()
}

/// RFC 2617 §3.2.2.5: the `uri` must name the Request-URI. Equal text, or
/// the same URI written differently: scheme and host case, a default port
/// left out, parameters in another order. Anything else is refused, so a
/// response captured for one target cannot be used for another.
pub(crate) fn uri_matches(digest_uri: &str, request_uri: &str) -> bool {
    if digest_uri == request_uri {
        return true;
    }
    let (Some(a), Some(b)) = (Uri::parse(digest_uri), Uri::parse(request_uri)) else {
        return false;
    };
    let host = |uri: &Uri| {
        uri.host
            .as_ref()
            .map(|h| h.to_string().to_ascii_lowercase())
    };
    let params = |uri: &Uri| {
        let mut params: Vec<(String, Option<String>)> = uri
            .params
            .iter()
            .map(|p| {
                (
                    p.name.to_ascii_lowercase(),
                    p.value.as_ref().map(|v| v.to_ascii_lowercase()),
                )
            })
            .collect();
        params.sort();
        params
    };
    a.scheme == b.scheme
        && a.user == b.user
        && a.password == b.password
        && host(&a) == host(&b)
        && a.port.unwrap_or(a.default_port()) == b.port.unwrap_or(b.default_port())
        && params(&a) == params(&b)
        && a.headers == b.headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_equivalence() {
        let table = [
            ("sip:1800@gw.example", "sip:1800@gw.example", true),
            ("sip:1800@GW.Example:5060", "SIP:1800@gw.example", true),
            ("sips:1800@gw.example:5061", "sips:1800@gw.example", true),
            (
                "sip:1800@gw.example;transport=TCP;lr",
                "sip:1800@gw.example;lr;transport=tcp",
                true,
            ),
            (
                "sip:1800@[2001:DB8::1]",
                "sip:1800@[2001:db8::1]:5060",
                true,
            ),
            ("sip:1800@gw.example", "sip:1801@gw.example", false),
            ("sip:1800@gw.example", "sips:1800@gw.example", false),
            ("sip:1800@gw.example:5080", "sip:1800@gw.example", false),
            ("sip:1800@gw.example", "sip:1800@other.example", false),
            (
                "sip:1800@gw.example;transport=tcp",
                "sip:1800@gw.example",
                false,
            ),
            ("sip:Alice@gw.example", "sip:alice@gw.example", false),
            ("sip:sip:1800@gw.example", "sip:1800@gw.example", false),
            ("", "sip:1800@gw.example", false),
            ("/dir/index.html", "/dir/index.html", true),
        ];
        for (digest_uri, request_uri, same) in table {
            assert_eq!(
                uri_matches(digest_uri, request_uri),
                same,
                "{digest_uri} vs {request_uri}"
            );
            assert_eq!(
                uri_matches(request_uri, digest_uri),
                same,
                "{request_uri} vs {digest_uri}"
            );
        }
    }

    #[test]
    fn nonce_counts() {
        let table = [
            ("00000001", Some(1)),
            ("0000000a", Some(10)),
            ("0000000A", Some(10)),
            ("1", Some(1)),
            ("ffffffff", Some(u32::MAX)),
            ("", None),
            ("100000000", None),
            ("+0000001", None),
            ("0000000g", None),
            (" 0000001", None),
        ];
        for (nc, expected) in table {
            assert_eq!(parse_nc(nc), expected, "{nc:?}");
        }
    }
}
