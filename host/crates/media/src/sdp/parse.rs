//! SDP text to [`SessionDescription`].
//!
//! Tolerant where peers are sloppy without ambiguity (LF-only endings,
//! trailing whitespace, blank lines, repeated spaces, lines in a non-canonical
//! order, missing `t=`), strict where a mistake would send media to the wrong
//! place (`o=`, `c=`, `m=`). A malformed `rtpmap` or `fmtp` is kept as
//! [`Attribute::Other`]: it makes its payload type unusable
//! ([`MediaDescription::is_malformed`]) but not the whole offer, so a broken
//! line for a codec we would never pick changes nothing.

use super::{
    AddrType, Attribute, Bandwidth, Connection, Direction, Fmtp, MediaDescription, Origin,
    OtherLine, RtcpAttr, RtpMap, SdpError, SessionDescription, Timing,
};

impl SessionDescription {
    /// Parses an SDP body from bytes (a SIP message body).
    pub fn from_bytes(body: &[u8]) -> Result<SessionDescription, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)?;
        SessionDescription::parse(text)
    }

    /// Parses an SDP body.
    pub fn parse(text: &str) -> Result<SessionDescription, SdpError> {
        let mut lines = text
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty());

        let (line, first) = lines.next().ok_or(SdpError::Empty)?;
        match split_line(first) {
            Some(('v', "0")) => {}
            Some(('v', version)) => {
                return Err(SdpError::UnsupportedVersion {
                    line,
                    version: version.into(),
                });
            }
            _ => return Err(SdpError::MissingVersion { line }),
        }

        let mut origin = None;
        let mut sdp = SessionDescription {
            origin: Origin {
                username: String::new(),
                session_id: String::new(),
                session_version: 0,
                net_type: String::new(),
                addr_type: AddrType::Ip4,
                address: String::new(),
            },
            session_name: "-".into(),
            connection: None,
            bandwidths: Vec::new(),
            timings: Vec::new(),
            attributes: Vec::new(),
            other: Vec::new(),
            media: Vec::new(),
        };

        for (line, text) in lines {
            let (kind, value) = split_line(text).ok_or(SdpError::MalformedLine { line })?;
            if kind == 'm' {
                sdp.media.push(parse_media(value, line)?);
                continue;
            }
            if let Some(media) = sdp.media.last_mut() {
                match kind {
                    'c' => media.connection = Some(parse_connection(value, line)?),
                    'b' => media.bandwidths.push(parse_bandwidth(value, line)?),
                    'a' => media.attributes.push(parse_attribute(value, line)?),
                    _ => media.other.push(other(kind, value)),
                }
                continue;
            }
            match kind {
                'o' => origin = Some(parse_origin(value, line)?),
                's' if !value.is_empty() => sdp.session_name = value.into(),
                's' => {}
                'c' => sdp.connection = Some(parse_connection(value, line)?),
                'b' => sdp.bandwidths.push(parse_bandwidth(value, line)?),
                't' => sdp.timings.push(parse_timing(value, line)?),
                'a' => sdp.attributes.push(parse_attribute(value, line)?),
                // A second v= is a peer concatenating bodies; refuse it.
                'v' => return Err(SdpError::MalformedLine { line }),
                _ => sdp.other.push(other(kind, value)),
            }
        }

        sdp.origin = origin.ok_or(SdpError::MissingOrigin)?;
        // Verbatim lines in the order they are printed (`write`), so that
        // printing, then parsing, gives back an equal value even for a
        // peer's out-of-order `d=` before `e=` (found by fuzzing). The sort
        // is stable: lines of one group keep the peer's order.
        sdp.other.sort_by_key(|l| !super::write::is_early(l));
        for media in &mut sdp.media {
            media.other.sort_by_key(|l| l.kind != 'i');
        }
        if sdp.timings.is_empty() {
            sdp.timings.push(Timing::default());
        }
        if sdp.connection.is_none() {
            // RFC 4566 §5.7: every active stream needs an address; without one
            // the relay would not know where to send.
            if let Some(i) = sdp
                .media
                .iter()
                .position(|m| m.port != 0 && m.connection.is_none())
            {
                return Err(SdpError::MissingConnection { media: i });
            }
        }
        Ok(sdp)
    }
}

fn split_line(line: &str) -> Option<(char, &str)> {
    let mut chars = line.chars();
    let kind = chars.next().filter(char::is_ascii_lowercase)?;
    let rest = chars.as_str().strip_prefix('=')?;
    Some((kind, rest.trim()))
}

fn other(kind: char, value: &str) -> OtherLine {
    OtherLine {
        kind,
        value: value.into(),
    }
}

