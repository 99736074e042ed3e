//! ioctl on a walb device node, with the `walb_ctl` buffer pointers filled in.

use crate::napi::{JsError, JsResult};
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;

extern "C" {
    fn ioctl(fd: i32, request: u64, ...) -> i32;
}

/// Size of `struct walb_ctl`: when `arg` has it, its u2k/k2u buffer fields are set.
const WALB_CTL_SIZE: usize = 120;
const U2K_BUF_SIZE: usize = 24 + 24;
const U2K_BUF: usize = 24 + 32;
const K2U_BUF_SIZE: usize = 72 + 24;
const K2U_BUF: usize = 72 + 32;
const KBUF_FIELDS: [usize; 2] = [24 + 40, 72 + 40];
/// Largest buffer a caller may hand over (a LIST_DEV page of walb_disk_data is well under it).
const MAX_BUF: usize = 1 << 20;

pub struct Call {
    path: String,
    request: u64,
    arg: Vec<u8>,
    u2k: Vec<u8>,
    k2u_size: usize,
    write: bool,
}

pub struct Outcome {
    pub arg: Vec<u8>,
    pub k2u: Vec<u8>,
    pub ret: i32,
}

impl Call {
    pub fn new(path: String, request: u64, arg: Vec<u8>, u2k: Vec<u8>, k2u_size: usize, write: bool) -> JsResult<Call> {
        if arg.is_empty() || arg.len() > 4096 {
            return Err(JsError::arg(format!("arg must be 1..4096 bytes, got {}", arg.len())));
        }
        if u2k.len() > MAX_BUF || k2u_size > MAX_BUF {
            return Err(JsError::arg("u2k and k2u buffers must be at most 1 MiB"));
        }
        Ok(Call { path, request, arg, u2k, k2u_size, write })
    }
}

pub fn run(c: &Call) -> JsResult<Outcome> {
    let file = OpenOptions::new().read(true).write(c.write).open(&c.path).map_err(|e| {
        let mut err = JsError::new(
            if e.kind() == std::io::ErrorKind::NotFound { "ERR_WALB_NO_DEVICE" } else { "ERR_WALB_OPEN" },
            format!("cannot open {}: {}", c.path, e),
        );
        err.errno = e.raw_os_error();
        err
    })?;
    let mut arg = c.arg.clone();
    let mut u2k = c.u2k.clone();
    let mut k2u = vec![0u8; c.k2u_size];
    let is_ctl = arg.len() == WALB_CTL_SIZE;
    if is_ctl {
        put_u64(&mut arg, U2K_BUF_SIZE, u2k.len() as u64);
        put_u64(&mut arg, U2K_BUF, if u2k.is_empty() { 0 } else { u2k.as_mut_ptr() as u64 });
        put_u64(&mut arg, K2U_BUF_SIZE, k2u.len() as u64);
        put_u64(&mut arg, K2U_BUF, if k2u.is_empty() { 0 } else { k2u.as_mut_ptr() as u64 });
    }
    // SAFETY: `arg` (and the buffers it points at) stay alive and unmoved until ioctl returns.
    let ret = unsafe { ioctl(file.as_raw_fd(), c.request, arg.as_mut_ptr()) };
    if ret < 0 {
        let e = std::io::Error::last_os_error();
        let mut err = JsError::new("ERR_WALB_IOCTL", format!("ioctl {:#x} on {} failed: {}", c.request, c.path, e));
        err.errno = e.raw_os_error();
        return Err(err);
    }
    if is_ctl {
        // Addresses of this process are nobody's business in JS.
        for off in [U2K_BUF, K2U_BUF].iter().chain(KBUF_FIELDS.iter()) {
            put_u64(&mut arg, *off, 0);
        }
    }
    Ok(Outcome { arg, k2u, ret })
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
