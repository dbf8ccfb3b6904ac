use super::*;
use crate::auth::test_support::{PASSWORD, REALM, T0, URI, USER, at, request, trunk};
use crate::auth::{ChallengeKind, DigestConfig, Verification};

const INVITE: RequestLine<'static> = RequestLine {
    method: "INVITE",
    uri: URI,
};

/// A cnonce source that hands out `values` in turn.
fn fixed(values: &'static [&'static str]) -> impl FnMut() -> String {
    let mut next = 0;
    move || {
        let value = values[next % values.len()];
        next += 1;
        value.to_string()
    }
}

fn client(password: &str) -> DigestClient {
    DigestClient::new(USER, Secret::password(password))
}

/// The parameters of one credentials line, as the server reads them.
fn parsed(line: &Authorization) -> DigestCredentials {
    DigestCredentials::parse(&line.value).expect("our own credentials parse")
}

#[test]
fn rfc_2617_example() {
    // RFC 2617 §3.5 (the HTTP example; the hash does not care).
    let challenge = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
        nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
        opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let mut client = DigestClient::new("Mufasa", Secret::password("Circle Of Life"));
    let request = RequestLine {
        method: "GET",
        uri: "/dir/index.html",
    };
    let lines = client
        .on_challenge(
            ChallengeStatus::Unauthorized,
            [challenge],
            request,
            &mut fixed(&["0a4f113b"]),
        )
        .expect("answerable");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].header, "Authorization");
    let creds = parsed(&lines[0]);
    assert_eq!(creds.response, "6629fae49393a05397450978507c4ef1");
    assert_eq!(creds.nc.as_deref(), Some("00000001"));
    assert_eq!(creds.qop.as_deref(), Some("auth"));
    assert_eq!(creds.cnonce.as_deref(), Some("0a4f113b"));
    assert_eq!(
        creds.opaque.as_deref(),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
    assert_eq!(creds.algorithm, None, "no algorithm offered, none echoed");
}

#[test]
fn rfc_7616_example_answers_the_first_supported_challenge() {
    // RFC 7616 §3.9.1: SHA-256 listed before MD5, both `qop="auth, auth-int"`.
    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    let challenge = |algorithm: &str| {
        format!(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
             algorithm={algorithm}, nonce=\"{NONCE}\", opaque=\"{OPAQUE}\""
        )
    };
    let request = RequestLine {
        method: "GET",
        uri: "/dir/index.html",
    };
    let table = [
        (
            vec![challenge("SHA-256"), challenge("MD5")],
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
        (
            vec![challenge("MD5")],
            "MD5",
            "8ca523f5e9506fed4657c9700eebdbec",
        ),
        // An algorithm this client lacks is skipped for the next one.
        (
            vec![challenge("SHA-512-256"), challenge("MD5")],
            "MD5",
            "8ca523f5e9506fed4657c9700eebdbec",
        ),
    ];
    for (challenges, algorithm, response) in table {
        let mut client = DigestClient::new("Mufasa", Secret::password("Circle of Life"));
        let lines = client
            .on_challenge(
                ChallengeStatus::Unauthorized,
                challenges.iter().map(String::as_str),
                request,
                &mut fixed(&[CNONCE]),
            )
            .expect("answerable");
        let creds = parsed(&lines[0]);
        assert_eq!(creds.algorithm.as_deref(), Some(algorithm));
        assert_eq!(creds.response, response, "{algorithm}");
        assert_eq!(creds.opaque.as_deref(), Some(OPAQUE));
    }
}

/// The project's own server challenges, the client answers, the server
/// admits: for 401 and 407, SHA-256 and MD5.
#[test]
fn our_server_admits_our_client() {
    let table = [
        (ChallengeKind::Www, vec![Algorithm::Sha256, Algorithm::Md5]),
        (ChallengeKind::Www, vec![Algorithm::Md5]),
        (ChallengeKind::Proxy, vec![Algorithm::Sha256]),
        (ChallengeKind::Www, vec![Algorithm::Md5Sess]),
        (ChallengeKind::Proxy, vec![Algorithm::Sha256Sess]),
    ];
    for (kind, algorithms) in table {
        let mut config = DigestConfig::new(REALM);
        config.kind = kind;
        config.algorithms = algorithms.clone();
        let mut server = trunk(config);
        let status = ChallengeStatus::from_status(kind.status()).expect("401 or 407");
        assert_eq!(status.challenge_header(), kind.challenge_header());
        let challenges = server.challenge(at(T0), false);
        let mut client = client(PASSWORD);
        let lines = client
            .on_challenge(
                status,
                challenges.iter().map(String::as_str),
                INVITE,
                &mut os_cnonce,
            )
            .expect("answerable");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].header, kind.credentials_header());
        let retried = request(URI, "c-1", &[(lines[0].header, &lines[0].value)]);
        assert_eq!(
            server.verify(&retried, at(T0 + 1)),
            Verification::Ok(USER.into()),
            "{kind:?} {algorithms:?}: {}",
            lines[0].value
        );
        assert_eq!(
            parsed(&lines[0]).algorithm.as_deref(),
            Some(algorithms[0].as_str())
        );
    }
}

