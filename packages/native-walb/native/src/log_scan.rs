//! One stretch of a wlog file read and stored in one trip to the thread pool, for the wlog → wdiff
//! conversion: read it, walk its logpacks, and for each IO with data sum it (with the log's salt),
//! tell whether it is all zeros, and store it (compressed with snappy when that is shorter).
//!
//! This walk only finds the bytes. It checks nothing a logpack header promises beyond what it
//! needs to stay inside the buffer: the caller decodes every header the walk passed, with the
//! authoritative decoder, compares every sum with its record and throws the typed errors. So the
//! walk stops, and leaves the rest to the caller, wherever a header is not a plain logpack with
//! records (the end marker, an empty pack, a corrupt block) or the next piece does not fit.
//!
//! A walk reads the headers first, one block a pack, which tells where every IO's data lies; then
//! it reads the data a slice at a time into a small buffer that stays in the core's caches, and
//! splits the IOs with the addon's helper thread (see `helper.rs`). On the development machine a
//! compressible 518 MiB log's walks took 62–85 ms in all this way, against 118–145 ms reading
//! every byte into the caller's buffer on one thread. A file's stretch is mapped where it can be
//! (`mapped.rs`): its data is then read where it lies in the page cache, not copied out first.

use crate::checksum::checksum;
use crate::mapped::MappedStretch;
use crate::scratch::{with_scratch, READ_STEP};
use crate::snappy;
use crate::store_batch::{read_at_most, StoreError, CODEC_NONE, CODEC_SNAPPY, IN_SRC};

/// u32 words per event in `out`.
pub const EVENT_WORDS: usize = 8;
/// Event kind: a logpack header at `off` (its records follow).
pub const EV_PACK: u32 = 1;
/// Event kind: the data of a record at `off`.
pub const EV_IO: u32 = 2;
/// `cmpr` word of an IO whose data is all zeros (nothing stored).
pub const ALL_ZERO: u32 = 0xff;
/// Codec asking for sums and the all-zero test only: nothing is stored or kept in `buf`.
pub const SUMS_ONLY: u32 = 0xff;
/// Codec asking for the headers alone, no data read: what the indexed conversion looks at first,
/// to find the data that later IOs overwrite. Each header is read into `hdr` (which holds the
/// block the walk stopped at, when it stops at one), none into `buf`, which may be empty (see
/// [`scan_headers`]). The events then carry what the caller would decode
/// the headers for: a pack's `[EV_PACK, off, lsid low, lsid high, total IO size (pbs), 0…]`, and
/// one event per record that is not padding, discards included: `[EV_IO | rec << 8, off, address
/// low, address high, LB, 1 for a discard else 0, 0, 0]`. Nothing is checked beyond what the walk
/// needs to stay inside the buffer: the pass that reads the data checks it all.
pub const HEADERS_ONLY: u32 = 0xfe;

/// Sector type of a logpack header.
const SECTOR_TYPE_LOGPACK: u16 = 3;
const LOGPACK_HEADER_SIZE: usize = 24;
const LOG_RECORD_SIZE: usize = 32;
const FLAG_PADDING: u32 = 1 << 1;
const FLAG_DISCARD: u32 = 1 << 2;

/// Why a walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The next piece (a header or a record's data, `need` bytes) does not fit in what was read:
    /// read on from `consumed`, into a buffer of at least `need` bytes when nothing was consumed.
    /// When the read was short, the file ends there.
    NeedMore = 0,
    /// A header the walk does not handle sits at `consumed`: the caller decodes it.
    Header = 1,
    /// `out` or `dst` is full: read on from `consumed`.
    Full = 2,
}

/// The stop reason a walk queued behind another reports when it did not run (see walk_link.rs).
pub const NOT_STARTED: u32 = 3;

/// What a walk did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walked {
    pub events: usize,
    pub stop: Stop,
    /// Bytes of the buffer walked past (whole pieces only).
    pub consumed: usize,
    /// Record of the current pack the walk stopped at (its record count: at a header).
    pub next_rec: u32,
    /// Bytes the piece that did not fit needs.
    pub need: usize,
    /// Bytes of the stretch the file has (`buf.len()` at most): fewer where it ends.
    pub read: usize,
}

impl Walked {
    /// Whether the next stretch simply goes on from `consumed` at `next_rec` (a walk of a
    /// `buf_len`-byte buffer): `out` or `dst` filled, or a whole buffer read that ended inside a
    /// piece after some progress. Anything else (a header left to the caller, the end of the file,
    /// a piece larger than the buffer) needs the caller's decision first.
    pub fn goes_on(&self, buf_len: usize) -> bool {
        self.stop == Stop::Full || (self.stop == Stop::NeedMore && self.consumed > 0 && self.read == buf_len)
    }
}

fn u16_at(b: &[u8], o: usize) -> u16 { u16::from_le_bytes([b[o], b[o + 1]]) }
fn u32_at(b: &[u8], o: usize) -> u32 { u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) }

fn all_zero(d: &[u8]) -> bool {
    let mut words = d.chunks_exact(8);
    let mut acc = 0u64;
    for w in &mut words {
        acc |= u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        if acc != 0 { return false; }
    }
    acc == 0 && words.remainder().iter().all(|&x| x == 0)
}

/// Records of the pack whose header is `hdr`, when the walk can take it: a logpack with records,
/// no more than its block holds.
fn records_of(hdr: &[u8], pbs: usize) -> Option<u32> {
    let n = u16_at(hdr, 16) as usize;
    if u16_at(hdr, 4) != SECTOR_TYPE_LOGPACK || n == 0 || LOGPACK_HEADER_SIZE + n * LOG_RECORD_SIZE > pbs { return None; }
    Some(n as u32)
}

