//! The userspace capture device's log engine: every write is first stored as a logpack in the log
//! device's ring buffer, in the walb driver's format, then written to the data device. As the
//! driver does, a write is acknowledged once its logpack is written; its data device write follows
//! on another thread, and reads wait for the writes acknowledged before them. Writes are grouped
//! into logpacks by one logger thread (group commit); FUA and FLUSH wait until the log is durable.
//! On open, logs from the checkpointed written lsid are redone onto the data device.

use crate::buf_pool::BufPool;
use crate::checksum::checksum;
use crate::napi::{JsError, JsResult};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::collections::VecDeque;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

pub const LBS: u64 = 512;
const SUPER_OFFSET: u64 = 4096;
const SECTOR_TYPE_SUPER: u16 = 1;
const SECTOR_TYPE_LOGPACK: u16 = 3;
const FLAG_EXIST: u32 = 1;
const FLAG_PADDING: u32 = 2;
const FLAG_DISCARD: u32 = 4;
const MAX_TOTAL_IO_PB: u64 = 65535;

fn io_err(what: &str, e: std::io::Error) -> JsError {
    let mut j = JsError::new("ERR_WALB_CAPTURE_IO", format!("{what}: {e}"));
    j.errno = e.raw_os_error();
    j
}
fn bad(what: impl Into<String>) -> JsError {
    JsError::new("ERR_WALB_CAPTURE_FORMAT", what.into())
}

fn get16(b: &[u8], o: usize) -> u16 { u16::from_le_bytes([b[o], b[o + 1]]) }
fn get32(b: &[u8], o: usize) -> u32 { u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) }
fn get64(b: &[u8], o: usize) -> u64 { u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) }
fn put16(b: &mut [u8], o: usize, v: u16) { b[o..o + 2].copy_from_slice(&v.to_le_bytes()) }
fn put32(b: &mut [u8], o: usize, v: u32) { b[o..o + 4].copy_from_slice(&v.to_le_bytes()) }
fn put64(b: &mut [u8], o: usize, v: u64) { b[o..o + 8].copy_from_slice(&v.to_le_bytes()) }

/// The lsids of the device, as the kernel's.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lsids {
    pub latest: u64,
    pub completed: u64,
    pub permanent: u64,
    pub written: u64,
    pub prev_written: u64,
    pub oldest: u64,
}

/// The data of a logged write: received bytes (the first `n` of a buffer that returns to the
/// device's pool, see `buf_pool`), or zeros (a WRITE_ZEROES piece), which all share one static
/// buffer, so a zero-write of gigabytes allocates nothing per piece.
pub enum Payload {
    Bytes(Vec<u8>, usize),
    Zeros(usize),
}

impl std::ops::Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        static ZEROS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        match self {
            Payload::Bytes(v, n) => &v[..*n],
            Payload::Zeros(n) => &ZEROS.get_or_init(|| vec![0u8; MAX_PIECE_BYTES])[..*n],
        }
    }
}

/// What a write request asks for.
pub enum Op {
    /// `data` is at most [`Device::piece`] bytes (a zero piece at most `MAX_PIECE_BYTES`).
    Write { lb: u64, data: Payload, fua: bool },
    Discard { lb: u64, blocks: u64, fua: bool },
    Flush,
}

/// Called with the result of an operation (an errno on failure).
pub type Done = Box<dyn FnOnce(Result<(), i32>) + Send>;

/// Where the answers of a submitter go: `flush` is called once the operations of a batch that
/// came from it are answered, so replies leave in one write per batch rather than one per request.
pub trait ReplySink: Send + Sync {
    fn flush(&self);
}

struct Pending {
    op: Op,
    done: Done,
    sink: Option<Arc<dyn ReplySink>>,
}

struct State {
    lsids: Lsids,
    overflow: bool,
    frozen: bool,
    closing: bool,
    failed: Option<String>,
    /// The log itself failed (a logpack or its sync): what follows cannot be redone, so nothing
    /// more is acknowledged. A data device failure leaves the log whole: a batch logged after it is
    /// acknowledged, as it will be redone from the log at the next open.
    log_broken: bool,
    /// Operations waiting for the logger, in arrival order.
    queue: VecDeque<Pending>,
    /// The logger is building a batch.
    logging: bool,
    /// Batches handed to the log writers, in lsid order, until they are finished.
    jobs: VecDeque<Job>,
    /// Batch images waiting for a log writer (first lsid, image).
    write_q: VecDeque<(u64, AlignedBuf)>,
    writers_wait: u32,
    /// Logged batches waiting for the applier, in log order.
    applying: VecDeque<Logged>,
    /// Bytes of data in `applying`.
    applying_bytes: usize,
    /// Where the next ring write starts, when ring writes go in lsid order (see `Device::share_pages`).
    ring_next: u64,
    /// The applier is writing a batch.
    apply_busy: bool,
    /// A batch could not be written to the data device: written_lsid stays before it for good
    /// (until the next open redoes it from the log), whatever later batches do.
    apply_failed: bool,
    /// Holds the logger back (clear log): no new batch starts while positive.
    paused: u32,
    /// A checkpoint is being made so the ring has room (see `Device::make_room`): no batch starts.
    making_room: bool,
    /// Who waits, so a wake-up (a system call even when nobody waits) is made only when needed.
    logger_waits: bool,
    applier_waits: bool,
    others_wait: u32,
    /// The applier found nothing to do for a while and sleeps until woken (see `apply_next`).
    applier_idle: bool,
}

/// A logged batch on its way to the data device.
struct Logged {
    items: Vec<Item>,
    end: u64,
    /// Bytes of data to write.
    bytes: usize,
}

