//! Constants from the SIP RFCs, kept in one place so every layer (message,
//! transaction, dialog) agrees on them.

/// RFC 3261 §8.1.1.7: a branch that starts with this cookie promises it is
/// unique across space and time, which lets transactions be matched by the
/// branch alone (§17.2.3). A branch without it means an RFC 2543 peer, whose
/// transactions have to be matched the old way.
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

/// The only protocol version this crate speaks (RFC 3261 §7.1); anything else in
/// a request line is answered with 505.
pub const SIP_VERSION: &str = "SIP/2.0";

/// Default port for `sip:` URIs and for UDP/TCP sent-by values without a port
/// (RFC 3261 §19.1.2, §18.2.2).
pub const DEFAULT_SIP_PORT: u16 = 5060;

/// Default port for `sips:` URIs and TLS sent-by values without a port.
pub const DEFAULT_SIPS_PORT: u16 = 5061;

/// RFC 3261 §8.1.1.6: the Max-Forwards value a UAC should start with.
pub const DEFAULT_MAX_FORWARDS: u8 = 70;

/// Compact header names (RFC 3261 §7.3.3 and the IANA "Header Fields" registry).
/// Parsing expands them to the long name, so the rest of Trunkline only ever
/// looks up long names.
pub const COMPACT_FORMS: &[(char, &str)] = &[
    ('a', "Accept-Contact"),      // RFC 3841
    ('b', "Referred-By"),         // RFC 3892
    ('c', "Content-Type"),        // RFC 3261
    ('d', "Request-Disposition"), // RFC 3841
    ('e', "Content-Encoding"),    // RFC 3261
    ('f', "From"),                // RFC 3261
    ('i', "Call-ID"),             // RFC 3261
    ('j', "Reject-Contact"),      // RFC 3841
    ('k', "Supported"),           // RFC 3261
    ('l', "Content-Length"),      // RFC 3261
    ('m', "Contact"),             // RFC 3261
    ('n', "Identity-Info"),       // RFC 4474 (deprecated by RFC 8224, still sent)
    ('o', "Event"),               // RFC 6665
    ('r', "Refer-To"),            // RFC 3515
    ('s', "Subject"),             // RFC 3261
    ('t', "To"),                  // RFC 3261
    ('u', "Allow-Events"),        // RFC 6665
    ('v', "Via"),                 // RFC 3261
    ('x', "Session-Expires"),     // RFC 4028
    ('y', "Identity"),            // RFC 8224
];

/// The long header name for a compact one (`"i"` -> `"Call-ID"`), matched
/// case-insensitively; `None` when `name` is not a registered compact form.
pub fn expand_compact(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return None;
    };
    let c = c.to_ascii_lowercase();
    COMPACT_FORMS
        .iter()
        .find(|(short, _)| *short == c)
        .map(|(_, long)| *long)
}

/// The reason phrase RFC 3261 §21 (and later RFCs) give a status code, used when
/// a response is built without one. Unknown codes get the phrase of their class.
pub fn default_reason(code: u16) -> &'static str {
    let phrase = match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "",
    };
    if !phrase.is_empty() {
        return phrase;
    }
    match code / 100 {
        1 => "Session Progress",
        2 => "OK",
        3 => "Redirection",
        4 => "Request Failure",
        5 => "Server Failure",
        _ => "Global Failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compact_form_expands_in_either_case() {
        for (short, long) in COMPACT_FORMS {
            assert_eq!(expand_compact(&short.to_string()), Some(*long));
            let upper = short.to_ascii_uppercase().to_string();
            assert_eq!(expand_compact(&upper), Some(*long));
        }
        assert_eq!(COMPACT_FORMS.len(), 20);
    }

    #[test]
    fn non_compact_names_are_left_alone() {
        for name in ["", "g", "h", "Via", "vv", "p", "z"] {
            assert_eq!(expand_compact(name), None, "{name:?}");
        }
    }

    #[test]
    fn reason_phrases() {
        let table = [
            (100, "Trying"),
            (200, "OK"),
            (400, "Bad Request"),
            (481, "Call/Transaction Does Not Exist"),
            (513, "Message Too Large"),
            (299, "OK"),
            (499, "Request Failure"),
            (699, "Global Failure"),
        ];
        for (code, phrase) in table {
            assert_eq!(default_reason(code), phrase, "{code}");
        }
    }
}