#[test]
fn later_requests_reuse_the_nonce_with_a_counting_nc() {
    let mut server = trunk(DigestConfig::new(REALM));
    let challenges = server.challenge(at(T0), false);
    let mut client = client(PASSWORD);
    let mut cnonces = fixed(&["aaaa", "bbbb", "cccc"]);
    let first = client
        .on_challenge(
            ChallengeStatus::Unauthorized,
            challenges.iter().map(String::as_str),
            INVITE,
            &mut cnonces,
        )
        .expect("answerable");
    client.on_answered();
    let request_of =
        |lines: &[Authorization]| request(URI, "c-1", &[(lines[0].header, &lines[0].value)]);
    assert_eq!(
        server.verify(&request_of(&first), at(T0)),
        Verification::Ok(USER.into())
    );
    for (n, cnonce) in [(2, "bbbb"), (3, "cccc")] {
        let lines = client.authorization(INVITE, &mut cnonces);
        let creds = parsed(&lines[0]);
        assert_eq!(creds.nc, Some(format!("{n:08x}")));
        assert_eq!(
            creds.cnonce.as_deref(),
            Some(cnonce),
            "a fresh cnonce each time"
        );
        assert_eq!(
            server.verify(&request_of(&lines), at(T0 + n)),
            Verification::Ok(USER.into()),
            "nc {n}"
        );
    }
    // The server refuses a replayed nc: the client never sends one twice.
    assert_eq!(
        server.verify(&request_of(&first), at(T0 + 5)),
        Verification::Stale
    );
}

#[test]
fn nothing_is_sent_before_the_first_challenge() {
    let mut client = client(PASSWORD);
    assert!(client.authorization(INVITE, &mut os_cnonce).is_empty());
}

#[test]
fn stale_nonce_gets_one_retry_then_the_leg_fails() {
    let config = DigestConfig::new(REALM);
    let lifetime = config.nonce_lifetime.as_secs();
    let mut server = trunk(config);
    let mut client = client(PASSWORD);
    let kind = ChallengeStatus::Unauthorized;
    let first = server.challenge(at(T0), false);
    let lines = client
        .on_challenge(
            kind,
            first.iter().map(String::as_str),
            INVITE,
            &mut os_cnonce,
        )
        .expect("answerable");
    // The answer arrives after the nonce expired: right password, stale.
    let late = at(T0 + lifetime + 1);
    let retried = request(URI, "c-1", &[(lines[0].header, &lines[0].value)]);
    assert_eq!(server.verify(&retried, late), Verification::Stale);
    let stale = server.challenge(late, true);
    let lines = client
        .on_challenge(
            kind,
            stale.iter().map(String::as_str),
            INVITE,
            &mut os_cnonce,
        )
        .expect("stale=true earns a retry");
    let retried = request(URI, "c-1", &[(lines[0].header, &lines[0].value)]);
    assert_eq!(server.verify(&retried, late), Verification::Ok(USER.into()));
    // A second stale in a row: the server will never accept.
    let again = server.challenge(late, true);
    assert_eq!(
        client.on_challenge(
            kind,
            again.iter().map(String::as_str),
            INVITE,
            &mut os_cnonce
        ),
        Err(AuthFailure::Rejected {
            status: 401,
            realm: REALM.into()
        })
    );
}

