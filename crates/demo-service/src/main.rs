fn main() -> std::process::ExitCode {
    evidence_core::cli::main("demo-service", demo_service::run)
}
