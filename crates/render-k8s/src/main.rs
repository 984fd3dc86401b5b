fn main() -> std::process::ExitCode {
    evidence_core::cli::main("render-k8s", render_k8s::run)
}
