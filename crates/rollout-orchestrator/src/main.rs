fn main() -> std::process::ExitCode {
    evidence_core::cli::main("rollout-orchestrator", rollout_orchestrator::run)
}
