//! Local images without a registry: a Debian bookworm base built with `debootstrap
//! --variant=minbase` from the host's own apt mirror (with `-updates` and `-security` added),
//! `docker import`ed, then the service images built from `infra/docker/<name>/Dockerfile` with
//! `docker build --network host` (a private engine has no NAT; the host network reaches the
//! mirror).
//!
//! **Cache.** The root filesystem tarball is kept in the cache folder
//! (`<cache>/bookworm-<key>.tar`), keyed by suite, variant and mirrors, so a fresh data root only
//! re-imports it. Images are tagged `ctp-ops/<name>:<key>`, the key a SHA-256 over the base tag and
//! every file of the build context, so an edited Dockerfile rebuilds and an unchanged one is
//! reused; each is also tagged `ctp-ops/<name>:local`, the tag the compose files use. A second run
//! on the same data root runs only `docker image inspect`s.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use evidence_core::{EvidenceError, Result};

use crate::engine::{Engine, mounts_under, os};
use crate::step::{Step, run_step};

/// The images of the prod-like stack, as folders of `infra/docker/`.
pub const STACK_IMAGES: &[&str] = &["redis", "postgres", "monitoring"];

/// The image cache folder: `$CTP_OPS_COMPOSE_CACHE` when set, else
/// `<checkout>/runtime/compose-cache`.
#[must_use]
pub fn default_cache_dir(checkout: &Path) -> PathBuf {
    std::env::var_os("CTP_OPS_COMPOSE_CACHE")
        .map_or_else(|| checkout.join("runtime/compose-cache"), PathBuf::from)
}

/// The data root a private engine keeps its images in, inside a cache folder.
#[must_use]
pub fn data_root(cache_dir: &Path) -> PathBuf {
    cache_dir.join("data-root")
}

/// An exclusive lock on a cache folder's data root (`<cache>/engine.lock`): only one private
/// `dockerd` may use a data root at a time. [`CacheLock::acquire`] waits for it (tests of several
/// crates share one cache); it is released when dropped, or by the kernel when the process dies.
/// Drop it only after the engine has stopped.
#[derive(Debug)]
pub struct CacheLock {
    _file: fs::File,
}

impl CacheLock {
    /// Wait for and take the lock of `cache_dir` (created if missing).
    pub fn acquire(cache_dir: &Path) -> Result<CacheLock> {
        fs::create_dir_all(cache_dir)
            .map_err(|e| EvidenceError::io("cannot create folder", cache_dir, e))?;
        let path = cache_dir.join("engine.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| EvidenceError::io("cannot open", &path, e))?;
        file.lock()
            .map_err(|e| EvidenceError::io("cannot lock", &path, e))?;
        Ok(CacheLock { _file: file })
    }
}

/// Apt mirrors for the base root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrors {
    /// Main archive (`http://deb.debian.org/debian`).
    pub debian: String,
    /// Security archive (`http://deb.debian.org/debian-security`).
    pub security: String,
}

impl Mirrors {
    /// The host's mirrors for `suite`, read from `/etc/apt/sources.list` and
    /// `/etc/apt/sources.list.d/*.list|*.sources`; `deb.debian.org` for what is not found.
    #[must_use]
    pub fn from_host(suite: &str) -> Mirrors {
        let mut texts = Vec::new();
        if let Ok(s) = fs::read_to_string("/etc/apt/sources.list") {
            texts.push((false, s));
        }
        if let Ok(rd) = fs::read_dir("/etc/apt/sources.list.d") {
            let mut paths: Vec<PathBuf> = rd.filter_map(|e| Some(e.ok()?.path())).collect();
            paths.sort();
            for p in paths {
                let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
                if (ext == "list" || ext == "sources")
                    && let Ok(s) = fs::read_to_string(&p)
                {
                    texts.push((ext == "sources", s));
                }
            }
        }
        let mut debian = None;
        let mut security = None;
        for (deb822, text) in &texts {
            for (uri, suites) in apt_entries(text, *deb822) {
                if debian.is_none() && suites.iter().any(|s| s == suite) {
                    debian = Some(uri.clone());
                }
                if security.is_none() && suites.iter().any(|s| *s == format!("{suite}-security")) {
                    security = Some(uri.clone());
                }
            }
        }
        Mirrors {
            debian: debian.unwrap_or_else(|| "http://deb.debian.org/debian".to_string()),
            security: security
                .unwrap_or_else(|| "http://deb.debian.org/debian-security".to_string()),
        }
    }
}

