fn main() -> std::process::ExitCode {
    evidence_core::cli::main("xtask", xtask::run)
}
