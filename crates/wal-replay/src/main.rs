fn main() -> std::process::ExitCode {
    evidence_core::cli::main("wal-replay", wal_replay::run)
}