/// (URI, suites) of each `deb` entry of a one-line `.list` or a deb822 `.sources` text.
fn apt_entries(text: &str, deb822: bool) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    if deb822 {
        for para in text.split("\n\n") {
            let mut types = Vec::new();
            let mut uris = Vec::new();
            let mut suites = Vec::new();
            let mut enabled = true;
            for line in para.lines() {
                if line.starts_with('#') {
                    continue;
                }
                let Some((k, v)) = line.split_once(':') else {
                    continue;
                };
                let words: Vec<String> = v.split_whitespace().map(String::from).collect();
                match k.trim().to_ascii_lowercase().as_str() {
                    "types" => types = words,
                    "uris" => uris = words,
                    "suites" => suites = words,
                    "enabled" => enabled = v.trim() != "no",
                    _ => {}
                }
            }
            if enabled && types.iter().any(|t| t == "deb") {
                for u in uris {
                    out.push((u.trim_end_matches('/').to_string(), suites.clone()));
                }
            }
        }
    } else {
        for line in text.lines() {
            let mut w = line.split_whitespace();
            if w.next() != Some("deb") {
                continue;
            }
            let mut uri = w.next().unwrap_or_default();
            if uri.starts_with('[') {
                // Options like [arch=amd64 signed-by=...] may span words.
                let mut u = uri;
                while !u.ends_with(']') {
                    match w.next() {
                        Some(x) => u = x,
                        None => break,
                    }
                }
                uri = w.next().unwrap_or_default();
            }
            if let Some(s) = w.next() {
                out.push((uri.trim_end_matches('/').to_string(), vec![s.to_string()]));
            }
        }
    }
    out
}

/// Where and how to build.
#[derive(Debug, Clone)]
pub struct ImageCache {
    /// Cache folder (the root filesystem tarball; scratch space while building).
    pub dir: PathBuf,
    /// Debian suite (`bookworm`).
    pub suite: String,
    /// Mirrors (default: the host's).
    pub mirrors: Mirrors,
    /// Build contexts: `<context_root>/<name>/Dockerfile` (`infra/docker`).
    pub context_root: PathBuf,
    /// Timeout of `debootstrap`.
    pub debootstrap_timeout: Duration,
    /// Timeout of each `docker build`.
    pub build_timeout: Duration,
}

/// What [`ImageCache::ensure`] did.
#[derive(Debug, Clone)]
pub struct ImagesOutcome {
    /// Steps run (`debootstrap`, `rootfs_tar`, `image_import`, `image_build_<name>`,
    /// `image_tag_<name>`); a warm run has only inspections, which are not listed.
    pub steps: Vec<Step>,
    /// The base image reference (`ctp-ops/bookworm:<key>`).
    pub base: String,
    /// (name, reference with the key tag) of each built or reused image.
    pub images: Vec<(String, String)>,
    /// True when nothing had to be built or imported.
    pub warm: bool,
    /// Wall time of the whole call.
    pub duration: Duration,
}

