//! Loading the vendor libraries and creating the API objects: the only module with `unsafe`.
//!
//! ctp2rs (built for the v6.7.11 headers) wraps every API method and callback safely, but its
//! constructors panic on a missing file or symbol and only know one `CreateFtdc*Api` signature:
//! v6.7.11 added a production-mode flag (`CreateFtdcTraderApi(const char*, bool)`), while v6.7.7
//! libraries (the one rtpx ships, used by the tests) export `CreateFtdcTraderApi(const char*)`.
//! The v6.7.11 headers only append virtual methods and struct fields, so a v6.7.11-built binding
//! drives an older library as long as it creates the object with the older constructor. This
//! module picks whichever constructor the library exports and builds ctp2rs's `TraderApi` /
//! `MdApi` from the pointer it returns; everything after that (method calls, callbacks, release
//! on drop) is ctp2rs's.
//!
//! Each library stays loaded for the life of the process (`PINNED`): the probe releases and
//! re-creates the API object on every reconnect, and unloading a vendor library whose threads
//! have just been stopped is asking for trouble.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char};
use std::path::{Path, PathBuf};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicPtr};
use std::sync::{Mutex, OnceLock};

use ctp2rs::v1alpha1::{CThostFtdcMdApi, CThostFtdcTraderApi, MdApi, TraderApi};
use libloading::Library;

const TD_CREATE_V6711: &[u8] = b"_ZN19CThostFtdcTraderApi19CreateFtdcTraderApiEPKcb";
const TD_CREATE_OLD: &[u8] = b"_ZN19CThostFtdcTraderApi19CreateFtdcTraderApiEPKc";
const TD_VERSION: &[u8] = b"_ZN19CThostFtdcTraderApi13GetApiVersionEv";
const MD_CREATE_V6711: &[u8] = b"_ZN15CThostFtdcMdApi15CreateFtdcMdApiEPKcbbb";
const MD_CREATE_OLD: &[u8] = b"_ZN15CThostFtdcMdApi15CreateFtdcMdApiEPKcbb";
const MD_VERSION: &[u8] = b"_ZN15CThostFtdcMdApi13GetApiVersionEv";

type TdCreateV6711 = unsafe extern "C" fn(*const c_char, bool) -> *mut CThostFtdcTraderApi;
type TdCreateOld = unsafe extern "C" fn(*const c_char) -> *mut CThostFtdcTraderApi;
type MdCreateV6711 = unsafe extern "C" fn(*const c_char, bool, bool, bool) -> *mut CThostFtdcMdApi;
type MdCreateOld = unsafe extern "C" fn(*const c_char, bool, bool) -> *mut CThostFtdcMdApi;
type GetVersion = unsafe extern "C" fn() -> *const c_char;

/// Which constructor the library exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    /// v6.7.11 and later: `Create*(flow, ..., bool is_production_mode)`.
    V6711,
    /// Before v6.7.11: no production-mode flag (the flag is ignored).
    Old,
}

/// What was found in a library.
#[derive(Debug, Clone)]
pub struct LibInfo {
    /// `GetApiVersion()`, e.g. `v6.7.7_20240607 15:51:36.7347`.
    pub version: String,
    pub abi: Abi,
}

fn pinned() -> &'static Mutex<HashMap<PathBuf, Library>> {
    static PINNED: OnceLock<Mutex<HashMap<PathBuf, Library>>> = OnceLock::new();
    PINNED.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Open `path` (once per process) and run `f` on it.
fn with_lib<T>(path: &Path, f: impl FnOnce(&Library) -> Result<T, String>) -> Result<T, String> {
    let mut map = pinned()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !map.contains_key(path) {
        // SAFETY: loading runs the library's initialisers. The caller names a CTP API library
        // (the user's own, from the API folder the config names); loading it is the point.
        let lib = unsafe { Library::new(path) }
            .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
        map.insert(path.to_path_buf(), lib);
    }
    let lib = map
        .get(path)
        .ok_or_else(|| format!("cannot load {}", path.display()))?;
    f(lib)
}

fn has(lib: &Library, sym: &[u8]) -> bool {
    // SAFETY: only looks the symbol up; the pointer type is irrelevant as it is not called.
    unsafe { lib.get::<GetVersion>(sym) }.is_ok()
}

