fn main() -> std::process::ExitCode {
    evidence_core::cli::main("slo-report", slo_report::run)
}