/// A batch on its way to the log: its lsids, what it asks, its answers, and its data for the applier.
struct Job {
    first: u64,
    end: u64,
    durable: bool,
    answers: Vec<(Done, Option<Arc<dyn ReplySink>>, Result<(), i32>)>,
    items: Vec<Item>,
    status: JobStatus,
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum JobStatus { Writing, Written, Failed }

/// One request of a logged batch: its data and where they go on the data device.
struct Item {
    apply: Option<(Payload, u64)>,
    /// A discard: the byte range of the data device that reads as zeros afterwards.
    zero: Option<(u64, u64)>,
}

/// Settings of a capture device.
#[derive(Clone, Copy)]
pub struct Settings {
    /// Fail writes that would overflow the ring (true), or overwrite the oldest logs and flag it.
    pub error_before_overflow: bool,
    /// Checkpoint interval.
    pub checkpoint_ms: u64,
    /// Largest logpack data in PB.
    pub max_pack_pb: u64,
}

pub struct Device {
    /// The memory page size.
    page: u64,
    /// Physical blocks are smaller than a page (see `Device::write_ring`).
    share_pages: bool,
    /// A page of zeros (see `Device::write_ring`).
    zero_page: Vec<u8>,
    ldev: File,
    /// The log device opened for direct IO when it allows it: logpacks go to the device without
    /// passing through (and filling) the page cache, as the kernel driver's bios do.
    ldev_direct: Option<File>,
    /// Direct IO worked so far (cleared for good at the first EINVAL, e.g. unaligned sectors).
    direct_ok: AtomicBool,
    ddev: File,
    pub pbs: u64,
    pub salt: std::sync::atomic::AtomicU32,
    rb_off: u64,
    pub rb_size: u64,
    pub size_lb: u64,
    /// Largest data of one logged operation in bytes: longer writes are split (see `open`).
    pub piece: usize,
    super_block: Mutex<Vec<u8>>,
    state: Mutex<State>,
    /// The logger waits here for operations.
    log_cv: Condvar,
    /// The applier waits here for logged batches.
    apply_cv: Condvar,
    /// Log writers wait here for batch images.
    write_cv: Condvar,
    /// Everyone else waits here for progress (close, clear log, reads, frozen writers).
    cond: Condvar,
    settings: Mutex<Settings>,
    /// Log image buffers for reuse (fresh memory costs a page fault per 4 KiB and a zero fill).
    images: Mutex<Vec<AlignedBuf>>,
    /// Buffers for received write data, back from the applier.
    pub bufs: BufPool,
}

/// Writes are logged in pieces of at most this many bytes (fewer when the ring is small). A
/// connection hands each piece to the log as soon as it is received, so the log writes a large
/// write's first piece while the rest is still arriving: 1 MiB sequential writes at queue depth 4
/// went from about 600 MiB/s (1 MiB pieces, each write logged once whole) to 840–1050 MiB/s with
/// 512 KiB pieces; 256 KiB measured 840, 128 KiB 440 (below [`DIRECT_MIN_BYTES`]).
const MAX_PIECE_BYTES: usize = 512 << 10;
/// Batches of at least this many bytes of log are written with direct IO.
const DIRECT_MIN_BYTES: usize = 256 << 10;
/// Operations the logger takes in one batch at most (bytes of write data).
const MAX_BATCH_BYTES: usize = 32 << 20;
/// Log writes in flight at once (threads writing batch images to the ring).
const LOG_WRITERS: usize = 3;
/// Bytes of the ring one batch spans at most (data, headers, padding). With at most
/// [`LOG_WRITERS`] batches in flight, a crash can leave logs written out of order no further than
/// `LOG_WRITERS` batches past the end that redo finds (see `Device::invalidate_stale`).
const MAX_BATCH_SPAN_BYTES: u64 = 40 << 20;
/// Bytes of logged data that may wait for the applier before the logger waits too (as the
/// kernel driver's pending data limit, 32 MiB by default). A count of batches instead (4) let a
/// short stall of the data device stall the log behind it: p99 latency of 4 KiB random writes
/// went from about 0.87 ms to about 0.70 ms here (four runs each).
const MAX_APPLY_BYTES: usize = 32 << 20;
/// A busy applier is woken once this many bytes wait for it, or after [`APPLY_LINGER`]: the data
/// device is written behind the acknowledgements, so nothing waits for it but reads (which wake
/// it at once), and a wake-up per batch cost a futex call and two context switches per handful of
/// writes.
const APPLY_WAKE_BYTES: usize = 1 << 20;
const APPLY_LINGER: Duration = Duration::from_millis(2);

#[cfg(target_arch = "aarch64")]
const O_DIRECT: i32 = 0o200000;
#[cfg(not(target_arch = "aarch64"))]
const O_DIRECT: i32 = 0o40000;

/// A zeroed byte buffer whose start is aligned for direct IO.
struct AlignedBuf {
    raw: Vec<u8>,
    off: usize,
    len: usize,
}

impl AlignedBuf {
    fn zeroed(len: usize) -> AlignedBuf {
        let raw = vec![0u8; len + 4096];
        let off = (4096 - raw.as_ptr() as usize % 4096) % 4096;
        AlignedBuf { raw, off, len }
    }
    /// A buffer of `len` bytes from `pool` when one is large enough (its old bytes left as they
    /// are: the caller writes every byte it uses), else a new one.
    fn take(pool: &Mutex<Vec<AlignedBuf>>, len: usize) -> AlignedBuf {
        let mut p = pool.lock().unwrap();
        if let Some(i) = p.iter().position(|b| b.raw.len() - 4096 >= len) {
            let mut b = p.swap_remove(i);
            b.len = len;
            return b;
        }
        drop(p);
        AlignedBuf::zeroed(len)
    }
    /// Give a buffer back to `pool` for the next batch (a few are kept, none beyond 64 MiB).
    fn give(self, pool: &Mutex<Vec<AlignedBuf>>) {
        if self.raw.len() > (64 << 20) + 4096 { return; }
        let mut p = pool.lock().unwrap();
        if p.len() < 8 { p.push(self); }
    }
    fn bytes(&self) -> &[u8] { &self.raw[self.off..self.off + self.len] }
    fn bytes_mut(&mut self) -> &mut [u8] { &mut self.raw[self.off..self.off + self.len] }
}

/// Logs are made durable at least this often even when nobody asks (the driver's log flush period).
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// `O_EXCL` (the same value on every Linux architecture this addon builds for).
const O_EXCL: i32 = 0o200;

/// Open a log or data device read-write; a block device exclusively (`O_EXCL`), so that one that
/// is mounted, or claimed by another program, is refused (`EBUSY`) rather than written under a
/// live file system. Later opens of the same device by this device (the direct-IO descriptor) need
/// no claim of their own.
fn open_device(path: &str) -> JsResult<File> {
    use std::os::unix::fs::FileTypeExt;
    let block = std::fs::metadata(path).map(|m| m.file_type().is_block_device()).unwrap_or(false);
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    if block { o.custom_flags(O_EXCL); }
    o.open(path).map_err(|e| {
        let what = if block && e.raw_os_error() == Some(16) { format!("open {path} (in use: mounted, or held by another program)") } else { format!("open {path}") };
        io_err(&what, e)
    })
}

impl Device {
    /// Open a formatted log device and its data device, and redo the logs from written_lsid.
    pub fn open(ldev_path: &str, ddev_path: &str, settings: Settings) -> JsResult<Arc<Device>> {
        let ldev = open_device(ldev_path)?;
        let ddev = open_device(ddev_path)?;
        {
            use std::os::unix::fs::MetadataExt;
            let (a, b) = (ldev.metadata(), ddev.metadata());
            if let (Ok(a), Ok(b)) = (a, b) {
                if a.dev() == b.dev() && a.ino() == b.ino() { return Err(bad(format!("{ldev_path} and {ddev_path} are the same file: the log and data devices must differ"))); }
            }
        }
        // One device per log and data device: two would write one ring with lsids of their own.
        lock_exclusive(&ldev, ldev_path)?;
        lock_exclusive(&ddev, ddev_path)?;
        // The sector's first 512 bytes say its block size; a log of 512-byte blocks may end before
        // a whole page past it.
        let mut head = vec![0u8; 512];
        ldev.read_exact_at(&mut head, SUPER_OFFSET).map_err(|e| io_err(&format!("read the super sector of {ldev_path}"), e))?;
        if get16(&head, 0) != SECTOR_TYPE_SUPER { return Err(bad(format!("{ldev_path}: no super sector at byte 4096 (sector type {}); format the log device first (wdevc format-ldev, or formatLdev)", get16(&head, 0)))); }
        if get16(&head, 2) != 2 { return Err(bad(format!("{ldev_path}: super sector version {}", get16(&head, 2)))); }
        let pbs = get32(&head, 12) as u64;
        if pbs != 512 && pbs != 4096 { return Err(bad(format!("{ldev_path}: physical block size {pbs}"))); }
        let mut sb = head;
        if pbs > 512 {
            sb.resize(pbs as usize, 0);
            ldev.read_exact_at(&mut sb, SUPER_OFFSET).map_err(|e| io_err(&format!("read the super sector of {ldev_path} ({pbs}-byte blocks)"), e))?;
        }
        if checksum(&sb, 0) != 0 {
            return Err(JsError::new("ERR_WALB_CAPTURE_CHECKSUM", format!("{ldev_path}: the super sector checksum does not verify (offset 4096)")));
        }
        let rb_size = get64(&sb, 72);
        let oldest = get64(&sb, 80);
        let written = get64(&sb, 88);
        let size_lb = get64(&sb, 96);
        let rb_off = 4096 / pbs + 2 + get32(&sb, 16) as u64;
        if rb_size == 0 || oldest > written { return Err(bad(format!("{ldev_path}: ring buffer size {rb_size}, oldest {oldest}, written {written}"))); }
        let ldev_len = ldev.metadata().map(|m| m.len()).unwrap_or(0);
        let ldev_len = if ldev_len == 0 { block_device_size(&ldev) } else { ldev_len };
        if (rb_off + rb_size) * pbs > ldev_len { return Err(bad(format!("{ldev_path}: the ring buffer ({rb_size} PB) does not fit the device ({ldev_len} bytes)"))); }
        let ddev_len = ddev.metadata().map(|m| m.len()).unwrap_or(0);
        let ddev_len = if ddev_len == 0 { block_device_size(&ddev) } else { ddev_len };
        if size_lb * LBS > ddev_len { return Err(bad(format!("{ddev_path}: {ddev_len} bytes, smaller than the {size_lb} LB the super sector records"))); }
        // Writes are logged in pieces that always fit the ring: a logpack holds its header, at most
        // one padding run (shorter than the piece) and the piece, so a piece of up to (ring − 1) / 2
        // PB never needs more than the ring. Without that bound a write larger than the ring was
        // padded around it forever, building logpacks without end.
        let piece_pb = ((rb_size - 1) / 2).min(MAX_PIECE_BYTES as u64 / pbs);
        if piece_pb == 0 { return Err(bad(format!("{ldev_path}: a ring buffer of {rb_size} PB cannot hold a logpack; format a larger log device"))); }
        let piece = (piece_pb * pbs) as usize;
        let salt = get32(&sb, 20);
        let page = page_size();
        // Physical blocks smaller than a page: consecutive batches share pages of the ring, so
        // direct IO, which bypasses the page cache, is left out (a page written both ways can
        // reach the disk with stale bytes), and ring writes go in lsid order (see `write_ring`).
        let share_pages = pbs % page != 0;
        let ldev_direct = if share_pages { None } else { OpenOptions::new().write(true).custom_flags(O_DIRECT).open(ldev_path).ok() };
        let dev = Device {
            page, share_pages, zero_page: vec![0u8; page as usize],
            ldev, ldev_direct, direct_ok: AtomicBool::new(true), ddev, pbs, salt: std::sync::atomic::AtomicU32::new(salt), rb_off, rb_size, size_lb, piece,
            super_block: Mutex::new(sb),
            state: Mutex::new(State {
                lsids: Lsids::default(), overflow: false, frozen: false, closing: false, failed: None, log_broken: false,
                queue: VecDeque::new(), logging: false, applying: VecDeque::new(), applying_bytes: 0, ring_next: 0, apply_busy: false, apply_failed: false, paused: 0, making_room: false,
                logger_waits: false, applier_waits: false, others_wait: 0, applier_idle: true,
                jobs: VecDeque::new(), write_q: VecDeque::new(), writers_wait: 0,
            }),
            log_cv: Condvar::new(),
            apply_cv: Condvar::new(),
            write_cv: Condvar::new(),
            cond: Condvar::new(),
            settings: Mutex::new(settings),
            images: Mutex::new(Vec::new()),
            bufs: BufPool::new(),
        };
        let end = dev.redo(written)?;
        dev.invalidate_stale(end)?;
        // As the kernel driver at start: overflowed when the ring holds less than the logs from
        // oldest on, or the oldest logpack is not there any more (overwritten). Without it, a
        // reopened device reported no overflow, and logs that were gone looked extractable.
        let overflow = end - oldest > rb_size || (oldest < end && !dev.pack_at(oldest));
        {
            let mut st = dev.state.lock().unwrap();
            st.overflow = overflow;
            st.lsids = Lsids { latest: end, completed: end, permanent: end, written: end, prev_written: written, oldest };
            st.ring_next = end;
        }
        dev.checkpoint()?;
        let dev = Arc::new(dev);
        // Two stages run on threads of their own, so reading requests, logging one batch and
        // writing the previous one to the data device overlap: the logger takes everything queued
        // as one batch (group commit) and writes its logpacks; the applier writes logged batches
        // to the data device in log order and answers them. The flusher makes the log durable
        // every flush interval so permanent catches up; the checkpointer records written_lsid.
        let d1 = Arc::downgrade(&dev);
        thread::Builder::new().name("walb-logger".into()).spawn(move || {
            while let Some(d) = d1.upgrade() { if !d.log_next() { return; } }
        }).map_err(|e| io_err("spawn the logger", e))?;
        for _ in 0..LOG_WRITERS {
            let dw = Arc::downgrade(&dev);
            thread::Builder::new().name("walb-log-writer".into()).spawn(move || {
                while let Some(d) = dw.upgrade() { if !d.write_next() { return; } }
            }).map_err(|e| io_err("spawn a log writer", e))?;
        }
        let d2 = Arc::downgrade(&dev);
        thread::Builder::new().name("walb-applier".into()).spawn(move || {
            while let Some(d) = d2.upgrade() { if !d.apply_next() { return; } }
        }).map_err(|e| io_err("spawn the applier", e))?;
        let d5 = Arc::downgrade(&dev);
        let mut dropped = end;
        thread::Builder::new().name("walb-flusher".into()).spawn(move || loop {
            thread::sleep(FLUSH_INTERVAL);
            let Some(d) = d5.upgrade() else { return };
            let target = { let st = d.state.lock().unwrap(); if st.closing { return; } st.lsids.completed };
            if dropped > target { dropped = target; } // the log was cleared
            if d.state.lock().unwrap().lsids.permanent < target && d.ldev.sync_data().is_ok() {
                let mut st = d.state.lock().unwrap();
                if st.lsids.permanent < target { st.lsids.permanent = target; }
            }
            if dropped < target && d.state.lock().unwrap().lsids.permanent >= target {
                // Small batches reach the log through the page cache: let the pages of what is
                // durable now go, so the log does not crowd the page cache out (and recycled
                // pages cost less than fresh ones).
                d.drop_cached(dropped, target);
                dropped = target;
            }
        }).map_err(|e| io_err("spawn the flusher", e))?;
        let d3 = Arc::downgrade(&dev);
        thread::Builder::new().name("walb-checkpoint".into()).spawn(move || {
            let mut last = std::time::Instant::now();
            loop {
                thread::sleep(FLUSH_INTERVAL);
                let Some(d) = d3.upgrade() else { return };
                let ms = d.settings.lock().unwrap().checkpoint_ms.max(100);
                let (closing, since) = { let st = d.state.lock().unwrap(); (st.closing, st.lsids.latest.saturating_sub(st.lsids.prev_written)) };
                if closing { return; }
                // Besides the interval, once half the ring was written since the last checkpoint:
                // then the logger seldom has to stop for one (see `Device::make_room`).
                if since > d.rb_size / 2 || last.elapsed() >= Duration::from_millis(ms) {
                    let _ = d.checkpoint();
                    last = std::time::Instant::now();
                }
            }
        }).map_err(|e| io_err("spawn the checkpointer", e))?;
        Ok(dev)
    }