impl ImageCache {
    /// A cache in `dir` for the contexts under `context_root`, bookworm from the host's mirrors,
    /// 10 min for debootstrap and for each build.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>, context_root: impl Into<PathBuf>) -> Self {
        ImageCache {
            dir: dir.into(),
            suite: "bookworm".to_string(),
            mirrors: Mirrors::from_host("bookworm"),
            context_root: context_root.into(),
            debootstrap_timeout: Duration::from_secs(600),
            build_timeout: Duration::from_secs(600),
        }
    }

    fn base_key(&self) -> String {
        short_hash(&[
            b"ctp-ops-base-v1",
            self.suite.as_bytes(),
            b"minbase",
            self.mirrors.debian.as_bytes(),
            self.mirrors.security.as_bytes(),
        ])
    }

    /// The base image reference this cache builds.
    #[must_use]
    pub fn base_ref(&self) -> String {
        format!("ctp-ops/{}:{}", self.suite, self.base_key())
    }

    /// The reference of image `name` for this cache's base and the current build context.
    pub fn image_ref(&self, name: &str) -> Result<String> {
        let ctx = self.context_root.join(name);
        let mut parts: Vec<Vec<u8>> =
            vec![b"ctp-ops-image-v1".to_vec(), self.base_ref().into_bytes()];
        let mut files = Vec::new();
        collect_files(&ctx, &mut files)?;
        files.sort();
        for f in files {
            let rel = f
                .strip_prefix(&ctx)
                .unwrap_or(&f)
                .to_string_lossy()
                .into_owned();
            parts.push(rel.into_bytes());
            parts.push(fs::read(&f).map_err(|e| EvidenceError::io("cannot read", &f, e))?);
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        Ok(format!("ctp-ops/{name}:{}", short_hash(&refs)))
    }

    /// Make sure the base and each of `names` exist in `engine` (building what is missing) and
    /// that `ctp-ops/<name>:local` points at the current build. Stops at the first failed step
    /// (its error names the step and the end of its output).
    pub fn ensure(&self, engine: &Engine, names: &[&str]) -> Result<ImagesOutcome> {
        let start = Instant::now();
        let mut steps = Vec::new();
        let base = self.base_ref();
        if !engine.image_exists(&base)? {
            self.import_base(engine, &base, &mut steps)?;
        }
        let mut images = Vec::new();
        for name in names {
            let r = self.image_ref(name)?;
            if !engine.image_exists(&r)? {
                let ctx = self.context_root.join(name);
                let s = engine.docker(
                    &format!("image_build_{name}"),
                    &[
                        "build".into(),
                        "--network".into(),
                        "host".into(),
                        "--build-arg".into(),
                        format!("BASE={base}").into(),
                        "-t".into(),
                        r.clone().into(),
                        ctx.into_os_string(),
                    ],
                    self.build_timeout,
                )?;
                check(&s)?;
                steps.push(s);
            }
            let local = format!("ctp-ops/{name}:local");
            let s = engine.docker(
                &format!("image_tag_{name}"),
                &os(&["tag", &r, &local]),
                crate::engine::QUERY_TIMEOUT,
            )?;
            check(&s)?;
            images.push(((*name).to_string(), r));
        }
        Ok(ImagesOutcome {
            warm: steps.is_empty(),
            steps,
            base,
            images,
            duration: start.elapsed(),
        })
    }

    fn import_base(&self, engine: &Engine, base: &str, steps: &mut Vec<Step>) -> Result<()> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| EvidenceError::io("cannot create folder", &self.dir, e))?;
        let tar = self
            .dir
            .join(format!("{}-{}.tar", self.suite, self.base_key()));
        if !tar.is_file() {
            let rootfs = self.dir.join(format!("rootfs.{}", std::process::id()));
            let r = self.build_rootfs(&rootfs, &tar, steps);
            remove_rootfs(&rootfs);
            r?;
        }
        let s = engine.docker(
            "image_import",
            &["import".into(), tar.into_os_string(), base.into()],
            self.build_timeout,
        )?;
        check(&s)?;
        steps.push(s);
        Ok(())
    }

    fn build_rootfs(&self, rootfs: &Path, tar: &Path, steps: &mut Vec<Step>) -> Result<()> {
        remove_rootfs(rootfs);
        let s = run_step(
            "debootstrap",
            &OsString::from("debootstrap"),
            &[
                "--variant=minbase".into(),
                self.suite.clone().into(),
                rootfs.as_os_str().to_os_string(),
                self.mirrors.debian.clone().into(),
            ],
            &[],
            self.debootstrap_timeout,
        )?;
        check(&s)?;
        steps.push(s);
        let sources = format!(
            "deb {m} {s} main\ndeb {m} {s}-updates main\ndeb {sec} {s}-security main\n",
            m = self.mirrors.debian,
            sec = self.mirrors.security,
            s = self.suite
        );
        let list = rootfs.join("etc/apt/sources.list");
        fs::write(&list, sources).map_err(|e| EvidenceError::io("cannot write", &list, e))?;
        // Apt's downloaded lists and packages are stale by the time an image is built: drop them.
        for d in ["var/lib/apt/lists", "var/cache/apt/archives"] {
            let p = rootfs.join(d);
            if let Ok(rd) = fs::read_dir(&p) {
                for e in rd.flatten() {
                    if e.path().is_file() {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
        let part = tar.with_extension("tar.part");
        let s = run_step(
            "rootfs_tar",
            &OsString::from("tar"),
            &[
                "--numeric-owner".into(),
                "-C".into(),
                rootfs.as_os_str().to_os_string(),
                "-cf".into(),
                part.clone().into_os_string(),
                ".".into(),
            ],
            &[],
            self.build_timeout,
        )?;
        check(&s)?;
        steps.push(s);
        fs::rename(&part, tar).map_err(|e| EvidenceError::io("cannot rename", &part, e))?;
        Ok(())
    }
}

/// An error for a failed step.
fn check(s: &Step) -> Result<()> {
    if s.ok {
        Ok(())
    } else {
        Err(EvidenceError::failed(s.failure_message()))
    }
}

/// Remove a (possibly half-built) root filesystem: unmount whatever debootstrap left mounted in
/// it first (`proc`, `sys`), and never cross into another file system.
fn remove_rootfs(rootfs: &Path) {
    if !rootfs.exists() {
        return;
    }
    for m in mounts_under(rootfs) {
        let _ = run_step(
            "umount",
            &OsString::from("umount"),
            &["-l".into(), m.into_os_string()],
            &[],
            Duration::from_secs(10),
        );
    }
    let _ = run_step(
        "rm_rootfs",
        &OsString::from("rm"),
        &[
            "-rf".into(),
            "--one-file-system".into(),
            rootfs.as_os_str().to_os_string(),
        ],
        &[],
        Duration::from_secs(120),
    );
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = fs::read_dir(dir).map_err(|e| EvidenceError::io("cannot read folder", dir, e))?;
    for e in rd {
        let e = e.map_err(|e| EvidenceError::io("cannot read folder", dir, e))?;
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_and_one_line_sources() {
        let deb822 = "Types: deb\n# comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\n";
        let e = apt_entries(deb822, true);
        assert_eq!(e[0].0, "http://mirror.example/debian");
        assert_eq!(e[1].1, vec!["bookworm-security".to_string()]);
        let one = "# x\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\ndeb-src http://no bookworm main\n";
        let e = apt_entries(one, false);
        assert_eq!(
            e,
            vec![(
                "http://m.example/debian".to_string(),
                vec!["bookworm".to_string()]
            )]
        );
    }

    #[test]
    fn image_keys_follow_the_context() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("redis");
        fs::create_dir_all(&ctx).unwrap();
        fs::write(ctx.join("Dockerfile"), "FROM x\n").unwrap();
        let c = ImageCache::new(dir.path().join("cache"), dir.path());
        let a = c.image_ref("redis").unwrap();
        assert_eq!(a, c.image_ref("redis").unwrap());
        fs::write(ctx.join("Dockerfile"), "FROM y\n").unwrap();
        assert_ne!(a, c.image_ref("redis").unwrap());
        assert!(a.starts_with("ctp-ops/redis:"));
    }
}
