//! The merge of wdiffs into a sorted wdiff, off the JS thread: the JS side decodes the inputs'
//! headers (pack headers or indexes) with its authoritative decoders and checks, and feeds their
//! records here in address order, a chunk at a time; this module works out which input each block
//! comes from (the newest that has it), reads every input's stored images and checks them against
//! their sums (those newer inputs hide whole too, as the JS readers do), decompresses the slices
//! that need it and the snappy images it passes on whole (a sum covers the stored bytes only: an
//! image that does not decode to its size must not reach a merged file), compresses each output
//! record (none or snappy; raw when snappy does not shrink it), packs the records 127 to a pack (or
//! 32 MiB of data) and writes the file, a helper thread doing the writes while the next bytes are
//! prepared.
//!
//! Each record is stored as the JS merge stores it (kept as it is in the output's codec, else
//! compressed with this addon's encoder, raw when that does not shrink it) and packed by the same
//! rule; the records themselves are the newest input's blocks in the fewest records, where the JS
//! merge also cuts a newer record at the boundaries of older ones beneath it.
//!
//! The output is built in buffers aligned for direct IO; a pack's header is filled when the pack
//! closes, so a buffer is written only up to the open pack's header.

use crate::aligned::ABuf;
use crate::checksum::checksum;
use crate::numbers::{whole_number, MAX_SAFE};
use crate::snappy;
use crate::store_batch::{read_at_most, StoreError};
use std::collections::VecDeque;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub const KIND_NORMAL: u8 = 0;
pub const KIND_ALLZERO: u8 = 1;
pub const KIND_DISCARD: u8 = 2;
pub const CODEC_NONE: u8 = 0;
pub const CODEC_SNAPPY: u8 = 2;
/// Numbers per record fed: address, LB, kind, compression type, image offset in the file, stored
/// size, checksum, LB offset in the image, image LB.
pub const REC_NUMBERS: usize = 9;

const LB: usize = 512;
const PACK_SIZE: usize = 4096;
const PACK_HEADER: usize = 16;
const RECORD: usize = 32;
const MAX_RECORDS: usize = (PACK_SIZE - PACK_HEADER) / RECORD;
const PACK_MAX_DATA: u64 = 32 << 20;
const FLAG_ALLZERO: u8 = 1 << 1;
const FLAG_DISCARD: u8 = 1 << 2;
const PACK_FLAG_END: u8 = 1;
/// Direct-IO alignment of file offsets, lengths and memory.
const ALIGN: usize = 4096;
/// Bytes gathered before a write is handed to the writer thread.
const WRITE_AT: usize = 4 << 20;
/// Writes queued for the writer thread at most.
const WRITES_QUEUED: usize = 2;

/// One record of an input, as fed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InRec {
    pub addr: u64,
    pub blocks: u32,
    pub kind: u8,
    pub cmpr: u8,
    /// Byte offset of the stored image in its file, its stored size and salt-0 checksum.
    pub off: u64,
    pub size: u32,
    pub sum: u32,
    /// Where the record lies in its decompressed image, and the image's length, in LB.
    pub io_off: u32,
    pub img_blocks: u32,
}

impl InRec {
    /// Parse the `REC_NUMBERS` numbers of a record, checked: whole, in range, consistent.
    pub fn parse(x: &[f64]) -> Result<InRec, String> {
        let num = |i: usize, max: u64, what: &str| whole_number(x[i], max, what);
        let u32max = u32::MAX as u64;
        let r = InRec {
            addr: num(0, MAX_SAFE, "address")?,
            blocks: num(1, u32max, "LB")? as u32,
            kind: num(2, KIND_DISCARD as u64, "kind")? as u8,
            cmpr: num(3, 255, "compression type")? as u8,
            off: num(4, MAX_SAFE, "image offset")?,
            size: num(5, u32max, "stored size")? as u32,
            sum: num(6, u32max, "checksum")? as u32,
            io_off: num(7, u32max, "offset in the image")? as u32,
            img_blocks: num(8, u32max, "image LB")? as u32,
        };
        if r.blocks == 0 { return Err("a record of 0 LB".into()); }
        if r.addr + r.blocks as u64 > MAX_SAFE { return Err("the record ends beyond 2^53 LB".into()); }
        if r.kind == KIND_NORMAL {
            if r.cmpr != CODEC_NONE && r.cmpr != CODEC_SNAPPY { return Err(format!("compression type {} is neither none nor snappy", r.cmpr)); }
            if r.io_off as u64 + r.blocks as u64 > r.img_blocks as u64 { return Err("the record passes the end of its image".into()); }
            if r.img_blocks as u64 * LB as u64 > u32::MAX as u64 { return Err("an image over 4 GiB".into()); }
            if r.cmpr == CODEC_NONE && r.size as u64 != r.img_blocks as u64 * LB as u64 { return Err("a raw image whose stored size is not its length".into()); }
        }
        Ok(r)
    }
}

