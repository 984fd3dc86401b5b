fn main() -> std::process::ExitCode {
    evidence_core::cli::main("rollout-verify", rollout_verify::run)
}