/// Where a walk reads: a file from a position on, or bytes in memory (for the tests).
pub trait Source: Sync {
    /// Bytes there are from the start (the file's size less the position).
    fn len(&self) -> Result<usize, StoreError>;
    /// Read into `b` from `off` on until `b` is full or the source ends; the bytes read.
    fn read_at(&self, off: usize, b: &mut [u8]) -> Result<usize, StoreError>;
    /// The error of a read of `len` bytes at `off` that got `got`.
    fn short(&self, off: usize, got: usize, len: usize) -> StoreError;
    /// The `len` bytes at `off` where they already lie in memory, when the source has them there
    /// (then nothing is read into a buffer).
    fn view(&self, _off: usize, _len: usize) -> Option<&[u8]> { None }
}

/// A file from `pos` on.
pub struct FileAt {
    pub fd: i32,
    pub pos: u64,
}

extern "C" {
    fn lseek(fd: i32, offset: i64, whence: i32) -> i64;
}
const SEEK_END: i32 = 2;

impl Source for FileAt {
    fn len(&self) -> Result<usize, StoreError> {
        // The end by lseek: a block device's size too, where fstat says 0. Reads are positional,
        // so the descriptor's own position does not matter.
        // SAFETY: lseek only reads its integer arguments; a bad descriptor is an error return.
        let end = unsafe { lseek(self.fd, 0, SEEK_END) };
        if end < 0 {
            return Err(StoreError::Io { fd: self.fd, pos: self.pos, errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0) });
        }
        Ok((end as u64).saturating_sub(self.pos).min(usize::MAX as u64) as usize)
    }
    fn read_at(&self, off: usize, b: &mut [u8]) -> Result<usize, StoreError> {
        read_at_most(self.fd, self.pos + off as u64, b)
    }
    fn short(&self, off: usize, got: usize, len: usize) -> StoreError {
        StoreError::Short { fd: self.fd, pos: self.pos + off as u64, got, len }
    }
}

/// A file's stretch mapped into memory ([`MappedStretch`]): its bytes are viewed, not read.
struct Mapped<'a> {
    file: &'a FileAt,
    map: MappedStretch,
}

impl Source for Mapped<'_> {
    fn len(&self) -> Result<usize, StoreError> { Ok(self.map.bytes().len()) }
    fn read_at(&self, off: usize, b: &mut [u8]) -> Result<usize, StoreError> { self.map.bytes().read_at(off, b) }
    fn short(&self, off: usize, got: usize, len: usize) -> StoreError { self.file.short(off, got, len) }
    fn view(&self, off: usize, len: usize) -> Option<&[u8]> { self.map.bytes().get(off..off.checked_add(len)?) }
}

impl Source for &[u8] {
    fn len(&self) -> Result<usize, StoreError> { Ok(<[u8]>::len(self)) }
    fn read_at(&self, off: usize, b: &mut [u8]) -> Result<usize, StoreError> {
        let n = b.len().min(<[u8]>::len(self).saturating_sub(off));
        if n > 0 { b[..n].copy_from_slice(&self[off..off + n]); }
        Ok(n)
    }
    fn short(&self, off: usize, got: usize, len: usize) -> StoreError {
        StoreError::Short { fd: -1, pos: off as u64, got, len }
    }
}

/// An IO the walk found: its data at `off` (`len` bytes; `end` past its padding to a block) and
/// the event it fills.
#[derive(Clone, Copy, Debug)]
struct Piece {
    off: usize,
    len: usize,
    end: usize,
    ev: usize,
}

/// Walk a stretch of a wlog of up to `buf.len()` bytes from `src`, and store its IOs. The walk
/// starts inside the pack whose header is `hdr` at record `*next_rec`, or at a header when
/// `*next_rec` is that pack's record count (or `hdr` holds no pack); `hdr` gets each header
/// passed. Events go to `out` ([`EVENT_WORDS`] words each): `[EV_PACK, off, 0…]` for a header,
/// `[EV_IO | rec << 8, off, sum with salt, cmpr (0, 2 or ALL_ZERO), offset in dst or IN_SRC,
/// stored size, salt-0 sum of the stored bytes, 0]` for each record with data that is not padding.
/// `buf` gets the headers walked, the block the walk stopped at and the data of the IOs kept raw,
/// each at its offset; its other bytes are unspecified.
///
/// In two steps: first the headers alone are read, one block a pack, which gives every event and
/// where each IO's data lies; then the data is read and stored, split with the helper thread when
/// there is one and the stretch holds at least [`SPLIT_MIN`] bytes of data.
#[allow(clippy::too_many_arguments)]
pub fn scan<S: Source>(src: &S, buf: &mut [u8], hdr: &mut [u8], next_rec: &mut u32, salt: u32, codec: u32, dst: &mut [u8], out: &mut [u32]) -> Result<Walked, StoreError> {
    let avail = src.len()?.min(buf.len());
    let mut pieces = Vec::new();
    let w = plan(src, avail, buf, hdr, next_rec, codec, dst.len(), out, &mut pieces)?;
    if codec != HEADERS_ONLY { store(src, &pieces, buf, salt, codec, dst, out)?; }
    Ok(w)
}

/// [`scan`] with [`HEADERS_ONLY`] of up to `limit` bytes of `src` (4 GiB at most: the events'
/// offsets are 32-bit), without a buffer: each header is read into `hdr`, which holds the block the
/// walk stopped at when it stops at one.
pub fn scan_headers<S: Source>(src: &S, limit: usize, hdr: &mut [u8], next_rec: &mut u32, out: &mut [u32]) -> Result<Walked, StoreError> {
    let avail = src.len()?.min(limit).min(u32::MAX as usize);
    plan(src, avail, &mut [], hdr, next_rec, HEADERS_ONLY, 0, out, &mut Vec::new())
}

