fn main() -> std::process::ExitCode {
    evidence_core::cli::main("render-systemd", render_systemd::run)
}
