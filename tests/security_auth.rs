//! Digest authentication under attack, against the real binary on
//! loopback: online password guessing with a fresh Call-ID per guess is
//! blocked within the configured budget (the right password included, a
//! clean source still admitted), refusal logs stay within their budget, and
//! SIPVicious (`svmap`, `svwar`, `svcrack`) finds nothing and gets blocked.

mod support;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use support::gateway::Gateway;
use support::http;
use support::sip_text::{Msg, UdpPeer};
use support::unique;

/// How long a response the gateway owes may take (debug build, two cores
/// shared with other tests).
const SOON: Duration = Duration::from_secs(10);
const REALM: &str = "trunkline";
const USER: &str = "five9";
const PASSWORD: &str = "Tr0ub4dor-and-3";
/// The test budget: 5 failures in 600 s block for 600 s (windows long
/// enough that a slow machine cannot stretch the test past them).
const BUDGET: usize = 5;

/// A digest trunk (MD5, which SIPVicious speaks) whose calls go to the
/// builtin agent, with the lockout at `failures` (0: off).
fn gateway(failures: usize) -> Gateway {
    Gateway::builder("route-reason")
        .policy_toml("default_agent = \"builtin:default\"")
        .trunk_toml(&format!(
            "allow = []\n[trunk.auth]\nrealm = \"{REALM}\"\nalgorithms = [\"MD5\"]\n\
             users = {{ {USER} = \"{PASSWORD}\" }}\nlockout_failures = {failures}\n\
             lockout_window_secs = 600\nlockout_block_secs = 600\n"
        ))
        .start()
}

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

/// A quoted parameter of a challenge.
fn param(challenge: &str, name: &str) -> String {
    let start = format!("{name}=\"");
    challenge
        .split(&start)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in {challenge}"))
        .to_owned()
}

/// The RFC 2617 answer (MD5, qop=auth) to the challenge in `response`,
/// for an INVITE to `uri` with `password`.
fn authorization(response: &Msg, uri: &str, password: &str) -> String {
    let challenge = response.header("WWW-Authenticate").expect("a challenge");
    let (nonce, opaque) = (param(challenge, "nonce"), param(challenge, "opaque"));
    let cnonce = md5_hex(&unique("cnonce"))[..16].to_owned();
    let nc = "00000001";
    let ha1 = md5_hex(&format!("{USER}:{REALM}:{password}"));
    let ha2 = md5_hex(&format!("INVITE:{uri}"));
    let digest = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    format!(
        "Digest username=\"{USER}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{digest}\", algorithm=MD5, cnonce=\"{cnonce}\", nc={nc}, qop=auth, \
         opaque=\"{opaque}\""
    )
}

/// Five9's side: INVITEs from one address, each on its own Call-ID.
struct Caller {
    peer: UdpPeer,
}

/// One INVITE transaction.
struct Invite {
    call_id: String,
    tag: String,
    branch: String,
    cseq: u32,
}

impl Caller {
    fn new(gw: &Gateway) -> Caller {
        Caller {
            peer: UdpPeer::new(gw.sip),
        }
    }

    fn uri(&self) -> String {
        format!("sip:+14155550100@{}", self.peer.gw)
    }

