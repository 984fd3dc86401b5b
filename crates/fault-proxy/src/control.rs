//! The control socket server: serves a [`Proxy`] with the protocol of
//! [`reconnect_core::control`] (JSON lines over a Unix socket, one request line → one reply line).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crate::engine::Proxy;
use evidence_core::{EvidenceError, Result};
pub use reconnect_core::control::{
    Applied, Client, ClientError, FaultInfo, MAX_LINE, PairStatus, Request, Response,
};

#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    /// (device, inode) of the socket file we bound: removed at stop only if still ours.
    file_id: Option<(u64, u64)>,
    waker: Option<UnixListener>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Bind `path` and serve `proxy` on a thread. A stale socket file (nobody listening) is
    /// replaced; a live one, or a file that is not a socket, is an error.
    ///
    /// # Errors
    /// `Failed` when the path is in use or cannot be bound.
    pub fn start(path: &Path, proxy: Arc<Proxy>) -> Result<Server> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(EvidenceError::failed(format!(
                    "control path {} exists and is not a socket",
                    path.display()
                )));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(EvidenceError::failed(format!(
                    "control socket {} is in use by a running proxy",
                    path.display()
                )));
            }
            std::fs::remove_file(path)
                .map_err(|e| EvidenceError::io("cannot remove stale socket", path, e))?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| EvidenceError::io("cannot create folder for", path, e))?;
        }
        let listener = UnixListener::bind(path)
            .map_err(|e| EvidenceError::io("cannot bind control socket", path, e))?;
        let file_id = std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        let waker = listener.try_clone().ok();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let proxy = Arc::clone(&proxy);
                    let _ = std::thread::Builder::new()
                        .name("control-conn".into())
                        .spawn(move || serve_conn(conn, &proxy));
                }
            })
            .map_err(|e| EvidenceError::failed(format!("cannot start control thread: {e}")))?;
        Ok(Server {
            path: path.to_path_buf(),
            file_id,
            waker,
            stop,
            thread: Some(thread),
        })
    }

    /// Stop accepting, and remove the socket file if it is still the one we bound (someone may
    /// have replaced it).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Shutting a listening Unix socket's read side makes a blocked accept fail with EINVAL.
        match &self.waker {
            Some(l) => {
                let _ = socket2::SockRef::from(l).shutdown(std::net::Shutdown::Read);
            }
            None => {
                let _ = UnixStream::connect(&self.path);
            }
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let ours = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if ours.is_some() && ours == self.file_id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

fn serve_conn(conn: UnixStream, proxy: &Proxy) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let too_long = !line.ends_with(b"\n") && line.len() as u64 >= MAX_LINE;
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        let reply = if too_long {
            Response::error("", format!("request line longer than {MAX_LINE} bytes"))
        } else {
            match serde_json::from_str::<Request>(&text) {
                Ok(req) => proxy.handle(&req),
                Err(e) => {
                    // Name the op in the refusal when the line says which one it meant.
                    let op = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_string))
                        .unwrap_or_default();
                    Response::error(&op, format!("bad request: {e}"))
                }
            }
        };
        let mut bytes = serde_json::to_vec(&reply).unwrap_or_else(|_| b"{}".to_vec());
        bytes.push(b'\n');
        if out.write_all(&bytes).is_err() || too_long {
            return;
        }
    }
}