    /// The log checksum salt (it changes when the log is cleared).
    pub fn salt(&self) -> u32 { self.salt.load(std::sync::atomic::Ordering::SeqCst) }

    fn ring_pos(&self, lsid: u64) -> u64 { (self.rb_off + lsid % self.rb_size) * self.pbs }

    fn read_lsids(&self, lsid: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let pbs = self.pbs as usize;
        let n = buf.len() / pbs;
        let mut done = 0;
        while done < n {
            let l = lsid + done as u64;
            let run = ((self.rb_size - l % self.rb_size) as usize).min(n - done);
            self.ldev.read_exact_at(&mut buf[done * pbs..(done + run) * pbs], self.ring_pos(l))?;
            done += run;
        }
        Ok(())
    }

    /// Drop the page cache of the ring between two lsids (advice only: failures are ignored).
    fn drop_cached(&self, from: u64, to: u64) {
        use std::os::unix::io::AsRawFd;
        let mut l = from.max(to.saturating_sub(self.rb_size));
        while l < to {
            let run = (self.rb_size - l % self.rb_size).min(to - l);
            unsafe { posix_fadvise(self.ldev.as_raw_fd(), self.ring_pos(l) as i64, (run * self.pbs) as i64, 4); }
            l += run;
        }
    }

    fn write_lsids(&self, lsid: u64, buf: &[u8]) -> std::io::Result<()> {
        self.write_lsids_to(&self.ldev, lsid, buf, &[])
    }

    /// Write `buf` (whole PBs) to the ring from `lsid` on, split at the ring's end; `tail` follows
    /// the last PB in the same write (it must not pass the ring's end).
    fn write_lsids_to(&self, f: &File, lsid: u64, buf: &[u8], tail: &[u8]) -> std::io::Result<()> {
        let pbs = self.pbs as usize;
        let n = buf.len() / pbs;
        let mut done = 0;
        while done < n {
            let l = lsid + done as u64;
            let run = ((self.rb_size - l % self.rb_size) as usize).min(n - done);
            let part = &buf[done * pbs..(done + run) * pbs];
            if done + run == n && !tail.is_empty() { write_all_at2(f, part, tail, self.ring_pos(l))?; }
            else { f.write_all_at(part, self.ring_pos(l))?; }
            done += run;
        }
        Ok(())
    }

