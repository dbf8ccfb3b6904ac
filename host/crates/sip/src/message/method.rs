//! Request methods, extension methods included.
//!
//! Not `rsip::Method`: it is a closed enum that fails the whole message on an
//! unknown method ("invalid method: FOO") and matches names case-insensitively.
//! RFC 3261 §8.2.1 wants unknown methods answered with 501 and §7.1 says
//! method names are case-sensitive, so both must parse.

use std::fmt;

/// A SIP request method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// OPTIONS (RFC 3261); Five9 pings trunks with it.
    Options,
    /// REGISTER (RFC 3261).
    Register,
    /// PRACK (RFC 3262).
    Prack,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// PUBLISH (RFC 3903).
    Publish,
    /// INFO (RFC 6086).
    Info,
    /// REFER (RFC 3515).
    Refer,
    /// MESSAGE (RFC 3428).
    Message,
    /// UPDATE (RFC 3311).
    Update,
    /// Any other token, kept as written; the dialog layer answers 501.
    Extension(String),
}

const KNOWN: &[(&str, Method)] = &[
    ("INVITE", Method::Invite),
    ("ACK", Method::Ack),
    ("BYE", Method::Bye),
    ("CANCEL", Method::Cancel),
    ("OPTIONS", Method::Options),
    ("REGISTER", Method::Register),
    ("PRACK", Method::Prack),
    ("SUBSCRIBE", Method::Subscribe),
    ("NOTIFY", Method::Notify),
    ("PUBLISH", Method::Publish),
    ("INFO", Method::Info),
    ("REFER", Method::Refer),
    ("MESSAGE", Method::Message),
    ("UPDATE", Method::Update),
];

impl Method {
    /// Parses a method token (case-sensitive); `None` if it is not a token.
    pub fn parse(text: &str) -> Option<Method> {
        if !super::params::is_token(text) {
            return None;
        }
        Some(
            KNOWN
                .iter()
                .find(|(name, _)| *name == text)
                .map(|(_, method)| method.clone())
                .unwrap_or_else(|| Method::Extension(text.to_string())),
        )
    }

    /// The method as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Extension(name) => name,
            known => KNOWN
                .iter()
                .find(|(_, method)| method == known)
                .map_or("", |(name, _)| name),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_print_table() {
        let table = [
            ("INVITE", Some(Method::Invite)),
            ("ACK", Some(Method::Ack)),
            ("PRACK", Some(Method::Prack)),
            ("UPDATE", Some(Method::Update)),
            ("FOO", Some(Method::Extension("FOO".into()))),
            // Case-sensitive: a lower-case INVITE is an unknown method (501).
            ("invite", Some(Method::Extension("invite".into()))),
            ("", None),
            ("IN VITE", None),
            ("INV\u{e9}TE", None),
        ];
        for (input, expected) in table {
            let parsed = Method::parse(input);
            assert_eq!(parsed, expected, "{input:?}");
            if let Some(method) = parsed {
                assert_eq!(method.to_string(), input);
            }
        }
        for (name, method) in KNOWN {
            assert_eq!(method.as_str(), *name);
        }
    }
}
