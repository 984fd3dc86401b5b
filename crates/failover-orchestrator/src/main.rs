fn main() -> std::process::ExitCode {
    evidence_core::cli::main("failover-orchestrator", failover_orchestrator::run)
}
