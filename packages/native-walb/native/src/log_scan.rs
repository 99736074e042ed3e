//! One stretch of a wlog file read and stored in one trip to the thread pool, for the wlog → wdiff
//! conversion: read it, walk its logpacks, and for each IO with data sum it (with the log's salt),
//! tell whether it is all zeros, and store it (compressed with snappy when that is shorter).
//!
//! This walk only finds the bytes. It checks nothing a logpack header promises beyond what it
//! needs to stay inside the buffer: the caller decodes every header the walk passed, with the
//! authoritative decoder, compares every sum with its record and throws the typed errors. So the
//! walk stops, and leaves the rest to the caller, wherever a header is not a plain logpack with
//! records (the end marker, an empty pack, a corrupt block) or the next piece does not fit.

use crate::checksum::checksum;
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
    /// Bytes read into the buffer.
    pub read: usize,
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

/// Read `buf.len()` bytes of `fd` at `pos` (fewer at the end of the file), then walk them. The
/// walk starts inside the pack whose header is `hdr` at record `*next_rec`, or at a header when
/// `*next_rec` is that pack's record count (or `hdr` holds no pack); `hdr` gets each header
/// passed. Events go to `out` ([`EVENT_WORDS`] words each): `[EV_PACK, off, 0…]` for a header,
/// `[EV_IO | rec << 8, off, sum with salt, cmpr (0, 2 or ALL_ZERO), offset in dst or IN_SRC,
/// stored size, salt-0 sum of the stored bytes, 0]` for each record with data that is not padding.
/// Compressed records are packed into `dst` from its start.
#[allow(clippy::too_many_arguments)]
pub fn scan_chunk(fd: i32, pos: u64, buf: &mut [u8], hdr: &mut [u8], next_rec: &mut u32, salt: u32, codec: u32, dst: &mut [u8], out: &mut [u32]) -> Result<Walked, StoreError> {
    // Read a slice at a time and walk it while it is still in the CPU's caches; a large buffer
    // then costs no more trips to the thread pool than it saves.
    let mut have = 0usize;
    let mut w = Walker::default();
    loop {
        let want = READ_STEP.min(buf.len() - have);
        let n = read_at_most(fd, pos + have as u64, &mut buf[have..have + want])?;
        have += n;
        let r = walk(&buf[..have], hdr, next_rec, salt, codec, dst, out, have, &mut w);
        if r.stop != Stop::NeedMore || n < want || have == buf.len() { return Ok(r); }
    }
}

/// Bytes read at a time.
const READ_STEP: usize = 2 << 20;

fn finish(at: &mut Walker, now: Walker, stop: Stop, rec: u32, need: usize, read: usize) -> Walked {
    *at = now;
    Walked { events: now.events, stop, consumed: now.off, next_rec: rec, need, read }
}

/// Where a walk is, so that it can go on once more bytes are read.
#[derive(Clone, Copy, Default)]
struct Walker {
    off: usize,
    events: usize,
    cursor: usize,
}