fn version(lib: &Library, sym: &[u8]) -> Result<String, String> {
    // SAFETY: `GetApiVersion` is a static `const char* ()` in every CTP API library; the
    // string it returns is static and NUL-terminated.
    unsafe {
        let f = lib
            .get::<GetVersion>(sym)
            .map_err(|e| format!("no GetApiVersion: {e}"))?;
        let p = f();
        if p.is_null() {
            return Ok(String::new());
        }
        Ok(CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

fn abi(lib: &Library, new: &[u8], old: &[u8], what: &str) -> Result<Abi, String> {
    if has(lib, new) {
        Ok(Abi::V6711)
    } else if has(lib, old) {
        Ok(Abi::Old)
    } else {
        Err(format!(
            "not a CTP {what} API library (no CreateFtdc{what}Api)"
        ))
    }
}

/// Load the trader library and report its version and constructor.
pub fn probe_trader(path: &Path) -> Result<LibInfo, String> {
    with_lib(path, |lib| {
        Ok(LibInfo {
            abi: abi(lib, TD_CREATE_V6711, TD_CREATE_OLD, "Trader")?,
            version: version(lib, TD_VERSION)?,
        })
    })
}

/// Load the market-data library and report its version and constructor.
pub fn probe_market(path: &Path) -> Result<LibInfo, String> {
    with_lib(path, |lib| {
        Ok(LibInfo {
            abi: abi(lib, MD_CREATE_V6711, MD_CREATE_OLD, "Md")?,
            version: version(lib, MD_VERSION)?,
        })
    })
}

fn flow_cstring(flow: &str) -> Result<CString, String> {
    CString::new(flow).map_err(|_| format!("flow path contains a NUL byte: {flow:?}"))
}

/// Create a trader API object with its flow files under `flow` (a prefix: end it with `/`).
pub fn create_trader(path: &Path, flow: &str, production_mode: bool) -> Result<TraderApi, String> {
    let cflow = flow_cstring(flow)?;
    let api_ptr = with_lib(path, |lib| {
        // SAFETY: the symbol's C++ signature is the one given by its mangled name (checked by
        // `get` on that exact name); the flow string outlives the call (the library copies it).
        unsafe {
            if let Ok(f) = lib.get::<TdCreateV6711>(TD_CREATE_V6711) {
                Ok(f(cflow.as_ptr(), production_mode))
            } else if let Ok(f) = lib.get::<TdCreateOld>(TD_CREATE_OLD) {
                Ok(f(cflow.as_ptr()))
            } else {
                Err("not a CTP trader API library (no CreateFtdcTraderApi)".to_string())
            }
        }
    })?;
    if api_ptr.is_null() {
        return Err(format!("CreateFtdcTraderApi({flow}) returned null"));
    }
    // The library stays pinned, so the API object needs no handle of its own (`dynlib: None`:
    // ctp2rs's drop then releases the object without unloading the library).
    Ok(TraderApi {
        api_ptr,
        spi_ptr: AtomicPtr::new(null_mut()),
        dynlib: None,
        released: AtomicBool::new(false),
    })
}

/// Create a market-data API object (TCP, not UDP or multicast).
pub fn create_market(path: &Path, flow: &str, production_mode: bool) -> Result<MdApi, String> {
    let cflow = flow_cstring(flow)?;
    let api_ptr = with_lib(path, |lib| {
        // SAFETY: as in `create_trader`.
        unsafe {
            if let Ok(f) = lib.get::<MdCreateV6711>(MD_CREATE_V6711) {
                Ok(f(cflow.as_ptr(), false, false, production_mode))
            } else if let Ok(f) = lib.get::<MdCreateOld>(MD_CREATE_OLD) {
                Ok(f(cflow.as_ptr(), false, false))
            } else {
                Err("not a CTP market-data API library (no CreateFtdcMdApi)".to_string())
            }
        }
    })?;
    if api_ptr.is_null() {
        return Err(format!("CreateFtdcMdApi({flow}) returned null"));
    }
    Ok(MdApi {
        api_ptr,
        spi_ptr: AtomicPtr::new(null_mut()),
        dynlib: None,
        released: AtomicBool::new(false),
    })
}