/// Why the merge failed.
#[derive(Debug, PartialEq)]
pub enum MergeError {
    /// Reading input `input` failed, or it ended inside an image.
    Read { input: usize, e: StoreError },
    /// The stored image at `off` of input `input` sums to `got`, not `want`.
    Sum { input: usize, off: u64, want: u32, got: u32 },
    /// The snappy image at `off` of input `input` (`stored` bytes) does not decompress to its
    /// `size` bytes.
    Snappy { input: usize, off: u64, stored: u32, size: usize, why: snappy::DecodeError },
    /// A record fed out of order or overlapping the one before.
    Order { input: usize, addr: u64 },
    /// Writing the output failed with `errno` at byte `pos`.
    Write { errno: i32, pos: u64 },
    /// A call the state does not allow (a feed after the input ended, a run after the end).
    State(&'static str),
}

/// What a run stopped at.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Step {
    /// An input that has not ended has no record left: feed it.
    NeedInput,
    /// The byte budget of the run is spent.
    Progress,
    /// Every input ended and every record is written but the END pack.
    Done,
}

/// What names a stored image: offset, stored size, sum, codec, LB. Records that name the same
/// offset with another sum are checked on their own.
type ImageKey = (u64, u32, u32, u8, u32);

fn image_key(r: &InRec) -> ImageKey {
    (r.off, r.size, r.sum, r.cmpr, r.img_blocks)
}

struct Input {
    fd: i32,
    q: VecDeque<InRec>,
    ended: bool,
    /// End (LB) of the last record fed, to check the order.
    fed_end: u64,
    /// The image whose raw bytes `cache` holds, checked: offset, stored size, sum, codec, LB. Every
    /// field counts: records that name the same offset with another sum are checked on their own.
    cache_key: Option<ImageKey>,
    /// The image last checked (read and summed), whether written or not: every record's image
    /// is checked once it is passed, those that newer inputs hide too, as the readers do.
    checked: Option<ImageKey>,
    cache: Vec<u8>,
    stored: Vec<u8>,
}

/// A write for the writer thread: `len` bytes of `buf` at file offset `pos`.
struct Write {
    buf: ABuf,
    len: usize,
    pos: u64,
}

extern "C" {
    fn pwrite(fd: i32, buf: *const u8, count: usize, offset: i64) -> isize;
}

const EINVAL: i32 = 22;
const EINTR: i32 = 4;

fn write_all(fd: i32, b: &[u8], pos: u64) -> Result<(), (i32, u64)> {
    let mut done = 0;
    while done < b.len() {
        let n = unsafe { pwrite(fd, b[done..].as_ptr(), b.len() - done, (pos + done as u64) as i64) };
        if n < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if errno == EINTR { continue; }
            return Err((errno, pos + done as u64));
        }
        if n == 0 { return Err((5, pos + done as u64)); }
        done += n as usize;
    }
    Ok(())
}

/// The writer thread: writes what comes, in order, direct when it can; the first failure is kept.
fn writer(rx: Receiver<Write>, back: Sender<ABuf>, fd: i32, direct: i32, failed: Arc<Mutex<Option<(i32, u64)>>>) {
    let mut direct = direct;
    for mut w in rx {
        if failed.lock().unwrap_or_else(|e| e.into_inner()).is_some() { continue; }
        let aligned = w.len % ALIGN == 0 && w.pos % ALIGN as u64 == 0;
        let bytes = &w.buf.bytes()[..w.len];
        let mut r = Err((EINVAL, w.pos));
        if direct >= 0 && aligned {
            r = write_all(direct, bytes, w.pos);
            // A file system that takes no direct IO after all: buffered from here on.
            if matches!(r, Err((EINVAL, _))) { direct = -1; }
        }
        if r.is_err() && matches!(r, Err((EINVAL, _))) { r = write_all(fd, bytes, w.pos); }
        if let Err(e) = r { *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e); }
        let _ = back.send(w.buf);
    }
}

/// The output: the file's bytes from `base` on, in `buf`, packs assembled in place.
struct Out {
    buf: ABuf,
    len: usize,
    base: u64,
    /// Where the open pack's header is set aside in `buf`, its records and data size.
    hdr_at: Option<usize>,
    recs: Vec<[u8; RECORD]>,
    total: u64,
    fd: i32,
    tx: Option<SyncSender<Write>>,
    spare: Receiver<ABuf>,
    thread: Option<JoinHandle<()>>,
    failed: Arc<Mutex<Option<(i32, u64)>>>,
    pub records: u64,
    pub packs: u64,
}

