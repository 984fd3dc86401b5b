fn main() -> std::process::ExitCode {
    evidence_core::cli::main("alert-report", alert_report::run)
}
