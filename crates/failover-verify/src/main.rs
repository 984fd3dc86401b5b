fn main() -> std::process::ExitCode {
    evidence_core::cli::main("failover-verify", failover_verify::run)
}
