//! stub
#[derive(Debug, clap::Parser)]
pub struct Cli {}
/// run
pub fn run(_c: Cli) -> evidence_core::Result<evidence_core::Exit> {
    Ok(evidence_core::Exit::Pass)
}
