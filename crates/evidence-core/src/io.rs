//! `-` means stdin or stdout; everything else is a path. Evidence files are written atomically.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{EvidenceError, Result};

/// An input: stdin (`-`) or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input, written `-`.
    Stdin,
    /// A file.
    Path(PathBuf),
}

impl Input {
    /// Open for buffered reading. A missing file is an `Io` error naming the path.
    pub fn open(&self) -> Result<Box<dyn BufRead>> {
        match self {
            Input::Stdin => Ok(Box::new(BufReader::with_capacity(1 << 16, io::stdin()))),
            Input::Path(p) => {
                let f = File::open(p).map_err(|e| EvidenceError::io("cannot read", p, e))?;
                Ok(Box::new(BufReader::with_capacity(1 << 16, f)))
            }
        }
    }

    /// Read the whole input as UTF-8 text.
    pub fn read_to_string(&self) -> Result<String> {
        let mut s = String::new();
        self.open()?
            .read_to_string(&mut s)
            .map_err(|e| EvidenceError::io("cannot read", self.label(), e))?;
        Ok(s)
    }

    /// Read the whole input as bytes.
    pub fn read_bytes(&self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open()?
            .read_to_end(&mut v)
            .map_err(|e| EvidenceError::io("cannot read", self.label(), e))?;
        Ok(v)
    }

    /// The label used in diagnostics: the path, or `-`.
    #[must_use]
    pub fn label(&self) -> String {
        self.to_string()
    }

    /// True for stdin.
    #[must_use]
    pub fn is_stdin(&self) -> bool {
        matches!(self, Input::Stdin)
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Stdin => f.write_str("-"),
            Input::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

impl From<&OsStr> for Input {
    fn from(s: &OsStr) -> Self {
        if s == "-" {
            Input::Stdin
        } else {
            Input::Path(PathBuf::from(s))
        }
    }
}

impl std::str::FromStr for Input {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Input::from(OsStr::new(s)))
    }
}

/// An output: stdout (`-`) or a file written atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Standard output, written `-`.
    Stdout,
    /// A file, replaced atomically.
    Path(PathBuf),
}

impl Output {
    /// Write `bytes` as the whole content: to stdout, or atomically and durably to the file.
    ///
    /// Evidence that meets a closed stdout (EPIPE) was not delivered: that is a failure of the
    /// tool (exit 2, with a message), never the quiet exit 0 a report cut short by `head` gets.
    pub fn write_all(&self, bytes: &[u8]) -> Result<()> {
        match self {
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)
                    .and_then(|()| out.flush())
                    .map_err(|e| {
                        if e.kind() == io::ErrorKind::BrokenPipe {
                            EvidenceError::failed(
                                "stdout was closed before the evidence was written (broken pipe): nothing was delivered",
                            )
                        } else {
                            EvidenceError::io("cannot write", "-", e)
                        }
                    })
            }
            Output::Path(p) => write_atomic(p, bytes),
        }
    }

    /// The label used in diagnostics: the path, or `-`.
    #[must_use]
    pub fn label(&self) -> String {
        self.to_string()
    }

    /// The path, if any.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        match self {
            Output::Stdout => None,
            Output::Path(p) => Some(p),
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Stdout => f.write_str("-"),
            Output::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

impl From<&OsStr> for Output {
    fn from(s: &OsStr) -> Self {
        if s == "-" {
            Output::Stdout
        } else {
            Output::Path(PathBuf::from(s))
        }
    }
}

impl std::str::FromStr for Output {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Output::from(OsStr::new(s)))
    }
}

/// Replace `path` with `bytes` atomically and durably: write a temporary file in the same folder,
/// fsync it, rename it over `path`, fsync the folder. Creates missing parent folders. A crash at any
/// point leaves either the old file or the new one, never a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| EvidenceError::io("cannot create folder", &dir, e))?;
    let name = path
        .file_name()
        .ok_or_else(|| EvidenceError::usage(format!("not a file path: {}", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.{}.tmp", std::process::id(), unique_suffix()));
    let tmp = dir.join(tmp_name);
    let result = (|| -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(EvidenceError::io("cannot write", path, e));
    }
    Ok(())
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dash_is_stdio() {
        assert_eq!("-".parse::<Input>().unwrap(), Input::Stdin);
        assert_eq!("-".parse::<Output>().unwrap(), Output::Stdout);
        assert_eq!(
            "a/b.env".parse::<Output>().unwrap(),
            Output::Path(PathBuf::from("a/b.env"))
        );
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.env");
        write_atomic(&p, b"a=1\n").unwrap();
        write_atomic(&p, b"a=2\n").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "a=2\n");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn missing_input_names_path() {
        let e = Input::Path(PathBuf::from("/nonexistent/x"))
            .open()
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/x"), "{e}");
    }
}