/// [`scan`] of `fd` from `pos` on: through a mapping of the stretch where one can be made, else
/// (and where reading the mapping faulted: a file cut meanwhile, a failing disk) by reads, which
/// then give the short read or the error where it is.
#[allow(clippy::too_many_arguments)]
pub fn scan_chunk(fd: i32, pos: u64, buf: &mut [u8], hdr: &mut [u8], next_rec: &mut u32, salt: u32, codec: u32, dst: &mut [u8], out: &mut [u32]) -> Result<Walked, StoreError> {
    let file = FileAt { fd, pos };
    let map = if codec == HEADERS_ONLY { None } else { MappedStretch::new(fd, pos, file.len()?.min(buf.len())) };
    scan_file(&file, map, buf, hdr, next_rec, salt, codec, dst, out)
}

/// [`scan`] of `file` through `map` (its stretch mapped), or by reads without one or when reading
/// the mapping faulted.
#[allow(clippy::too_many_arguments)]
fn scan_file(file: &FileAt, map: Option<MappedStretch>, buf: &mut [u8], hdr: &mut [u8], next_rec: &mut u32, salt: u32, codec: u32, dst: &mut [u8], out: &mut [u32]) -> Result<Walked, StoreError> {
    if let Some(map) = map {
        let (hdr0, rec0) = (hdr.to_vec(), *next_rec);
        let src = Mapped { file, map };
        let r = scan(&src, buf, hdr, next_rec, salt, codec, dst, out);
        if !src.map.faulted() { return r; }
        // What was computed from the zeros a fault leaves is thrown away: the walk again, by reads.
        hdr.copy_from_slice(&hdr0);
        *next_rec = rec0;
    }
    scan(file, buf, hdr, next_rec, salt, codec, dst, out)
}

/// Bytes of data below which a stretch is stored on this thread alone.
const SPLIT_MIN: usize = 1 << 20;
/// Bytes of data a group of pieces holds (one piece may be larger) when a stretch is shared.
const GROUP: usize = 1 << 20;

fn stopped(stop: Stop, events: usize, off: usize, rec: u32, need: usize, avail: usize) -> Walked {
    Walked { events, stop, consumed: off, next_rec: rec, need, read: avail }
}

/// The first step of [`scan`]: read each header the walk passes into `buf` (and `hdr`), write
/// every event's first two words, and list the IOs with data in `pieces`. `avail` bytes exist.
#[allow(clippy::too_many_arguments)]
fn plan<S: Source>(src: &S, mut avail: usize, buf: &mut [u8], hdr: &mut [u8], next_rec: &mut u32, codec: u32, dst_len: usize, out: &mut [u32], pieces: &mut Vec<Piece>) -> Result<Walked, StoreError> {
    let pbs = hdr.len();
    let lb_per_pb = pbs / 512;
    let max_events = out.len() / EVENT_WORDS;
    let (mut off, mut events, mut raw) = (0usize, 0usize, 0usize);
    let mut n_recs = records_of(hdr, pbs).unwrap_or(0);
    if *next_rec > n_recs { *next_rec = n_recs; }
    loop {
        if events == max_events { return Ok(stopped(Stop::Full, events, off, *next_rec, 0, avail)); }
        if *next_rec >= n_recs {
            if off + pbs > avail { return Ok(stopped(Stop::NeedMore, events, off, *next_rec, pbs, avail)); }
            // Reading headers alone, each goes to `hdr` and nothing to `buf`.
            let got = if codec == HEADERS_ONLY { src.read_at(off, hdr)? } else { src.read_at(off, &mut buf[off..off + pbs])? };
            if got < pbs {
                // The file got shorter since its size was taken: it ends here.
                avail = off + got;
                return Ok(stopped(Stop::NeedMore, events, off, *next_rec, pbs, avail));
            }
            let taken = if codec == HEADERS_ONLY { records_of(hdr, pbs) } else { records_of(&buf[off..off + pbs], pbs) };
            let Some(n) = taken else { return Ok(stopped(Stop::Header, events, off, *next_rec, 0, avail)) };
            if codec != HEADERS_ONLY { hdr.copy_from_slice(&buf[off..off + pbs]); }
            n_recs = n;
            *next_rec = 0;
            // Reading headers alone, a pack's event carries its lsid and total IO size (pbs).
            let ev = if codec == HEADERS_ONLY { [EV_PACK, off as u32, u32_at(hdr, 8), u32_at(hdr, 12), u16_at(hdr, 6) as u32, 0, 0, 0] } else { [EV_PACK, off as u32, 0, 0, 0, 0, 0, 0] };
            out[events * EVENT_WORDS..(events + 1) * EVENT_WORDS].copy_from_slice(&ev);
            events += 1;
            off += pbs;
            continue;
        }
        let r = LOGPACK_HEADER_SIZE + *next_rec as usize * LOG_RECORD_SIZE;
        let flags = u32_at(hdr, r + 4);
        let io_lb = u32_at(hdr, r + 16) as usize;
        if flags & FLAG_DISCARD != 0 {
            // Reading headers alone, a discard is an event too (it has no data to find).
            if codec == HEADERS_ONLY {
                out[events * EVENT_WORDS..(events + 1) * EVENT_WORDS].copy_from_slice(&[EV_IO | (*next_rec << 8), off as u32, u32_at(hdr, r + 8), u32_at(hdr, r + 12), io_lb as u32, 1, 0, 0]);
                events += 1;
            }
            *next_rec += 1;
            continue;
        }
        let bytes = io_lb.div_ceil(lb_per_pb) * pbs;
        if off + bytes > avail { return Ok(stopped(Stop::NeedMore, events, off, *next_rec, bytes, avail)); }
        if flags & FLAG_PADDING != 0 { off += bytes; *next_rec += 1; continue; }
        let len = io_lb * 512;
        // Room in dst for the whole record: what is kept compressed is shorter.
        if codec == CODEC_SNAPPY && raw + len > dst_len { return Ok(stopped(Stop::Full, events, off, *next_rec, 0, avail)); }
        raw += len;
        let ev = if codec == HEADERS_ONLY { [EV_IO | (*next_rec << 8), off as u32, u32_at(hdr, r + 8), u32_at(hdr, r + 12), io_lb as u32, 0, 0, 0] } else { [EV_IO | (*next_rec << 8), off as u32, 0, 0, 0, 0, 0, 0] };
        out[events * EVENT_WORDS..(events + 1) * EVENT_WORDS].copy_from_slice(&ev);
        if codec != HEADERS_ONLY { pieces.push(Piece { off, len, end: off + bytes, ev: events }); }
        events += 1;
        off += bytes;
        *next_rec += 1;
    }
}

