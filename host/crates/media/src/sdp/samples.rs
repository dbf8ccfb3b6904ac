//! Real-world shaped SDP bodies shared by the SDP tests.

/// SIPp's built-in `uac` scenario body, with its keywords filled in.
pub(crate) const SIPP_UAC: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// What a Five9 3rd-party transfer typically offers: G.711 both laws and
/// RFC 4733 events, 20 ms.
pub(crate) const FIVE9_OFFER: &str = "v=0\r\n\
o=Five9 1234567890 1234567891 IN IP4 10.1.2.3\r\n\
s=Five9 SIP Session\r\n\
c=IN IP4 10.1.2.3\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=maxptime:150\r\n\
a=sendrecv\r\n";

/// A softphone offering only Opus (and wideband events): must get 488.
pub(crate) const OPUS_ONLY: &str = "v=0\r\n\
o=- 3891234 1 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 111 110\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=fmtp:110 0-15\r\n";

/// IPv6, media-level `c=`, RTCP on an explicit address, rtcp-mux offered,
/// static payload types without rtpmap, PCMA preferred.
pub(crate) const IPV6_MEDIA_LEVEL: &str = "v=0\n\
o=- 42 7 IN IP6 2001:db8::1\n\
s=-\n\
t=0 0\n\
m=audio 30000 RTP/AVP 8 0 9 18\n\
c=IN IP6 2001:db8::2\n\
a=rtcp:30001 IN IP6 2001:db8::3\n\
a=rtcp-mux\n";

/// A browser-shaped body: unknown attributes, `i=`, `b=`, SRTP profile.
pub(crate) const WEBRTC_ISH: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
i=browser call\r\n\
c=IN IP4 203.0.113.5\r\n\
b=AS:128\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\n\
a=ice-ufrag:F7gI\r\n\
a=fingerprint:sha-256 AA:BB:CC\r\n\
a=mid:0\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=ssrc:1 cname:x\r\n\
a=extmap-allow-mixed\r\n";

/// Hold the modern way: `a=sendonly` at media level.
pub(crate) const HOLD_SENDONLY: &str = "v=0\r\n\
o=Five9 1234567890 1234567892 IN IP4 10.1.2.3\r\n\
s=-\r\n\
c=IN IP4 10.1.2.3\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 0 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendonly\r\n";

/// Hold the RFC 2543 way: connection address 0.0.0.0, no direction attribute.
pub(crate) const HOLD_ZERO_ADDRESS: &str = "v=0\r\n\
o=legacy 1 2 IN IP4 10.9.9.9\r\n\
s=-\r\n\
c=IN IP4 0.0.0.0\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 8\r\n";

/// Session-level `a=inactive`, inherited by a second (video) stream too.
pub(crate) const HOLD_SESSION_INACTIVE: &str = "v=0\r\n\
o=- 5 6 IN IP4 10.0.0.1\r\n\
s=-\r\n\
c=IN IP4 10.0.0.1\r\n\
t=0 0\r\n\
a=inactive\r\n\
m=audio 7000 RTP/AVP 0\r\n\
m=video 7002 RTP/AVP 31\r\n";

/// Every sample, for table-driven round trips.
pub(crate) const ALL: &[&str] = &[
    SIPP_UAC,
    FIVE9_OFFER,
    OPUS_ONLY,
    IPV6_MEDIA_LEVEL,
    WEBRTC_ISH,
    HOLD_SENDONLY,
    HOLD_ZERO_ADDRESS,
    HOLD_SESSION_INACTIVE,
];
