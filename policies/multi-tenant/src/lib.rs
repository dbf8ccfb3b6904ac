//! # multi-tenant: one shared Five9 trunk, many tenants
//!
//! Finds the tenant of each call from a token header (the way PolyAI's
//! shared Five9 trunk uses `X-PolyAi-Auth-Token`) or from the dialed
//! extension, connects the call to that tenant's agent, and when the AI leg
//! ends tells Five9 on the BYE whether the AI contained the call
//! (`X-contained: true|false`) and where to send it if not
//! (`X-destination`). The outcome is filed under Five9's session id.
//!
//! ## Config keys
//!
//! | key | value |
//! |---|---|
//! | `token_header` | the header carrying the tenant token; default `X-PolyAi-Auth-Token` |
//! | `token.<token>` | the tenant a token belongs to |
//! | `extension.<digits>` | the tenant a dialed extension belongs to |
//! | `tenant.<tenant>.agent` | the tenant's agent target (`sip:`, `ws://`, `wss://`, `builtin:`) |
//! | `tenant.<tenant>.destination` | optional: `X-destination` when the AI did not contain the call and the agent named no destination |
//! | `tenant.<tenant>.refer` | optional: a fully qualified `sip:queue@host` URI; an uncontained call is transferred there with a REFER instead of ended with a BYE |
//!
//! ## Routing
//!
//! 1. When the token header is present and not blank, `token.<token>` names
//!    the tenant; an unknown token is rejected with **403**. The token wins
//!    over the dialed extension: it is the credential, while an extension
//!    can be reused by mistake across tenants.
//! 2. Otherwise `extension.<dialed>` names the tenant; an unknown extension,
//!    or a Request-URI without one, is rejected with **404**.
//! 3. A tenant without `tenant.<tenant>.agent` is a config mistake: **500**
//!    and an error log, never some other tenant's agent.
//!
//! The call carries the attributes `tenant` and `routed_by`
//! (`token`/`extension`), and the agent leg gets `X-Tenant: <tenant>`.
//! Token values are never logged.
//!
//! ## Outcome
//!
//! The agent reports `contained` and `destination` as attributes, or as
//! `X-contained`/`X-destination` headers on its own BYE (the BYE header
//! wins: it is the agent's last word). No report means not contained, so
//! Five9 sends the caller to a human rather than dropping them.
//!
//! A contained call, or one whose tenant has no `tenant.<tenant>.refer`,
//! ends with a BYE carrying `X-contained`/`X-destination`. An uncontained
//! call of a tenant with `tenant.<tenant>.refer` gets a REFER to that URI
//! carrying the same headers; the host sends the BYE after the transfer,
//! with the headers again if Five9 refused or failed it, so the IVR script
//! still learns where the caller should go. The URI must name a user and a
//! host (`sip:billing@five9.example.com`): Five9 silently drops a REFER to
//! a bare extension, and the host would replace such an outcome, headers
//! and all, with the trunk's fallback. So a malformed value is logged as an
//! error and the call ends with the BYE and its headers instead.

use trunkline_guest_sdk::attributes::parse_bool;
use trunkline_guest_sdk::{Call, CallEnd, Decision, Outcome, Policy, config, export_policy, log};

/// The token header PolyAI's Five9 guide uses.
const DEFAULT_TOKEN_HEADER: &str = "X-PolyAi-Auth-Token";

/// The multi-tenant policy.
pub struct MultiTenant;

impl Policy for MultiTenant {
    fn route(call: &Call) -> Decision {
        let token_header = config::get_or("token_header", DEFAULT_TOKEN_HEADER);
        let token = call
            .header(&token_header)
            .map(str::trim)
            .filter(|t| !t.is_empty());

        let (tenant, routed_by) = if let Some(token) = token {
            match config::get(&format!("token.{token}")) {
                Some(tenant) => (tenant, "token"),
                None => {
                    log::warn(format!("unknown tenant token in {token_header}"));
                    return Decision::reject(403, "Unknown tenant token");
                }
            }
        } else {
            let dialed = call.dialed.as_deref().unwrap_or_default();
            match config::get(&format!("extension.{dialed}")).filter(|_| !dialed.is_empty()) {
                Some(tenant) => (tenant, "extension"),
                None => {
                    log::warn(format!("unknown extension {dialed:?} and no tenant token"));
                    return Decision::reject(404, "Unknown extension");
                }
            }
        };

        let Some(agent) = config::get(&format!("tenant.{tenant}.agent")) else {
            log::error(format!(
                "tenant {tenant} has no agent: set tenant.{tenant}.agent"
            ));
            return Decision::reject(500, "Tenant has no agent configured");
        };
        log::info(format!("tenant {tenant} by {routed_by} -> {agent}"));
        Decision::connect(agent)
            .attribute("tenant", tenant.as_str())
            .attribute("routed_by", routed_by)
            .header("X-Tenant", tenant.as_str())
    }

