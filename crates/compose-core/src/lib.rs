//! compose-core: the Docker Compose backend of the prod-like stacks (SOP 7) and the engine of the
//! multi-host compose backend (SOP 8).
//!
//! - [`Engine`]: the user's engine (`--docker-bin`, `DOCKER_HOST`) with `docker compose` (v2) or
//!   `docker-compose` (v1) detected; [`PrivateEngine`]: a private `dockerd` for tests and drills
//!   that leaves the host firewall, `ip_forward` and `/var/lib/docker` alone.
//! - [`ImageCache`]: local images without a registry (debootstrap → `docker import` →
//!   `docker build --network host`), cached and reused.
//! - [`Project`]: `up` (waits for every healthcheck), `down` (`purge` removes volumes), `ps`
//!   (typed [`PsRow`]s in the original's §1.7 shape), `published` (host address of a port),
//!   `kill`; `up_services` and `service_labels` for the multi-host file's two steps.
//! - [`parse_ps_json`]: a saved `compose ps --format json` read as the original did.
//! - Every operation returns measured [`Step`]s: name, argv, exit code, status, duration, ready for
//!   the `STEP_n_NAME`/`STEP_n_STATUS`/`STEP_n_DURATION_MS`/`STEP_n_COMMAND` quartets. Commands run
//!   through `evidence_core::process` (own process group, timeout, bounded captured output), never
//!   through a shell; secrets stay in the env file.
//!
//! # Example: the user's engine (what `prodlike --backend compose --execute --action up` does)
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use compose_core::{Engine, EngineOptions, Project};
//!
//! # fn main() -> evidence_core::Result<()> {
//! let engine = Engine::external(&EngineOptions {
//!     docker_bin: None, // or Some("--docker-bin".into()): then `<bin> compose` as given
//!     compose_bin: None,
//!     docker_host: None, // or Some("unix:///run/x/docker.sock")
//! });
//! let project = Project::new(
//!     &engine,
//!     "infra/docker-compose.prodlike.yaml",
//!     "quant-hft-prodlike",
//!     Some("infra/env/prodlike.env".into()), // passed only if it exists
//! )?;
//! let up = project.up(Instant::now() + Duration::from_secs(180))?;
//! for s in &up.steps {
//!     // STEP_n_NAME, STEP_n_STATUS, STEP_n_DURATION_MS, STEP_n_COMMAND
//!     let _ = (&s.name, s.status(), s.duration_ms(), s.command_line());
//! }
//! if let Some(f) = up.failed_step() {
//!     eprintln!("{}", f.failure_message()); // PRODLIKE_FAILED_STEP = f.name
//! }
//! let redis = project.published("redis-primary", 6379)?; // 127.0.0.1:<port>
//! let (_step, rows) = project.ps()?; // rows[i].to_json() is a `compose ps --format json` row
//! let _ = (redis, rows);
//! project.down(/* purge */ false, Duration::from_secs(120))?;
//! # Ok(()) }
//! ```
//!
//! # Example: a private engine with cached local images (tests, drills)
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use compose_core::{
//!     CacheLock, ImageCache, PrivateEngine, PrivateEngineOptions, Project, STACK_IMAGES,
//! };
//!
//! # fn main() -> evidence_core::Result<()> {
//! // $CTP_OPS_COMPOSE_CACHE or <checkout>/runtime/compose-cache
//! let cache = compose_core::default_cache_dir(std::path::Path::new("."));
//! let lock = CacheLock::acquire(&cache)?; // one engine per data root; waits for another test
//! // run_dir must be short (unix socket path); the data root keeps the images between runs.
//! let daemon = PrivateEngine::start(PrivateEngineOptions::new(
//!     "/tmp/ctp-dockerd",
//!     compose_core::data_root(&cache),
//! ))?;
//! let images = ImageCache::new(&cache, "infra/docker").ensure(daemon.engine(), STACK_IMAGES)?;
//! let project = Project::new(
//!     daemon.engine(),
//!     "infra/docker-compose.prodlike.yaml",
//!     "ctp-test",
//!     Some("stack.env".into()),
//! )?;
//! let up = project.up(Instant::now() + Duration::from_secs(180))?;
//! assert!(up.healthy, "{:?}", up.failed_step());
//! project.down(true, Duration::from_secs(120))?;
//! daemon.stop()?; // SIGTERM, wait, unmount nsfs, remove the socket: nothing left behind
//! drop(lock); // only after the engine has stopped
//! # let _ = images; Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod engine;
pub mod images;
pub mod project;
pub mod ps;
pub mod step;

pub use engine::{ComposeCli, Engine, EngineOptions, PrivateEngine, PrivateEngineOptions};
pub use images::{
    CacheLock, ImageCache, ImagesOutcome, Mirrors, STACK_IMAGES, data_root, default_cache_dir,
};
pub use project::{Project, ServiceLabels, UpOutcome, not_healthy, published_in};
pub use ps::{PsRow, Publisher, parse_ps_json};
pub use step::Step;
