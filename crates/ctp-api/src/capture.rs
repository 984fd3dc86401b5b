//! Keeping the vendor libraries' stdout chatter out of the `[health]` stream.
//!
//! The CTP libraries (and LocalCTP) `printf` to stdout: every disconnect prints
//! `CThostFtdcUserApiImplBase::OnSessionDisconnected[...]`, the missing-flow-file error, LocalCTP's
//! `[LocalCTP] ...` lines. A probe whose `[health]` lines go to stdout would have them mixed in.
//! [`capture_stdout`] moves fd 1 to a log file (append, mode 0600) before any library is loaded
//! and returns a `File` on the original stdout for the health lines.
//!
//! Why in-process and not a child process per API object: the redirect is three system calls
//! done once at start, before any thread of the library exists; a child process would need its
//! own binary or a re-exec protocol, and the password passed to it (environment only). The cost:
//! everything printed to fd 1 afterwards, including Rust's `print!`, goes to the log; the probe
//! writes its health lines to the returned handle only. A vendor crash still takes the probe
//! down (the flow directory is created first, which avoids the one crash seen here).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Redirect fd 1 to `log` (created 0600, appended) and return the original stdout.
pub fn capture_stdout(log: &Path) -> Result<File, String> {
    if let Some(d) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    // An existing log keeps its mode otherwise; the libraries may print account details.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot chmod {}: {e}", log.display()))?;
    let _ = io::stdout().flush();
    let original =
        nix::unistd::dup(io::stdout()).map_err(|e| format!("cannot duplicate stdout: {e}"))?;
    nix::unistd::dup2_stdout(&file)
        .map_err(|e| format!("cannot redirect stdout to {}: {e}", log.display()))?;
    Ok(File::from(original))
}
