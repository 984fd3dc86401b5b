fn main() -> std::process::ExitCode {
    evidence_core::cli::main("rollback-drill", rollback_drill::run)
}
