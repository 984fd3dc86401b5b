fn main() -> std::process::ExitCode {
    evidence_core::cli::main("ctp-preflight", ctp_preflight::run)
}