/// The second step of [`scan`]: read each piece's data and store it, filling its event. In groups
/// of about [`GROUP`] bytes of data, which this thread and the helper take in turn (see
/// `helper::share`): each group has its own stretch of `buf`, of `dst` (as much as its data) and
/// of `out`.
fn store<S: Source>(src: &S, pieces: &[Piece], buf: &mut [u8], salt: u32, codec: u32, dst: &mut [u8], out: &mut [u32]) -> Result<(), StoreError> {
    let total: usize = pieces.iter().map(|p| p.len).sum();
    if total < SPLIT_MIN || pieces.len() < 2 {
        return store_part(src, pieces, Part { buf, base: 0, dst, dst_base: 0, out, ev_base: 0 }, salt, codec);
    }
    let mut groups = Vec::new();
    let (mut buf, mut dst, mut out) = (buf, dst, out);
    let (mut base, mut dst_base, mut ev_base) = (0, 0, 0);
    let mut i = 0;
    while i < pieces.len() {
        let mut j = i + 1;
        let mut raw = pieces[i].len;
        while j < pieces.len() && raw + pieces[j].len <= GROUP { raw += pieces[j].len; j += 1; }
        // Up to the next group's first piece; the last group takes the rest.
        let (b, d, o) = if j < pieces.len() {
            let (b, rb) = std::mem::take(&mut buf).split_at_mut(pieces[j].off - base);
            let room = raw.min(dst.len());
            let (d, rd) = std::mem::take(&mut dst).split_at_mut(room);
            let (o, ro) = std::mem::take(&mut out).split_at_mut((pieces[j].ev - ev_base) * EVENT_WORDS);
            buf = rb;
            dst = rd;
            out = ro;
            (b, d, o)
        } else {
            (std::mem::take(&mut buf), std::mem::take(&mut dst), std::mem::take(&mut out))
        };
        let (b_len, d_len) = (b.len(), d.len());
        groups.push((&pieces[i..j], Part { buf: b, base, dst: d, dst_base, out: o, ev_base }));
        base += b_len;
        dst_base += d_len;
        if j < pieces.len() { ev_base = pieces[j].ev; }
        i = j;
    }
    crate::helper::share(groups, |(ps, part)| store_part(src, ps, part, salt, codec))
}

/// One thread's share of [`store`]: slices of the whole, and where each starts in it.
struct Part<'a> {
    buf: &'a mut [u8],
    base: usize,
    dst: &'a mut [u8],
    dst_base: usize,
    out: &'a mut [u32],
    ev_base: usize,
}

fn store_part<S: Source>(src: &S, pieces: &[Piece], p: Part<'_>, salt: u32, codec: u32) -> Result<(), StoreError> {
    with_scratch(|scratch| store_slices(src, pieces, p, salt, codec, scratch))
}