    fn conclude(end: &CallEnd) -> Outcome {
        let tenant = end.attribute("tenant").unwrap_or_default();
        let contained = match end.reported("X-contained", "contained") {
            None => false,
            Some(text) => parse_bool(text).unwrap_or_else(|| {
                log::warn(format!(
                    "contained = {text:?} is not true/false; using false"
                ));
                false
            }),
        };
        let mut destination = end
            .reported("X-destination", "destination")
            .unwrap_or_default()
            .to_owned();
        if !contained && destination.is_empty() && !tenant.is_empty() {
            destination = config::get(&format!("tenant.{tenant}.destination")).unwrap_or_default();
        }

        let refer = (!contained && !tenant.is_empty())
            .then(|| config::get(&format!("tenant.{tenant}.refer")))
            .flatten()
            .map(|uri| uri.trim().to_owned())
            .filter(|uri| !uri.is_empty());
        let start = match refer {
            Some(uri) if is_sip_user_at_host(&uri) => {
                log::info(format!("tenant {tenant}: not contained, REFER to {uri}"));
                Outcome::refer(uri)
            }
            Some(uri) => {
                log::error(format!(
                    "tenant.{tenant}.refer = {uri:?} is not a sip:user@host URI; ending with a BYE"
                ));
                Outcome::bye()
            }
            None => Outcome::bye(),
        };
        let mut outcome = start
            .contained(contained)
            .destination(destination.as_str())
            .header("X-contained", if contained { "true" } else { "false" })
            .handoff("tenant", tenant)
            .handoff("end_reason", end.reason.as_str());
        if !destination.is_empty() {
            outcome = outcome.header("X-destination", destination.as_str());
        }
        outcome
    }
}

