//! [`SessionDescription`] to SDP text, CRLF line endings, RFC 4566 line order.
//!
//! Lines kept verbatim are placed where RFC 4566 puts their type (`i u e p`
//! before `c=`, `r z k` and unknown types after `t=`), so a description that
//! arrived out of order leaves in order; parsing the output gives back an equal
//! value.

use std::fmt::{self, Display, Formatter};

use super::{
    Attribute, Bandwidth, Connection, MediaDescription, OtherLine, RtcpAttr, SessionDescription,
};

/// Session-level types printed before `c=`.
const BEFORE_CONNECTION: &[char] = &['i', 'u', 'e', 'p'];

/// Whether a session-level verbatim line is printed before `c=`.
pub(super) fn is_early(line: &OtherLine) -> bool {
    BEFORE_CONNECTION.contains(&line.kind)
}

impl Display for SessionDescription {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(f, "v=0\r\n")?;
        write!(
            f,
            "o={} {} {} {} {} {}\r\n",
            o.username,
            o.session_id,
            o.session_version,
            o.net_type,
            o.addr_type.as_str(),
            o.address
        )?;
        write!(f, "s={}\r\n", self.session_name)?;
        let early = |l: &&OtherLine| is_early(l);
        write_other(f, self.other.iter().filter(early))?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        write_bandwidths(f, &self.bandwidths)?;
        for t in &self.timings {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
        }
        write_other(f, self.other.iter().filter(|l| !early(l)))?;
        write_attributes(f, &self.attributes)?;
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl Display for MediaDescription {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.protocol)?;
        for fmt in &self.formats {
            write!(f, " {fmt}")?;
        }
        write!(f, "\r\n")?;
        write_other(f, self.other.iter().filter(|l| l.kind == 'i'))?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        write_bandwidths(f, &self.bandwidths)?;
        write_other(f, self.other.iter().filter(|l| l.kind != 'i'))?;
        write_attributes(f, &self.attributes)
    }
}

impl Display for Connection {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.net_type,
            self.addr_type.as_str(),
            self.address
        )
    }
}

impl Display for Attribute {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::RtpMap(m) => {
                write!(
                    f,
                    "rtpmap:{} {}/{}",
                    m.payload_type, m.encoding, m.clock_rate
                )?;
                match m.channels {
                    Some(c) => write!(f, "/{c}"),
                    None => Ok(()),
                }
            }
            Attribute::Fmtp(p) => write!(f, "fmtp:{} {}", p.payload_type, p.params),
            Attribute::Ptime(ms) => write!(f, "ptime:{ms}"),
            Attribute::MaxPtime(ms) => write!(f, "maxptime:{ms}"),
            Attribute::Direction(d) => f.write_str(d.as_str()),
            Attribute::RtcpMux => f.write_str("rtcp-mux"),
            Attribute::Rtcp(RtcpAttr { port, connection }) => {
                write!(f, "rtcp:{port}")?;
                match connection {
                    Some(c) => write!(f, " {c}"),
                    None => Ok(()),
                }
            }
            Attribute::Other { name, value: None } => f.write_str(name),
            Attribute::Other {
                name,
                value: Some(v),
            } => write!(f, "{name}:{v}"),
        }
    }
}

fn write_other<'a>(
    f: &mut Formatter<'_>,
    lines: impl Iterator<Item = &'a OtherLine>,
) -> fmt::Result {
    for l in lines {
        write!(f, "{}={}\r\n", l.kind, l.value)?;
    }
    Ok(())
}

fn write_bandwidths(f: &mut Formatter<'_>, bandwidths: &[Bandwidth]) -> fmt::Result {
    for b in bandwidths {
        write!(f, "b={}:{}\r\n", b.kind, b.value)?;
    }
    Ok(())
}

fn write_attributes(f: &mut Formatter<'_>, attributes: &[Attribute]) -> fmt::Result {
    for a in attributes {
        write!(f, "a={a}\r\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{SessionDescription, samples};

    #[test]
    fn every_sample_survives_parse_print_parse() {
        for text in samples::ALL {
            let first = SessionDescription::parse(text).unwrap();
            let printed = first.to_string();
            let second = SessionDescription::parse(&printed).unwrap();
            assert_eq!(first, second, "{printed}");
            assert_eq!(printed, second.to_string(), "printing is stable");
        }
    }

    #[test]
    fn canonical_crlf_samples_print_byte_for_byte() {
        for text in [
            samples::SIPP_UAC,
            samples::FIVE9_OFFER,
            samples::OPUS_ONLY,
            samples::HOLD_SENDONLY,
            samples::HOLD_SESSION_INACTIVE,
        ] {
            let sdp = SessionDescription::parse(text).unwrap();
            assert_eq!(sdp.to_string(), text);
        }
    }

    #[test]
    fn out_of_order_lines_come_out_in_rfc_order() {
        let text = "v=0\nt=0 0\ns=x\nc=IN IP4 1.1.1.1\ni=info\no=- 1 1 IN IP4 1.1.1.1\n\
                    m=audio 5 RTP/AVP 0\na=sendonly\nc=IN IP4 2.2.2.2\n";
        let printed = SessionDescription::parse(text).unwrap().to_string();
        assert_eq!(
            printed,
            "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=x\r\ni=info\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\n\
             m=audio 5 RTP/AVP 0\r\nc=IN IP4 2.2.2.2\r\na=sendonly\r\n"
        );
    }

    /// Found by the `sdp` fuzz target: a `d=` (unknown) line before an
    /// `e=` line printed as `e=` before `t=` and `d=` after it, and the
    /// printed text parsed to a different order: not an equal value.
    #[test]
    fn verbatim_lines_out_of_order_still_print_then_parse_equal() {
        let text = "v=0\no=Five9 1 1 IN IP4 127.0.0.1\nd=unknown 1\ne=Imtp:101 0-15\n\
                    t=0 0\nm=audio 5 RTP/AVP 0\nk=key\ni=media info\nc=IN IP4 1.1.1.1\n";
        let sdp = SessionDescription::parse(text).unwrap();
        let printed = sdp.to_string();
        assert_eq!(
            SessionDescription::parse(&printed).unwrap(),
            sdp,
            "{printed}"
        );
        assert!(
            printed.contains("e=Imtp:101 0-15\r\nt=0 0\r\nd=unknown 1\r\n"),
            "{printed}"
        );
        assert!(
            printed.contains("i=media info\r\nc=IN IP4 1.1.1.1\r\nk=key\r\n"),
            "{printed}"
        );
    }

    #[test]
    fn unknown_attributes_print_as_received() {
        let sdp = SessionDescription::parse(samples::WEBRTC_ISH).unwrap();
        let printed = sdp.to_string();
        for line in [
            "a=group:BUNDLE 0\r\n",
            "a=fingerprint:sha-256 AA:BB:CC\r\n",
            "a=rtcp-fb:111 transport-cc\r\n",
            "a=extmap-allow-mixed\r\n",
            "b=AS:128\r\n",
            "i=browser call\r\n",
        ] {
            assert!(printed.contains(line), "{line} missing from {printed}");
        }
    }
}