    /// Sends an INVITE (a new call, or `after`'s call with the next CSeq)
    /// carrying `auth`; returns it with its final response, after ACKing a
    /// failure.
    fn invite(&self, after: Option<&Invite>, auth: Option<&str>) -> (Invite, Msg) {
        let invite = Invite {
            call_id: after.map_or_else(|| unique("guess"), |i| i.call_id.clone()),
            tag: after.map_or_else(|| unique("tag"), |i| i.tag.clone()),
            branch: format!("z9hG4bK-{}", unique("b")),
            cseq: after.map_or(1, |i| i.cseq + 1),
        };
        let (me, gw) = (self.peer.me, self.peer.gw);
        let ip = me.ip();
        let body = format!(
            "v=0\r\no=five9 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        );
        let auth = auth.map_or_else(String::new, |a| format!("Authorization: {a}\r\n"));
        let text = format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:+14155550123@five9.example.com>;tag={tag}\r\n\
             To: <sip:+14155550100@{gw}>\r\nCall-ID: {cid}\r\nCSeq: {cseq} INVITE\r\n\
             Contact: <sip:five9@{me}>\r\n{auth}Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{body}",
            uri = self.uri(),
            branch = invite.branch,
            tag = invite.tag,
            cid = invite.call_id,
            cseq = invite.cseq,
            len = body.len(),
        );
        self.peer.send(&text);
        let cseq = format!("{} INVITE", invite.cseq);
        let response = self.peer.wait_for_msg("a final response", SOON, |m| {
            m.header("Call-ID") == Some(invite.call_id.as_str())
                && m.header("CSeq") == Some(cseq.as_str())
                && m.status().is_some_and(|s| s >= 200)
        });
        if response.status() != Some(200) {
            self.ack_failure(&invite, &response);
        }
        (invite, response)
    }

    /// The ACK of a non-2xx final response (same branch, RFC 3261 §17.1.1.3).
    fn ack_failure(&self, invite: &Invite, response: &Msg) {
        self.peer.send(&format!(
            "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:+14155550123@five9.example.com>;tag={tag}\r\n\
             To: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
            uri = self.uri(),
            me = self.peer.me,
            branch = invite.branch,
            tag = invite.tag,
            to = response.header("To").unwrap_or_default(),
            cid = invite.call_id,
            cseq = invite.cseq,
        ));
    }

    /// ACK then BYE for the call `ok` answered.
    fn hang_up(&self, invite: &Invite, ok: &Msg) {
        for (method, cseq) in [("ACK", invite.cseq), ("BYE", invite.cseq + 1)] {
            self.peer.send(&format!(
                "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{b};rport\r\n\
                 Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\n\
                 CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
                target = ok.contact_uri().expect("Contact in the 200"),
                me = self.peer.me,
                b = unique("b"),
                from = ok.header("From").expect("From"),
                to = ok.header("To").expect("To"),
                cid = invite.call_id,
            ));
        }
        self.peer.wait_for_msg("200 to the BYE", SOON, |m| {
            m.cseq_method() == Some("BYE") && m.status().is_some()
        });
    }
}

