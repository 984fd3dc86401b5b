fn main() -> std::process::ExitCode {
    evidence_core::cli::main("fault-inject", fault_inject::run)
}