    /// A valid logpack header at `lsid` (checksum with the salt, sector type, lsid, records), or None.
    fn valid_header(&self, lsid: u64, h: &[u8]) -> Option<Vec<(u32, u32, u64, u32, u16)>> {
        if get16(h, 4) != SECTOR_TYPE_LOGPACK || get64(h, 8) != lsid { return None; }
        let n = get16(h, 16) as usize;
        if n == 0 || n > (self.pbs as usize - 24) / 32 || checksum(h, self.salt()) != 0 { return None; }
        let total = get16(h, 6) as u64;
        let mut recs = Vec::with_capacity(n);
        let mut pos = 1u64;
        for i in 0..n {
            let o = 24 + 32 * i;
            let (csum, flags, off, size, local) = (get32(h, o), get32(h, o + 4), get64(h, o + 8), get32(h, o + 16), get16(h, o + 20));
            if flags & FLAG_EXIST == 0 || get64(h, o + 24) != lsid + local as u64 || local as u64 != pos { return None; }
            if flags & FLAG_DISCARD == 0 { pos += (size as u64 * LBS).div_ceil(self.pbs); }
            recs.push((csum, flags, off, size, local));
        }
        if pos - 1 != total { return None; }
        Some(recs)
    }

    /// Redo: apply every valid logpack from `from` onto the data device; returns the end lsid.
    fn redo(&self, from: u64) -> JsResult<u64> {
        let pbs = self.pbs as usize;
        let mut lsid = from;
        let mut h = vec![0u8; pbs];
        loop {
            if lsid - from >= self.rb_size { break; }
            if self.read_lsids(lsid, &mut h).is_err() { break; }
            let Some(recs) = self.valid_header(lsid, &h) else { break };
            let total = get16(&h, 6) as usize;
            let mut data = vec![0u8; total * pbs];
            if self.read_lsids(lsid + 1, &mut data).is_err() { break; }
            // Every IO must verify before any of the pack is applied: a torn pack is not redone.
            let ok = recs.iter().all(|&(csum, flags, _, size, local)| {
                if flags & (FLAG_DISCARD | FLAG_PADDING) != 0 { return true; }
                let s = (local as usize - 1) * pbs;
                checksum(&data[s..s + size as usize * LBS as usize], self.salt()) == csum
            });
            if !ok {
                // A torn last pack ends the log; a bad pack followed by a valid one is corruption
                // inside acknowledged logs: refuse to open rather than serve a silently wrong disk.
                let next = lsid + 1 + total as u64;
                let mut nh = vec![0u8; pbs];
                if next - from < self.rb_size && self.read_lsids(next, &mut nh).is_ok() && self.valid_header(next, &nh).is_some() {
                    return Err(JsError::new("ERR_WALB_CAPTURE_CORRUPT", format!(
                        "redo: the logpack at lsid {lsid} (ring offset {}) has an IO that fails its checksum, and valid logs follow it: the log device is corrupt",
                        self.ring_pos(lsid))));
                }
                break;
            }
            for &(_, flags, off, size, local) in &recs {
                if flags & FLAG_PADDING != 0 { continue; }
                if flags & FLAG_DISCARD != 0 {
                    if (off + size as u64) > self.size_lb { return Err(bad(format!("redo: the discard at lsid {} ends beyond the data device", lsid + local as u64))); }
                    self.zero_range(off * LBS, size as u64 * LBS).map_err(|e| io_err("redo: discard on the data device", e))?;
                    continue;
                }
                if (off + size as u64) > self.size_lb { return Err(bad(format!("redo: the IO at lsid {} writes beyond the data device", lsid + local as u64))); }
                let s = (local as usize - 1) * pbs;
                self.ddev.write_all_at(&data[s..s + size as usize * LBS as usize], off * LBS).map_err(|e| io_err("redo: write the data device", e))?;
            }
            lsid += 1 + total as u64;
        }
        self.ddev.sync_data().map_err(|e| io_err("redo: sync the data device", e))?;
        Ok(lsid)
    }

    /// Whether a valid logpack header sits at `lsid`.
    fn pack_at(&self, lsid: u64) -> bool {
        let mut h = vec![0u8; self.pbs as usize];
        self.read_lsids(lsid, &mut h).is_ok() && self.valid_header(lsid, &h).is_some()
    }

    /// Zero the valid logpack headers past `end`, where redo stopped, within reach of the batches
    /// that can be in flight at once. Batches are written concurrently, so a crash can leave a
    /// later one on the disk and an earlier one not: its packs, valid at their own lsids, sit past
    /// the end, never acknowledged. New logs start at the end, and once one of them happened to
    /// end where such a pack starts, the next redo or extraction went on into it and replayed its
    /// writes over acknowledged ones. Returns how many were zeroed.
    fn invalidate_stale(&self, end: u64) -> JsResult<usize> {
        let pbs = self.pbs as usize;
        let reach = (LOG_WRITERS as u64 * MAX_BATCH_SPAN_BYTES / self.pbs).min(self.rb_size - 1);
        let chunk = (1usize << 20) / pbs;
        let mut buf = vec![0u8; chunk * pbs];
        let mut stale = Vec::new();
        let mut l = end;
        while l < end + reach {
            let n = (chunk as u64).min(end + reach - l) as usize;
            let b = &mut buf[..n * pbs];
            self.read_lsids(l, b).map_err(|e| io_err("open: read the ring past the end of the log", e))?;
            for (i, h) in b.chunks_exact(pbs).enumerate() {
                let at = l + i as u64;
                // A header for this very lsid (those of earlier laps name their own).
                if get16(h, 4) == SECTOR_TYPE_LOGPACK && get64(h, 8) == at && self.valid_header(at, h).is_some() { stale.push(at); }
            }
            l += n as u64;
        }
        for &at in &stale {
            self.ldev.write_all_at(&self.zero_page[..pbs], self.ring_pos(at)).map_err(|e| io_err(&format!("open: invalidate the stale logpack at lsid {at}"), e))?;
        }
        if !stale.is_empty() { self.ldev.sync_data().map_err(|e| io_err("open: sync the log device", e))?; }
        Ok(stale.len())
    }

    /// Make room in the ring for the logs that wait ([`Device::build`] stopped at the redo
    /// region): everything logged so far reaches the data device, the log is made durable, and a
    /// checkpoint moves written_lsid, where redo starts, to the end of the log. When it cannot
    /// move (the data device failed), the device fails: logging more would overwrite logs the
    /// next open must redo.
    fn make_room(&self) {
        let mut st = self.state.lock().unwrap();
        while (!st.jobs.is_empty() || !st.applying.is_empty() || st.apply_busy) && st.failed.is_none() {
            st = self.wait_progress(st);
        }
        let completed = st.lsids.completed;
        drop(st);
        let r = self.ldev.sync_data().map_err(|e| format!("sync the log device: {e}")).and_then(|()| {
            { let mut st = self.state.lock().unwrap(); if st.lsids.permanent < completed { st.lsids.permanent = completed; } }
            self.checkpoint().map_err(|e| e.message)
        });
        let mut st = self.state.lock().unwrap();
        st.making_room = false;
        let stuck = match r {
            Err(e) => Some(e),
            Ok(()) if st.lsids.prev_written < completed => Some(format!("written lsid {} stays behind the log's end {completed} (a data device write failed)", st.lsids.prev_written)),
            Ok(()) => None,
        };
        if let Some(why) = stuck {
            if st.failed.is_none() { st.failed = Some(format!("the log ring is full of logs the next open must redo: {why}")); }
        }
        if st.logger_waits && !st.queue.is_empty() { self.log_cv.notify_one(); }
        self.wake_others(&st);
    }

    /// Write written_lsid (after the data device is durable) and oldest_lsid to the super sector.
    pub fn checkpoint(&self) -> JsResult<()> {
        // Redo starts at written_lsid: never record one beyond what the log holds durably.
        let (written, oldest) = { let st = self.state.lock().unwrap(); (st.lsids.written.min(st.lsids.permanent), st.lsids.oldest) };
        self.ddev.sync_data().map_err(|e| io_err("checkpoint: sync the data device", e))?;
        let mut sb = self.super_block.lock().unwrap();
        put64(&mut sb, 80, oldest);
        put64(&mut sb, 88, written);
        put32(&mut sb, 4, 0);
        let c = checksum(&sb, 0);
        put32(&mut sb, 4, c);
        self.ldev.write_all_at(&sb, SUPER_OFFSET).map_err(|e| io_err("checkpoint: write the super sector", e))?;
        self.ldev.sync_data().map_err(|e| io_err("checkpoint: sync the log device", e))?;
        self.state.lock().unwrap().lsids.prev_written = written;
        Ok(())
    }

