fn main() -> std::process::ExitCode {
    evidence_core::cli::main("evidence", evidence::run)
}