fn store_slices<S: Source>(src: &S, pieces: &[Piece], p: Part<'_>, salt: u32, codec: u32, scratch: &mut [u8]) -> Result<(), StoreError> {
    let Part { buf, base, dst, dst_base, out, ev_base } = p;
    let mut cursor = 0usize;
    let mut i = 0;
    while i < pieces.len() {
        // A slice of whole pieces (with the blocks between them) of a step at most, unless one
        // piece alone is larger: that one is read straight into `buf`.
        let from = pieces[i].off;
        let mut j = i + 1;
        while j < pieces.len() && pieces[j].end - from <= READ_STEP { j += 1; }
        let to = pieces[j - 1].end;
        // Mapped, the slice is read where it lies; else into the scratch buffer or, too large for
        // it, straight into `buf`.
        let view = src.view(from, to - from);
        let in_scratch = view.is_none() && to - from <= scratch.len();
        let in_buf = view.is_none() && !in_scratch;
        if view.is_none() {
            let got = if in_scratch { src.read_at(from, &mut scratch[..to - from])? } else { src.read_at(from, &mut buf[from - base..to - base])? };
            // The file got shorter since the headers were read.
            if got < to - from { return Err(src.short(from, got, to - from)); }
        }
        let slice: &[u8] = match view { Some(v) => v, None if in_scratch => &scratch[..to - from], None => &[] };
        for pc in &pieces[i..j] {
            let data: &[u8] = if in_buf { &buf[pc.off - base..pc.off - base + pc.len] } else { &slice[pc.off - from..pc.off - from + pc.len] };
            let sum = checksum(data, salt);
            let (cmpr, at, size, stored_sum) = if all_zero(data) {
                (ALL_ZERO, 0, 0, 0)
            } else {
                let kept = if codec == CODEC_SNAPPY {
                    snappy::compress_with_scratch(data, true, |block| block.map(|b| {
                        dst[cursor..cursor + b.len()].copy_from_slice(b);
                        b.len()
                    }))
                } else {
                    None
                };
                match kept {
                    Some(n) => {
                        let at = cursor;
                        cursor += n;
                        (CODEC_SNAPPY, (dst_base + at) as u32, n as u32, checksum(&dst[at..at + n], 0))
                    }
                    // Raw: its salt-0 sum follows from the salted one.
                    None if codec == SUMS_ONLY => (CODEC_NONE, 0, pc.len as u32, sum.wrapping_add(salt)),
                    None => (CODEC_NONE, IN_SRC, pc.len as u32, sum.wrapping_add(salt)),
                }
            };
            // The caller reads a raw IO where it lies in its buffer.
            if !in_buf && cmpr == CODEC_NONE && codec != SUMS_ONLY {
                buf[pc.off - base..pc.off - base + pc.len].copy_from_slice(&slice[pc.off - from..pc.off - from + pc.len]);
            }
            let e = (pc.ev - ev_base) * EVENT_WORDS;
            out[e + 2..e + 7].copy_from_slice(&[sum, cmpr, at, size, stored_sum]);
        }
        i = j;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PBS: usize = 4096;

    fn header(recs: &[(u32, u32)]) -> Vec<u8> {
        // (flags, io LB) per record; lsid_local and the rest are the decoder's business.
        let mut h = vec![0u8; PBS];
        h[4..6].copy_from_slice(&SECTOR_TYPE_LOGPACK.to_le_bytes());
        h[16..18].copy_from_slice(&(recs.len() as u16).to_le_bytes());
        for (i, &(flags, lb)) in recs.iter().enumerate() {
            let r = LOGPACK_HEADER_SIZE + i * LOG_RECORD_SIZE;
            h[r + 4..r + 8].copy_from_slice(&flags.to_le_bytes());
            h[r + 16..r + 20].copy_from_slice(&lb.to_le_bytes());
        }
        h
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x as u8 }).collect()
    }

    /// A log stretch: a pack of (random 3 LB, zeros 8 LB, discard, padding 8 LB, text 16 LB), then
    /// a pack of one random 1-LB IO, then the end marker.
    fn stretch() -> (Vec<u8>, Vec<Vec<u8>>) {
        let ios = vec![noise(3 * 512, 1), vec![0u8; 8 * 512], b"walbjs ".repeat(16 * 512 / 7 + 1)[..16 * 512].to_vec(), noise(512, 2)];
        let mut b = header(&[(1, 3), (1, 8), (5, 100), (3, 8), (1, 16)]);
        let pad_pb = |b: &mut Vec<u8>, d: &[u8]| { b.extend_from_slice(d); b.resize(b.len().div_ceil(PBS) * PBS, 0); };
        pad_pb(&mut b, &ios[0]);
        pad_pb(&mut b, &ios[1]);
        pad_pb(&mut b, &noise(8 * 512, 3));
        pad_pb(&mut b, &ios[2]);
        b.extend_from_slice(&header(&[(1, 1)]));
        pad_pb(&mut b, &ios[3]);
        b.extend_from_slice(&vec![0u8; PBS]); // not a logpack: where the walk hands over
        (b, ios)
    }

    /// [`scan`] of `src` into a buffer as large as it.
    fn run(src: &[u8], hdr: &mut [u8], rec: &mut u32, salt: u32, codec: u32, dst: &mut [u8], out: &mut [u32]) -> Walked {
        let mut buf = vec![0u8; src.len()];
        let w = scan(&src, &mut buf, hdr, rec, salt, codec, dst, out).unwrap();
        // The headers and every IO's data are in the buffer where they are in the source.
        for e in 0..w.events {
            let (kind, off) = (out[e * EVENT_WORDS] & 0xff, out[e * EVENT_WORDS + 1] as usize);
            let len = if kind == EV_PACK { PBS } else { out[e * EVENT_WORDS + 5] as usize };
            if kind == EV_PACK || out[e * EVENT_WORDS + 3] == CODEC_NONE { assert_eq!(buf[off..off + len], src[off..off + len]); }
        }
        w
    }

    #[test]
    fn walks_packs_and_stores_each_io() {
        let (b, ios) = stretch();
        let mut hdr = vec![0u8; PBS];
        let mut rec = 0u32;
        let mut dst = vec![0u8; 64 << 10];
        let mut out = vec![0u32; 64];
        let w = run(&b, &mut hdr, &mut rec, 7, CODEC_SNAPPY, &mut dst, &mut out);
        assert_eq!(w.stop, Stop::Header);
        assert_eq!(w.consumed, b.len() - PBS);
        assert_eq!(w.events, 6);
        let ev = |i: usize| &out[i * EVENT_WORDS..(i + 1) * EVENT_WORDS];
        assert_eq!(ev(0), &[EV_PACK, 0, 0, 0, 0, 0, 0, 0]);
        // Random: raw, in place; its salt-0 sum derived from the salted one.
        assert_eq!(ev(1)[..7], [EV_IO, PBS as u32, checksum(&ios[0], 7), CODEC_NONE, IN_SRC, 1536, checksum(&ios[0], 0)]);
        assert_eq!(ev(2)[..4], [EV_IO | 1 << 8, 2 * PBS as u32, checksum(&ios[1], 7), ALL_ZERO]);
        // Text: compressed into dst, the discard and the padding passed over.
        let t = ev(3);
        assert_eq!(t[..4], [EV_IO | 4 << 8, 4 * PBS as u32, checksum(&ios[2], 7), CODEC_SNAPPY]);
        let mut alone = Vec::new();
        assert!(snappy::compress_into(&ios[2], &mut alone, &mut Vec::new(), true));
        assert_eq!(&dst[t[4] as usize..(t[4] + t[5]) as usize], &alone[..]);
        assert_eq!(t[6], checksum(&alone, 0));
        assert_eq!(ev(4), &[EV_PACK, 6 * PBS as u32, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ev(5)[..3], [EV_IO, 7 * PBS as u32, checksum(&ios[3], 7)]);
        assert_eq!(hdr, header(&[(1, 1)]));
        assert_eq!(rec, 1);
    }

    #[test]
    fn stops_where_a_piece_does_not_fit_and_resumes_there() {
        let (b, _) = stretch();
        let (mut hdr, mut rec) = (vec![0u8; PBS], 0u32);
        let mut dst = vec![0u8; 64 << 10];
        let mut out = vec![0u32; 64];
        // Cut inside the text IO: the walk stops before it, inside the first pack.
        let w = run(&b[..5 * PBS], &mut hdr, &mut rec, 0, CODEC_NONE, &mut dst, &mut out);
        assert_eq!((w.stop, w.consumed, w.next_rec, w.need, w.events), (Stop::NeedMore, 4 * PBS, 4, 2 * PBS, 3));
        // Resumed from there with the pack's header: the text IO, then the second pack.
        let w = run(&b[4 * PBS..], &mut hdr, &mut rec, 0, CODEC_NONE, &mut dst, &mut out);
        assert_eq!((w.stop, w.events, w.consumed), (Stop::Header, 3, 4 * PBS));
        assert_eq!(out[..2], [EV_IO | 4 << 8, 0]);
        assert_eq!(out[3], CODEC_NONE);
        // Room for two events only, then for none in dst.
        let (mut hdr, mut rec) = (vec![0u8; PBS], 0u32);
        let w = run(&b, &mut hdr, &mut rec, 0, CODEC_SNAPPY, &mut dst, &mut out[..16]);
        assert_eq!((w.stop, w.events, w.consumed, w.next_rec), (Stop::Full, 2, 2 * PBS, 1));
        let w = run(&b[2 * PBS..], &mut hdr, &mut rec, 0, CODEC_SNAPPY, &mut dst[..100], &mut out);
        assert_eq!((w.stop, w.events, w.consumed, w.next_rec), (Stop::Full, 0, 0, 1));
        // A header that is not a logpack with records is handed over at once.
        let (mut hdr, mut rec) = (vec![0u8; PBS], 0u32);
        let w = run(&vec![0u8; PBS], &mut hdr, &mut rec, 0, CODEC_NONE, &mut dst, &mut out);
        assert_eq!((w.stop, w.events, w.consumed), (Stop::Header, 0, 0));
        let mut many = header(&[(1, 1)]);
        many[16..18].copy_from_slice(&200u16.to_le_bytes());
        let w = run(&many, &mut hdr, &mut rec, 0, CODEC_NONE, &mut dst, &mut out);
        assert_eq!((w.stop, w.events), (Stop::Header, 0));
    }

    /// A pack per entry of `ios` (each IO's LB and fill: 0 zeros, 1 noise, 2 text), then the end
    /// marker.
    fn log(packs: &[&[(u32, u8)]]) -> Vec<u8> {
        let mut b = Vec::new();
        let mut seed = 1;
        for ios in packs {
            b.extend_from_slice(&header(&ios.iter().map(|&(lb, _)| (1, lb)).collect::<Vec<_>>()));
            for &(lb, fill) in ios.iter() {
                let n = lb as usize * 512;
                seed += 1;
                match fill {
                    0 => b.resize(b.len() + n, 0),
                    1 => b.extend_from_slice(&noise(n, seed)),
                    _ => b.extend_from_slice(&format!("walbjs {seed} ").repeat(n).as_bytes()[..n]),
                }
                b.resize(b.len().div_ceil(PBS) * PBS, 0);
            }
        }
        b.extend_from_slice(&vec![0u8; PBS]);
        b
    }

    #[test]
    fn a_large_stretch_split_between_two_threads_gives_what_one_gives() {
        let b = log(&[&[(2048, 2), (8, 0), (512, 1)], &[(1024, 1), (4096, 2), (1, 2)], &[(2000, 0), (300, 2)]]);
        let (mut h1, mut r1, mut d1, mut o1) = (vec![0u8; PBS], 0u32, vec![0u8; b.len()], vec![0u32; 8 * 64]);
        let w = run(&b, &mut h1, &mut r1, 9, CODEC_SNAPPY, &mut d1, &mut o1);
        assert_eq!((w.stop, w.events, w.consumed), (Stop::Header, 11, b.len() - PBS));
        // Each IO alone, as one thread stores it.
        for e in 0..w.events {
            let ev = &o1[e * EVENT_WORDS..(e + 1) * EVENT_WORDS];
            if ev[0] & 0xff != EV_IO { continue; }
            let off = ev[1] as usize;
            let len = if ev[3] == ALL_ZERO { 0 } else if ev[3] == CODEC_NONE { ev[5] as usize } else { 0 };
            if len > 0 { assert_eq!(ev[2], checksum(&b[off..off + len], 9)); }
            if ev[3] == CODEC_SNAPPY { assert_eq!(ev[6], checksum(&d1[ev[4] as usize..(ev[4] + ev[5]) as usize], 0)); }
        }
        // The same stretch with room for one IO's data at a time in dst, so stored on one thread.
        let mut single = Vec::new();
        let (mut h2, mut r2) = (vec![0u8; PBS], 0u32);
        let mut at = 0usize;
        loop {
            let (mut d2, mut o2) = (vec![0u8; b.len()], vec![0u32; 16]);
            let mut buf = vec![0u8; b.len() - at];
            let w2 = scan(&&b[at..], &mut buf, &mut h2, &mut r2, 9, CODEC_SNAPPY, &mut d2, &mut o2).unwrap();
            for e in 0..w2.events {
                let ev = &o2[e * EVENT_WORDS..(e + 1) * EVENT_WORDS];
                let stored = if ev[0] & 0xff == EV_IO && ev[3] == CODEC_SNAPPY { d2[ev[4] as usize..(ev[4] + ev[5]) as usize].to_vec() } else { Vec::new() };
                single.push((ev[0], ev[1] as usize + at, ev[2], ev[3], ev[5], ev[6], stored));
            }
            at += w2.consumed;
            if w2.stop == Stop::Header { break; }
        }
        let split: Vec<_> = (0..w.events).map(|e| {
            let ev = &o1[e * EVENT_WORDS..(e + 1) * EVENT_WORDS];
            let stored = if ev[0] & 0xff == EV_IO && ev[3] == CODEC_SNAPPY { d1[ev[4] as usize..(ev[4] + ev[5]) as usize].to_vec() } else { Vec::new() };
            (ev[0], ev[1] as usize, ev[2], ev[3], ev[5], ev[6], stored)
        }).collect();
        assert_eq!(split, single);
        // The compressed records of the later half start after the earlier half's share of dst.
        assert!((0..w.events).any(|e| o1[e * EVENT_WORDS + 3] == CODEC_SNAPPY && o1[e * EVENT_WORDS + 4] as usize > 1 << 20));
    }

    /// A source that claims more bytes than it has (a file cut while it is walked).
    struct Shrunk<'a>(&'a [u8], usize);
    impl Source for Shrunk<'_> {
        fn len(&self) -> Result<usize, StoreError> { Ok(self.1) }
        fn read_at(&self, off: usize, b: &mut [u8]) -> Result<usize, StoreError> { self.0.read_at(off, b) }
        fn short(&self, off: usize, got: usize, len: usize) -> StoreError { self.0.short(off, got, len) }
    }

    #[test]
    fn a_source_shorter_than_it_said_ends_the_walk_or_fails_the_read() {
        let b = log(&[&[(16, 1)], &[(16, 1)]]);
        let mut buf = vec![0u8; b.len() + 4 * PBS];
        let (mut hdr, mut rec, mut dst, mut out) = (vec![0u8; PBS], 0u32, vec![0u8; b.len()], vec![0u32; 64]);
        // Cut inside the second IO's data: its read comes up short.
        let cut = &b[..4 * PBS + 100];
        let e = scan(&Shrunk(cut, b.len()), &mut buf, &mut hdr, &mut rec, 0, CODEC_NONE, &mut dst, &mut out).unwrap_err();
        assert!(matches!(e, StoreError::Short { pos: 4096, got: 12388, len: 20480, .. }), "{e:?}");
        // Cut before a header: the walk ends there, at the size it found.
        let (mut hdr, mut rec) = (vec![0u8; PBS], 0u32);
        let w = scan(&Shrunk(&b[..3 * PBS], b.len()), &mut buf, &mut hdr, &mut rec, 0, CODEC_NONE, &mut dst, &mut out).unwrap();
        assert_eq!((w.stop, w.consumed, w.read, w.events), (Stop::NeedMore, 3 * PBS, 3 * PBS, 2));
    }

    #[test]
    fn a_mapped_file_walks_as_its_bytes_and_a_cut_one_as_reads_do() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let b = log(&[&[(2048, 2), (8, 0), (512, 1)], &[(1024, 1), (64, 2)]]);
        let p = std::env::temp_dir().join(format!("walb-log-scan-{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&p).unwrap();
        f.write_all(&[0u8; 100]).unwrap();
        f.write_all(&b).unwrap();
        let file = FileAt { fd: f.as_raw_fd(), pos: 100 };
        let walk = |map: Option<MappedStretch>| {
            let (mut hdr, mut rec, mut buf, mut dst, mut out) = (vec![0u8; PBS], 0u32, vec![0u8; b.len()], vec![0u8; b.len()], vec![0u32; 8 * 64]);
            let w = scan_file(&file, map, &mut buf, &mut hdr, &mut rec, 3, CODEC_SNAPPY, &mut dst, &mut out);
            w.map(|w| (w, hdr, rec, out[..w.events * EVENT_WORDS].to_vec()))
        };
        let (mut hdr, mut rec, mut buf, mut dst, mut out) = (vec![0u8; PBS], 0u32, vec![0u8; b.len()], vec![0u8; b.len()], vec![0u32; 8 * 64]);
        let w = scan(&&b[..], &mut buf, &mut hdr, &mut rec, 3, CODEC_SNAPPY, &mut dst, &mut out).unwrap();
        let mapped = walk(MappedStretch::new(file.fd, 100, b.len())).unwrap();
        assert_eq!(mapped, (w, hdr, rec, out[..w.events * EVENT_WORDS].to_vec()));
        // Mapped whole, then cut inside the second pack's first IO: through the mapping the walk
        // would find zeros there (and report an all-zero IO); it faults instead, and the walk by
        // reads stops where the file now ends, before that IO.
        let map = MappedStretch::new(file.fd, 100, b.len());
        assert!(map.is_some());
        let second = 2 * PBS + 2048 * 512 + 512 * 512;
        f.set_len((100 + second + PBS + 100) as u64).unwrap();
        let (cut, _, _, ev) = walk(map).unwrap();
        assert_eq!((cut.stop, cut.consumed, cut.read, cut.events), (Stop::NeedMore, second + PBS, second + PBS + 100, 5));
        assert_eq!(ev, walk(None).unwrap().3);
        std::fs::remove_file(p).unwrap();
    }

    /// A source that counts the bytes read from it.
    struct Counted<'a>(&'a [u8], std::sync::atomic::AtomicUsize);
    impl Source for Counted<'_> {
        fn len(&self) -> Result<usize, StoreError> { Ok(self.0.len()) }
        fn read_at(&self, off: usize, b: &mut [u8]) -> Result<usize, StoreError> {
            let n = (&self.0).read_at(off, b)?;
            self.1.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            Ok(n)
        }
        fn short(&self, off: usize, got: usize, len: usize) -> StoreError { (&self.0).short(off, got, len) }
    }

    #[test]
    fn headers_only_reads_the_headers_alone() {
        let (mut b, _) = stretch();
        // Lsids, sizes and addresses that tell their words apart (the walk checks none of them).
        for (at, lsid, total) in [(0usize, 0x1_2345_6789u64, 5u16), (6 * PBS, 0x1_2345_678fu64, 1)] {
            b[at + 6..at + 8].copy_from_slice(&total.to_le_bytes());
            b[at + 8..at + 16].copy_from_slice(&lsid.to_le_bytes());
        }
        for (at, i, addr) in [(0usize, 0usize, 0x7_0000_0001u64), (0, 1, 42), (0, 2, 0x3_0000_0000), (0, 4, 9), (6 * PBS, 0, 0xffff_ffff)] {
            let r = at + LOGPACK_HEADER_SIZE + i * LOG_RECORD_SIZE;
            b[r + 8..r + 16].copy_from_slice(&addr.to_le_bytes());
        }
        let (mut h1, mut r1, mut o1) = (vec![0u8; PBS], 0u32, vec![0u32; 64]);
        let w1 = run(&b, &mut h1, &mut r1, 5, CODEC_NONE, &mut [], &mut o1);
        let (mut h2, mut r2, mut o2) = (vec![0u8; PBS], 0u32, vec![0u32; 64]);
        let src = Counted(&b, Default::default());
        let w2 = scan_headers(&src, usize::MAX, &mut h2, &mut r2, &mut o2).unwrap();
        // The same stop; the same events at the same places, with each pack's lsid and size, and
        // the discard too, with the records' addresses and sizes; the block it stopped at in hdr.
        assert_eq!((w1.stop, w1.consumed, w1.next_rec, w1.read), (w2.stop, w2.consumed, w2.next_rec, w2.read));
        assert_eq!(w2.stop, Stop::Header);
        assert_eq!(h2, b[w2.consumed..w2.consumed + PBS]);
        assert_eq!(w2.events, w1.events + 1);
        let ev = |e: usize| o2[e * EVENT_WORDS..(e + 1) * EVENT_WORDS].to_vec();
        assert_eq!(ev(0), [EV_PACK, 0, 0x2345_6789, 1, 5, 0, 0, 0]);
        assert_eq!(ev(1), [EV_IO, PBS as u32, 1, 7, 3, 0, 0, 0]);
        assert_eq!(ev(2), [EV_IO | 1 << 8, 2 * PBS as u32, 42, 0, 8, 0, 0, 0]);
        // The discard, where the walk stood (it has no data); the padding after it has no event.
        assert_eq!(ev(3), [EV_IO | 2 << 8, 3 * PBS as u32, 0, 3, 100, 1, 0, 0]);
        assert_eq!(ev(4), [EV_IO | 4 << 8, 4 * PBS as u32, 9, 0, 16, 0, 0, 0]);
        assert_eq!(ev(5), [EV_PACK, 6 * PBS as u32, 0x2345_678f, 1, 1, 0, 0, 0]);
        assert_eq!(ev(6), [EV_IO, 7 * PBS as u32, 0xffff_ffff, 0, 1, 0, 0, 0]);
        // Two pack headers and the block the walk stopped at: no IO's data.
        assert_eq!(src.1.load(std::sync::atomic::Ordering::Relaxed), 3 * PBS);

        // In short walks (a limit inside the first pack's data, then room for 2 events at a time),
        // the same events, each walk going on from where the last stopped.
        let (mut h3, mut r3, mut all) = (vec![0u8; PBS], 0u32, Vec::new());
        let w = scan_headers(&&b[..], 3 * PBS, &mut h3, &mut r3, &mut [0u32; 64]).unwrap();
        assert_eq!((w.stop, w.consumed, w.events), (Stop::NeedMore, 3 * PBS, 4));
        let mut at = 0;
        r3 = 0;
        h3.fill(0);
        loop {
            let mut o = [0u32; 2 * EVENT_WORDS];
            let w = scan_headers(&&b[at..], usize::MAX, &mut h3, &mut r3, &mut o).unwrap();
            for e in 0..w.events {
                let mut ev = o[e * EVENT_WORDS..(e + 1) * EVENT_WORDS].to_vec();
                ev[1] += at as u32;
                all.push(ev);
            }
            at += w.consumed;
            if w.stop == Stop::Header { break; }
            assert_eq!(w.stop, Stop::Full);
        }
        assert_eq!(all, (0..w2.events).map(ev).collect::<Vec<_>>());
    }

    #[test]
    fn sums_only_gives_the_sums_and_keeps_nothing() {
        let (b, _) = stretch();
        let (mut h1, mut r1, mut o1) = (vec![0u8; PBS], 0u32, vec![0u32; 64]);
        let w1 = run(&b, &mut h1, &mut r1, 5, CODEC_NONE, &mut [], &mut o1);
        let (mut h2, mut r2, mut o2) = (vec![0u8; PBS], 0u32, vec![0u32; 64]);
        let mut buf = vec![0u8; b.len()];
        let w2 = scan(&&b[..], &mut buf, &mut h2, &mut r2, 5, SUMS_ONLY, &mut [], &mut o2).unwrap();
        assert_eq!(w1, w2);
        for e in 0..w1.events {
            let (a, z) = (&o1[e * EVENT_WORDS..(e + 1) * EVENT_WORDS], &o2[e * EVENT_WORDS..(e + 1) * EVENT_WORDS]);
            // Same kind, offset, sum, all-zero flag, size and salt-0 sum; no place in buf.
            assert_eq!((a[0], a[1], a[2], a[3], a[5], a[6]), (z[0], z[1], z[2], z[3], z[5], z[6]));
            if a[0] & 0xff == EV_IO && a[3] == CODEC_NONE {
                assert_eq!(z[4], 0);
                assert!(buf[a[1] as usize..(a[1] + a[5]) as usize].iter().all(|&x| x == 0), "IO data left in buf");
            }
        }
    }
}
