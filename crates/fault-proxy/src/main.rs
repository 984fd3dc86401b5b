fn main() -> std::process::ExitCode {
    evidence_core::cli::main("fault-proxy", fault_proxy::run)
}
