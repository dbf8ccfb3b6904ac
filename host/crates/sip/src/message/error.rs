//! Errors of the message layer, each knowing the status it maps to.

use crate::rfc;

/// Why bytes from a peer could not become a [`SipMessage`](super::SipMessage).
///
/// [`ParseError::status`] says what the peer deserves; whether an answer can
/// actually be formed (a request with a readable top Via) is decided by the
/// framer, see [`Malformed`](super::Malformed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The bytes do not start with a SIP request line or status line (binary
    /// data, a TLS handshake on a plain port, HTTP, a port scanner).
    #[error("not a SIP message")]
    NotSip,
    /// The request or status line is malformed (missing parts, a status code
    /// that is not three digits, a method that is not a token).
    #[error("Malformed start line")]
    InvalidStartLine,
    /// A request line that reads as SIP (a method token first, a SIP
    /// version last) but is not `Method SP Request-URI SP SIP-Version`
    /// (RFC 3261 §25.1): whitespace inside the Request-URI, two spaces, a
    /// tab, trailing spaces. Answered 400: tolerating it would let two
    /// parsers on the path read two different Request-URIs.
    #[error("Malformed Request-Line")]
    InvalidRequestLine,
    /// The start line names a protocol version other than SIP/2.0.
    #[error("Version Not Supported")]
    UnsupportedVersion,
    /// A header line has no colon, a name that is not a token, or is a
    /// continuation line with no header before it.
    #[error("Malformed header line")]
    InvalidHeaderLine,
    /// A header the message must carry is absent (the long name is given).
    #[error("Missing {0}")]
    MissingHeader(&'static str),
    /// A header is present but its value cannot be parsed (the long name is
    /// given).
    #[error("Invalid {0}")]
    InvalidHeader(&'static str),
    /// A header that takes one value appears more than once (RFC 3261
    /// §7.3.1: only comma-list headers may repeat): which Call-ID, From or
    /// CSeq is meant would be a guess.
    #[error("Multiple {0} headers")]
    DuplicateHeader(&'static str),
    /// A datagram's header section is not ended by an empty line (RFC 3261
    /// §7): the message was cut short, or was never SIP.
    #[error("Header section not terminated")]
    HeadNotTerminated,
    /// The Request-URI is empty, a `sip:`/`sips:`/`tel:` URI that does not
    /// parse, or one with `?headers`, which RFC 3261 §19.1.5 does not allow
    /// there (other schemes are left to the UAS checks, which answer 416).
    #[error("Invalid Request-URI")]
    InvalidRequestUri,
    /// The CSeq method differs from the request method (RFC 3261 §8.2.2.3
    /// treats the request as malformed).
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    /// A datagram's Content-Length declares more body than it carries
    /// (RFC 3261 §18.3): part of the message was lost.
    #[error("Content-Length {declared} exceeds the {received} body bytes received")]
    BodyTruncated {
        /// The value of Content-Length.
        declared: usize,
        /// The body bytes that were actually there.
        received: usize,
    },
    /// The message is larger than the configured maximum.
    #[error("Message Too Large")]
    TooLarge {
        /// The configured maximum in bytes.
        limit: usize,
    },
}

impl ParseError {
    /// The status code to answer with, or `None` when nothing must be sent
    /// back: garbage, and a request without any Via (RFC 4475's `test`: no
    /// route a response could follow). A request whose Via is present but
    /// garbled gets its 400: the transports answer malformed requests at the
    /// packet's source (or on its connection), never where a Via points, so
    /// the answer cannot be aimed at a third party.
    pub fn status(&self) -> Option<u16> {
        match self {
            ParseError::NotSip | ParseError::InvalidStartLine => None,
            ParseError::MissingHeader("Via") => None,
            ParseError::UnsupportedVersion => Some(505),
            ParseError::TooLarge { .. } => Some(513),
            _ => Some(400),
        }
    }

    /// The reason phrase for [`ParseError::status`], naming what is wrong for a
    /// 400 (`"Bad Request - Missing Call-ID"`) so the peer's logs show it.
    pub fn reason_phrase(&self) -> Option<String> {
        let code = self.status()?;
        Some(match code {
            400 => format!("{} - {self}", rfc::default_reason(400)),
            _ => rfc::default_reason(code).to_string(),
        })
    }
}

/// Why a message we are building was refused. Everything put on the wire is
/// checked here so that text from a policy or a peer can never forge extra
/// header lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A header name is empty or has characters outside RFC 3261 `token`.
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    /// A header value, reason phrase or Request-URI contains CR, LF or NUL
    /// (the field is named).
    #[error("{0} contains CR, LF or NUL")]
    UnsafeText(String),
    /// A Request-URI is empty or contains whitespace.
    #[error("invalid Request-URI {0:?}")]
    InvalidRequestUri(String),
    /// A status code outside 100..=699.
    #[error("invalid status code {0}")]
    InvalidStatus(u16),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_reason_per_variant() {
        let table: &[(ParseError, Option<u16>, Option<&str>)] = &[
            (ParseError::NotSip, None, None),
            (ParseError::InvalidStartLine, None, None),
            (ParseError::MissingHeader("Via"), None, None),
            (
                ParseError::InvalidHeader("Via"),
                Some(400),
                Some("Bad Request - Invalid Via"),
            ),
            (
                ParseError::InvalidRequestLine,
                Some(400),
                Some("Bad Request - Malformed Request-Line"),
            ),
            (
                ParseError::DuplicateHeader("CSeq"),
                Some(400),
                Some("Bad Request - Multiple CSeq headers"),
            ),
            (
                ParseError::HeadNotTerminated,
                Some(400),
                Some("Bad Request - Header section not terminated"),
            ),
            (
                ParseError::MissingHeader("Call-ID"),
                Some(400),
                Some("Bad Request - Missing Call-ID"),
            ),
            (
                ParseError::InvalidHeader("CSeq"),
                Some(400),
                Some("Bad Request - Invalid CSeq"),
            ),
            (
                ParseError::InvalidHeaderLine,
                Some(400),
                Some("Bad Request - Malformed header line"),
            ),
            (
                ParseError::BodyTruncated {
                    declared: 40,
                    received: 4,
                },
                Some(400),
                Some("Bad Request - Content-Length 40 exceeds the 4 body bytes received"),
            ),
            (
                ParseError::UnsupportedVersion,
                Some(505),
                Some("Version Not Supported"),
            ),
            (
                ParseError::TooLarge { limit: 65536 },
                Some(513),
                Some("Message Too Large"),
            ),
        ];
        for (error, status, reason) in table {
            assert_eq!(error.status(), *status, "{error:?}");
            assert_eq!(error.reason_phrase().as_deref(), *reason, "{error:?}");
        }
    }
}