    /// Queue operations for the log; each `done` is called with the result (an errno on failure)
    /// once its logpack is written (durably, for FUA and FLUSH), then `sink.flush()`. Operations
    /// of all submitters are logged in the order they are queued.
    pub fn submit(&self, ops: Vec<(Op, Done)>, sink: Option<Arc<dyn ReplySink>>) {
        let mut st = self.state.lock().unwrap();
        let refuse = if st.closing { Some(108) } else if st.failed.is_some() { Some(5) } else { None };
        if let Some(e) = refuse {
            drop(st);
            for (_, d) in ops { d(Err(e)); }
            if let Some(s) = sink { s.flush(); }
            return;
        }
        for (op, done) in ops { st.queue.push_back(Pending { op, done, sink: sink.clone() }); }
        // When the log is free the submitter logs the batch itself: no hand-off to the logger
        // thread (a wake-up and a context switch per batch), which takes over when it is busy.
        if let Some(b) = Self::take_batch(&mut st) {
            drop(st);
            self.log_batch(b);
        } else if st.logger_waits {
            self.log_cv.notify_one();
        }
    }

    /// Wake whoever waits for progress (not the logger or the applier).
    fn wake_others(&self, st: &State) {
        if st.others_wait > 0 { self.cond.notify_all(); }
    }

    /// Wake every waiter: for the rare changes everyone must see (close, freeze, resume).
    fn wake_all(&self) {
        self.log_cv.notify_all();
        self.apply_cv.notify_all();
        self.write_cv.notify_all();
        self.cond.notify_all();
    }

