//! Where a request we send goes first (RFC 3261 §8.1.2, §12.2.1.1, §16.12):
//! the first Route when it is a loose router (`;lr`); otherwise the
//! Request-URI (no Route, or a strict router the dialog already moved into
//! the Request-URI).

use crate::message::{SipMessage, Uri};

/// The URI of the next hop of `request`; `None` when neither the Route nor
/// the Request-URI parses.
pub fn next_hop(request: &SipMessage) -> Option<Uri> {
    let first_route = request
        .header("Route")
        .and_then(|r| r.split(',').next())
        .map(|r| {
            r.trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
        })
        .and_then(Uri::parse)
        .filter(|uri| uri.param("lr").is_some());
    first_route.or_else(|| request.request_uri().and_then(Uri::parse))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Host, Method};

    fn request(routes: &[&str]) -> SipMessage {
        let mut m = SipMessage::request(Method::Bye, "sip:agent@192.0.2.30:5080").expect("builds");
        for r in routes {
            m.push_header("Route", r).expect("header");
        }
        m
    }

    fn hop(m: &SipMessage) -> (Option<Host>, Option<u16>) {
        let uri = next_hop(m).expect("a next hop");
        (uri.host, uri.port)
    }

    #[test]
    fn loose_route_first_else_request_uri() {
        let ip = |s: &str| Some(Host::Ipv4(s.parse().unwrap()));
        assert_eq!(hop(&request(&[])), (ip("192.0.2.30"), Some(5080)));
        assert_eq!(
            hop(&request(&[
                "<sip:198.51.100.1:5070;lr>",
                "<sip:198.51.100.2;lr>"
            ])),
            (ip("198.51.100.1"), Some(5070))
        );
        assert_eq!(
            hop(&request(&["<sip:198.51.100.1;lr>, <sip:198.51.100.2;lr>"])),
            (ip("198.51.100.1"), None),
            "one line, two values"
        );
        assert_eq!(
            hop(&request(&["<sip:198.51.100.1;lr=on>"])),
            (ip("198.51.100.1"), None)
        );
        // A strict router is already the Request-URI (§12.2.1.1).
        assert_eq!(
            hop(&request(&["<sip:198.51.100.1>"])),
            (ip("192.0.2.30"), Some(5080))
        );
        assert_eq!(
            hop(&request(&["<not a uri;lr>"])),
            (ip("192.0.2.30"), Some(5080)),
            "an unreadable Route is passed over"
        );
    }
}
