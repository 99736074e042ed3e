//! Read-only mappings of a stretch of a file, for walks that read every byte of a log once: the
//! bytes are summed and compressed where they lie in the page cache, not copied out of it first.
//! On the development machine the kernel's copy was a quarter of a compressible log's conversion.
//!
//! A mapping has one hazard a read has not: a page past the file's end (a file cut while it is
//! walked) or one the disk fails to give raises SIGBUS, which would end the process. So a fault
//! inside a registered mapping is caught here: the page is replaced with zeros, the mapping marked
//! as faulted, and the access goes on. The walk then throws away what it computed and walks the
//! stretch again with reads, which report the short read or the error where it is. A SIGBUS
//! anywhere else goes where it went before this module's handler was installed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

const PROT_READ: i32 = 1;
const MAP_SHARED: i32 = 0x01;
const MAP_PRIVATE: i32 = 0x02;
const MAP_FIXED: i32 = 0x10;
const MAP_ANONYMOUS: i32 = 0x20;
const MAP_FAILED: isize = -1;
const MADV_WILLNEED: i32 = 3;
const SIGBUS: i32 = 7;
const SA_SIGINFO: i32 = 4;
const SA_ONSTACK: i32 = 0x0800_0000;
const SA_RESTART: i32 = 0x1000_0000;
const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;
const SC_PAGESIZE: i32 = 30;

/// glibc's `struct sigaction` on 64-bit Linux (x86-64 and arm64 alike).
#[repr(C)]
#[derive(Clone, Copy)]
struct SigAction {
    handler: usize,
    mask: [u64; 16],
    flags: i32,
    restorer: usize,
}

/// The start of `siginfo_t` on 64-bit Linux: for SIGBUS the faulting address follows the code.
#[repr(C)]
struct SigInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    addr: usize,
}

extern "C" {
    fn mmap(addr: *mut u8, len: usize, prot: i32, flags: i32, fd: i32, off: i64) -> *mut u8;
    fn munmap(addr: *mut u8, len: usize) -> i32;
    fn madvise(addr: *mut u8, len: usize, advice: i32) -> i32;
    fn sigaction(sig: i32, act: *const SigAction, old: *mut SigAction) -> i32;
    fn sigemptyset(set: *mut [u64; 16]) -> i32;
    fn sysconf(name: i32) -> i64;
}

/// A registered mapping: where it lies, and whether a fault was caught in it.
struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot { start: AtomicUsize::new(0), end: AtomicUsize::new(0), faulted: AtomicBool::new(false) };
/// Mappings alive at once: one per walk in flight; a walk that finds none free reads instead.
const SLOTS: usize = 64;
static REGISTRY: [Slot; SLOTS] = [FREE; SLOTS];

static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The disposition before ours (written once, before our handler can run).
static mut PREVIOUS: SigAction = SigAction { handler: SIG_DFL, mask: [0; 16], flags: 0, restorer: 0 };
static PAGE: AtomicUsize = AtomicUsize::new(4096);

