//! # lead-data: Five9 lead data in, qualification out
//!
//! For outbound campaigns where Five9's IVR hands an answered lead to an AI
//! agent to qualify (the SigmaMind pattern): the dialed number picks the
//! agent, every `X-` header of the INVITE (Five9's "Send Data to 3rd Party"
//! lead fields such as `X-first_name`, and its call variables) is handed to
//! the agent, and the agent's qualification verdict picks the Five9 skill
//! the caller goes to next.
//!
//! ## Config keys
//!
//! | key | value |
//! |---|---|
//! | `did.<number>` | the agent target for a dialed number (matches with or without the leading `+`); an unknown number is rejected with **404** |
//! | `skill.qualified` | the skill for a qualified lead |
//! | `skill.unqualified` | optional: the skill (or disposition label) for a lead that did not qualify; empty means none |
//! | `skill.unknown` | optional: the skill when the agent gave no verdict; defaults to `skill.unqualified` |
//!
//! ## What the agent sees
//!
//! Each `X-<name>` header becomes the call attribute `var.<name>` (the
//! prefix stripped, as agents name their variables), and the `X-` headers
//! are repeated on the agent leg's INVITE for SIP agents that read lead data
//! from headers. The attribute `did` holds the dialed number.
//!
//! ## What Five9 gets back
//!
//! The agent reports `lead.qualified` (`true`/`false`), optionally
//! `lead.skill` (overrides the configured skill) and `lead.summary`, as
//! attributes or as `X-LeadQualified`/`X-LeadSkill`/`X-LeadSummary` on its
//! own BYE (the BYE header wins, being its last word). The BYE to Five9
//! carries:
//!
//! - `X-LeadQualified: true|false|unknown`, `X-LeadSkill: <skill>` and
//!   `X-LeadSummary` for the script's Case and Skill Transfer modules;
//! - `X-<name>` for each lead variable the agent changed or added (by
//!   setting `var.<name>`), so corrections flow back into Five9's call
//!   variables. Past Five9's 10-header limit they go to the handoff data
//!   under `overflow_headers` instead.
//!
//! A qualified lead is not contained (a person takes it); a lead that did
//! not qualify is contained; no verdict is not contained, so a person
//! checks it. The handoff data holds `lead` (every lead variable as finally
//! known), `qualified` (`true`/`false`/`null`), `skill` and `summary`.

use trunkline_guest_sdk::attributes::parse_bool;
use trunkline_guest_sdk::{
    Call, CallEnd, Decision, Map, Outcome, Policy, Value, config, export_policy, log,
};

/// The attribute prefix of lead variables.
const VAR_PREFIX: &str = "var.";

/// The lead-data policy.
pub struct LeadData;

impl Policy for LeadData {
    fn route(call: &Call) -> Decision {
        let dialed = call.dialed.as_deref().unwrap_or_default();
        let Some(target) = agent_for(dialed) else {
            log::warn(format!("no agent for dialed number {dialed:?}"));
            return Decision::reject(404, "Unknown number");
        };
        let vars = call.x_variables();
        log::debug(format!("{} lead variables for {target}", vars.len()));
        let mut decision = Decision::connect(target).attribute("did", dialed);
        for (name, value) in vars.iter() {
            decision = decision
                .attribute(format!("{VAR_PREFIX}{name}"), value)
                .header(format!("X-{name}"), value);
        }
        decision
    }