fn parse_origin(value: &str, line: usize) -> Result<Origin, SdpError> {
    let bad = || SdpError::InvalidOrigin { line };
    let f: Vec<&str> = value.split_ascii_whitespace().collect();
    let [username, session_id, version, net_type, addr_type, address] = f[..] else {
        return Err(bad());
    };
    Ok(Origin {
        username: username.into(),
        session_id: session_id.into(),
        session_version: version.parse().map_err(|_| bad())?,
        net_type: net_type.into(),
        addr_type: parse_addr_type(addr_type, line)?,
        address: check_family(address, addr_type, line)?,
    })
}

fn parse_addr_type(token: &str, line: usize) -> Result<AddrType, SdpError> {
    if token.eq_ignore_ascii_case("IP4") {
        Ok(AddrType::Ip4)
    } else if token.eq_ignore_ascii_case("IP6") {
        Ok(AddrType::Ip6)
    } else {
        Err(SdpError::UnknownAddressType {
            line,
            addr_type: token.into(),
        })
    }
}

/// Host names pass; an IP literal must be of the announced family, or the
/// relay would open the wrong socket family.
fn check_family(address: &str, addr_type: &str, line: usize) -> Result<String, SdpError> {
    let family = parse_addr_type(addr_type, line)?;
    let literal = address.split('/').next().unwrap_or(address);
    if let Ok(ip) = literal.parse::<std::net::IpAddr>()
        && AddrType::of(ip) != family
    {
        return Err(SdpError::AddressFamilyMismatch {
            line,
            address: address.into(),
        });
    }
    Ok(address.into())
}

fn parse_connection(value: &str, line: usize) -> Result<Connection, SdpError> {
    let f: Vec<&str> = value.split_ascii_whitespace().collect();
    let [net_type, addr_type, address] = f[..] else {
        return Err(SdpError::InvalidConnection { line });
    };
    Ok(Connection {
        net_type: net_type.into(),
        addr_type: parse_addr_type(addr_type, line)?,
        address: check_family(address, addr_type, line)?,
    })
}

fn parse_bandwidth(value: &str, line: usize) -> Result<Bandwidth, SdpError> {
    let (kind, v) = value
        .split_once(':')
        .ok_or(SdpError::InvalidBandwidth { line })?;
    Ok(Bandwidth {
        kind: kind.trim().into(),
        value: v
            .trim()
            .parse()
            .map_err(|_| SdpError::InvalidBandwidth { line })?,
    })
}

fn parse_timing(value: &str, line: usize) -> Result<Timing, SdpError> {
    let bad = || SdpError::InvalidTiming { line };
    let mut f = value.split_ascii_whitespace();
    let (Some(start), Some(stop), None) = (f.next(), f.next(), f.next()) else {
        return Err(bad());
    };
    Ok(Timing {
        start: start.parse().map_err(|_| bad())?,
        stop: stop.parse().map_err(|_| bad())?,
    })
}

fn parse_media(value: &str, line: usize) -> Result<MediaDescription, SdpError> {
    let bad = || SdpError::InvalidMedia { line };
    let mut f = value.split_ascii_whitespace();
    let (Some(media), Some(port), Some(protocol)) = (f.next(), f.next(), f.next()) else {
        return Err(bad());
    };
    let (port, port_count) = match port.split_once('/') {
        Some((p, n)) => (p, Some(n.parse().map_err(|_| bad())?)),
        None => (port, None),
    };
    Ok(MediaDescription {
        media: media.into(),
        port: port.parse().map_err(|_| bad())?,
        port_count,
        protocol: protocol.into(),
        formats: f.map(String::from).collect(),
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
        other: Vec::new(),
    })
}

fn parse_attribute(value: &str, line: usize) -> Result<Attribute, SdpError> {
    let (name, arg) = match value.split_once(':') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (value, None),
    };
    let bad = || SdpError::InvalidAttribute {
        line,
        name: name.into(),
    };
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    if let (Some(d), None) = (Direction::from_name(name), arg) {
        return Ok(Attribute::Direction(d));
    }
    Ok(match arg {
        Some(arg) if is("rtpmap") => match parse_rtpmap(arg) {
            Some(map) => Attribute::RtpMap(map),
            None => unknown(name, Some(arg)),
        },
        Some(arg) if is("ptime") => Attribute::Ptime(parse_millis(arg).ok_or_else(bad)?),
        Some(arg) if is("maxptime") => Attribute::MaxPtime(parse_millis(arg).ok_or_else(bad)?),
        Some(arg) if is("rtcp") => Attribute::Rtcp(parse_rtcp(arg, line).ok_or_else(bad)?),
        Some(arg) if is("fmtp") => match arg.split_once(' ') {
            // Non-numeric formats (non-RTP media) are kept as unknown attributes.
            Some((pt, params)) if pt.parse::<u8>().is_ok_and(|pt| pt < 128) => {
                Attribute::Fmtp(Fmtp {
                    payload_type: pt.parse().map_err(|_| bad())?,
                    params: params.trim().into(),
                })
            }
            _ => unknown(name, Some(arg)),
        },
        None if is("rtpmap") || is("fmtp") => unknown(name, None),
        None if is("rtcp-mux") => Attribute::RtcpMux,
        _ => unknown(name, arg),
    })
}

