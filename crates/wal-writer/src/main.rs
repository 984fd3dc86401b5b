fn main() -> std::process::ExitCode {
    evidence_core::cli::main("wal-writer", wal_writer::run)
}