    fn conclude(end: &CallEnd) -> Outcome {
        let qualified = end
            .reported("X-LeadQualified", "lead.qualified")
            .and_then(|text| {
                let verdict = parse_bool(text);
                if verdict.is_none() {
                    log::warn(format!("lead.qualified = {text:?} is not true/false"));
                }
                verdict
            });
        let skill = end
            .reported("X-LeadSkill", "lead.skill")
            .map(str::to_owned)
            .unwrap_or_else(|| configured_skill(qualified));
        if qualified == Some(true) && skill.is_empty() {
            log::error("qualified lead but no skill: set skill.qualified");
        }
        let summary = end.reported("X-LeadSummary", "lead.summary");

        let verdict = match qualified {
            Some(true) => "true",
            Some(false) => "false",
            None => "unknown",
        };
        let mut outcome = Outcome::bye()
            .contained(qualified == Some(false))
            .destination(skill.as_str())
            .header("X-LeadQualified", verdict)
            .handoff("qualified", qualified.map_or(Value::Null, Value::from))
            .handoff("skill", skill.as_str());
        if !skill.is_empty() {
            outcome = outcome.header("X-LeadSkill", skill.as_str());
        }
        if let Some(summary) = summary {
            outcome = outcome
                .header("X-LeadSummary", summary)
                .handoff("summary", summary);
        }

        let original = end.call.x_variables();
        let mut lead = Map::new();
        for (name, value) in end.attributes.with_prefix(VAR_PREFIX) {
            lead.insert(name.to_owned(), Value::from(value));
            if original.get(name) != Some(value) {
                outcome = outcome.header(format!("X-{name}"), value);
            }
        }
        outcome.handoff("lead", Value::Object(lead))
    }
}

/// The agent for a dialed number, with or without its leading `+`.
fn agent_for(dialed: &str) -> Option<String> {
    if dialed.is_empty() {
        return None;
    }
    let alternate = match dialed.strip_prefix('+') {
        Some(bare) => bare.to_owned(),
        None => format!("+{dialed}"),
    };
    [dialed, alternate.as_str()]
        .into_iter()
        .find_map(|number| config::get(&format!("did.{number}")))
}

/// The configured skill for a verdict.
fn configured_skill(qualified: Option<bool>) -> String {
    let unqualified = || config::get("skill.unqualified");
    match qualified {
        Some(true) => config::get("skill.qualified"),
        Some(false) => unqualified(),
        None => config::get("skill.unknown").or_else(unqualified),
    }
    .unwrap_or_default()
}

