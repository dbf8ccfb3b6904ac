//! Latching rules on a fake clock: which source each packet leaves the leg
//! sending to.

use super::*;

const WINDOW: Duration = Duration::from_millis(3000);
const RELATCH: Duration = Duration::from_millis(1000);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

/// Replays (ms since start, source) and returns each verdict.
fn replay(sdp: &str, signalling: &str, packets: &[(u64, &str)]) -> Vec<Verdict> {
    let t0 = Instant::now();
    let mut latch = Latch::new(Some(addr(sdp)), ip(signalling), WINDOW, RELATCH, t0);
    packets
        .iter()
        .map(|&(ms, src)| latch.check(addr(src), t0 + Duration::from_millis(ms)))
        .collect()
}

// (case, SDP address, signalling IP or "", packets, expected verdicts)
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a [(u64, &'a str)],
    &'a [Verdict],
);

fn run(cases: &[Case]) {
    for (case, sdp, signalling, packets, expected) in cases {
        assert_eq!(replay(sdp, signalling, packets), *expected, "{case}");
    }
}

#[test]
fn nat_mode_rules() {
    use Verdict::*;
    // A private SDP address, SIP from elsewhere (or unknown).
    let sdp = "10.0.0.5:4000";
    let sip = "198.51.100.7";
    run(&[
        (
            "SDP address exactly",
            sdp,
            "",
            &[(0, "10.0.0.5:4000"), (20, "10.0.0.5:4000")],
            &[Latched, Accept],
        ),
        (
            "a NAT's public address inside the window",
            sdp,
            "",
            &[(100, "203.0.113.9:6100"), (120, "203.0.113.9:6100")],
            &[Latched, Accept],
        ),
        (
            "stranger after latching",
            sdp,
            "",
            &[(0, "203.0.113.9:6100"), (10, "198.51.100.66:1234")],
            &[Latched, Reject],
        ),
        (
            "a stranger after the window never latches; the SDP's IP does",
            sdp,
            "",
            &[(3500, "198.51.100.66:1234"), (3600, "10.0.0.5:5000")],
            &[Reject, Latched],
        ),
        (
            "same IP new port needs the latched source silent; the SDP port does not",
            sdp,
            "",
            &[
                (0, "10.0.0.5:4000"),
                (500, "10.0.0.5:4002"),
                (1600, "10.0.0.5:4002"),
                (1620, "10.0.0.5:4000"),
            ],
            &[Latched, Reject, Latched, Latched],
        ),
        (
            "other IP cannot take over even when silent",
            sdp,
            "",
            &[(0, "10.0.0.5:4000"), (5000, "198.51.100.66:4000")],
            &[Latched, Reject],
        ),
        (
            "the signalling IP replaces a stranger at once",
            sdp,
            sip,
            &[
                (0, "203.0.113.66:1234"),
                (20, "198.51.100.7:30000"),
                (40, "203.0.113.66:1234"),
            ],
            &[Latched, Latched, Reject],
        ),
        (
            "the signalling IP latches after the window",
            sdp,
            sip,
            &[(9000, "203.0.113.66:1234"), (9020, "198.51.100.7:30000")],
            &[Reject, Latched],
        ),
        (
            "a stranger never replaces the signalling IP, even when silent",
            sdp,
            sip,
            &[(0, "198.51.100.7:30000"), (2000, "203.0.113.66:1234")],
            &[Latched, Reject],
        ),
        (
            "the SDP address replaces the signalling IP at once",
            sdp,
            sip,
            &[
                (0, "198.51.100.7:30000"),
                (20, "10.0.0.5:4000"),
                (40, "198.51.100.7:30000"),
            ],
            &[Latched, Latched, Reject],
        ),
        (
            "the SDP's IP replaces a silent signalling IP port (equals)",
            sdp,
            sip,
            &[
                (0, "198.51.100.7:30000"),
                (500, "10.0.0.5:4100"),
                (1500, "10.0.0.5:4100"),
            ],
            &[Latched, Reject, Latched],
        ),
        (
            "CGNAT is private too",
            "100.64.1.2:4000",
            sip,
            &[(0, "203.0.113.66:1234")],
            &[Latched],
        ),
    ]);
}

#[test]
fn strict_mode_rules() {
    use Verdict::*;
    run(&[
        (
            "public SDP: a stranger never latches, in the window or not",
            "203.0.113.9:4000",
            "",
            &[(0, "198.51.100.66:1234"), (9000, "198.51.100.66:1234")],
            &[Reject, Reject],
        ),
        (
            "public SDP: not even from the signalling IP",
            "203.0.113.9:4000",
            "198.51.100.7",
            &[(0, "198.51.100.7:4000")],
            &[Reject],
        ),
        (
            "public SDP: its IP on another port latches, the exact port takes over",
            "203.0.113.9:4000",
            "198.51.100.7",
            &[
                (0, "203.0.113.9:4002"),
                (20, "198.51.100.66:1234"),
                (40, "203.0.113.9:4000"),
                (60, "203.0.113.9:4002"),
            ],
            &[Latched, Reject, Latched, Reject],
        ),
        (
            "private SDP equal to the signalling IP: no NAT, strangers barred",
            "127.0.0.1:4000",
            "127.0.0.1",
            &[
                (0, "127.0.0.66:4000"),
                (20, "127.0.0.1:4000"),
                (40, "127.0.0.66:4000"),
            ],
            &[Reject, Latched, Reject],
        ),
    ]);
}

#[test]
fn address_kinds() {
    use AddressKind::*;
    let cases = [
        ("203.0.113.9:4000", Public),
        ("8.8.8.8:4000", Public),
        ("[2001:db8::1]:4000", Public),
        ("10.1.2.3:4000", Private),
        ("172.16.0.1:4000", Private),
        ("172.32.0.1:4000", Public),
        ("192.168.1.1:4000", Private),
        ("100.64.0.1:4000", Private),
        ("100.127.255.1:4000", Private),
        ("100.128.0.1:4000", Public),
        ("127.0.0.1:4000", Private),
        ("169.254.9.9:4000", Private),
        ("[fd00::1]:4000", Private),
        ("[fe80::1]:4000", Private),
        ("[::1]:4000", Private),
        ("[::ffff:10.0.0.1]:4000", Private),
        ("0.0.0.0:4000", Unusable),
        ("[::]:4000", Unusable),
        ("203.0.113.9:0", Unusable),
        ("224.0.0.1:4000", Unusable),
        ("255.255.255.255:4000", Unusable),
    ];
    for (a, kind) in cases {
        assert_eq!(AddressKind::of(addr(a)), kind, "{a}");
    }
}

#[test]
fn a_spray_before_the_first_packet_gets_nothing_in_strict_mode() {
    let t0 = Instant::now();
    let sdp = addr("127.0.0.1:4000");
    let mut latch = Latch::new(Some(sdp), ip("127.0.0.1"), WINDOW, RELATCH, t0);
    assert_eq!(latch.mode(), Mode::Strict);
    for port in (35000..35040).step_by(2) {
        let src = SocketAddr::new([127, 0, 0, 66].into(), port);
        assert_eq!(latch.check(src, t0), Verdict::Reject);
    }
    assert_eq!(latch.target(), Some(sdp), "still sending to the SDP only");
    assert_eq!(latch.check(sdp, t0), Verdict::Latched);
}

#[test]
fn an_unusable_sdp_address_is_never_sent_to() {
    let t0 = Instant::now();
    let sip = ip("198.51.100.7");
    let mut latch = Latch::new(Some(addr("0.0.0.0:4000")), sip, WINDOW, RELATCH, t0);
    assert_eq!((latch.mode(), latch.target()), (Mode::Nat, None));
    let from_sip = addr("198.51.100.7:4000");
    assert_eq!(latch.check(from_sip, t0), Verdict::Latched);
    assert_eq!(latch.target(), Some(from_sip));
}

#[test]
fn new_sdp_address_relearns_and_same_address_keeps_the_latch() {
    let t0 = Instant::now();
    let sdp = Some(addr("10.0.0.5:4000"));
    let mut latch = Latch::new(sdp, None, WINDOW, RELATCH, t0);
    let nat = addr("203.0.113.9:6100");
    assert_eq!(latch.check(nat, t0), Verdict::Latched);
    // Hold with 0.0.0.0, then resume with the same address: keep sending
    // where the packets came from.
    let later = t0 + Duration::from_secs(60);
    assert!(!latch.set_remote(None, None, later));
    assert!(!latch.set_remote(Some(addr("0.0.0.0:4000")), None, later));
    assert!(!latch.set_remote(sdp, None, later));
    assert_eq!(latch.target(), Some(nat));
    // A new address (agent moved): unlatched, window open again.
    assert!(latch.set_remote(Some(addr("10.0.0.9:7000")), None, later));
    assert_eq!(latch.target(), Some(addr("10.0.0.9:7000")));
    assert_eq!(latch.latched(), None);
    let other = addr("203.0.113.10:7777");
    assert_eq!(latch.check(other, later + WINDOW / 2), Verdict::Latched);
    // The signalling IP turns out to be the SDP's: strict, the stranger
    // is let go.
    assert!(latch.set_remote(Some(addr("10.0.0.9:7000")), ip("10.0.0.9"), later));
    assert_eq!(latch.target(), Some(addr("10.0.0.9:7000")));
}

#[test]
fn unknown_remote_latches_only_in_the_window() {
    let t0 = Instant::now();
    let mut latch = Latch::new(None, None, WINDOW, RELATCH, t0);
    assert_eq!(latch.target(), None);
    let src = addr("192.0.2.1:5004");
    assert_eq!(latch.check(src, t0 + WINDOW), Verdict::Reject);
    let mut latch = Latch::new(None, None, WINDOW, RELATCH, t0);
    assert_eq!(latch.check(src, t0), Verdict::Latched);
    assert_eq!(latch.target(), Some(src));
}