impl Out {
    fn new(fd: i32, direct: i32, prefix: &[u8]) -> Out {
        let (tx, rx) = sync_channel::<Write>(WRITES_QUEUED);
        let (back, spare) = channel::<ABuf>();
        let failed = Arc::new(Mutex::new(None));
        let f2 = failed.clone();
        let thread = std::thread::Builder::new().name("walb-merge-write".into()).spawn(move || writer(rx, back, fd, direct, f2)).ok();
        let mut o = Out { buf: ABuf::new(WRITE_AT * 2), len: 0, base: 0, hdr_at: None, recs: Vec::new(), total: 0, fd, tx: None, spare, thread, failed, records: 0, packs: 0 };
        if o.thread.is_some() { o.tx = Some(tx); }
        o.ensure(prefix.len());
        o.buf.bytes()[..prefix.len()].copy_from_slice(prefix);
        o.len = prefix.len();
        o
    }

    /// Room for `n` more bytes at the end of `buf`.
    fn ensure(&mut self, n: usize) {
        if self.len + n <= self.buf.cap { return; }
        let mut b = ABuf::new((self.len + n).max(self.buf.cap * 2));
        b.bytes()[..self.len].copy_from_slice(&self.buf.bytes()[..self.len]);
        self.buf = b;
    }

    /// Set aside `n` bytes at the end (for a record's data, its final size given to `commit`).
    fn reserve(&mut self, n: usize) -> usize {
        self.ensure(n);
        let at = self.len;
        self.len += n;
        at
    }

    fn open_pack(&mut self) {
        self.ensure(PACK_SIZE);
        self.hdr_at = Some(self.len);
        self.len += PACK_SIZE;
    }

    /// Before a record: a pack that holds 127 records is closed (and what is complete handed to
    /// the writer), and one is open.
    fn begin(&mut self) -> Result<(), MergeError> {
        if self.recs.len() >= MAX_RECORDS { self.close_pack(); }
        if self.hdr_at.is_none() {
            self.hand_over(false)?;
            self.open_pack();
        }
        Ok(())
    }

    /// Add the record whose `size` stored bytes are at `data_at` (at the end of `buf`) to the
    /// open pack, as the JS writer would: a record that no longer fits in the pack's 32 MiB starts
    /// the next pack, its data moved behind that pack's header.
    fn commit(&mut self, addr: u64, blocks: u32, flags: u8, cmpr: u8, size: usize, sum: u32, data_at: usize) {
        self.len = data_at + size;
        if !self.recs.is_empty() && self.total + size as u64 > PACK_MAX_DATA {
            self.close_pack();
            self.ensure(PACK_SIZE);
            self.buf.bytes().copy_within(data_at..data_at + size, data_at + PACK_SIZE);
            self.hdr_at = Some(data_at);
            self.len = data_at + PACK_SIZE + size;
        }
        let mut r = [0u8; RECORD];
        r[0..8].copy_from_slice(&addr.to_le_bytes());
        r[8..12].copy_from_slice(&blocks.to_le_bytes());
        r[12] = flags;
        r[13] = cmpr;
        r[16..20].copy_from_slice(&(self.total as u32).to_le_bytes());
        r[20..24].copy_from_slice(&(size as u32).to_le_bytes());
        r[24..28].copy_from_slice(&sum.to_le_bytes());
        self.recs.push(r);
        self.total += size as u64;
        self.records += 1;
    }

    /// Fill the open pack's header.
    fn close_pack(&mut self) {
        let Some(at) = self.hdr_at.take() else { return };
        let total = self.total as u32;
        encode_pack(&mut self.buf.bytes()[at..at + PACK_SIZE], &self.recs, 0, total);
        self.recs.clear();
        self.total = 0;
        self.packs += 1;
    }

    /// Hand the bytes before the open pack to the writer thread once there are enough (`all`:
    /// every byte, the last, unaligned ones written here), keeping the unaligned rest.
    fn hand_over(&mut self, all: bool) -> Result<(), MergeError> {
        self.check()?;
        let end = self.hdr_at.unwrap_or(self.len);
        if !all && end < WRITE_AT { return Ok(()); }
        let cut = end - end % ALIGN;
        let tail = if all { &self.buf.bytes()[cut..self.len] } else { &[][..] };
        if all && !tail.is_empty() {
            // Less than a block, after the aligned part: written here once that part is written.
            let rest = tail.to_vec();
            self.send(cut)?;
            self.join()?;
            return write_all(self.fd, &rest, self.base).map_err(|(errno, pos)| MergeError::Write { errno, pos });
        }
        self.send(cut)
    }

