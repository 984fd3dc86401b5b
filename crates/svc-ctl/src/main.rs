fn main() -> std::process::ExitCode {
    evidence_core::cli::main("svc-ctl", svc_ctl::run)
}
