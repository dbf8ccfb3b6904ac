//! What can be wrong with an SDP body.
//!
//! Every variant names the 1-based line it was found on (0 for the document as
//! a whole), so a log line points the operator at the peer's mistake. A peer's
//! unparseable SDP in an INVITE maps to `400 Bad Request`; see
//! [`SdpError::status`].

use thiserror::Error;

/// A session description that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// The body is not UTF-8 text.
    #[error("SDP body is not UTF-8")]
    NotUtf8,
    /// The body has no lines at all.
    #[error("SDP body is empty")]
    Empty,
    /// A line is not `<letter>=<value>`.
    #[error("line {line}: not a `<type>=<value>` line")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
    },
    /// The first line is not `v=`.
    #[error("line {line}: SDP must start with v=0")]
    MissingVersion {
        /// 1-based line number.
        line: usize,
    },
    /// `v=` holds something other than 0.
    #[error("line {line}: unsupported SDP version {version:?}")]
    UnsupportedVersion {
        /// 1-based line number.
        line: usize,
        /// The version as written.
        version: String,
    },
    /// No `o=` line before the first `m=`.
    #[error("SDP has no origin (o=) line")]
    MissingOrigin,
    /// The `o=` line does not have six valid fields.
    #[error("line {line}: malformed origin (o=)")]
    InvalidOrigin {
        /// 1-based line number.
        line: usize,
    },
    /// A `c=` line is not `<nettype> <addrtype> <address>`.
    #[error("line {line}: malformed connection (c=)")]
    InvalidConnection {
        /// 1-based line number.
        line: usize,
    },
    /// An address type other than IP4/IP6.
    #[error("line {line}: unknown address type {addr_type:?}")]
    UnknownAddressType {
        /// 1-based line number.
        line: usize,
        /// The address type as written.
        addr_type: String,
    },
    /// An IP literal of the other family than its address type says.
    #[error("line {line}: address {address:?} does not match its address type")]
    AddressFamilyMismatch {
        /// 1-based line number.
        line: usize,
        /// The address as written.
        address: String,
    },
    /// A `t=` line is not two integers.
    #[error("line {line}: malformed timing (t=)")]
    InvalidTiming {
        /// 1-based line number.
        line: usize,
    },
    /// A `b=` line is not `<type>:<integer>`.
    #[error("line {line}: malformed bandwidth (b=)")]
    InvalidBandwidth {
        /// 1-based line number.
        line: usize,
    },
    /// An `m=` line lacks media, port or protocol, or its port is not a number.
    #[error("line {line}: malformed media line (m=)")]
    InvalidMedia {
        /// 1-based line number.
        line: usize,
    },
    /// A known attribute with a value that cannot be parsed.
    #[error("line {line}: malformed a={name} attribute")]
    InvalidAttribute {
        /// 1-based line number.
        line: usize,
        /// Attribute name.
        name: String,
    },
    /// An active media section has no `c=` of its own and the session has none.
    #[error("media section {media} has no connection address (c=)")]
    MissingConnection {
        /// 0-based index of the `m=` section.
        media: usize,
    },
}

impl SdpError {
    /// SIP status for an offer carrying this SDP: the request itself is
    /// malformed, which RFC 3261 answers with 400 rather than 488.
    pub fn status(&self) -> u16 {
        400
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_point_at_the_line() {
        let e = SdpError::InvalidAttribute {
            line: 7,
            name: "rtpmap".into(),
        };
        assert_eq!(e.to_string(), "line 7: malformed a=rtpmap attribute");
        assert_eq!(e.status(), 400);
        assert_eq!(
            SdpError::MissingConnection { media: 1 }.to_string(),
            "media section 1 has no connection address (c=)"
        );
    }
}