export_policy!(LeadData);

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_guest_sdk::json;
    use trunkline_guest_sdk::outcome::OVERFLOW_KEY;
    use trunkline_guest_sdk::testing::{CallEndBuilder, call_end, five9_call, with_config};

    const CONFIG: &[(&str, &str)] = &[
        ("did.+13453453453", "sip:qualifier@agents.example.com"),
        ("skill.qualified", "Sales_Closers"),
        ("skill.unqualified", "Nurture"),
    ];

    fn route(call: &Call) -> Decision {
        with_config(CONFIG, || LeadData::route(call))
    }

    #[test]
    fn dialed_number_picks_the_agent() {
        let cases: &[(&str, Option<&str>)] = &[
            ("+13453453453", Some("sip:qualifier@agents.example.com")),
            ("13453453453", Some("sip:qualifier@agents.example.com")),
            ("+13453450000", None),
        ];
        for (dialed, target) in cases {
            let decision = route(&five9_call().dialed(dialed).build());
            match target {
                Some(t) => assert_eq!(decision.target(), Some(*t)),
                None => assert_eq!(decision.status(), Some(404), "{dialed}"),
            }
        }
        assert_eq!(route(&five9_call().no_dialed().build()).status(), Some(404));
    }

    #[test]
    fn every_x_header_reaches_the_agent() {
        let call = five9_call()
            .dialed("+13453453453")
            .header("X-loan_amount", "25000")
            .build();
        let decision = route(&call);
        let connect = decision.as_connect().unwrap();
        let vars: Vec<_> = connect.attributes.with_prefix("var.").collect();
        assert_eq!(vars.len(), call.x_variables().len());
        assert_eq!(decision.attribute_value("var.first_name"), Some("Ada"));
        assert_eq!(decision.attribute_value("var.loan_amount"), Some("25000"));
        assert_eq!(
            decision.attribute_value("var.CallSessionID"),
            call.header("X-CallSessionID")
        );
        assert_eq!(decision.header_value("X-first_name"), Some("Ada"));
        assert_eq!(decision.header_value("X-loan_amount"), Some("25000"));
        // Only X- headers are repeated, never Via/From/Call-ID.
        assert!(connect.headers.iter().all(|h| h.name.starts_with("X-")));
    }

    fn end() -> CallEndBuilder {
        let call = five9_call().dialed("+13453453453").build();
        let decision = route(&call);
        call_end(call).routed(&decision)
    }

    fn conclude(b: CallEndBuilder) -> Outcome {
        with_config(CONFIG, || LeadData::conclude(&b.build()))
    }

    #[test]
    fn verdict_picks_the_skill() {
        let cases = [
            (Some("true"), false, "Sales_Closers", "true"),
            (Some("false"), true, "Nurture", "false"),
            (None, false, "Nurture", "unknown"),
            (Some("perhaps"), false, "Nurture", "unknown"),
        ];
        for (verdict, contained, skill, header) in cases {
            let mut b = end();
            if let Some(v) = verdict {
                b = b.attribute("lead.qualified", v);
            }
            let outcome = conclude(b);
            assert_eq!(outcome.contained, contained, "{verdict:?}");
            assert_eq!(outcome.destination, skill, "{verdict:?}");
            assert_eq!(outcome.header_value("X-LeadQualified"), Some(header));
            assert_eq!(outcome.header_value("X-LeadSkill"), Some(skill));
        }
    }

    #[test]
    fn agent_skill_and_summary_override() {
        let outcome = conclude(
            end()
                .attribute("lead.qualified", "true")
                .attribute("lead.skill", "Sales_Spanish")
                .agent_bye_header("X-LeadSummary", "wants a callback at 5pm"),
        );
        assert_eq!(outcome.destination, "Sales_Spanish");
        assert_eq!(
            outcome.header_value("X-LeadSummary"),
            Some("wants a callback at 5pm")
        );
        assert_eq!(
            outcome.handoff_value("summary").unwrap(),
            "wants a callback at 5pm"
        );
        assert_eq!(outcome.handoff_value("qualified"), Some(&json!(true)));
    }

    #[test]
    fn handoff_holds_the_lead_with_agent_corrections() {
        let outcome = conclude(
            end()
                .attribute("lead.qualified", "false")
                .attribute("var.city", "Cambridge")
                .attribute("var.best_time", "evenings"),
        );
        let lead = outcome.handoff_value("lead").unwrap();
        assert_eq!(lead["first_name"], "Ada");
        assert_eq!(lead["city"], "Cambridge");
        assert_eq!(lead["best_time"], "evenings");
        // Only what changed goes back as headers.
        assert_eq!(outcome.header_value("X-city"), Some("Cambridge"));
        assert_eq!(outcome.header_value("X-best_time"), Some("evenings"));
        assert_eq!(outcome.header_value("X-first_name"), None);
    }

    #[test]
    fn corrections_past_the_limit_go_to_handoff_not_lost() {
        let mut b = end().attribute("lead.qualified", "true");
        for i in 0..12 {
            b = b.attribute(&format!("var.extra_{i}"), &i.to_string());
        }
        let outcome = conclude(b);
        assert_eq!(outcome.headers.len(), 10);
        let overflow = outcome
            .handoff_value(OVERFLOW_KEY)
            .unwrap()
            .as_array()
            .unwrap();
        // 2 outcome headers + 12 corrections = 14 headers, 4 over the limit.
        assert_eq!(overflow.len(), 4);
        assert_eq!(overflow[3]["name"], "X-extra_11");
        assert_eq!(overflow[3]["value"], "11");
    }

    #[test]
    fn qualified_without_skill_is_logged() {
        trunkline_guest_sdk::testing::clear_logs();
        let b = end().attribute("lead.qualified", "yes");
        let outcome = with_config(&CONFIG[..1], || LeadData::conclude(&b.build()));
        assert_eq!(outcome.destination, "");
        assert_eq!(outcome.header_value("X-LeadSkill"), None);
        let logs = trunkline_guest_sdk::testing::logs();
        assert!(logs.iter().any(|l| l.message.contains("skill.qualified")));
    }
}
