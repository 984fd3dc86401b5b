fn main() -> std::process::ExitCode {
    evidence_core::cli::main("multihost", multihost::run)
}