    /// Send `buf[..cut]` to the writer; the bytes after it move to the front of a fresh buffer.
    fn send(&mut self, cut: usize) -> Result<(), MergeError> {
        if cut == 0 { return Ok(()); }
        let mut next = match self.spare.try_recv() {
            Ok(b) if b.cap >= self.len - cut + WRITE_AT => b,
            _ => ABuf::new((self.len - cut + WRITE_AT).max(WRITE_AT * 2)),
        };
        next.bytes()[..self.len - cut].copy_from_slice(&self.buf.bytes()[cut..self.len]);
        let full = std::mem::replace(&mut self.buf, next);
        let pos = self.base;
        self.base += cut as u64;
        self.len -= cut;
        if let Some(h) = self.hdr_at.as_mut() { *h -= cut; }
        let w = Write { buf: full, len: cut, pos };
        let mut w = match &self.tx {
            Some(tx) => match tx.send(w) { Ok(()) => return Ok(()), Err(e) => e.0 },
            None => w,
        };
        // No writer thread: written here.
        write_all(self.fd, &w.buf.bytes()[..cut], pos).map_err(|(errno, pos)| MergeError::Write { errno, pos })
    }

    /// The writer thread's first failure, if any.
    fn check(&self) -> Result<(), MergeError> {
        match *self.failed.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((errno, pos)) => Err(MergeError::Write { errno, pos }),
            None => Ok(()),
        }
    }

    /// Let the writer thread finish what it was given, and end it.
    fn join(&mut self) -> Result<(), MergeError> {
        self.tx = None;
        if let Some(t) = self.thread.take() { let _ = t.join(); }
        self.check()
    }

    /// Close the open pack, add the END pack, write everything.
    fn finish(&mut self) -> Result<(), MergeError> {
        self.close_pack();
        self.ensure(PACK_SIZE);
        let at = self.len;
        encode_pack(&mut self.buf.bytes()[at..at + PACK_SIZE], &[], PACK_FLAG_END, 0);
        self.len += PACK_SIZE;
        self.hand_over(true)?;
        self.join()
    }

    /// Bytes of the file so far.
    fn bytes(&self) -> u64 {
        self.base + self.len as u64
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        // The writer thread ends before the descriptors it writes to can be closed.
        let _ = self.join();
    }
}

/// Encode a pack header (`struct walb_diff_pack`) into the 4 KiB `dst`.
fn encode_pack(dst: &mut [u8], recs: &[[u8; RECORD]], flags: u8, total: u32) {
    dst.fill(0);
    dst[4..6].copy_from_slice(&(recs.len() as u16).to_le_bytes());
    dst[6] = flags;
    dst[8..12].copy_from_slice(&total.to_le_bytes());
    for (i, r) in recs.iter().enumerate() {
        let o = PACK_HEADER + i * RECORD;
        dst[o..o + RECORD].copy_from_slice(r);
    }
    let sum = checksum(dst, 0);
    dst[0..4].copy_from_slice(&sum.to_le_bytes());
}

/// A merge in progress.
pub struct Merge {
    inputs: Vec<Input>,
    pos: u64,
    codec: u8,
    max_io: u32,
    out: Out,
    ended: bool,
    /// Snappy's output and hash table, kept between records.
    packed: Vec<u8>,
    table: Vec<u16>,
}

impl Merge {
    /// A merge of the open wdiffs `fds` (oldest first) into the output open as `fd` (and as
    /// `direct` with O_DIRECT, or -1), which gets `prefix` (the file header) first.
    pub fn new(fds: &[i32], fd: i32, direct: i32, codec: u8, max_io: u32, prefix: &[u8]) -> Merge {
        let inputs = fds.iter().map(|&fd| Input { fd, q: VecDeque::new(), ended: false, fed_end: 0, cache_key: None, checked: None, cache: Vec::new(), stored: Vec::new() }).collect();
        Merge { inputs, pos: 0, codec, max_io, out: Out::new(fd, direct, prefix), ended: false, packed: Vec::new(), table: Vec::new() }
    }

    /// Inputs.
    pub fn inputs(&self) -> usize {
        self.inputs.len()
    }

    /// Records queued for input `i`, and whether it ended.
    pub fn queued(&self, i: usize) -> (usize, bool) {
        self.inputs.get(i).map_or((0, true), |x| (x.q.len(), x.ended))
    }

    /// Records, packs and bytes written so far (all of them after `finish`).
    pub fn summary(&self) -> (u64, u64, u64) {
        (self.out.records, self.out.packs, self.out.bytes())
    }

    /// Queue records of input `i`, in address order after the ones before; `ended`: its last.
    pub fn feed(&mut self, i: usize, recs: &[InRec], ended: bool) -> Result<(), MergeError> {
        let inp = self.inputs.get_mut(i).ok_or(MergeError::State("no such input"))?;
        if inp.ended { return Err(MergeError::State("a feed after the input's last record")); }
        let mut end = inp.fed_end;
        for r in recs {
            if r.addr < end { return Err(MergeError::Order { input: i, addr: r.addr }); }
            end = r.addr + r.blocks as u64;
        }
        inp.fed_end = end;
        inp.q.extend(recs.iter().copied());
        inp.ended = ended;
        Ok(())
    }

