fn main() -> std::process::ExitCode {
    evidence_core::cli::main("rollback-verify", rollback_verify::run)
}
