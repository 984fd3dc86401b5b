fn main() -> std::process::ExitCode {
    evidence_core::cli::main("prodlike", prodlike::run)
}
