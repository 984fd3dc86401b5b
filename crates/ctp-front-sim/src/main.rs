fn main() -> std::process::ExitCode {
    evidence_core::cli::main("ctp-front-sim", ctp_front_sim::run)
}