#[allow(clippy::too_many_arguments)]
fn walk(buf: &[u8], hdr: &mut [u8], next_rec: &mut u32, salt: u32, codec: u32, dst: &mut [u8], out: &mut [u32], read: usize, at: &mut Walker) -> Walked {
    let pbs = hdr.len();
    let lb_per_pb = pbs / 512;
    let Walker { mut off, mut events, mut cursor } = *at;
    let max_events = out.len() / EVENT_WORDS;

    let mut n_recs = records_of(hdr, pbs).unwrap_or(0);
    if *next_rec > n_recs { *next_rec = n_recs; }
    loop {
        if events == max_events { return finish(at, Walker { off, events, cursor }, Stop::Full, *next_rec, 0, read); }
        if *next_rec >= n_recs {
            if off + pbs > buf.len() { return finish(at, Walker { off, events, cursor }, Stop::NeedMore, *next_rec, pbs, read); }
            let h = &buf[off..off + pbs];
            let Some(n) = records_of(h, pbs) else { return finish(at, Walker { off, events, cursor }, Stop::Header, *next_rec, 0, read) };
            hdr.copy_from_slice(h);
            n_recs = n;
            *next_rec = 0;
            out[events * EVENT_WORDS..(events + 1) * EVENT_WORDS].copy_from_slice(&[EV_PACK, off as u32, 0, 0, 0, 0, 0, 0]);
            events += 1;
            off += pbs;
            continue;
        }
        let r = LOGPACK_HEADER_SIZE + *next_rec as usize * LOG_RECORD_SIZE;
        let flags = u32_at(hdr, r + 4);
        let io_lb = u32_at(hdr, r + 16) as usize;
        if flags & FLAG_DISCARD != 0 { *next_rec += 1; continue; }
        let bytes = io_lb.div_ceil(lb_per_pb) * pbs;
        if off + bytes > buf.len() { return finish(at, Walker { off, events, cursor }, Stop::NeedMore, *next_rec, bytes, read); }
        if flags & FLAG_PADDING != 0 { off += bytes; *next_rec += 1; continue; }
        let len = io_lb * 512;
        if codec == CODEC_SNAPPY && cursor + len > dst.len() { return finish(at, Walker { off, events, cursor }, Stop::Full, *next_rec, 0, read); }
        let data = &buf[off..off + len];
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
                    (CODEC_SNAPPY, at as u32, n as u32, checksum(&dst[at..at + n], 0))
                }
                // Raw: its salt-0 sum follows from the salted one.
                None => (CODEC_NONE, IN_SRC, len as u32, sum.wrapping_add(salt)),
            }
        };
        out[events * EVENT_WORDS..(events + 1) * EVENT_WORDS].copy_from_slice(&[EV_IO | (*next_rec << 8), off as u32, sum, cmpr, at, size, stored_sum, 0]);
        events += 1;
        off += bytes;
        *next_rec += 1;
    }
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

    #[test]
    fn walks_packs_and_stores_each_io() {
        let (b, ios) = stretch();
        let mut hdr = vec![0u8; PBS];
        let mut rec = 0u32;
        let mut dst = vec![0u8; 64 << 10];
        let mut out = vec![0u32; 64];
        let w = walk(&b, &mut hdr, &mut rec, 7, CODEC_SNAPPY, &mut dst, &mut out, b.len(), &mut Walker::default());
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
        let w = walk(&b[..5 * PBS], &mut hdr, &mut rec, 0, CODEC_NONE, &mut dst, &mut out, 5 * PBS, &mut Walker::default());
        assert_eq!((w.stop, w.consumed, w.next_rec, w.need, w.events), (Stop::NeedMore, 4 * PBS, 4, 2 * PBS, 3));
        // Resumed from there with the pack's header: the text IO, then the second pack.
        let w = walk(&b[4 * PBS..], &mut hdr, &mut rec, 0, CODEC_NONE, &mut dst, &mut out, 0, &mut Walker::default());
        assert_eq!((w.stop, w.events, w.consumed), (Stop::Header, 3, 4 * PBS));
        assert_eq!(out[..2], [EV_IO | 4 << 8, 0]);
        assert_eq!(out[3], CODEC_NONE);
        // Room for two events only, then for none in dst.
        let (mut hdr, mut rec) = (vec![0u8; PBS], 0u32);
        let w = walk(&b, &mut hdr, &mut rec, 0, CODEC_SNAPPY, &mut dst, &mut out[..16], 0, &mut Walker::default());
        assert_eq!((w.stop, w.events, w.consumed, w.next_rec), (Stop::Full, 2, 2 * PBS, 1));
        let w = walk(&b[2 * PBS..], &mut hdr, &mut rec, 0, CODEC_SNAPPY, &mut dst[..100], &mut out, 0, &mut Walker::default());
        assert_eq!((w.stop, w.events, w.consumed, w.next_rec), (Stop::Full, 0, 0, 1));
        // A header that is not a logpack with records is handed over at once.
        let (mut hdr, mut rec) = (vec![0u8; PBS], 0u32);
        let w = walk(&vec![0u8; PBS], &mut hdr, &mut rec, 0, CODEC_NONE, &mut dst, &mut out, PBS, &mut Walker::default());
        assert_eq!((w.stop, w.events, w.consumed), (Stop::Header, 0, 0));
        let mut many = header(&[(1, 1)]);
        many[16..18].copy_from_slice(&200u16.to_le_bytes());
        let w = walk(&many, &mut hdr, &mut rec, 0, CODEC_NONE, &mut dst, &mut out, PBS, &mut Walker::default());
        assert_eq!((w.stop, w.events), (Stop::Header, 0));
    }
}