    /// Wait for progress made by the logger or the applier.
    fn wait_progress<'a>(&self, mut st: std::sync::MutexGuard<'a, State>) -> std::sync::MutexGuard<'a, State> {
        // Whoever waits may wait for the data device (reads, quiesce): the applier lingers no more.
        if st.applier_waits && !st.applying.is_empty() { self.apply_cv.notify_one(); }
        st.others_wait += 1;
        st = self.cond.wait(st).unwrap();
        st.others_wait -= 1;
        st
    }

    /// The logger's step: wait for queued operations, log them as one batch, pass it on to the
    /// applier. False once the device is closing and nothing is left.
    fn log_next(&self) -> bool {
        let batch: Vec<Pending> = {
            let mut st = self.state.lock().unwrap();
            loop {
                if st.closing && st.queue.is_empty() { return false; }
                if st.closing && st.frozen {
                    // Closing a frozen device: what waits is refused, as the kernel's on removal.
                    let q: Vec<Pending> = st.queue.drain(..).collect();
                    drop(st);
                    answer_all(q.into_iter().map(|p| (p.done, p.sink, Err(108))));
                    return false;
                }
                if let Some(b) = Self::take_batch(&mut st) { break b; }
                st.logger_waits = true;
                st = self.log_cv.wait_timeout(st, Duration::from_millis(200)).unwrap().0;
                st.logger_waits = false;
            }
        };
        self.log_batch(batch);
        true
    }

    /// The next batch when the log can take one now (one batch is built at a time): the queued
    /// operations from the front, up to [`MAX_BATCH_BYTES`] of data.
    fn take_batch(st: &mut State) -> Option<Vec<Pending>> {
        if st.logging || st.making_room || st.queue.is_empty() || st.frozen || st.paused > 0 || st.applying_bytes >= MAX_APPLY_BYTES || st.jobs.len() >= LOG_WRITERS {
            return None;
        }
        let mut bytes = 0usize;
        let mut take = 0usize;
        for p in st.queue.iter() {
            if let Op::Write { data, .. } = &p.op { if take > 0 && bytes + data.len() > MAX_BATCH_BYTES { break; } bytes += data.len(); }
            take += 1;
        }
        st.logging = true;
        Some(st.queue.drain(..take).collect())
    }

    /// Log a batch taken by [`Device::take_batch`]: build its logpacks, write them (or hand them
    /// to the log writers), finish what is over.
    fn log_batch(&self, batch: Vec<Pending>) {
        let failed = self.state.lock().unwrap().failed.is_some();
        if failed {
            answer_all(batch.into_iter().map(|p| (p.done, p.sink, Err(5))));
            let mut st = self.state.lock().unwrap();
            st.logging = false;
            if st.logger_waits && !st.queue.is_empty() { self.log_cv.notify_one(); }
            self.wake_others(&st);
            return;
        }
        let (job, img, rest, full) = self.build(batch);
        let mut st = self.state.lock().unwrap();
        st.lsids.latest = job.end;
        st.logging = false;
        // What the batch left is logged next, before anything queued after it.
        for p in rest.into_iter().rev() { st.queue.push_front(p); }
        if full { st.making_room = true; }
        // Under the same lock as `latest`: jobs stay in lsid order.
        self.hand_on(st, job, img);
        if full { self.make_room(); }
    }

    /// Hand a built batch on: to the log writers, or written here, then finish what is over.
    fn hand_on<'a>(&'a self, mut st: std::sync::MutexGuard<'a, State>, job: Job, img: AlignedBuf) {
        let first = job.first;
        let job_end = job.end;
        let empty = job.first == job.end;
        // Large batches go to the log writers (direct IO, several in flight); a small one is
        // written here, through the page cache: a memory copy costs less than a hand-off to
        // another thread.
        let inline = !empty && !self.wants_direct(&img);
        if !empty && !inline {
            st.write_q.push_back((job.first, img));
            if st.writers_wait > 0 { self.write_cv.notify_one(); }
            st.jobs.push_back(job);
            if st.logger_waits && !st.queue.is_empty() { self.log_cv.notify_one(); }
            self.wake_others(&st);
            return;
        }
        st.jobs.push_back(Job { status: if empty { JobStatus::Written } else { JobStatus::Writing }, ..job });
        if inline {
            drop(st);
            let ok = self.write_ring(first, job_end, &img).is_ok();
            img.give(&self.images);
            st = self.state.lock().unwrap();
            if let Some(j) = st.jobs.iter_mut().find(|j| j.first == first && j.status == JobStatus::Writing) {
                j.status = if ok { JobStatus::Written } else { JobStatus::Failed };
            }
        }
        // Whatever was queued meanwhile is the logger's.
        if st.logger_waits && !st.queue.is_empty() { self.log_cv.notify_one(); }
        // A batch with nothing to write (flushes, refusals) is over as soon as those before it are.
        self.finish_jobs(st);
    }

    /// The applier thread's step: write the next logged batch to the data device. Every batch
    /// goes through this one thread, in log order, while the submitters go on reading and logging:
    /// writing the data device from the thread that logged a batch measured about 10% fewer IOPS
    /// (4 KiB random writes, QD16), as its connection stopped reading requests meanwhile.
    /// False once the device is closing and nothing is left.
    fn apply_next(&self) -> bool {
        let b = {
            let mut st = self.state.lock().unwrap();
            loop {
                if let Some(b) = st.applying.pop_front() {
                    st.applying_bytes -= b.bytes;
                    st.apply_busy = true;
                    st.applier_idle = false;
                    // The logger may wait for room in the apply queue.
                    if st.logger_waits && !st.queue.is_empty() { self.log_cv.notify_one(); }
                    break b;
                }
                if st.closing && st.queue.is_empty() && !st.logging && st.jobs.is_empty() { return false; }
                st.applier_waits = true;
                let idle = st.applier_idle;
                let (g, t) = self.apply_cv.wait_timeout(st, if idle { Duration::from_millis(200) } else { APPLY_LINGER }).unwrap();
                st = g;
                st.applier_waits = false;
                if t.timed_out() && st.applying.is_empty() { st.applier_idle = true; }
            }
        };
        let end = b.end;
        let ok = self.apply(b);
        let mut st = self.state.lock().unwrap();
        // After a failed batch, a later one that succeeds must not move written_lsid past it: the
        // checkpoint would record it, and the next open would not redo the failed writes.
        if !ok { st.apply_failed = true; }
        if ok && !st.apply_failed { st.lsids.written = end; }
        st.apply_busy = false;
        self.wake_others(&st);
        true
    }

    /// Wait until everything queued so far is logged, applied and answered, then hold the logger
    /// back until [`Device::resume`] (clear log). Operations queued meanwhile wait.
    fn quiesce(&self) {
        let mut st = self.state.lock().unwrap();
        // Drain first (the frozen flag aside: a frozen device has nothing in flight to wait for).
        while (!st.queue.is_empty() && !st.frozen && st.failed.is_none()) || st.logging || !st.jobs.is_empty() || !st.applying.is_empty() || st.apply_busy {
            st = self.wait_progress(st);
        }
        st.paused += 1;
    }

    fn resume(&self) {
        let mut st = self.state.lock().unwrap();
        st.paused -= 1;
        self.wake_all();
    }

    pub fn lsids(&self) -> (Lsids, bool, bool) {
        let st = self.state.lock().unwrap();
        (st.lsids, st.overflow, st.frozen)
    }

    /// Free the log below `lsid` (oldest ≤ lsid ≤ prev_written, as the kernel's check). A checkpoint
    /// first brings prev_written as far as it can go, so the super sector never records an oldest
    /// lsid beyond its written lsid.
    pub fn set_oldest(&self, lsid: u64) -> JsResult<()> {
        self.checkpoint()?;
        {
            let mut st = self.state.lock().unwrap();
            if lsid < st.lsids.oldest || lsid > st.lsids.prev_written {
                return Err(JsError::new("ERR_WALB_RANGE", format!("oldest lsid {lsid} must be within [{}, {}] (oldest, checkpointed written lsid)", st.lsids.oldest, st.lsids.prev_written)));
            }
            st.lsids.oldest = lsid;
        }
        self.checkpoint()
    }

    /// Clear the log, as the kernel's CLEAR_LOG (`wdevc reset-wal`): a new random uuid and salt,
    /// every lsid 0, the overflow flag cleared, lsid 0 invalidated. Queued writes finish first.
    pub fn clear_log(&self) -> JsResult<()> {
        self.quiesce();
        let r = self.clear_log_quiet();
        self.resume();
        r
    }

    fn clear_log_quiet(&self) -> JsResult<()> {
        // Everything logged must be on the data device, durably, before the logs go.
        self.ddev.sync_data().map_err(|e| io_err("clear log: sync the data device", e))?;
        let mut rnd = [0u8; 20];
        File::open("/dev/urandom").and_then(|mut f| { use std::io::Read; f.read_exact(&mut rnd) }).map_err(|e| io_err("clear log: read /dev/urandom", e))?;
        {
            let mut sb = self.super_block.lock().unwrap();
            sb[24..40].copy_from_slice(&rnd[..16]);
            sb[20..24].copy_from_slice(&rnd[16..20]);
        }
        self.salt.store(u32::from_le_bytes(rnd[16..20].try_into().unwrap()), std::sync::atomic::Ordering::SeqCst);
        self.ldev.write_all_at(&vec![0u8; self.pbs as usize], self.ring_pos(0)).map_err(|e| io_err("clear log: invalidate lsid 0", e))?;
        {
            let mut st = self.state.lock().unwrap();
            st.lsids = Lsids::default();
            st.ring_next = 0;
            st.overflow = false;
        }
        self.checkpoint()
    }

    pub fn set_frozen(&self, frozen: bool) {
        let mut st = self.state.lock().unwrap();
        st.frozen = frozen;
        self.wake_all();
    }

    pub fn set_settings(&self, s: Settings) { *self.settings.lock().unwrap() = s; }

    /// Stop taking operations, finish the queued ones, checkpoint.
    pub fn close(&self) -> JsResult<()> {
        {
            let mut st = self.state.lock().unwrap();
            st.closing = true;
            self.wake_all();
            // Wait for what is queued and in flight.
            while !st.queue.is_empty() || st.logging || !st.jobs.is_empty() || !st.applying.is_empty() || st.apply_busy {
                st = self.wait_progress(st);
            }
            drop(st);
            // Everything is answered: make the log durable so written_lsid can reach the end.
            self.ldev.sync_data().map_err(|e| io_err("close: sync the log device", e))?;
            let mut st = self.state.lock().unwrap();
            let c = st.lsids.completed;
            st.lsids.permanent = c;
        }
        let r = self.checkpoint();
        // The files go now, not when the JS handle is collected: they may be opened again,
        // deleted, or their file system unmounted right after close.
        unlock(&self.ldev);
        unlock(&self.ddev);
        self.release_files();
        r?;
        // A device that failed says so once more at the end: what it acknowledged is in its log,
        // and the next open redoes it (or reports why it cannot).
        if let Some(f) = self.state.lock().unwrap().failed.clone() {
            return Err(JsError::new("ERR_WALB_CAPTURE_IO", format!("the device failed ({f}); its log holds every acknowledged write, redone at the next open")));
        }
        Ok(())
    }

    /// Point the device's file descriptors at /dev/null, which lets the files go while the
    /// `Device` itself may live on (its JS handle until garbage collection, a connection thread
    /// until its client leaves). Only after close: nothing reads or writes them any more.
    fn release_files(&self) {
        use std::os::unix::io::AsRawFd;
        extern "C" { fn dup2(old: i32, new: i32) -> i32; }
        let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") else { return };
        let mut fds = vec![self.ldev.as_raw_fd(), self.ddev.as_raw_fd()];
        if let Some(f) = &self.ldev_direct { fds.push(f.as_raw_fd()); }
        for fd in fds { unsafe { dup2(null.as_raw_fd(), fd); } }
    }

    /// Read the data device once every write answered so far is on it.
    pub fn read(&self, lb: u64, buf: &mut [u8]) -> std::io::Result<()> {
        {
            let mut st = self.state.lock().unwrap();
            // Closed: its files are gone (see `release_files`).
            if st.closing { return Err(std::io::Error::new(std::io::ErrorKind::Other, "the device is closed")); }
            let target = st.lsids.completed;
            while st.lsids.written < target {
                if let Some(f) = &st.failed { return Err(std::io::Error::new(std::io::ErrorKind::Other, f.clone())); }
                st = self.wait_progress(st);
            }
        }
        self.ddev.read_exact_at(buf, lb * LBS)
    }

    /// Log a batch: its logpacks in one write (split only at the ring end), one sync if anything
    /// asked for durability. Requests refused here (overflow) carry their error to the applier,
    /// which answers everything in order.
    ///
    /// A batch stops early, and what is left of it is returned to be logged next, where it would
    /// span more than [`MAX_BATCH_SPAN_BYTES`] or reach into the redo region: the logs from the
    /// checkpointed written lsid on, which the next open redoes from, are never overwritten (with
    /// overwriting allowed, the ring wrapped past it, and a crash then lost acknowledged writes
    /// that had not reached the data device). The flag says the batch stopped for the second
    /// reason: a checkpoint must make room first.
    fn build(&self, batch: Vec<Pending>) -> (Job, AlignedBuf, Vec<Pending>, bool) {
        let pbs = self.pbs;
        let salt = self.salt();
        let max_rec = ((pbs - 24) / 32) as usize;
        let (max_pack_pb, error_before_overflow) = { let s = self.settings.lock().unwrap(); (s.max_pack_pb.clamp(1, MAX_TOTAL_IO_PB), s.error_before_overflow) };
        let (first, oldest, checkpointed) = { let st = self.state.lock().unwrap(); (st.lsids.latest, st.lsids.oldest, st.lsids.prev_written) };
        // Refusing writes that would overflow keeps every pack within the ring from oldest, which
        // the checkpointed written lsid never precedes: the redo region is safe then.
        let room_end = if error_before_overflow { u64::MAX } else { checkpointed + self.rb_size };
        let span_end = first + MAX_BATCH_SPAN_BYTES / pbs;
        // Where and why the batch stopped early: the span (false) or the redo region (true).
        let mut cut: Option<bool> = None;
        let mut lsid = first;
        let mut durable = false;
        // Each pack: its lsid, header, and where the data it carries go; the batch's log image is
        // laid out from them once sizes are known.
        let mut packs: Vec<(u64, Vec<u8>, Vec<(usize, u64, u64)>)> = Vec::new();
        let mut items: Vec<Item> = Vec::new();
        // The answer of each request, in order: Ok once logged, or the error it is refused with.
        let mut answers: Vec<(Done, Option<Arc<dyn ReplySink>>, Result<(), i32>)> = Vec::new();
        let mut rest = batch.into_iter().peekable();
        while rest.peek().is_some() && cut.is_none() {
            // One logpack.
            let mut header = vec![0u8; pbs as usize];
            // (request index, or usize::MAX for padding; PB offset in the pack's data; PBs).
            let mut places: Vec<(usize, u64, u64)> = Vec::new();
            let mut n = 0usize;
            let mut total = 0u64;
            let mut padded = false;
            let mut members: Vec<(Item, Done, Option<Arc<dyn ReplySink>>)> = Vec::new();
            while let Some(p) = rest.peek() {
                let need_pb = match &p.op { Op::Write { data, .. } => (data.len() as u64).div_ceil(pbs), _ => 0 };
                if n >= max_rec || (n > 0 && total + need_pb > max_pack_pb) { break; }
                // A data run may not cross the ring end: it is padded up to it first.
                let at = (lsid + 1 + total) % self.rb_size;
                let pad = if matches!(p.op, Op::Write { .. }) && at + need_pb > self.rb_size { self.rb_size - at } else { 0 };
                let end = lsid + 1 + total + pad + need_pb;
                if end > span_end { cut = Some(false); break; }
                if end > room_end { cut = Some(true); break; }
                if let Op::Write { .. } = p.op {
                    if pad > 0 {
                        if padded || n + 1 >= max_rec { break; }
                        if total + pad + need_pb > MAX_TOTAL_IO_PB { break; }
                        let o = 24 + 32 * n;
                        put32(&mut header, o + 4, FLAG_EXIST | FLAG_PADDING);
                        put32(&mut header, o + 16, (pad * pbs / LBS) as u32);
                        put16(&mut header, o + 20, (total + 1) as u16);
                        put64(&mut header, o + 24, lsid + total + 1);
                        places.push((usize::MAX, total, pad));
                        total += pad;
                        n += 1;
                        padded = true;
                        continue;
                    }
                }
                let p = rest.next().unwrap();
                let o = 24 + 32 * n;
                let item = |apply, zero| (Item { apply, zero }, p.done, p.sink);
                match p.op {
                    // No record of size 0 (invalid in the format: readers stop at it).
                    Op::Write { data: d, fua, .. } if d.len() == 0 => { durable |= fua; members.push(item(None, None)); }
                    Op::Write { lb, data: d, fua } => {
                        put32(&mut header, o, checksum(&d, salt));
                        put32(&mut header, o + 4, FLAG_EXIST);
                        put64(&mut header, o + 8, lb);
                        put32(&mut header, o + 16, (d.len() as u64 / LBS) as u32);
                        put16(&mut header, o + 20, (total + 1) as u16);
                        put64(&mut header, o + 24, lsid + total + 1);
                        places.push((items.len() + members.len(), total, need_pb));
                        total += need_pb;
                        durable |= fua;
                        n += 1;
                        members.push(item(Some((d, lb * LBS)), None));
                    }
                    Op::Discard { lb, blocks, fua } => {
                        put32(&mut header, o + 4, FLAG_EXIST | FLAG_DISCARD);
                        put64(&mut header, o + 8, lb);
                        put32(&mut header, o + 16, blocks as u32);
                        put16(&mut header, o + 20, (total + 1) as u16);
                        put64(&mut header, o + 24, lsid + total + 1);
                        durable |= fua;
                        n += 1;
                        members.push(item(None, Some((lb * LBS, blocks * LBS))));
                    }
                    Op::Flush => { durable = true; members.push(item(None, None)); }
                }
            }
            if n == 0 && members.is_empty() { break; }
            if n > 0 {
                let next = lsid + 1 + total;
                if next - oldest > self.rb_size {
                    if error_before_overflow {
                        for (_, done, sink) in members { answers.push((done, sink, Err(28))); }
                        continue;
                    }
                    self.state.lock().unwrap().overflow = true;
                }
                put16(&mut header, 4, SECTOR_TYPE_LOGPACK);
                put16(&mut header, 6, total as u16);
                put64(&mut header, 8, lsid);
                put16(&mut header, 16, n as u16);
                put16(&mut header, 18, padded as u16);
                let c = checksum(&header, salt);
                put32(&mut header, 0, c);
                packs.push((lsid, header, places));
                lsid = next;
            }
            for (it, done, sink) in members { items.push(it); answers.push((done, sink, Ok(()))); }
        }
        // The batch's log image: packs at consecutive lsids, padding areas left zero.
        // The batch's log image, in a reused buffer: every byte of it is written here (data, the
        // zero tail of a data run's last PB, zeros for padding), none left from an earlier batch.
        let mut img = AlignedBuf::take(&self.images, ((lsid - first) * pbs) as usize);
        {
            let buf = img.bytes_mut();
            for (l, header, places) in &packs {
                let at = ((l - first) * pbs) as usize;
                buf[at..at + pbs as usize].copy_from_slice(header);
                for &(i, pb, n) in places {
                    let s = at + ((1 + pb) * pbs) as usize;
                    let e = s + (n * pbs) as usize;
                    if i == usize::MAX { buf[s..e].fill(0); continue; }
                    let d = &items[i].apply.as_ref().unwrap().0;
                    buf[s..s + d.len()].copy_from_slice(d);
                    buf[s + d.len()..e].fill(0);
                }
            }
        }
        // Nothing is answered before its log is written; on a failure every request of the batch gets EIO.
        (Job { first, end: lsid, durable, answers, items, status: JobStatus::Writing }, img, rest.collect(), cut == Some(true))
    }

    /// Collect the jobs at the front whose writes are over, in log order: `completed` advances
    /// over them and their batches go to the applier; then, outside the lock, one log sync if any
    /// of them asked for durability, and their answers (writes are acknowledged once logged, as
    /// the kernel driver completes a write once its logpack is written).
    fn finish_jobs(&self, mut st: std::sync::MutexGuard<'_, State>) {
        let mut answers = Vec::new();
        let mut durable = false;
        let mut end = st.lsids.completed;
        while matches!(st.jobs.front(), Some(j) if j.status != JobStatus::Writing) {
            let j = st.jobs.pop_front().unwrap();
            if j.status == JobStatus::Failed {
                if st.failed.is_none() { st.failed = Some("write the log device failed".into()); }
                st.log_broken = true;
            }
            if st.log_broken {
                // A hole in the log: nothing from here on can be redone, so nothing is acknowledged.
                answers.extend(j.answers.into_iter().map(|(d, s, _)| (d, s, Err(5))));
                continue;
            }
            end = j.end;
            durable |= j.durable;
            answers.extend(j.answers);
            let bytes = j.items.iter().map(|it| it.apply.as_ref().map_or(0, |(d, _)| d.len())).sum();
            st.applying_bytes += bytes;
            st.applying.push_back(Logged { items: j.items, end: j.end, bytes });
        }
        if answers.is_empty() && st.lsids.completed == end { return; }
        st.lsids.completed = end;
        if st.applier_waits && (st.applier_idle || st.applying_bytes >= APPLY_WAKE_BYTES || st.others_wait > 0) { self.apply_cv.notify_one(); }
        if st.logger_waits && !st.queue.is_empty() { self.log_cv.notify_one(); }
        self.wake_others(&st);
        drop(st);
        if durable {
            match self.ldev.sync_data() {
                Ok(()) => { let mut st = self.state.lock().unwrap(); if st.lsids.permanent < end { st.lsids.permanent = end; } }
                Err(e) => {
                    { let mut st = self.state.lock().unwrap(); st.failed = Some(format!("sync the log device: {e}")); st.log_broken = true; }
                    answers = answers.into_iter().map(|(d, s, _)| (d, s, Err(5))).collect();
                }
            }
        }
        answer_all(answers.into_iter());
    }

    /// A log writer's step: write the next batch image to the ring, then finish what is over.
    /// False once the device is closing and nothing is left.
    fn write_next(&self) -> bool {
        let (first, img) = {
            let mut st = self.state.lock().unwrap();
            loop {
                if let Some(w) = st.write_q.pop_front() { break w; }
                if st.closing && st.queue.is_empty() && !st.logging && st.jobs.is_empty() { return false; }
                st.writers_wait += 1;
                st = self.write_cv.wait_timeout(st, Duration::from_millis(200)).unwrap().0;
                st.writers_wait -= 1;
            }
        };
        let ok = self.write_log(first, &img).is_ok();
        img.give(&self.images);
        let mut st = self.state.lock().unwrap();
        if let Some(j) = st.jobs.iter_mut().find(|j| j.first == first && j.status == JobStatus::Writing) {
            j.status = if ok { JobStatus::Written } else { JobStatus::Failed };
        }
        self.finish_jobs(st);
        true
    }

    /// Write a batch image (lsids `first..end`) to the ring through the page cache. When pages are
    /// shared between batches (physical blocks smaller than a page), the writes go in lsid order
    /// and each fills the rest of its last page with zeros, where the next batch will go (never
    /// past the ring's end or into logs not yet extracted): then no write ever covers part of a
    /// page that is not in the page cache, which the kernel would first have to read from the
    /// device. Once the ring had wrapped, that read stalled the writer in every batch and halved
    /// the IOPS of 4 KiB random writes here.
    fn write_ring(&self, first: u64, end: u64, img: &AlignedBuf) -> std::io::Result<()> {
        if !self.share_pages { return self.write_lsids(first, img.bytes()); }
        let oldest = {
            let mut st = self.state.lock().unwrap();
            while st.ring_next != first && st.ring_next < end { st = self.wait_progress(st); }
            st.lsids.oldest
        };
        let pbs = self.pbs;
        let at = self.ring_pos(end - 1) + pbs;
        let mut fill = (self.page - at % self.page) % self.page;
        let ring_end = (self.rb_off + self.rb_size) * pbs;
        // Logs not yet extracted stay (once overflowing, the ring is being overwritten anyway).
        let limit = oldest + self.rb_size;
        if at + fill > ring_end || (end <= limit && end + fill / pbs > limit) { fill = 0; }
        // One write with its zeros: the kernel reads a partly written page it does not hold
        // before the write returns, so they cannot follow in a write of their own.
        let r = self.write_lsids_to(&self.ldev, first, img.bytes(), &self.zero_page[..fill as usize]);
        let mut st = self.state.lock().unwrap();
        if st.ring_next < end { st.ring_next = end; }
        self.wake_others(&st);
        r
    }

    fn wants_direct(&self, img: &AlignedBuf) -> bool {
        self.ldev_direct.is_some() && self.direct_ok.load(Ordering::Relaxed) && img.len >= DIRECT_MIN_BYTES
    }

    /// Write the batch image starting at `lsid` to the ring. Large batches (bandwidth) use direct
    /// IO while the device takes it: no copy into the page cache, no page cache to evict later.
    /// Small ones (latency) go through the page cache, where a write costs a memory copy rather
    /// than a device round trip; the flusher makes them durable and lets their pages go.
    fn write_log(&self, lsid: u64, img: &AlignedBuf) -> std::io::Result<()> {
        if let (Some(f), true) = (&self.ldev_direct, self.wants_direct(img)) {
            match self.write_lsids_to(f, lsid, img.bytes(), &[]) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(22) => self.direct_ok.store(false, Ordering::Relaxed),
                Err(e) => return Err(e),
            }
        }
        self.write_lsids(lsid, img.bytes())
    }

    /// Write a logged batch to the data device, answering each request once its data are written.
    /// A discarded range reads as zeros afterwards, so the device and every restore of its log
    /// agree: punch a hole (files and block devices that can), else write zeros.
    fn zero_range(&self, off: u64, len: u64) -> std::io::Result<()> {
        use std::os::unix::io::AsRawFd;
        let end = (off + len).min(self.size_lb * LBS);
        if end <= off { return Ok(()); }
        // FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE
        if unsafe { fallocate(self.ddev.as_raw_fd(), 0x01 | 0x02, off as i64, (end - off) as i64) } == 0 { return Ok(()); }
        let zeros = vec![0u8; 1 << 20];
        let mut at = off;
        while at < end {
            let n = ((end - at) as usize).min(zeros.len());
            self.ddev.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }

    /// Write a logged (and already answered) batch to the data device. False when a write
    /// failed: the device is marked failed (its log still holds the data, redone at the next open).
    fn apply(&self, b: Logged) -> bool {
        let mut spent = Vec::with_capacity(b.items.len());
        let ok = self.apply_items(b, &mut spent);
        self.bufs.give(&mut spent);
        ok
    }

    fn apply_items(&self, b: Logged, spent: &mut Vec<Vec<u8>>) -> bool {
        for it in b.items {
            if let Some((data, off)) = it.apply {
                if let Err(e) = self.ddev.write_all_at(&data, off) {
                    self.state.lock().unwrap().failed = Some(format!("write the data device: {e}"));
                    return false;
                }
                if let Payload::Bytes(v, _) = data { spent.push(v); }
            }
            if let Some((off, len)) = it.zero {
                if let Err(e) = self.zero_range(off, len) {
                    self.state.lock().unwrap().failed = Some(format!("discard on the data device: {e}"));
                    return false;
                }
            }
        }
        true
    }
}