/// A counter's value on `/metrics` (0 when the series is absent).
fn metric(gw: &Gateway, series: &str) -> u64 {
    let r = http::get(gw.http, "/metrics", None);
    assert_eq!(r.status, 200, "{r}");
    r.body
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

fn assert_forbidden_unchallenged(response: &Msg, what: &str) {
    assert_eq!(response.status(), Some(403), "{what}: {response:?}");
    assert!(
        response.header("WWW-Authenticate").is_none(),
        "{what}: a blocked source gets no challenge: {response:?}"
    );
}

/// Lines of the log that contain `needle` and name `ip` as their source.
fn log_lines(gw: &Gateway, ip: IpAddr, needle: &str) -> usize {
    let source = format!("source={ip}");
    gw.log()
        .lines()
        .filter(|l| {
            l.contains(needle)
                && l.split_whitespace()
                    .any(|word| word.trim_end_matches(',') == source)
        })
        .count()
}

/// The attack the issue measured at 720 guesses/s: a fresh Call-ID per
/// guess, each answered with a correctly computed digest of a wrong
/// password. The source is blocked after the budget, the right password
/// from it is refused, and another source with the right password is
/// admitted (a username's count never refuses a clean source).
#[test]
fn online_guessing_across_call_ids_is_blocked() {
    let gw = gateway(BUDGET);
    let attacker = Caller::new(&gw);
    let mut wrong = 0;
    let mut last_challenge = None;
    let mut blocked = None;
    for round in 1..=3 * BUDGET {
        let (first, challenge) = attacker.invite(None, None);
        if challenge.status() == Some(403) {
            blocked = Some(challenge);
            break;
        }
        assert_eq!(
            challenge.status(),
            Some(401),
            "round {round}: {challenge:?}"
        );
        let guess = authorization(&challenge, &attacker.uri(), &format!("guess-{round}"));
        last_challenge = Some(challenge);
        let (_, answer) = attacker.invite(Some(&first), Some(&guess));
        assert!(
            matches!(answer.status(), Some(401 | 403)),
            "round {round}: a wrong password: {answer:?}"
        );
        wrong += 1;
    }
    let blocked = blocked.unwrap_or_else(|| panic!("not blocked after {wrong} wrong guesses"));
    assert_forbidden_unchallenged(&blocked, "an INVITE from the blocked source");
    assert_eq!(wrong, BUDGET, "blocked after exactly the configured budget");

    // The right password, on a nonce the gateway issued and that is still
    // fresh, is refused during the block.
    let challenge = last_challenge.expect("at least one challenge");
    let right = authorization(&challenge, &attacker.uri(), PASSWORD);
    let (refused, response) = attacker.invite(None, Some(&right));
    assert_forbidden_unchallenged(&response, "the right password from the blocked source");
    let late: Vec<Msg> = attacker
        .peer
        .collect(Duration::from_millis(500))
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| {
            m.header("Call-ID") == Some(refused.call_id.as_str()) && m.status() == Some(200)
        })
        .collect();
    assert!(late.is_empty(), "no call for the blocked source: {late:?}");
    let ip = attacker.peer.me.ip();
    assert_eq!(
        log_lines(&gw, ip, "digest authentication passed"),
        0,
        "the right password was verified for a blocked source:\n{}",
        gw.log()
    );

    // Another source, with the right password, is admitted and answered.
    let peer = Caller::new(&gw);
    assert_ne!(peer.peer.me.ip(), ip, "the test needs two addresses");
    let (first, challenge) = peer.invite(None, None);
    assert_eq!(challenge.status(), Some(401), "{challenge:?}");
    let right = authorization(&challenge, &peer.uri(), PASSWORD);
    let (call, ok) = peer.invite(Some(&first), Some(&right));
    assert_eq!(
        ok.status(),
        Some(200),
        "a clean source with the right password: {ok:?}"
    );
    peer.hang_up(&call, &ok);

    // More refusals do not log more WARN lines: one per block.
    for _ in 0..3 {
        let (_, response) = attacker.invite(None, None);
        assert_forbidden_unchallenged(&response, "still blocked");
    }
    assert_eq!(
        log_lines(&gw, ip, "too many failures; blocked"),
        1,
        "{}",
        gw.log()
    );
    assert_eq!(
        metric(&gw, "trunkline_auth_lockouts_total{scope=\"source\"}"),
        1
    );
    assert!(
        metric(
            &gw,
            "trunkline_auth_lockout_refusals_total{reason=\"blocked\"}"
        ) >= 5,
        "every refusal during the block is counted"
    );
    assert!(!gw.log().contains(PASSWORD), "a password in the log");
}

