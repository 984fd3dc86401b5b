//! One drill of a kind at a time: an exclusive lock file held for the life of the drill.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{EvidenceError, Result};

/// A held lock; released when dropped (and by the kernel if the process dies).
#[derive(Debug)]
pub struct LockFile {
    _file: File,
    path: PathBuf,
}

impl LockFile {
    /// Take the lock at `path`, or fail at once naming the holder's pid.
    pub fn acquire(path: &Path, what: &str) -> Result<LockFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| EvidenceError::io("cannot create folder", dir, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| EvidenceError::io("cannot open lock file", path, e))?;
        if file.try_lock().is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            };
            return Err(EvidenceError::failed(format!(
                "another {what} is running{who}: lock {} is held",
                path.display()
            )));
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        Ok(LockFile {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// A second handle on the same open lock file: a process holding it (the dead-man reaper)
    /// keeps the lock held after this process is gone.
    ///
    /// # Errors
    /// When the descriptor cannot be duplicated.
    pub fn try_clone_file(&self) -> std::io::Result<File> {
        self._file.try_clone()
    }

    /// The lock's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let a = LockFile::acquire(&p, "WAL drill").unwrap();
        let e = LockFile::acquire(&p, "WAL drill").unwrap_err();
        assert!(
            e.to_string().contains("another WAL drill is running"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        drop(a);
        LockFile::acquire(&p, "WAL drill").unwrap();
    }
}