#[test]
fn wrong_password_fails_on_the_second_challenge_with_its_status() {
    for kind in [ChallengeKind::Www, ChallengeKind::Proxy] {
        let mut config = DigestConfig::new(REALM);
        config.kind = kind;
        let mut server = trunk(config);
        let status = ChallengeStatus::from_status(kind.status()).expect("401 or 407");
        let mut client = client("not the password");
        let challenges = server.challenge(at(T0), false);
        let lines = client
            .on_challenge(
                status,
                challenges.iter().map(String::as_str),
                INVITE,
                &mut os_cnonce,
            )
            .expect("answered once");
        let retried = request(URI, "c-1", &[(lines[0].header, &lines[0].value)]);
        assert!(matches!(
            server.verify(&retried, at(T0)),
            Verification::Invalid(_)
        ));
        let again = server.challenge(at(T0), false);
        let failure = client
            .on_challenge(
                status,
                again.iter().map(String::as_str),
                INVITE,
                &mut os_cnonce,
            )
            .expect_err("a second challenge ends it");
        assert_eq!(failure.status(), kind.status());
        assert_eq!(
            failure,
            AuthFailure::Rejected {
                status: kind.status(),
                realm: REALM.into()
            }
        );
        let text = failure.to_string();
        assert!(!text.contains("not the password"), "{text}");
    }
}

#[test]
fn a_new_request_after_an_answer_may_be_challenged_again() {
    let server = trunk(DigestConfig::new(REALM));
    let mut client = client(PASSWORD);
    let kind = ChallengeStatus::Unauthorized;
    for round in 0..3 {
        let challenges = server.challenge(at(T0 + round), false);
        client
            .on_challenge(
                kind,
                challenges.iter().map(String::as_str),
                INVITE,
                &mut os_cnonce,
            )
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        client.on_answered();
    }
}