/// A flood of INVITEs from a source no trunk admits: they get their 403s,
/// but the log holds at most 10 refusal lines a second, and the summary
/// lines account for every other 403 the gateway sent.
#[test]
fn refusal_log_lines_stay_within_their_budget() {
    let gw = Gateway::builder("route-reason")
        .policy_toml("default_agent = \"sip:agent@127.0.0.1:9\"")
        .trunk_toml("allow = [\"10.99.0.0/16\"]\n")
        .start();
    let peer = UdpPeer::new(gw.sip);
    let started = Instant::now();
    const FLOOD: usize = 400;
    let mut answered = std::collections::HashSet::new();
    let mut collect = |limit: Duration| {
        while let Some(m) = peer.recv(limit) {
            if m.status() == Some(403)
                && let Some(cid) = m.header("Call-ID")
            {
                answered.insert(cid.to_owned());
            }
        }
    };
    for i in 0..FLOOD {
        peer.send(&format!(
            "INVITE sip:+14155550100@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-flood{i}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@{me}>;tag=t{i}\r\nTo: <sip:+14155550100@{gw}>\r\n\
             Call-ID: flood-{i}-{n}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
            gw = gw.sip,
            me = peer.me,
            n = unique("f"),
        ));
        // In bursts of 20, reading the answers in between: each is sent
        // once, and a socket buffer holds only a couple of hundred.
        if i % 20 == 19 {
            collect(Duration::from_millis(5));
        }
    }
    collect(Duration::from_secs(2));
    // Datagrams can be lost on a loaded machine; most must arrive.
    assert!(
        answered.len() >= FLOOD / 2,
        "only {} of {FLOOD} INVITEs got their 403",
        answered.len()
    );
    // One more, a second later: it carries the count of the lines left out.
    std::thread::sleep(Duration::from_millis(1100));
    let (_, last) = {
        let c = Caller::new(&gw);
        c.invite(None, None)
    };
    assert_eq!(last.status(), Some(403));
    let elapsed = started.elapsed().as_secs() + 1;
    gw.wait_for_log("refused INVITEs not logged", SOON);
    let log = gw.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("no trunk admits"))
        .count();
    let suppressed: usize = log
        .lines()
        .filter(|l| l.contains("refused INVITEs not logged"))
        .filter_map(|l| {
            let rest = l.split("suppressed").nth(1)?;
            let digits: String = rest
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<usize>().ok()
        })
        .sum();
    assert!(
        lines as u64 <= 10 * (elapsed + 1),
        "{lines} refusal lines in {elapsed} s"
    );
    // Every 403 the gateway sent is a refusal, logged or counted.
    let refused = metric(&gw, "trunkline_sip_responses_sent_total{status=\"403\"}");
    assert!(
        refused as usize > answered.len(),
        "{refused} 403s sent, {} received",
        answered.len()
    );
    assert_eq!(
        (lines + suppressed) as u64,
        refused,
        "logged plus counted is every refusal\n{log}"
    );
}

// ------------------------------------------------------------ SIPVicious

/// The program `name` on `PATH`.
fn tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.is_file())
}

