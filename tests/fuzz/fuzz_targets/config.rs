//! The operator's config file: any text is parsed or refused with one
//! error line, and a secret in it never shows in that line, whatever the
//! rest of the file holds. An accepted config yields its policy values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkline::config::{Config, ConfigError};
use trunkline_fuzz::Input;

/// Secret values placed in the file, each where the config reads one.
const CANARY: &str = "Zq7canarySecret0042";

/// A secret line before or after the fuzzed text (the text can then not
/// change what the line means, only what comes around it).
const SECRETS: [&str; 5] = [
    "[[http.keys]]\nname = \"ops\"\nkey = \"Zq7canarySecret0042\"\ntenant = \"*\"\n",
    "[[trunk]]\nname = \"five9\"\npolicy = \"p\"\nallow = [\"127.0.0.1/32\"]\n[trunk.auth]\nrealm = \"r\"\n[trunk.auth.users]\nfive9 = \"Zq7canarySecret0042\"\n",
    "[store]\nredis_password = \"Zq7canarySecret0042\"\n",
    "[policies.p]\napi_token = \"Zq7canarySecret0042\"\n",
    "[store]\nredis_url = \"redis://:Zq7canarySecret0042@127.0.0.1:6379/0\"\n",
];
/// The ones whose `Debug` output must not show them either (API keys and
/// digest passwords; policy values are the policy's to see).
const HIDDEN_IN_DEBUG: usize = 2;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let which = input.below(SECRETS.len());
    let secret = SECRETS[which];
    let after = input.bool();
    let Ok(text) = std::str::from_utf8(input.rest()) else {
        return;
    };
    if text.contains("Zq7") || text.contains("canary") {
        return; // only our own line may hold the secret
    }
    let file = if after {
        format!("{text}\n{secret}")
    } else {
        format!("{secret}{text}")
    };
    match Config::parse(&file) {
        Ok(config) => {
            let values = config.all_policy_values();
            for (name, _) in &values {
                assert_eq!(config.policy_values(name), values[name]);
            }
            let _ = config.trunk("five9");
            if which < HIDDEN_IN_DEBUG {
                assert!(
                    !format!("{config:?}").contains(CANARY),
                    "Debug shows a secret"
                );
            }
        }
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains(CANARY), "the error shows a secret: {line}");
            assert!(!line.contains('\n'), "one line: {line}");
            assert!(matches!(
                e,
                ConfigError::Parse { .. } | ConfigError::Invalid(_)
            ));
        }
    }
});
