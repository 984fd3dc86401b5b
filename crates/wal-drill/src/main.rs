fn main() -> std::process::ExitCode {
    evidence_core::cli::main("wal-drill", wal_drill::run)
}