#[test]
fn unanswerable_challenges_fail_the_leg_with_the_reason() {
    let kind = ChallengeStatus::Proxy;
    let table: [(&[&str], AuthFailure); 5] = [
        (
            &["Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256, qop=\"auth\""],
            AuthFailure::Unanswerable {
                status: 407,
                why: "algorithm SHA-512-256".into(),
            },
        ),
        (
            &["Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""],
            AuthFailure::Unanswerable {
                status: 407,
                why: "qop auth-int".into(),
            },
        ),
        (
            &["Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess"],
            AuthFailure::Unanswerable {
                status: 407,
                why: "MD5-sess without qop".into(),
            },
        ),
        (
            &["Basic realm=\"r\"", "Bearer realm=\"r\""],
            AuthFailure::NoChallenge { status: 407 },
        ),
        (
            &["Digest nonce=\"n\"", "Digest realm=\"r", ""],
            AuthFailure::NoChallenge { status: 407 },
        ),
    ];
    for (challenges, expected) in table {
        let mut client = client(PASSWORD);
        assert_eq!(
            client.on_challenge(kind, challenges.iter().copied(), INVITE, &mut os_cnonce),
            Err(expected),
            "{challenges:?}"
        );
    }
}

#[test]
fn without_qop_the_answer_is_rfc_2069() {
    let mut config = DigestConfig::new(REALM);
    config.allow_rfc2069 = true;
    config.algorithms = vec![Algorithm::Md5];
    let mut server = trunk(config);
    // Our server always offers qop; a peer that does not:
    let challenge = server.challenge(at(T0), false)[0].replace(", qop=\"auth\"", "");
    assert!(!challenge.contains("qop"));
    let mut client = client(PASSWORD);
    let lines = client
        .on_challenge(
            ChallengeStatus::Unauthorized,
            [challenge.as_str()],
            INVITE,
            &mut os_cnonce,
        )
        .expect("answerable");
    let creds = parsed(&lines[0]);
    assert_eq!((creds.qop, creds.nc, creds.cnonce), (None, None, None));
    let retried = request(URI, "c-1", &[(lines[0].header, &lines[0].value)]);
    assert_eq!(
        server.verify(&retried, at(T0)),
        Verification::Ok(USER.into())
    );
}

#[test]
fn stored_ha1_answers_only_its_own_family() {
    let md5 = crate::auth::ha1(Algorithm::Md5, USER, REALM, PASSWORD);
    let secret = Secret::hashed(Some(&md5), None).expect("valid HA1");
    let mut server = trunk(DigestConfig::new(REALM));
    // SHA-256 is offered first; only the MD5 HA1 is known.
    let challenges = server.challenge(at(T0), false);
    let mut client = DigestClient::new(USER, secret.clone());
    let lines = client
        .on_challenge(
            ChallengeStatus::Unauthorized,
            challenges.iter().map(String::as_str),
            INVITE,
            &mut os_cnonce,
        )
        .expect("MD5 answered");
    assert_eq!(parsed(&lines[0]).algorithm.as_deref(), Some("MD5"));
    let retried = request(URI, "c-1", &[(lines[0].header, &lines[0].value)]);
    assert_eq!(
        server.verify(&retried, at(T0)),
        Verification::Ok(USER.into())
    );
    let sha_only = &challenges[..1];
    let mut client = DigestClient::new(USER, secret);
    assert_eq!(
        client.on_challenge(
            ChallengeStatus::Unauthorized,
            sha_only.iter().map(String::as_str),
            INVITE,
            &mut os_cnonce
        ),
        Err(AuthFailure::Unanswerable {
            status: 401,
            why: "no SHA-256 HA1 stored".into()
        })
    );
}

#[test]
fn every_realm_of_a_forked_challenge_is_answered() {
    let lines = [
        "Digest realm=\"edge\", nonce=\"n1\", qop=\"auth\", \
         Digest realm=\"core\", nonce=\"n2\", algorithm=SHA-256, qop=\"auth\"",
        "Digest realm=\"edge\", nonce=\"n3\", algorithm=SHA-256, qop=\"auth\"",
    ];
    let mut client = client(PASSWORD);
    let answers = client
        .on_challenge(ChallengeStatus::Proxy, lines, INVITE, &mut os_cnonce)
        .expect("answerable");
    let realms: Vec<(String, String)> = answers
        .iter()
        .map(|a| {
            let c = parsed(a);
            (c.realm, c.nonce)
        })
        .collect();
    // Per realm, its first challenge.
    assert_eq!(
        realms,
        [("edge".into(), "n1".into()), ("core".into(), "n2".into())]
    );
    assert!(answers.iter().all(|a| a.header == "Proxy-Authorization"));
}

#[test]
fn at_most_four_realms_are_answered() {
    let many: Vec<String> = (0..50)
        .map(|i| format!("Digest realm=\"r{i}\", nonce=\"n\", qop=\"auth\""))
        .collect();
    let mut client = client(PASSWORD);
    let answers = client
        .on_challenge(
            ChallengeStatus::Proxy,
            many.iter().map(String::as_str),
            INVITE,
            &mut os_cnonce,
        )
        .expect("answerable");
    assert_eq!(answers.len(), MAX_REALMS);
    assert_eq!(
        client.authorization(INVITE, &mut os_cnonce).len(),
        MAX_REALMS
    );
}

#[test]
fn challenges_split_at_scheme_names_only() {
    let table: [(&str, &[&str]); 5] = [
        (
            "Digest realm=\"a\", nonce=\"b\"",
            &["Digest realm=\"a\", nonce=\"b\""],
        ),
        (
            "Digest realm=\"a, Digest b\", qop=\"auth,auth-int\", Basic realm=\"x\"",
            &[
                "Digest realm=\"a, Digest b\", qop=\"auth,auth-int\"",
                "Basic realm=\"x\"",
            ],
        ),
        (
            "Digest realm=\"a\",nonce=\"b\" , Digest realm=\"c\",nonce=\"d\"",
            &[
                "Digest realm=\"a\",nonce=\"b\"",
                "Digest realm=\"c\",nonce=\"d\"",
            ],
        ),
        (
            "Digest realm=\"a\\\", Basic x\"",
            &["Digest realm=\"a\\\", Basic x\""],
        ),
        ("", &[]),
    ];
    for (value, expected) in table {
        assert_eq!(split_challenges(value), expected, "{value}");
    }
}

#[test]
fn challenge_parameters_are_read() {
    let parsed = DigestChallenge::parse(
        "digest REALM=\"r\", Nonce=n, opaque=\"o\", algorithm=sha-256, \
         qop=\"Auth, auth-int\", stale=TRUE, domain=\"sip:x\"",
    )
    .expect("parses");
    assert_eq!(
        parsed,
        DigestChallenge {
            realm: "r".into(),
            nonce: "n".into(),
            opaque: Some("o".into()),
            algorithm: Some("sha-256".into()),
            qop: vec!["auth".into(), "auth-int".into()],
            stale: true,
        }
    );
    assert_eq!(parsed.supported_algorithm(), Some(Algorithm::Sha256));
    assert_eq!(
        DigestChallenge::parse("Basic realm=\"r\""),
        Err(ChallengeError::NotDigest)
    );
    assert_eq!(
        DigestChallenge::parse("Digest realm=\"r\""),
        Err(ChallengeError::Missing("nonce"))
    );
}

#[test]
fn the_password_never_shows() {
    let client = client(PASSWORD);
    let debug = format!("{client:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    assert!(debug.contains(USER));
}

#[test]
fn os_cnonces_differ() {
    let (a, b) = (os_cnonce(), os_cnonce());
    assert_eq!(a.len(), 24);
    assert_ne!(a, b);
}
