//! Shared test fixtures: a trunk, a client that answers challenges the way
//! RFC 7616 clients do, and request builders.

use super::algorithm::{self, Algorithm, ResponseInput};
use super::header::{DigestCredentials, parse_params};
use super::{Credentials, DigestAuth, DigestConfig, NonceKey, Secret};
use crate::message::{Method, SipMessage};
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) const REALM: &str = "trunk.example";
pub(crate) const USER: &str = "five9";
pub(crate) const PASSWORD: &str = "s3cret pass";
pub(crate) const URI: &str = "sip:18005550100@192.0.2.10:5060";
pub(crate) const KEY: [u8; 32] = [7; 32];
/// 2024-05-01 14:03:22 UTC.
pub(crate) const T0: u64 = 1_714_572_202;

pub(crate) fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A trunk with one user, keyed with [`KEY`].
pub(crate) fn trunk(config: DigestConfig) -> DigestAuth<Credentials> {
    let users = Credentials::new().with(REALM, USER, Secret::password(PASSWORD));
    DigestAuth::new(config, NonceKey::from_secret(KEY), users).expect("valid config")
}

/// An INVITE to `uri` with the given credentials header lines.
pub(crate) fn request(uri: &str, call_id: &str, headers: &[(&str, &str)]) -> SipMessage {
    let mut msg = SipMessage::request(Method::Invite, uri)
        .and_then(|m| m.with_header("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"))
        .and_then(|m| m.with_header("From", "<sip:a@192.0.2.1>;tag=1"))
        .and_then(|m| m.with_header("To", "<sip:18005550100@192.0.2.10>"))
        .and_then(|m| m.with_header("Call-ID", call_id))
        .and_then(|m| m.with_header("CSeq", "2 INVITE"))
        .and_then(|m| m.with_header("Max-Forwards", "70"))
        .expect("valid request");
    for (name, value) in headers {
        msg.push_header(name, value).expect("valid header");
    }
    msg
}

/// The answer to one challenge value, computed as an RFC 7616 client does,
/// with `qop=auth`.
pub(crate) fn answer(
    challenge: &str,
    method: &str,
    uri: &str,
    password: &str,
    nc: &str,
) -> DigestCredentials {
    let params =
        parse_params(challenge.strip_prefix("Digest ").expect("digest")).expect("challenge parses");
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .expect("param present")
    };
    let (realm, nonce, algorithm) = (get("realm"), get("nonce"), get("algorithm"));
    let alg = Algorithm::parse(&algorithm).expect("known algorithm");
    let cnonce = "0a4f113b";
    let ha1 = algorithm::ha1(alg, USER, &realm, password);
    let response = algorithm::response(&ResponseInput {
        algorithm: alg,
        ha1: &ha1,
        nonce: &nonce,
        qop: Some((nc, cnonce, "auth")),
        cnonce,
        method,
        uri,
    });
    DigestCredentials {
        username: USER.into(),
        realm,
        nonce,
        uri: uri.into(),
        response,
        algorithm: Some(algorithm),
        cnonce: Some(cnonce.into()),
        opaque: Some(get("opaque")),
        qop: Some("auth".into()),
        nc: Some(nc.into()),
    }
}

/// One request of an admission scenario.
pub(crate) struct Step {
    pub(crate) source: IpAddr,
    pub(crate) call_id: &'static str,
    /// `None`: no credentials; else the password used.
    pub(crate) password: Option<&'static str>,
    /// Seconds after [`T0`] at which the request arrives (the challenge it
    /// answers was issued at `T0`).
    pub(crate) offset: u64,
}

impl Step {
    pub(crate) fn none(source: IpAddr, call_id: &'static str) -> Step {
        Step {
            source,
            call_id,
            password: None,
            offset: 0,
        }
    }

    pub(crate) fn wrong(source: IpAddr, call_id: &'static str) -> Step {
        Step {
            password: Some("wrong"),
            ..Step::none(source, call_id)
        }
    }

    pub(crate) fn right(source: IpAddr, call_id: &'static str) -> Step {
        Step {
            password: Some(PASSWORD),
            ..Step::none(source, call_id)
        }
    }

    pub(crate) fn after(self, secs: u64) -> Step {
        Step {
            offset: secs,
            ..self
        }
    }

    pub(crate) fn request<S: super::CredentialStore>(&self, auth: &DigestAuth<S>) -> SipMessage {
        let Some(password) = self.password else {
            return request(URI, self.call_id, &[]);
        };
        let challenge = &auth.challenge(at(T0), false)[0];
        let creds = answer(challenge, "INVITE", URI, password, "00000001").to_string();
        let header = auth.config().kind.credentials_header();
        request(URI, self.call_id, &[(header, &creds)])
    }
}
