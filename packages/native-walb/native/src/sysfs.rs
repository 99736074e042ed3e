//! Waiting for a sysfs attribute's change notification (`sysfs_notify`: POLLPRI on an open file
//! whose content was read), as the original's log-device monitor does for `lsids`.

use crate::napi::{JsError, JsResult};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;

#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

extern "C" {
    fn poll(fds: *mut PollFd, nfds: u64, timeout: i32) -> i32;
}

const POLLPRI: i16 = 0x002;
const POLLERR: i16 = 0x008;

/// Read `path`, wait up to `timeout_ms` for its change notification, and return the new content,
/// or `None` on timeout.
pub fn wait_change(path: &str, timeout_ms: i32) -> JsResult<Option<String>> {
    let mut f = File::open(path).map_err(|e| {
        let mut j = JsError::new(if e.kind() == std::io::ErrorKind::NotFound { "ERR_WALB_NO_DEVICE" } else { "ERR_WALB_OPEN" }, format!("cannot open {path}: {e}"));
        j.errno = e.raw_os_error();
        j
    })?;
    let mut first = String::new();
    // sysfs arms the notification when the attribute is read.
    f.read_to_string(&mut first).map_err(|e| JsError::new("ERR_WALB_OPEN", format!("cannot read {path}: {e}")))?;
    let mut p = PollFd { fd: f.as_raw_fd(), events: POLLPRI | POLLERR, revents: 0 };
    let r = unsafe { poll(&mut p, 1, timeout_ms) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        let mut j = JsError::new("ERR_WALB_POLL", format!("poll on {path}: {e}"));
        j.errno = e.raw_os_error();
        return Err(j);
    }
    if r == 0 || p.revents & (POLLPRI | POLLERR) == 0 {
        return Ok(None);
    }
    let mut now = String::new();
    f.seek(SeekFrom::Start(0)).and_then(|_| f.read_to_string(&mut now)).map_err(|e| JsError::new("ERR_WALB_OPEN", format!("cannot reread {path}: {e}")))?;
    Ok(Some(now))
}
