//! Deploy env-config YAML (rollout-orchestrator): parse never panics.
#![no_main]

use deploy_core::envconfig::EnvConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = EnvConfig::parse(text, "fuzz.yaml");
});
