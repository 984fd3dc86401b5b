//! `cargo bench -p ctp-config --bench load`: seconds to load a 10 MB CTP config (a 5 MB
//! `legacy:` section above a 5 MB `ctp:` section of 100k+ keys). Issue 8 item 13: well under a
//! second (the line-scanning reader took 35 s for 60k keys).

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    reason = "a benchmark's report is its stdout; setup failures should panic"
)]

use std::path::Path;
use std::time::Instant;

use ctp_config::CtpConfig;

fn config(bytes: usize) -> (String, usize) {
    let mut text = String::from("legacy:\n  enable_real_api: false\n");
    let mut n = 0;
    while text.len() < bytes / 2 {
        text.push_str(&format!("  legacy_key_{n}: value {n}\n"));
        n += 1;
    }
    text.push_str("ctp:\n  enable_real_api: true\n  environment: sim\n");
    while text.len() < bytes {
        text.push_str(&format!("  risk_limit_{n}: {n}\n"));
        n += 1;
    }
    (text, n)
}

fn main() {
    let (text, keys) = config(10 << 20);
    let dir = std::env::temp_dir().join(format!("ctp-config-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.yaml");
    std::fs::write(&path, &text).unwrap();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let c = CtpConfig::load(Path::new(&path)).unwrap();
        let s = t.elapsed().as_secs_f64();
        assert!(c.values.enable_real_api, "the ctp: section's value");
        best = best.min(s);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    println!(
        "ctp-config: {:.1} MB, {keys} keys: load {best:.3} s (best of 3; target < 1 s)",
        text.len() as f64 / 1048576.0
    );
}