extern "C" fn on_sigbus(sig: i32, info: *mut SigInfo, ctx: *mut u8) {
    // SAFETY: the kernel hands SA_SIGINFO handlers a valid siginfo.
    let addr = unsafe { (*info).addr };
    let page = PAGE.load(Ordering::Relaxed);
    for s in REGISTRY.iter() {
        let (a, b) = (s.start.load(Ordering::Acquire), s.end.load(Ordering::Acquire));
        if a != 0 && addr >= a && addr < b {
            s.faulted.store(true, Ordering::Release);
            // SAFETY: the page lies inside a mapping this module made and still owns; mapping
            // zeros over it only changes what that mapping reads. mmap is a plain system call.
            let p = unsafe { mmap((addr & !(page - 1)) as *mut u8, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) };
            if p as isize != MAP_FAILED { return; }
            break;
        }
    }
    // Not one of ours (or not patched): what would have happened without this handler.
    // SAFETY: PREVIOUS was written before this handler was installed and never after.
    let prev = unsafe { *std::ptr::addr_of!(PREVIOUS) };
    if prev.handler == SIG_DFL || prev.handler == SIG_IGN {
        // Back to the old disposition; the faulting access runs again and gets it.
        // SAFETY: restores a disposition the kernel gave us.
        unsafe { sigaction(SIGBUS, &prev, std::ptr::null_mut()) };
        INSTALLED.store(false, Ordering::Release);
    } else if prev.flags & SA_SIGINFO != 0 {
        // SAFETY: a handler installed with SA_SIGINFO takes these three arguments.
        let f: extern "C" fn(i32, *mut SigInfo, *mut u8) = unsafe { std::mem::transmute(prev.handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain handler takes the signal number.
        let f: extern "C" fn(i32) = unsafe { std::mem::transmute(prev.handler) };
        f(sig);
    }
}

/// Install the handler once; false when it could not be (then nothing is mapped).
fn guard_installed() -> bool {
    INSTALL.call_once(|| {
        // SAFETY: sysconf only reads its argument.
        let p = unsafe { sysconf(SC_PAGESIZE) };
        if p > 0 && (p as usize).is_power_of_two() { PAGE.store(p as usize, Ordering::Relaxed); }
        let mut act = SigAction { handler: on_sigbus as extern "C" fn(i32, *mut SigInfo, *mut u8) as usize, mask: [0; 16], flags: SA_SIGINFO | SA_ONSTACK | SA_RESTART, restorer: 0 };
        // SAFETY: both structures have glibc's layout; PREVIOUS is written before the handler that
        // reads it can run (sigaction returns the old disposition before installing the new one).
        let ok = unsafe {
            sigemptyset(&mut act.mask);
            sigaction(SIGBUS, &act, std::ptr::addr_of_mut!(PREVIOUS)) == 0
        };
        INSTALLED.store(ok, Ordering::Release);
    });
    INSTALLED.load(Ordering::Acquire)
}

/// `len` bytes of a file from byte `pos`, mapped read-only and guarded (see the module's
/// description). Unmapped when dropped.
pub struct MappedStretch {
    map: *mut u8,
    map_len: usize,
    /// `pos` less the page boundary the mapping starts at.
    lead: usize,
    len: usize,
    slot: &'static Slot,
}

// SAFETY: the mapping is read-only memory owned by this value; shared references only read it.
unsafe impl Sync for MappedStretch {}
unsafe impl Send for MappedStretch {}

impl MappedStretch {
    /// Map `len` (> 0) bytes of `fd` from `pos`, or None where that cannot be done (the handler
    /// not installed, every slot taken, a descriptor mmap refuses): the caller reads instead.
    pub fn new(fd: i32, pos: u64, len: usize) -> Option<MappedStretch> {
        if len == 0 || !guard_installed() { return None; }
        let page = PAGE.load(Ordering::Relaxed);
        let lead = (pos % page as u64) as usize;
        let map_len = len.checked_add(lead)?;
        let start = i64::try_from(pos - lead as u64).ok()?;
        let slot = REGISTRY.iter().find(|s| s.start.compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed).is_ok())?;
        // SAFETY: a new mapping chosen by the kernel; nothing else is touched.
        let map = unsafe { mmap(std::ptr::null_mut(), map_len, PROT_READ, MAP_SHARED, fd, start) };
        if map as isize == MAP_FAILED {
            slot.start.store(0, Ordering::Release);
            return None;
        }
        // Start reading what is not in the page cache yet (a no-op for what is); advice only.
        // SAFETY: the range is the mapping just made.
        unsafe { madvise(map, map_len, MADV_WILLNEED) };
        slot.faulted.store(false, Ordering::Relaxed);
        slot.end.store(map as usize + map_len, Ordering::Release);
        slot.start.store(map as usize, Ordering::Release);
        Some(MappedStretch { map, map_len, lead, len, slot })
    }

    /// The mapped bytes (reading them may fault: see [`MappedStretch::faulted`]).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping holds lead + len readable bytes until drop.
        unsafe { std::slice::from_raw_parts(self.map.add(self.lead), self.len) }
    }

    /// Whether a read of the mapping faulted (the bytes read since may be zeros that are not the
    /// file's).
    pub fn faulted(&self) -> bool {
        self.slot.faulted.load(Ordering::Acquire)
    }
}

impl Drop for MappedStretch {
    fn drop(&mut self) {
        self.slot.end.store(0, Ordering::Release);
        self.slot.start.store(0, Ordering::Release);
        // SAFETY: the mapping made in new(), no longer referenced (bytes() borrows self).
        unsafe { munmap(self.map, self.map_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    fn temp_file(bytes: &[u8]) -> (std::path::PathBuf, std::fs::File) {
        let p = std::env::temp_dir().join(format!("walb-mapped-{}-{}", std::process::id(), bytes.len()));
        let mut f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&p).unwrap();
        f.write_all(bytes).unwrap();
        (p, f)
    }

    #[test]
    fn maps_a_stretch_at_any_offset() {
        let data: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i * 7) as u8).collect();
        let (p, f) = temp_file(&data);
        let m = MappedStretch::new(f.as_raw_fd(), 5000, 7000).unwrap();
        assert_eq!(m.bytes(), &data[5000..12000]);
        assert!(!m.faulted());
        drop(m);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn a_file_cut_under_the_mapping_reads_zeros_and_says_so() {
        let data = vec![0xabu8; 6 * 4096];
        let (p, f) = temp_file(&data);
        let m = MappedStretch::new(f.as_raw_fd(), 0, data.len()).unwrap();
        assert_eq!(m.bytes()[5 * 4096], 0xab);
        f.set_len(4096).unwrap();
        // Past the new end: without the handler this read ends the process with SIGBUS.
        let past = m.bytes()[3 * 4096 + 17];
        assert_eq!(past, 0);
        assert!(m.faulted());
        // Within the file, as it is.
        assert_eq!(m.bytes()[100], 0xab);
        drop(m);
        // A new mapping of the slot starts clean.
        let m = MappedStretch::new(f.as_raw_fd(), 0, 4096).unwrap();
        assert!(!m.faulted());
        drop(m);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn refuses_what_cannot_be_mapped() {
        assert!(MappedStretch::new(-1, 0, 4096).is_none());
        let (p, f) = temp_file(b"x");
        assert!(MappedStretch::new(f.as_raw_fd(), 0, 0).is_none());
        // A refused mapping gives its slot back: more refusals than slots, then a mapping.
        for _ in 0..2 * SLOTS { assert!(MappedStretch::new(-1, 0, 4096).is_none()); }
        assert!(MappedStretch::new(f.as_raw_fd(), 0, 1).is_some());
        std::fs::remove_file(p).unwrap();
    }
}
