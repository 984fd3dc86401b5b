//! CTP connection config YAML: parse and validate never panic.
#![no_main]

use ctp_config::CtpConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = CtpConfig::parse_str(text, std::path::Path::new("fuzz.yaml")) {
        let _ = cfg.validate();
    }
});