/// A `sip:`/`sips:` URI with a user and a dotted or bracketed host, the
/// only REFER target the host accepts (`sip:billing@five9.example.com`,
/// `sip:q@[2001:db8::1]:5060`).
fn is_sip_user_at_host(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("sip:")
        .or_else(|| lower.strip_prefix("sips:"))
    else {
        return false;
    };
    let Some((user, host)) = rest.split_once('@') else {
        return false;
    };
    let host = host.split([';', '?']).next().unwrap_or_default();
    !user.is_empty()
        && (host.starts_with('[') || host.contains('.'))
        && !uri
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

export_policy!(MultiTenant);

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_guest_sdk::Transfer;
    use trunkline_guest_sdk::testing::{self, call_end, five9_call, with_config};

    const CONFIG: &[(&str, &str)] = &[
        ("token.tok-acme", "acme"),
        ("token.tok-globex", "globex"),
        ("extension.1001", "acme"),
        ("extension.2002", "globex"),
        ("extension.3003", "initech"),
        ("tenant.acme.agent", "sip:acme-bot@agents.example.com"),
        ("tenant.acme.destination", "acme_support"),
        ("tenant.globex.agent", "wss://globex.example.com/stream"),
    ];

    fn route(call: &Call) -> Decision {
        with_config(CONFIG, || MultiTenant::route(call))
    }

    #[test]
    fn routing_table() {
        // (token header, dialed, expected target or status)
        type Case<'a> = (Option<(&'a str, &'a str)>, &'a str, Result<&'a str, u16>);
        let cases: &[Case] = &[
            (
                Some(("X-PolyAi-Auth-Token", "tok-acme")),
                "9999",
                Ok("sip:acme-bot@agents.example.com"),
            ),
            (
                Some(("x-polyai-auth-token", "tok-globex")),
                "1001",
                Ok("wss://globex.example.com/stream"),
            ),
            (
                Some(("X-PolyAi-Auth-Token", "tok-unknown")),
                "1001",
                Err(403),
            ),
            (
                Some(("X-PolyAi-Auth-Token", "  ")),
                "2002",
                Ok("wss://globex.example.com/stream"),
            ),
            (None, "1001", Ok("sip:acme-bot@agents.example.com")),
            (None, "2002", Ok("wss://globex.example.com/stream")),
            (None, "4004", Err(404)),
            (None, "3003", Err(500)),
        ];
        for (token, dialed, expected) in cases {
            let mut call = five9_call().dialed(dialed);
            if let Some((name, value)) = token {
                call = call.header(name, value);
            }
            let decision = route(&call.build());
            match expected {
                Ok(target) => assert_eq!(decision.target(), Some(*target), "{token:?} {dialed}"),
                Err(status) => assert_eq!(decision.status(), Some(*status), "{token:?} {dialed}"),
            }
        }
    }

    #[test]
    fn connect_carries_tenant_and_route_method() {
        let call = five9_call()
            .header("X-PolyAi-Auth-Token", "tok-acme")
            .build();
        let decision = route(&call);
        assert_eq!(decision.attribute_value("tenant"), Some("acme"));
        assert_eq!(decision.attribute_value("routed_by"), Some("token"));
        assert_eq!(decision.header_value("X-Tenant"), Some("acme"));
    }

    #[test]
    fn token_header_name_comes_from_config() {
        let call = five9_call()
            .dialed("4004")
            .header("X-Tenant-Token", "tok-globex")
            .build();
        let mut config = CONFIG.to_vec();
        config.push(("token_header", "X-Tenant-Token"));
        let decision = with_config(&config, || MultiTenant::route(&call));
        assert_eq!(decision.target(), Some("wss://globex.example.com/stream"));
    }

    #[test]
    fn no_dialed_user_and_no_token_is_404() {
        let decision = route(&five9_call().no_dialed().build());
        assert_eq!(decision.status(), Some(404));
    }

    #[test]
    fn tokens_never_reach_the_log() {
        testing::clear_logs();
        let call = five9_call()
            .header("X-PolyAi-Auth-Token", "s3cret-token")
            .build();
        assert_eq!(route(&call).status(), Some(403));
        let logs = testing::logs();
        assert!(!logs.is_empty());
        assert!(logs.iter().all(|l| !l.message.contains("s3cret-token")));
    }

    fn conclude(end: trunkline_guest_sdk::testing::CallEndBuilder) -> Outcome {
        with_config(CONFIG, || MultiTenant::conclude(&end.build()))
    }

    fn routed_end() -> trunkline_guest_sdk::testing::CallEndBuilder {
        let call = five9_call().dialed("1001").build();
        let decision = route(&call);
        call_end(call).routed(&decision)
    }

    #[test]
    fn contained_call_from_attributes() {
        let outcome = conclude(routed_end().attribute("contained", "true"));
        assert!(outcome.contained);
        assert_eq!(outcome.header_value("X-contained"), Some("true"));
        assert_eq!(outcome.header_value("X-destination"), None);
        assert_eq!(outcome.shared_id, None, "Five9's session id by default");
        assert_eq!(outcome.handoff_value("tenant").unwrap(), "acme");
    }

    #[test]
    fn not_contained_goes_to_the_agents_destination() {
        let outcome = conclude(
            routed_end()
                .attribute("contained", "false")
                .attribute("destination", "billing_queue"),
        );
        assert!(!outcome.contained);
        assert_eq!(outcome.destination, "billing_queue");
        assert_eq!(outcome.header_value("X-contained"), Some("false"));
        assert_eq!(outcome.header_value("X-destination"), Some("billing_queue"));
    }

    #[test]
    fn agent_bye_header_wins_over_attribute() {
        let outcome = conclude(
            routed_end()
                .attribute("contained", "true")
                .agent_bye_header("X-contained", "false")
                .agent_bye_header("X-destination", "escalations"),
        );
        assert!(!outcome.contained);
        assert_eq!(outcome.header_value("X-destination"), Some("escalations"));
    }

    #[test]
    fn no_report_is_not_contained_with_the_tenant_default() {
        let outcome = conclude(routed_end().caller_hung_up());
        assert!(!outcome.contained);
        assert_eq!(outcome.destination, "acme_support");
        assert_eq!(outcome.header_value("X-destination"), Some("acme_support"));
    }

    /// `CONFIG` plus a REFER queue for acme only.
    fn conclude_with_refer(
        refer: &str,
        end: trunkline_guest_sdk::testing::CallEndBuilder,
    ) -> Outcome {
        let mut config = CONFIG.to_vec();
        config.push(("tenant.acme.refer", refer));
        with_config(&config, || MultiTenant::conclude(&end.build()))
    }

    #[test]
    fn uncontained_call_of_a_tenant_with_a_queue_is_referred() {
        const QUEUE: &str = "sip:billing@five9.example.com";
        // (contained report, tenant's refer key, expected transfer)
        let cases: &[(Option<&str>, &str, Transfer)] = &[
            (Some("false"), QUEUE, Transfer::Refer(QUEUE.into())),
            (None, QUEUE, Transfer::Refer(QUEUE.into())),
            (Some("garbage"), QUEUE, Transfer::Refer(QUEUE.into())),
            (
                Some("false"),
                "  sip:billing@five9.example.com ",
                Transfer::Refer(QUEUE.into()),
            ),
            (Some("true"), QUEUE, Transfer::Bye),
            (Some("false"), "", Transfer::Bye),
            (Some("false"), "   ", Transfer::Bye),
        ];
        for (contained, refer, expected) in cases {
            let mut end = routed_end();
            if let Some(c) = contained {
                end = end.agent_bye_header("X-contained", c);
            }
            let outcome = conclude_with_refer(refer, end);
            assert_eq!(outcome.transfer, *expected, "{contained:?} {refer:?}");
        }
    }

    #[test]
    fn refer_carries_the_same_headers_as_the_bye() {
        let end = || {
            routed_end()
                .agent_bye_header("X-contained", "false")
                .agent_bye_header("X-destination", "Billing")
        };
        let referred = conclude_with_refer("sip:billing@five9.example.com", end());
        let ended = conclude(end());
        assert_eq!(
            referred.transfer,
            Transfer::Refer("sip:billing@five9.example.com".into())
        );
        assert_eq!(ended.transfer, Transfer::Bye);
        assert_eq!(referred.headers, ended.headers);
        assert_eq!(referred.header_value("X-contained"), Some("false"));
        assert_eq!(referred.header_value("X-destination"), Some("Billing"));
        assert!(!referred.contained);
        assert_eq!(referred.destination, "Billing");
        assert_eq!(referred.handoff_value("tenant").unwrap(), "acme");
    }

    #[test]
    fn refer_of_one_tenant_never_applies_to_another() {
        // globex (by token) has no refer key; acme's must not leak to it.
        let call = five9_call()
            .header("X-PolyAi-Auth-Token", "tok-globex")
            .build();
        let decision = route(&call);
        let end = call_end(call)
            .routed(&decision)
            .attribute("contained", "false");
        let outcome = conclude_with_refer("sip:billing@five9.example.com", end);
        assert_eq!(outcome.transfer, Transfer::Bye);
        // A call that never reached a tenant is not referred either.
        let rejected = call_end(five9_call().dialed("4004").build());
        let outcome = conclude_with_refer("sip:billing@five9.example.com", rejected);
        assert_eq!(outcome.transfer, Transfer::Bye);
    }

    #[test]
    fn malformed_refer_target_ends_with_the_bye_and_an_error() {
        for target in [
            "1234",
            "sip:1234",
            "sip:five9.example.com",
            "sip:@five9.example.com",
            "tel:+14155550100",
            "sip:bill ing@five9.example.com",
        ] {
            testing::clear_logs();
            let end = routed_end().agent_bye_header("X-destination", "Billing");
            let outcome = conclude_with_refer(target, end);
            assert_eq!(outcome.transfer, Transfer::Bye, "{target}");
            assert_eq!(outcome.header_value("X-destination"), Some("Billing"));
            let logs = testing::logs();
            assert!(
                logs.iter()
                    .any(|l| l.level == log::Level::Error && l.message.contains("refer")),
                "{target}: {logs:?}"
            );
        }
    }

    #[test]
    fn refer_target_forms() {
        let cases = [
            ("sip:billing@five9.example.com", true),
            ("SIPS:billing@five9.example.com", true),
            ("sip:billing@five9.example.com:5061;transport=tls", true),
            ("sip:q@[2001:db8::1]:5060", true),
            ("sip:five9.example.com", false),
            ("sip:q@five9", false),
            ("billing@five9.example.com", false),
            ("", false),
        ];
        for (uri, ok) in cases {
            assert_eq!(is_sip_user_at_host(uri), ok, "{uri}");
        }
    }

    #[test]
    fn garbage_contained_value_is_false_with_a_warning() {
        testing::clear_logs();
        let outcome = conclude(routed_end().attribute("contained", "probably"));
        assert!(!outcome.contained);
        assert!(
            testing::logs()
                .iter()
                .any(|l| l.message.contains("probably"))
        );
    }
}
