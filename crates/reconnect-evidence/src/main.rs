fn main() -> std::process::ExitCode {
    evidence_core::cli::main("reconnect-evidence", reconnect_evidence::run)
}
