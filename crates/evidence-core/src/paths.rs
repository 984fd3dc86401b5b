//! Where the tools find their configs and calendar, and where drills write evidence, both in a
//! source checkout and when installed (`make install PREFIX=…`, the .deb).
//!
//! **Config search order** ([`config_dirs`], [`find_config`]); the first folder that holds the
//! wanted file wins:
//! 1. `$CTP_OPS_CONFIG_DIR` (an override: when set, it is the only folder searched);
//! 2. `./configs` (a checkout, or any folder with a `configs/` beside the working directory);
//! 3. `<prefix>/etc/ctp-ops`, where `<prefix>` is the folder above the running binary's `bin/`
//!    (`/usr/local/bin/wal-drill` → `/usr/local/etc/ctp-ops`); for a `/usr` prefix, `/etc/ctp-ops`
//!    under the same root (`<root>/usr/bin/x` → `<root>/etc/ctp-ops`), as Debian lays it out;
//! 4. `/etc/ctp-ops`.
//!
//! A file passed by flag (`--config`, `--calendar`) is used as given and never searched.
//!
//! **Results folder** ([`default_results_dir`]): `$CTP_OPS_RESULTS_DIR`; else `docs/results` when
//! the working directory is a checkout (it has `docs/results/`); else `/var/lib/ctp-ops/results`
//! when the running binary is installed (not under a cargo `target/` folder); else `docs/results`.

use std::path::{Path, PathBuf};

/// The environment variable that overrides the config search.
pub const CONFIG_DIR_ENV: &str = "CTP_OPS_CONFIG_DIR";
/// The environment variable that overrides the results folder.
pub const RESULTS_DIR_ENV: &str = "CTP_OPS_RESULTS_DIR";
/// The results folder of an installed toolkit.
pub const INSTALLED_RESULTS_DIR: &str = "/var/lib/ctp-ops/results";
/// The system config folder.
pub const SYSTEM_CONFIG_DIR: &str = "/etc/ctp-ops";

/// The config folder of an installation whose binary is `exe` (see the module docs, step 3).
#[must_use]
pub fn installed_config_dir(exe: &Path) -> Option<PathBuf> {
    let bin = exe.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    let prefix = bin.parent()?;
    if prefix.file_name().is_some_and(|n| n == "usr") {
        Some(prefix.parent()?.join("etc/ctp-ops"))
    } else {
        Some(prefix.join("etc/ctp-ops"))
    }
}

/// True when `exe` is a cargo build output (`…/target/<profile>/<tool>`), not an installed copy.
#[must_use]
pub fn is_cargo_build(exe: &Path) -> bool {
    exe.ancestors()
        .any(|a| a.file_name().is_some_and(|n| n == "target"))
}

fn current_exe() -> Option<PathBuf> {
    std::env::current_exe().ok()
}

/// The folders searched for configs, in order (see the module docs).
#[must_use]
pub fn config_dirs() -> Vec<PathBuf> {
    config_dirs_with(
        std::env::var_os(CONFIG_DIR_ENV).map(PathBuf::from),
        current_exe().as_deref(),
    )
}

/// [`config_dirs`] with its inputs given (for tests and tools that know their own paths).
#[must_use]
pub fn config_dirs_with(env_override: Option<PathBuf>, exe: Option<&Path>) -> Vec<PathBuf> {
    if let Some(d) = env_override.filter(|d| !d.as_os_str().is_empty()) {
        return vec![d];
    }
    let mut v = vec![PathBuf::from("configs")];
    if let Some(d) = exe.and_then(installed_config_dir) {
        v.push(d);
    }
    let sys = PathBuf::from(SYSTEM_CONFIG_DIR);
    if !v.contains(&sys) {
        v.push(sys);
    }
    v
}

/// The first `<dir>/<relative>` that exists, over [`config_dirs`]; e.g.
/// `find_config("calendar/cn-futures-2026.yaml")`.
#[must_use]
pub fn find_config(relative: &str) -> Option<PathBuf> {
    find_in(&config_dirs(), relative)
}

/// The first `<dir>/<relative>` that is a file, over `dirs`.
#[must_use]
pub fn find_in(dirs: &[PathBuf], relative: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(relative)).find(|p| p.is_file())
}

