fn main() -> std::process::ExitCode {
    evidence_core::cli::main("ctp-probe", ctp_probe::run)
}
