fn main() -> std::process::ExitCode {
    evidence_core::cli::main("wal-verify", wal_verify::run)
}