/// [`find_config`], else `configs/<relative>` (the checkout path, so a message names it): the
/// default of a `--config`-like flag.
#[must_use]
pub fn config_or_checkout(relative: &str) -> PathBuf {
    find_config(relative).unwrap_or_else(|| Path::new("configs").join(relative))
}

/// Text for an error when nothing was found: the places searched.
#[must_use]
pub fn searched(relative: &str) -> String {
    config_dirs()
        .iter()
        .map(|d| d.join(relative).display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The default results folder (see the module docs).
#[must_use]
pub fn default_results_dir() -> PathBuf {
    default_results_dir_with(
        std::env::var_os(RESULTS_DIR_ENV).map(PathBuf::from),
        Path::new("docs/results").is_dir(),
        current_exe().as_deref(),
    )
}

/// [`default_results_dir`] with its inputs given.
#[must_use]
pub fn default_results_dir_with(
    env_override: Option<PathBuf>,
    in_checkout: bool,
    exe: Option<&Path>,
) -> PathBuf {
    if let Some(d) = env_override.filter(|d| !d.as_os_str().is_empty()) {
        return d;
    }
    if in_checkout {
        return PathBuf::from("docs/results");
    }
    match exe {
        Some(e) if !is_cargo_build(e) => PathBuf::from(INSTALLED_RESULTS_DIR),
        _ => PathBuf::from("docs/results"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_layouts() {
        assert_eq!(
            installed_config_dir(Path::new("/usr/local/bin/wal-drill")),
            Some(PathBuf::from("/usr/local/etc/ctp-ops"))
        );
        assert_eq!(
            installed_config_dir(Path::new("/opt/ctp-ops/bin/wal-drill")),
            Some(PathBuf::from("/opt/ctp-ops/etc/ctp-ops"))
        );
        assert_eq!(
            installed_config_dir(Path::new("/usr/bin/wal-drill")),
            Some(PathBuf::from("/etc/ctp-ops"))
        );
        assert_eq!(
            installed_config_dir(Path::new("/tmp/root/usr/bin/wal-drill")),
            Some(PathBuf::from("/tmp/root/etc/ctp-ops"))
        );
        assert_eq!(
            installed_config_dir(Path::new("/repo/target/debug/wal-drill")),
            None
        );
    }

    #[test]
    fn search_order() {
        let exe = Path::new("/opt/x/bin/t");
        assert_eq!(
            config_dirs_with(None, Some(exe)),
            [
                PathBuf::from("configs"),
                PathBuf::from("/opt/x/etc/ctp-ops"),
                PathBuf::from("/etc/ctp-ops")
            ]
        );
        assert_eq!(
            config_dirs_with(Some(PathBuf::from("/cfg")), Some(exe)),
            [PathBuf::from("/cfg")]
        );
        assert_eq!(
            config_dirs_with(None, Some(Path::new("/usr/bin/t"))),
            [PathBuf::from("configs"), PathBuf::from("/etc/ctp-ops")]
        );
    }

    #[test]
    fn results_dir() {
        let inst = Path::new("/usr/bin/wal-drill");
        let dev = Path::new("/repo/target/release/wal-drill");
        assert_eq!(
            default_results_dir_with(Some("/r".into()), true, Some(inst)),
            PathBuf::from("/r")
        );
        assert_eq!(
            default_results_dir_with(None, true, Some(inst)),
            PathBuf::from("docs/results")
        );
        assert_eq!(
            default_results_dir_with(None, false, Some(inst)),
            PathBuf::from(INSTALLED_RESULTS_DIR)
        );
        assert_eq!(
            default_results_dir_with(None, false, Some(dev)),
            PathBuf::from("docs/results")
        );
    }

    #[test]
    fn find_in_takes_the_first_existing() {
        let a = tempfile_dir("a");
        let b = tempfile_dir("b");
        std::fs::create_dir_all(b.join("calendar")).unwrap_or_default();
        std::fs::write(b.join("calendar/x.yaml"), "x").unwrap_or_default();
        assert_eq!(
            find_in(&[a.clone(), b.clone()], "calendar/x.yaml"),
            Some(b.join("calendar/x.yaml"))
        );
        assert_eq!(find_in(std::slice::from_ref(&a), "calendar/x.yaml"), None);
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }

    fn tempfile_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "evidence-core-paths-{}-{tag}-{}",
            std::process::id(),
            crate::time::now_ns()
        ));
        std::fs::create_dir_all(&d).unwrap_or_default();
        d
    }
}
