fn main() -> std::process::ExitCode {
    evidence_core::cli::main("render-prom-rules", render_prom_rules::run)
}