/// Answer every request with its result, then flush their sinks once each.
fn answer_all(reqs: impl Iterator<Item = (Done, Option<Arc<dyn ReplySink>>, Result<(), i32>)>) {
    let mut sinks: Vec<Arc<dyn ReplySink>> = Vec::new();
    for (done, sink, r) in reqs {
        done(r);
        if let Some(s) = sink { if !sinks.iter().any(|x| Arc::ptr_eq(x, &s)) { sinks.push(s); } }
    }
    for s in sinks { s.flush(); }
}

extern "C" {
    fn posix_fadvise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
    fn fallocate(fd: i32, mode: i32, offset: i64, len: i64) -> i32;
    fn flock(fd: i32, operation: i32) -> i32;
}

/// Take the exclusive advisory lock of an open log or data device, or fail at once naming it.
fn lock_exclusive(f: &File, path: &str) -> JsResult<()> {
    use std::os::unix::io::AsRawFd;
    const LOCK_EX: i32 = 2;
    const LOCK_NB: i32 = 4;
    if unsafe { flock(f.as_raw_fd(), LOCK_EX | LOCK_NB) } == 0 { return Ok(()); }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        return Err(JsError::new("ERR_WALB_CAPTURE_BUSY", format!("{path} is in use by another capture device (it holds the file's lock)")));
    }
    Err(io_err(&format!("lock {path}"), e))
}

