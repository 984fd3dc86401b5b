fn main() -> std::process::ExitCode {
    evidence_core::cli::main("prodlike-health", prodlike_health::run)
}
