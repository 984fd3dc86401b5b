fn main() -> std::process::ExitCode {
    evidence_core::cli::main("session-guard", session_guard::run)
}