    /// Merge until an input needs records, about `budget` bytes were stored, or all is done.
    pub fn run(&mut self, budget: u64) -> Result<Step, MergeError> {
        if self.ended { return Err(MergeError::State("the merge ended")); }
        let start = self.out.bytes();
        loop {
            let pos = self.pos;
            for i in 0..self.inputs.len() {
                while let Some(r) = self.inputs[i].q.front().copied().filter(|r| r.addr + r.blocks as u64 <= pos) {
                    self.inputs[i].q.pop_front();
                    // A record no block of which was written (newer inputs hide it) is checked all the same.
                    if r.kind == KIND_NORMAL && self.inputs[i].checked != Some(image_key(&r)) { self.check_image(i, &r)?; }
                }
            }
            if self.inputs.iter().any(|x| !x.ended && x.q.is_empty()) { return Ok(Step::NeedInput); }
            // The newest input whose next record covers `pos`; the blocks from `pos` on are its
            // until its record ends or a newer input's next record begins.
            let mut h = None;
            let mut low = u64::MAX;
            for (i, inp) in self.inputs.iter().enumerate() {
                if let Some(r) = inp.q.front() {
                    if r.addr <= pos { h = Some(i); }
                    low = low.min(r.addr);
                }
            }
            let Some(h) = h else {
                if low == u64::MAX { return Ok(Step::Done); }
                self.pos = low;
                continue;
            };
            let r = *self.inputs[h].q.front().expect("a front");
            let mut end = r.addr + r.blocks as u64;
            for inp in &self.inputs[h + 1..] {
                if let Some(n) = inp.q.front() { end = end.min(n.addr); }
            }
            self.emit(h, &r, pos, end)?;
            self.pos = end;
            if self.out.bytes() - start >= budget { return Ok(Step::Progress); }
        }
    }

    /// Write the records of `[from, to)` of input `h`'s record `r`, split at `max_io` LB.
    fn emit(&mut self, h: usize, r: &InRec, from: u64, to: u64) -> Result<(), MergeError> {
        let step = if self.max_io == 0 { u64::MAX } else { self.max_io as u64 };
        let mut a = from;
        while a < to {
            let n = (to - a).min(step) as u32;
            self.out.begin()?;
            match r.kind {
                KIND_NORMAL => self.store(h, r, a, n)?,
                k => {
                    let at = self.out.len;
                    self.out.commit(a, n, if k == KIND_ALLZERO { FLAG_ALLZERO } else { FLAG_DISCARD }, 0, 0, 0, at);
                }
            }
            a += n as u64;
        }
        Ok(())
    }

    /// Store the `blocks` LB at `addr` of the normal record `r` of input `h` (the stored form
    /// as the JS writer chooses it), checking the image they come from.
    fn store(&mut self, h: usize, r: &InRec, addr: u64, blocks: u32) -> Result<(), MergeError> {
        let slice = r.io_off as usize + (addr - r.addr) as usize;
        let len = blocks as usize * LB;
        let whole = slice == 0 && blocks == r.img_blocks;
        if whole && (r.cmpr == self.codec || r.cmpr == CODEC_NONE) {
            // Read straight into the output, checked there; kept as it is stored, or compressed.
            let size = r.size as usize;
            let at = self.out.reserve(size);
            let fd = self.inputs[h].fd;
            read_exact(fd, r.off, &mut self.out.buf.bytes()[at..at + size]).map_err(|e| MergeError::Read { input: h, e })?;
            let got = checksum(&self.out.buf.bytes()[at..at + size], 0);
            if got != r.sum { return Err(MergeError::Sum { input: h, off: r.off, want: r.sum, got }); }
            self.inputs[h].checked = Some(image_key(r));
            if r.cmpr == CODEC_SNAPPY {
                // Passed on as stored: its sum covers the stored bytes only, so it must also
                // decode to its size here, or the merged file would carry an image no one can
                // read (and the inputs it replaces may be gone by then).
                let inp = &mut self.inputs[h];
                let want = r.img_blocks as usize * LB;
                snappy::decompress_into(&self.out.buf.bytes()[at..at + size], &mut inp.cache, want)
                    .map_err(|why| MergeError::Snappy { input: h, off: r.off, stored: r.size, size: want, why })?;
                inp.cache_key = Some(image_key(r));
            }
            if r.cmpr == self.codec || self.codec == CODEC_NONE {
                self.out.commit(addr, blocks, 0, r.cmpr, size, r.sum, at);
                return Ok(());
            }
            // Raw, for snappy: the compressed form replaces the raw bytes when it is shorter.
            let mut packed = std::mem::take(&mut self.packed);
            let table = &mut self.table;
            if snappy::compress_into(&self.out.buf.bytes()[at..at + size], &mut packed, table, true) {
                self.out.buf.bytes()[at..at + packed.len()].copy_from_slice(&packed);
                self.out.commit(addr, blocks, 0, CODEC_SNAPPY, packed.len(), checksum(&packed, 0), at);
            } else {
                self.out.commit(addr, blocks, 0, CODEC_NONE, size, r.sum, at);
            }
            self.packed = packed;
            return Ok(());
        }
        self.load_image(h, r)?;
        let inp = &self.inputs[h];
        let raw = &inp.cache[slice * LB..slice * LB + len];
        let at = self.out.reserve(len);
        let out = &mut self.out;
        if self.codec == CODEC_SNAPPY && snappy::compress_into(raw, &mut self.packed, &mut self.table, true) {
            let b = &self.packed;
            out.buf.bytes()[at..at + b.len()].copy_from_slice(b);
            out.commit(addr, blocks, 0, CODEC_SNAPPY, b.len(), checksum(b, 0), at);
        } else {
            out.buf.bytes()[at..at + len].copy_from_slice(raw);
            out.commit(addr, blocks, 0, CODEC_NONE, len, checksum(raw, 0), at);
        }
        Ok(())
    }

