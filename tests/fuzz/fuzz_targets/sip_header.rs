//! Header values a peer writes, each through its own parser: URIs,
//! name-addr (From/To/Contact), Via, CSeq, hosts, methods, digest
//! `Authorization` (parsed and verified) and the `WWW-Authenticate` we send,
//! and any header line inside a real request. Whatever parses prints back to
//! something that parses to the same value.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use trunkline_fuzz::{Input, exercise};
use trunkline_sip::auth::fuzzing::auth_params;
use trunkline_sip::auth::{
    Algorithm, Credentials, DigestAuth, DigestConfig, DigestCredentials, NonceKey, Secret,
    Verification,
};
use trunkline_sip::message::{
    CSeq, Host, Method, NameAddr, SipMessage, Uri, Via, ViaTrust, response_target,
};

const HEAD: &str = "INVITE sip:18005550100@192.0.2.10 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-1\r\n\
    From: <sip:5550199@198.51.100.20>;tag=f1\r\n\
    To: <sip:18005550100@192.0.2.10>\r\n\
    Call-ID: fuzz-1@198.51.100.20\r\n\
    CSeq: 1 INVITE\r\n\
    Max-Forwards: 70\r\n";

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

fn uri(text: &str) {
    let Some(uri) = Uri::parse(text) else { return };
    let printed = uri.to_string();
    assert_eq!(Uri::parse(&printed).as_ref(), Some(&uri), "{printed}");
    let _ = (
        uri.dialed_user(),
        uri.param("transport"),
        uri.default_port(),
    );
}

fn name_addr(text: &str) {
    if let Some(list) = NameAddr::parse_list(text) {
        for n in &list {
            let printed = n.to_string();
            assert_eq!(NameAddr::parse(&printed).as_ref(), Some(n), "{printed}");
        }
    }
    let Some(mut n) = NameAddr::parse(text) else {
        return;
    };
    let _ = (n.tag(), n.parsed_uri());
    let printed = n.to_string();
    assert_eq!(NameAddr::parse(&printed).as_ref(), Some(&n), "{printed}");
    // What a reply does to To: the tag we add reads back.
    n.set_param("tag", Some("t-1"));
    let tagged = NameAddr::parse(&n.to_string()).expect("a tagged name-addr parses");
    assert_eq!(tagged.tag(), Some("t-1"));
}

fn via(text: &str) {
    if let Some(list) = Via::parse_list(text) {
        for v in &list {
            let printed = v.to_string();
            assert_eq!(Via::parse(&printed).as_ref(), Some(v), "{printed}");
        }
    }
    let Some(v) = Via::parse(text) else { return };
    let printed = v.to_string();
    assert_eq!(Via::parse(&printed).as_ref(), Some(&v), "{printed}");
    let _ = (
        v.branch(),
        v.received(),
        v.maddr(),
        v.rport(),
        v.sent_by_port(),
    );
    let source = "203.0.113.9:40000".parse().expect("address");
    let _ = response_target(&v, source, ViaTrust::Admitted);
}

fn small(text: &str) {
    if let Some(cseq) = CSeq::parse(text) {
        assert_eq!(CSeq::parse(&cseq.to_string()), Some(cseq));
    }
    if let Some(host) = Host::parse(text) {
        assert_eq!(Host::parse(&host.to_string()), Some(host));
    }
    if let Some(method) = Method::parse(text) {
        assert_eq!(Method::parse(method.as_str()), Some(method));
    }
}

/// A peer's credentials: parsed, printed back, and verified against a
/// trunk that knows one user. Without the password nothing verifies.
fn authorization(text: &str) {
    if let Ok(creds) = DigestCredentials::parse(text) {
        let printed = creds.to_string();
        assert_eq!(
            DigestCredentials::parse(&printed).as_ref(),
            Ok(&creds),
            "{printed}"
        );
    }
    let mut config = DigestConfig::new("trunk.example");
    config.allow_rfc2069 = true;
    let store = Credentials::new().with("trunk.example", "five9", Secret::password("pw-9f8e7d"));
    let mut auth =
        DigestAuth::new(config, NonceKey::from_secret([7; 32]), store).expect("valid config");
    let Ok(request) = SipMessage::parse(format!("{HEAD}Authorization: {text}\r\n\r\n").as_bytes())
    else {
        return;
    };
    let verdict = auth.verify(&request, now());
    assert!(
        matches!(verdict, Verification::Missing | Verification::Invalid(_)),
        "verified without the password: {verdict:?}"
    );
}

/// Our challenge for a configured realm: it fits in a header, and its
/// parameters read back as written.
fn challenge(input: &mut Input<'_>) {
    let realm = input.string(200);
    let algorithms = [
        Algorithm::Sha256,
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256Sess,
    ];
    let mut config = DigestConfig::new(realm.clone());
    config.algorithms = vec![algorithms[input.below(4)]];
    let stale = input.bool();
    let Ok(auth) = DigestAuth::new(config, NonceKey::from_secret([7; 32]), Credentials::new())
    else {
        return;
    };
    let invite =
        SipMessage::parse(format!("{HEAD}Content-Length: 0\r\n\r\n").as_bytes()).expect("INVITE");
    for value in auth.challenge(now(), stale) {
        let response = invite
            .reply(401, None, Some("t-1"))
            .and_then(|r| r.with_header("WWW-Authenticate", &value))
            .expect("a challenge for a valid realm fits in a header");
        let again = SipMessage::parse(&response.to_bytes()).expect("the 401 parses");
        let sent = again.header("WWW-Authenticate").expect("kept");
        let params = sent
            .strip_prefix("Digest ")
            .map(auth_params)
            .expect("Digest scheme")
            .expect("our challenge parses");
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("realm"), Some(realm.as_str()), "{sent}");
        assert_eq!(get("qop"), Some("auth"));
        assert_eq!(get("stale").is_some(), stale);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let kind = input.byte();
    if kind % 8 == 6 {
        return challenge(&mut input);
    }
    let Ok(text) = std::str::from_utf8(input.rest()) else {
        return;
    };
    match kind % 8 {
        0 => uri(text),
        1 => name_addr(text),
        2 => via(text),
        3 => small(text),
        4 => authorization(text),
        5 => {
            if let Ok(params) = auth_params(text) {
                for (name, _) in &params {
                    assert_eq!(name, &name.to_ascii_lowercase());
                }
            }
        }
        _ => {
            // Any header line in a request, as the framer normalises it.
            let raw = format!("{HEAD}{text}\r\nContent-Length: 0\r\n\r\n");
            if let Ok(msg) = SipMessage::parse(raw.as_bytes()) {
                exercise(&msg);
            }
        }
    }
});