/// Whether a capture device has `path` open (it holds the file's lock): the lock is taken and
/// given back at once when it is free.
pub fn in_use(path: &str) -> JsResult<bool> {
    let f = File::open(path).map_err(|e| io_err(&format!("open {path}"), e))?;
    match lock_exclusive(&f, path) {
        Ok(()) => { unlock(&f); Ok(false) }
        Err(e) if e.code == "ERR_WALB_CAPTURE_BUSY" => Ok(true),
        Err(e) => Err(e),
    }
}

fn unlock(f: &File) {
    use std::os::unix::io::AsRawFd;
    const LOCK_UN: i32 = 8;
    unsafe { flock(f.as_raw_fd(), LOCK_UN); }
}

/// Size of a block device, by seeking to its end.
#[repr(C)]
struct IoVec { base: *const u8, len: usize }

/// Write `a` then `b` at `pos` in one system call where the kernel takes both at once.
fn write_all_at2(f: &File, a: &[u8], b: &[u8], pos: u64) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    extern "C" { fn pwritev(fd: i32, iov: *const IoVec, iovcnt: i32, offset: i64) -> isize; }
    let iov = [IoVec { base: a.as_ptr(), len: a.len() }, IoVec { base: b.as_ptr(), len: b.len() }];
    let n = unsafe { pwritev(f.as_raw_fd(), iov.as_ptr(), 2, pos as i64) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted { return Err(e); }
        return write_all_at2(f, a, b, pos);
    }
    // A short write: finish the rest piece by piece.
    let n = n as usize;
    if n < a.len() { f.write_all_at(&a[n..], pos + n as u64)?; f.write_all_at(b, pos + a.len() as u64) }
    else if n < a.len() + b.len() { f.write_all_at(&b[n - a.len()..], pos + n as u64) }
    else { Ok(()) }
}

/// The memory page size (4096 when it cannot be read).
fn page_size() -> u64 {
    extern "C" { fn sysconf(name: i32) -> i64; }
    // _SC_PAGESIZE on Linux.
    let p = unsafe { sysconf(30) };
    if p > 0 { p as u64 } else { 4096 }
}

fn block_device_size(f: &File) -> u64 {
    use std::io::{Seek, SeekFrom};
    let mut g = match f.try_clone() { Ok(g) => g, Err(_) => return 0 };
    g.seek(SeekFrom::End(0)).unwrap_or(0)
}