fn unknown(name: &str, value: Option<&str>) -> Attribute {
    Attribute::Other {
        name: name.into(),
        value: value.map(String::from),
    }
}

fn parse_rtpmap(arg: &str) -> Option<RtpMap> {
    let (pt, rest) = arg.split_once(' ')?;
    let payload_type = pt.parse::<u8>().ok().filter(|pt| *pt < 128)?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next().filter(|e| !e.is_empty())?;
    let clock_rate = parts.next()?.trim().parse().ok().filter(|r| *r > 0)?;
    let channels = match parts.next() {
        Some(c) => Some(c.trim().parse().ok()?),
        None => None,
    };
    parts.next().is_none().then(|| RtpMap {
        payload_type,
        encoding: encoding.into(),
        clock_rate,
        channels,
    })
}

/// Milliseconds; some devices write `20.0`, which means 20.
fn parse_millis(arg: &str) -> Option<u32> {
    let int = arg.split_once('.').map_or(arg, |(i, _)| i);
    int.parse().ok()
}

fn parse_rtcp(arg: &str, line: usize) -> Option<RtcpAttr> {
    let (port, rest) = match arg.split_once(' ') {
        Some((p, r)) => (p, Some(r)),
        None => (arg, None),
    };
    Some(RtcpAttr {
        port: port.parse().ok()?,
        connection: match rest {
            Some(r) => Some(parse_connection(r, line).ok()?),
            None => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::samples;

    fn parse(text: &str) -> Result<SessionDescription, SdpError> {
        SessionDescription::parse(text)
    }

    #[test]
    fn five9_like_offer_is_fully_understood() {
        let sdp = parse(samples::FIVE9_OFFER).unwrap();
        assert_eq!(sdp.origin.username, "Five9");
        assert_eq!(sdp.origin.session_version, 1_234_567_891);
        assert_eq!(sdp.connection.as_ref().unwrap().address, "10.1.2.3");
        let m = &sdp.media[0];
        assert_eq!((m.media.as_str(), m.port), ("audio", 20000));
        assert_eq!(m.payload_types().collect::<Vec<_>>(), [0, 8, 101]);
        assert_eq!(m.rtpmap(101).unwrap().encoding, "telephone-event");
        assert_eq!(m.fmtp(101), Some("0-15"));
        assert_eq!(m.ptime(), Some(20));
        assert!(
            m.attributes
                .contains(&Attribute::Direction(Direction::SendRecv))
        );
    }

    #[test]
    fn lf_only_and_trailing_whitespace_are_accepted() {
        let crlf = parse(samples::FIVE9_OFFER).unwrap();
        let sloppy: String = samples::FIVE9_OFFER
            .lines()
            .map(|l| format!("{l}  \t\n"))
            .collect::<String>()
            + "\n\n";
        assert_eq!(parse(&sloppy).unwrap(), crlf);
    }

    #[test]
    fn media_level_connection_and_rtcp_attributes() {
        let sdp = parse(samples::IPV6_MEDIA_LEVEL).unwrap();
        assert!(sdp.connection.is_none());
        let m = &sdp.media[0];
        assert_eq!(m.connection.as_ref().unwrap().addr_type, AddrType::Ip6);
        assert_eq!(
            m.connection.as_ref().unwrap().ip(),
            "2001:db8::2".parse().ok()
        );
        let rtcp = m.rtcp().unwrap();
        assert_eq!(rtcp.port, 30001);
        assert_eq!(rtcp.connection.as_ref().unwrap().address, "2001:db8::3");
        assert!(m.rtcp_mux());
    }

    #[test]
    fn unknown_attributes_and_lines_are_kept() {
        let sdp = parse(samples::WEBRTC_ISH).unwrap();
        let m = &sdp.media[0];
        assert!(m.attributes.contains(&Attribute::Other {
            name: "ice-ufrag".into(),
            value: Some("F7gI".into())
        }));
        assert!(m.attributes.contains(&Attribute::Other {
            name: "ssrc".into(),
            value: Some("1 cname:x".into())
        }));
        assert!(sdp.other.iter().any(|o| o.kind == 'i'));
        assert_eq!(sdp.bandwidths[0].value, 128);
        assert_eq!(m.protocol, "UDP/TLS/RTP/SAVPF");
    }

    #[test]
    fn missing_timing_defaults_and_decimal_ptime_is_read() {
        let sdp = parse("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nm=audio 4000 RTP/AVP 0\na=ptime:20.0\n").unwrap();
        assert_eq!(sdp.timings, [Timing::default()]);
        assert_eq!(sdp.media[0].ptime(), Some(20));
    }

    #[test]
    fn errors_name_the_problem_and_line() {
        let o = "o=- 1 1 IN IP4 1.2.3.4\n";
        let cases: &[(&str, SdpError)] = &[
            ("", SdpError::Empty),
            ("\n\n", SdpError::Empty),
            (
                "o=- 1 1 IN IP4 1.2.3.4\n",
                SdpError::MissingVersion { line: 1 },
            ),
            (
                "v=1\n",
                SdpError::UnsupportedVersion {
                    line: 1,
                    version: "1".into(),
                },
            ),
            ("v=0\ns=-\n", SdpError::MissingOrigin),
            (
                "v=0\no=- 1 IN IP4 1.2.3.4\n",
                SdpError::InvalidOrigin { line: 2 },
            ),
            (
                "v=0\no=- 1 x IN IP4 1.2.3.4\n",
                SdpError::InvalidOrigin { line: 2 },
            ),
            ("v=0\nbogus\n", SdpError::MalformedLine { line: 2 }),
            ("v=0\nX=1\n", SdpError::MalformedLine { line: 2 }),
            (
                "v=0\no=- 1 1 IN IP5 h\n",
                SdpError::UnknownAddressType {
                    line: 2,
                    addr_type: "IP5".into(),
                },
            ),
            (
                "v=0\no=- 1 1 IN IP6 1.2.3.4\n",
                SdpError::AddressFamilyMismatch {
                    line: 2,
                    address: "1.2.3.4".into(),
                },
            ),
            ("v=0\nc=IN IP4\n", SdpError::InvalidConnection { line: 2 }),
            ("v=0\nt=0\n", SdpError::InvalidTiming { line: 2 }),
            ("v=0\nb=AS\n", SdpError::InvalidBandwidth { line: 2 }),
            (
                "v=0\nm=audio x RTP/AVP 0\n",
                SdpError::InvalidMedia { line: 2 },
            ),
            ("v=0\nm=audio 5\n", SdpError::InvalidMedia { line: 2 }),
            (
                "v=0\na=ptime:abc\n",
                SdpError::InvalidAttribute {
                    line: 2,
                    name: "ptime".into(),
                },
            ),
            (
                "v=0\na=rtcp:x\n",
                SdpError::InvalidAttribute {
                    line: 2,
                    name: "rtcp".into(),
                },
            ),
            ("v=0\nv=0\n", SdpError::MalformedLine { line: 2 }),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).as_ref().err(), Some(want), "{text:?}");
        }
        let no_c = format!("v=0\n{o}s=-\nt=0 0\nm=audio 0 RTP/AVP 0\nm=audio 5 RTP/AVP 0\n");
        assert_eq!(parse(&no_c), Err(SdpError::MissingConnection { media: 1 }));
        assert_eq!(
            SessionDescription::from_bytes(b"v=0\xff"),
            Err(SdpError::NotUtf8)
        );
    }

    #[test]
    fn malformed_rtpmap_and_fmtp_are_kept_aside_not_fatal() {
        let o = "o=- 1 1 IN IP4 1.2.3.4\n";
        let text = format!(
            "v=0\n{o}c=IN IP4 1.2.3.4\nm=audio 5 RTP/AVP 0 96 97\na=rtpmap:96 opus\n\
             a=rtpmap:200 X/8000\na=fmtp:97\na=rtpmap\n"
        );
        let sdp = parse(&text).unwrap();
        let m = &sdp.media[0];
        assert_eq!(m.rtpmap(96), None);
        assert!(m.is_malformed(96) && m.is_malformed(97) && !m.is_malformed(0));
        assert_eq!(
            m.malformed_lines().collect::<Vec<_>>(),
            [
                ("rtpmap", "96 opus"),
                ("rtpmap", "200 X/8000"),
                ("fmtp", "97"),
                ("rtpmap", "")
            ]
        );
    }

    #[test]
    fn truncated_or_garbled_bodies_never_panic() {
        // A peer can cut a body anywhere (UDP fragment loss, bad
        // Content-Length); each prefix must parse or give an error.
        for text in samples::ALL {
            for cut in 0..=text.len() {
                if text.is_char_boundary(cut) {
                    let _ = SessionDescription::parse(&text[..cut]);
                }
            }
            let garbled: String = text
                .chars()
                .map(|c| if c == ' ' { ':' } else { c })
                .collect();
            let _ = SessionDescription::parse(&garbled);
            let no_colon: String = text.chars().filter(|c| *c != ':' && *c != '/').collect();
            let _ = SessionDescription::parse(&no_colon);
        }
    }
}