    /// Have input `h`'s cache hold the raw bytes of `r`'s image, checked (and decompressed).
    fn load_image(&mut self, h: usize, r: &InRec) -> Result<(), MergeError> {
        let inp = &mut self.inputs[h];
        let key = image_key(r);
        if inp.cache_key == Some(key) { return Ok(()); }
        inp.cache_key = None;
        let size = r.size as usize;
        let target = if r.cmpr == CODEC_NONE { &mut inp.cache } else { &mut inp.stored };
        target.resize(size, 0);
        read_exact(inp.fd, r.off, target).map_err(|e| MergeError::Read { input: h, e })?;
        let got = checksum(target, 0);
        if got != r.sum { return Err(MergeError::Sum { input: h, off: r.off, want: r.sum, got }); }
        if r.cmpr == CODEC_SNAPPY {
            let size = r.img_blocks as usize * LB;
            snappy::decompress_into(&inp.stored, &mut inp.cache, size).map_err(|why| MergeError::Snappy { input: h, off: r.off, stored: r.size, size, why })?;
        }
        inp.cache_key = Some(key);
        inp.checked = Some(key);
        Ok(())
    }

    /// Read and sum `r`'s stored image (input `h`), without keeping it.
    fn check_image(&mut self, h: usize, r: &InRec) -> Result<(), MergeError> {
        let inp = &mut self.inputs[h];
        inp.stored.resize(r.size as usize, 0);
        read_exact(inp.fd, r.off, &mut inp.stored).map_err(|e| MergeError::Read { input: h, e })?;
        let got = checksum(&inp.stored, 0);
        if got != r.sum { return Err(MergeError::Sum { input: h, off: r.off, want: r.sum, got }); }
        inp.checked = Some(image_key(r));
        Ok(())
    }

    /// Write the last pack, the END pack and everything pending; the file is then complete.
    pub fn finish(&mut self) -> Result<(), MergeError> {
        if self.ended { return Err(MergeError::State("the merge ended")); }
        if self.inputs.iter().any(|x| !x.ended || !x.q.is_empty()) { return Err(MergeError::State("records are left to merge")); }
        self.ended = true;
        self.out.finish()
    }

    /// Stop: the writer thread ends (what it was given written), nothing more is written.
    pub fn stop(&mut self) {
        self.ended = true;
        let _ = self.out.join();
    }
}

