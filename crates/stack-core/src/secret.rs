//! The stack's generated password: random bytes from the kernel, written to a 0600 file in the run
//! folder, read back by every tool; never printed, never in argv or evidence.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use evidence_core::{EvidenceError, Result};

/// `n` random bytes from `/dev/urandom` (falls back to a time-seeded mix if it cannot be read,
/// which never happens on Linux).
#[must_use]
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    if fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let seed = evidence_core::time::now_ns();
        for (i, x) in b.iter_mut().enumerate() {
            *x = (seed.rotate_left(i as u32 * 7) & 0xff) as u8 ^ (i as u8);
        }
    }
    b
}

/// A 32-character alphanumeric password (safe in URLs, config files and conninfo strings).
#[must_use]
pub fn generate_password() -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    random_bytes(32)
        .iter()
        .map(|b| A[(*b as usize) % A.len()] as char)
        .collect()
}

/// Write `secret` to `path` with mode 0600 (created new or truncated; the mode is forced).
pub fn write_secret(path: &Path, secret: &str) -> Result<()> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).map_err(|e| EvidenceError::io("cannot create folder", d, e))?;
    }
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| EvidenceError::io("cannot write", path, e))?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| EvidenceError::io("cannot chmod", path, e))?;
    f.write_all(secret.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| EvidenceError::io("cannot write", path, e))
}

/// Read a secret file (trailing newline removed). Refuses a file readable by group or others.
pub fn read_secret(path: &Path) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|e| EvidenceError::io("cannot read", path, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(EvidenceError::failed(format!(
            "{}: a secret file must not be readable by group or others (mode {:o})",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    let s = fs::read_to_string(path).map_err(|e| EvidenceError::io("cannot read", path, e))?;
    Ok(s.trim_end_matches(['\r', '\n']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_written_0600_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s/password");
        let pw = generate_password();
        assert_eq!(pw.len(), 32);
        assert_ne!(pw, generate_password());
        write_secret(&p, &pw).unwrap();
        assert_eq!(read_secret(&p).unwrap(), pw);
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_secret(&p).is_err());
    }
}