/// Where SIPVicious tools send from: 0.3.3 ignores `-b` (its scanners are
/// never given the binding address), so the kernel picks 127.0.0.1 for
/// loopback targets. No other test here uses that address, and each test
/// has a gateway of its own.
const SIPVICIOUS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Runs a SIPVicious tool with a hard time limit (SIGINT, on which it
/// prints what it found, then SIGKILL); its stdout and stderr. Each run
/// gets a fresh local port (`-P`): a run on the default 5060 could read
/// answers owed to an earlier one.
fn sipvicious(program: &str, limit: Duration, args: &[String]) -> String {
    let port = UdpSocket::bind(SocketAddr::new(SIPVICIOUS, 0))
        .and_then(|s| s.local_addr())
        .expect("a free local port")
        .port();
    let out = Command::new("timeout")
        .args(["-s", "INT", "-k", "5"])
        .arg(format!("{}", limit.as_secs()))
        .arg(program)
        .arg("-P")
        .arg(port.to_string())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("--- {program} {args:?}\n{text}");
    text
}

/// Whether `ip` is blocked: an INVITE from it gets a bare 403.
fn is_blocked(gw: &Gateway, ip: IpAddr) -> bool {
    let sock = UdpSocket::bind(SocketAddr::new(ip, 0)).expect("a socket on the address");
    let me = sock.local_addr().expect("address");
    let caller = Caller {
        peer: UdpPeer {
            sock,
            me,
            gw: gw.sip,
        },
    };
    let (_, response) = caller.invite(None, None);
    response.status() == Some(403) && response.header("WWW-Authenticate").is_none()
}

fn dictionary(dir: &std::path::Path) -> PathBuf {
    // The right password after more wrong ones than the budget.
    let mut words: Vec<String> = (1..=BUDGET + 2).map(|i| format!("wrong{i}")).collect();
    words.push(PASSWORD.to_owned());
    words.extend(["letmein", "123456"].map(String::from));
    let path = dir.join("dictionary.txt");
    std::fs::write(&path, words.join("\n") + "\n").expect("writing the dictionary");
    path
}

/// `svcrack` against the trunk: with the lockout off it finds the
/// password (so the tool and the test work), with it on it does not, and
/// its source ends up blocked. `svwar` cannot tell extensions apart, and
/// `svmap` learns no product or version.
#[test]
fn sipvicious_finds_nothing_and_gets_blocked() {
    let tools = ["svmap", "svwar", "svcrack"].map(tool);
    let [Some(svmap), Some(svwar), Some(svcrack)] = tools else {
        eprintln!(
            "SKIPPED: SIPVicious is not installed (Debian package `sipvicious`: svmap, svwar, svcrack)"
        );
        return;
    };
    let (svmap, svwar, svcrack) = (
        svmap.display().to_string(),
        svwar.display().to_string(),
        svcrack.display().to_string(),
    );
    let crack = |gw: &Gateway, dir: &std::path::Path| {
        let args: Vec<String> = [
            "-u",
            USER,
            "-d",
            &dictionary(dir).display().to_string(),
            "-m",
            "INVITE",
            "-p",
            &gw.sip.port().to_string(),
            "-t",
            "0.05",
            "--maximumtime",
            "5",
            &gw.sip.ip().to_string(),
        ]
        .map(String::from)
        .to_vec();
        // Blocked, svcrack keeps asking for challenges and getting 403s
        // until it is stopped; 25 s is ample for 10 guesses.
        sipvicious(&svcrack, Duration::from_secs(25), &args)
    };

    // Control: no lockout, and svcrack finds the password.
    let open = gateway(0);
    let from = SIPVICIOUS;
    let out = crack(&open, open.dir());
    assert!(
        log_lines(&open, from, "digest authentication passed") >= 1,
        "svcrack's right guess must pass without a lockout (else this test proves nothing)\n{out}\n{}",
        open.log()
    );
    drop(open);

    let gw = gateway(BUDGET);
    // svmap: finds a SIP service (it is one) but no product or version.
    let out = sipvicious(
        &svmap,
        Duration::from_secs(30),
        &[
            "-p".into(),
            gw.sip.port().to_string(),
            gw.sip.ip().to_string(),
        ],
    );
    let row = out
        .lines()
        .find(|l| l.contains(&gw.sip.to_string()))
        .unwrap_or_else(|| panic!("svmap did not even find the SIP service:\n{out}"));
    assert!(
        row.contains("unknown") && !out.to_ascii_lowercase().contains("trunkline"),
        "svmap fingerprints the product:\n{out}"
    );
    // svwar: every extension answers alike, so none is listed.
    let extensions = gw.dir().join("extensions.txt");
    let names: Vec<String> = (100..=110).map(|n| n.to_string()).collect();
    std::fs::write(
        &extensions,
        format!("{USER}\nadmin\n{}\n", names.join("\n")),
    )
    .expect("writing the extensions");
    for method in ["INVITE", "REGISTER", "OPTIONS"] {
        let out = sipvicious(
            &svwar,
            Duration::from_secs(40),
            &[
                "-d".into(),
                extensions.display().to_string(),
                "-m".into(),
                method.into(),
                "--force".into(),
                "-p".into(),
                gw.sip.port().to_string(),
                "-t".into(),
                "0.05".into(),
                gw.sip.ip().to_string(),
            ],
        );
        assert!(
            out.contains("found nothing"),
            "svwar -m {method} found something:\n{out}"
        );
        for extension in ["five9", "100", "admin"] {
            assert!(
                !out.lines().any(|l| l.contains(&format!("| {extension} "))
                    || l.contains(&format!("'{extension}' exists"))),
                "svwar -m {method} tells extension {extension} apart:\n{out}"
            );
        }
    }
    // svcrack: the right password comes after the budget; it is never
    // verified, svcrack reports nothing, and its source is blocked.
    let out = crack(&gw, gw.dir());
    assert!(
        !out.contains(PASSWORD),
        "svcrack found the password:\n{out}"
    );
    assert_eq!(
        log_lines(&gw, from, "digest authentication passed"),
        0,
        "a password from svcrack was accepted\n{}",
        gw.log()
    );
    assert!(is_blocked(&gw, from), "svcrack's source is not blocked");
    assert!(metric(&gw, "trunkline_auth_lockouts_total{scope=\"source\"}") >= 1);
}