fn read_exact(fd: i32, pos: u64, dst: &mut [u8]) -> Result<(), StoreError> {
    let got = read_at_most(fd, pos, dst)?;
    if got < dst.len() { return Err(StoreError::Short { fd, pos, got, len: dst.len() }); }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::os::unix::io::AsRawFd;

    fn rng(seed: &mut u64) -> u64 { *seed ^= *seed << 13; *seed ^= *seed >> 7; *seed ^= *seed << 17; *seed }

    fn raw(addr: u64, off: u64, bytes: &[u8]) -> InRec {
        let blocks = (bytes.len() / LB) as u32;
        InRec { addr, blocks, kind: KIND_NORMAL, cmpr: CODEC_NONE, off, size: bytes.len() as u32, sum: checksum(bytes, 0), io_off: 0, img_blocks: blocks }
    }

    /// (records, data size, flags) of each pack of a sorted wdiff after its 32-byte header.
    fn packs(b: &[u8]) -> Vec<(Vec<[u8; RECORD]>, usize, u8)> {
        let mut out = Vec::new();
        let mut at = 32;
        loop {
            let h = &b[at..at + PACK_SIZE];
            let mut copy = h.to_vec();
            copy[0..4].fill(0);
            assert_eq!(u32::from_le_bytes(h[0..4].try_into().unwrap()), checksum(&copy, 0), "pack header checksum at {at}");
            let n = u16::from_le_bytes([h[4], h[5]]) as usize;
            let total = u32::from_le_bytes(h[8..12].try_into().unwrap()) as usize;
            let recs = (0..n).map(|i| h[PACK_HEADER + i * RECORD..PACK_HEADER + (i + 1) * RECORD].try_into().unwrap()).collect();
            out.push((recs, total, h[6]));
            if h[6] & PACK_FLAG_END != 0 { assert_eq!(at + PACK_SIZE, b.len(), "END is the last pack"); return out; }
            at += PACK_SIZE + total;
        }
    }

    fn merged(inputs: &[(&[u8], Vec<InRec>)], codec: u8, max_io: u32) -> Result<Vec<u8>, MergeError> {
        let dir = std::env::temp_dir();
        // Tests run on several threads: every call its own files.
        static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = format!("{}-{}", std::process::id(), CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let mut files = Vec::new();
        for (k, (bytes, _)) in inputs.iter().enumerate() {
            let p = dir.join(format!("walb-merge-in-{id}-{k}"));
            std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
            files.push((std::fs::File::open(&p).unwrap(), p));
        }
        let outp = dir.join(format!("walb-merge-out-{id}"));
        let out = std::fs::File::create(&outp).unwrap();
        let fds: Vec<i32> = files.iter().map(|(f, _)| f.as_raw_fd()).collect();
        let mut m = Merge::new(&fds, out.as_raw_fd(), -1, codec, max_io, &[0xabu8; 32]);
        let r = (|| {
            for (k, (_, recs)) in inputs.iter().enumerate() { m.feed(k, recs, true)?; }
            assert_eq!(m.run(u64::MAX)?, Step::Done);
            m.finish()
        })();
        m.stop();
        let b = std::fs::read(&outp).unwrap();
        for (_, p) in &files { std::fs::remove_file(p).unwrap(); }
        std::fs::remove_file(&outp).unwrap();
        r.map(|_| b)
    }

    #[test]
    fn a_record_that_no_longer_fits_once_stored_starts_the_next_pack() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut noise = |n: usize| (0..n).map(|_| rng(&mut seed) as u8).collect::<Vec<u8>>();
        let (a, b) = (noise(20 << 20), noise(16 << 20));
        let zeros = vec![0u8; 8 << 20];
        let file = [a.clone(), b.clone(), zeros.clone()].concat();
        let recs = vec![raw(0, 0, &a), raw(40960, 20 << 20, &b), raw(73728, 36 << 20, &zeros)];
        let out = merged(&[(&file, recs)], CODEC_SNAPPY, 0).unwrap();
        assert_eq!(&out[..32], &[0xab; 32]);
        let p = packs(&out);
        // A alone (20 MiB: B's 16 MiB would pass 32 MiB); B then the zeros, compressed, together.
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].0.len(), p[0].1), (1, 20 << 20));
        assert_eq!(p[1].0.len(), 2);
        assert_eq!(p[1].0[1][13], CODEC_SNAPPY);
        let at_b = 32 + PACK_SIZE + (20 << 20) + PACK_SIZE;
        assert_eq!(&out[at_b..at_b + b.len()], &b[..]);
        // A 16 MiB record that compresses to little still fits beside 20 MiB: one pack.
        let file2 = [a.clone(), zeros.clone(), zeros.clone()].concat();
        let recs2 = vec![raw(0, 0, &a), raw(40960, 20 << 20, &[zeros.clone(), zeros.clone()].concat())];
        let p2 = packs(&merged(&[(&file2, recs2)], CODEC_SNAPPY, 0).unwrap());
        assert_eq!(p2.len(), 2);
        assert_eq!(p2[0].0.len(), 2);
    }

    #[test]
    fn the_newest_input_wins_and_slices_are_checked_through_their_image() {
        let old: Vec<u8> = (0..16 * LB).map(|i| (i / LB) as u8).collect();
        let new = vec![0xeeu8; 2 * LB];
        let mut recs_old = vec![raw(100, 0, &old)];
        let recs_new = vec![raw(104, 0, &new), InRec { addr: 200, blocks: 3, kind: KIND_DISCARD, cmpr: 0, off: 0, size: 0, sum: 0, io_off: 0, img_blocks: 0 }];
        let out = merged(&[(&old, recs_old.clone()), (&new, recs_new.clone())], CODEC_NONE, 5).unwrap();
        let p = packs(&out);
        let recs: Vec<(u64, u32, u8)> = p[0].0.iter().map(|r| (u64::from_le_bytes(r[0..8].try_into().unwrap()), u32::from_le_bytes(r[8..12].try_into().unwrap()), r[12])).collect();
        // [100, 104) old, [104, 106) new, [106, 116) old split at 5 LB, the discard.
        assert_eq!(recs, vec![(100, 4, 0), (104, 2, 0), (106, 5, 0), (111, 5, 0), (200, 3, FLAG_DISCARD)]);
        let data = &out[32 + PACK_SIZE..];
        assert_eq!(&data[..4 * LB], &old[..4 * LB]);
        assert_eq!(&data[4 * LB..6 * LB], &new[..]);
        assert_eq!(&data[6 * LB..16 * LB], &old[6 * LB..]);
        // One byte of the old image changed outside the slices written: its whole image is checked.
        let mut bad = old.clone();
        bad[5 * LB] ^= 1;
        let r = merged(&[(&bad, recs_old.clone()), (&new, recs_new.clone())], CODEC_NONE, 0);
        assert!(matches!(r, Err(MergeError::Sum { input: 0, off: 0, .. })), "{r:?}");
        // Out of order, and an input that ends inside an image.
        recs_old.push(raw(50, 0, &new));
        let mut m = Merge::new(&[0], 1, -1, CODEC_NONE, 0, &[]);
        assert_eq!(m.feed(0, &recs_old, true), Err(MergeError::Order { input: 0, addr: 50 }));
        m.stop();
        let short = merged(&[(&old[..8 * LB], vec![raw(0, 0, &old)])], CODEC_NONE, 0);
        assert!(matches!(short, Err(MergeError::Read { input: 0, e: StoreError::Short { .. } })), "{short:?}");
    }

    #[test]
    fn a_corrupt_image_that_newer_inputs_hide_is_refused_all_the_same() {
        let old = vec![0x11u8; 2 * LB];
        let new = vec![0x22u8; 4 * LB];
        let mut rec = raw(300, 0, &old);
        assert!(merged(&[(&old, vec![rec]), (&new, vec![raw(299, 0, &new)])], CODEC_SNAPPY, 0).is_ok());
        rec.sum ^= 1;
        let r = merged(&[(&old, vec![rec]), (&new, vec![raw(299, 0, &new)])], CODEC_SNAPPY, 0);
        assert!(matches!(r, Err(MergeError::Sum { input: 0, off: 0, .. })), "{r:?}");
    }

    #[test]
    fn a_snappy_image_passed_on_whole_must_decode_to_its_size() {
        let img = vec![0x33u8; 8 * LB];
        let mut packed = Vec::new();
        assert!(snappy::compress_into(&img, &mut packed, &mut Vec::new(), true));
        let rec = |stored: &[u8]| InRec { addr: 64, blocks: 8, kind: KIND_NORMAL, cmpr: CODEC_SNAPPY, off: 0, size: stored.len() as u32, sum: checksum(stored, 0), io_off: 0, img_blocks: 8 };
        // Good: passed on byte for byte.
        let out = merged(&[(&packed, vec![rec(&packed)])], CODEC_SNAPPY, 0).unwrap();
        assert_eq!(&out[32 + PACK_SIZE..32 + PACK_SIZE + packed.len()], &packed[..]);
        // The same bytes claiming one LB more, and bytes that sum right but are no snappy block.
        let mut longer = rec(&packed);
        longer.blocks = 9;
        longer.img_blocks = 9;
        let r = merged(&[(&packed, vec![longer])], CODEC_SNAPPY, 0);
        assert!(matches!(r, Err(MergeError::Snappy { input: 0, off: 0, size, .. }) if size == 9 * LB), "{r:?}");
        let junk = vec![0u8; packed.len()];
        let r = merged(&[(&junk, vec![rec(&junk)])], CODEC_SNAPPY, 0);
        assert!(matches!(r, Err(MergeError::Snappy { input: 0, off: 0, .. })), "{r:?}");
    }

    #[test]
    fn a_failed_write_is_reported_with_its_place() {
        let data = vec![7u8; 4 * LB];
        let p = std::env::temp_dir().join(format!("walb-merge-wr-{}", std::process::id()));
        std::fs::File::create(&p).unwrap().write_all(&data).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        // The output descriptor is read-only: every write fails with EBADF.
        let o = std::fs::File::open(&p).unwrap();
        let mut m = Merge::new(&[f.as_raw_fd()], o.as_raw_fd(), -1, CODEC_NONE, 0, &[1u8; 32]);
        m.feed(0, &[raw(0, 0, &data)], true).unwrap();
        assert_eq!(m.run(u64::MAX), Ok(Step::Done));
        assert!(matches!(m.finish(), Err(MergeError::Write { errno: 9, pos: 0 })));
        std::fs::remove_file(&p).unwrap();
    }
}
