//! The index of an indexed wdiff, built from its IOs in the order they were written (a later IO
//! hides whatever it overlaps of the earlier ones, which are cut around it) and encoded as the
//! format's index records: each visible piece split into power-of-two aligned extents, capped.
//!
//! The JavaScript writer keeps the same index in its interval structure; building it here cost a
//! conversion's JavaScript thread nothing but a store of eight numbers per IO, where the first run
//! of that structure's code (cold, as every conversion's is) cost 3–5 µs an IO, and the encoding of
//! 28,000 records at the close 10–20 ms more, with both cores otherwise busy walking the log.

use crate::numbers::{whole_number, MAX_SAFE};
use std::collections::BTreeMap;

/// Numbers per IO handed to [`IndexBuilder::add`].
pub const IO_NUMBERS: usize = 8;
/// Bytes of one encoded index record.
pub const RECORD_SIZE: usize = 48;
/// Record kinds as handed in: a normal IO (with a stored image), all zeros, a discard.
pub const KIND_NORMAL: u32 = 0;
pub const KIND_ALLZERO: u32 = 1;
pub const KIND_DISCARD: u32 = 2;
const FLAG_ALLZERO: u32 = 1 << 1;
const FLAG_DISCARD: u32 = 1 << 2;

/// A visible piece: up to `end`, from `off` LB into its IO's image, and what the record says of
/// that image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    end: u64,
    off: u64,
    /// Word 3 of the record: kind flags, and the codec of a normal IO's image in the second byte.
    flags: u32,
    normal: bool,
    data_offset: u64,
    data_size: u32,
    orig_blocks: u32,
    io_checksum: u32,
}

/// One IO as handed in (see [`IndexBuilder::add`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexIo {
    pub addr: u64,
    pub blocks: u64,
    pub kind: u32,
    pub cmpr: u32,
    pub data_offset: u64,
    pub data_size: u32,
    pub orig_blocks: u32,
    pub io_checksum: u32,
}

impl IndexIo {
    /// The IO in `n[0..8]`: address, LB, kind (0 normal, 1 all zeros, 2 discard), codec, image
    /// offset in the file, stored size, LB of the image, checksum of the stored image; every
    /// number whole and in its field's range, the image fields 0 for an IO without one. The
    /// error names the first number that is not.
    pub fn parse(n: &[f64]) -> Result<IndexIo, String> {
        let whole = |i: usize, max: u64, what: &str| whole_number(n[i], max, what);
        let u32max = u32::MAX as u64;
        let io = IndexIo {
            addr: whole(0, MAX_SAFE, "address")?,
            blocks: whole(1, MAX_SAFE, "length")?,
            kind: whole(2, 2, "kind")? as u32,
            cmpr: whole(3, 255, "codec")? as u32,
            data_offset: whole(4, MAX_SAFE, "image offset")?,
            data_size: whole(5, u32max, "stored size")? as u32,
            orig_blocks: whole(6, u32max, "image length")? as u32,
            io_checksum: whole(7, u32max, "checksum")? as u32,
        };
        if io.blocks == 0 { return Err("length 0".into()); }
        if io.addr + io.blocks > MAX_SAFE { return Err(format!("address {} + length {} is beyond 2^53 - 1", io.addr, io.blocks)); }
        if io.kind == KIND_NORMAL && io.blocks > io.orig_blocks as u64 {
            return Err(format!("length {} is larger than its image of {} LB", io.blocks, io.orig_blocks));
        }
        if io.kind != KIND_NORMAL && (io.cmpr | io.data_size | io.orig_blocks | io.io_checksum) as u64 + io.data_offset != 0 {
            return Err("an IO without data has image fields".into());
        }
        Ok(io)
    }
}

/// The visible pieces of the IOs added so far, by start address; once its records are being
/// taken ([`IndexBuilder::encode_next`]), where the next one starts.
#[derive(Default, Debug)]
pub struct IndexBuilder {
    map: BTreeMap<u64, Piece>,
    next: Option<u64>,
}

impl IndexBuilder {
    /// Visible pieces now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether its records have started to be taken (no IO may be added then).
    pub fn encoding(&self) -> bool {
        self.next.is_some()
    }

    /// Add `io`, newer than everything added before (and before any record is taken).
    pub fn add(&mut self, io: &IndexIo) {
        debug_assert!(self.next.is_none(), "an IO added to an index being encoded");
        let (a, e) = (io.addr, io.addr + io.blocks);
        // A piece that starts before `a` and reaches into the IO: its head stays, and its tail
        // when it reaches past the IO.
        if let Some((&s, &q)) = self.map.range(..a).next_back() {
            if q.end > a {
                self.map.insert(s, Piece { end: a, ..q });
                if q.end > e { self.map.insert(e, Piece { off: q.off + (e - s), ..q }); }
            }
        }
        // Pieces that start inside the IO: gone, but for a tail past its end.
        while let Some((&s, _)) = self.map.range(a..e).next() {
            let q = self.map.remove(&s).expect("the piece just found");
            if q.end > e { self.map.insert(e, Piece { off: q.off + (e - s), ..q }); }
        }
        let normal = io.kind == KIND_NORMAL;
        let flags = match io.kind { KIND_ALLZERO => FLAG_ALLZERO, KIND_DISCARD => FLAG_DISCARD, _ => io.cmpr << 8 };
        self.map.insert(a, Piece { end: e, off: 0, flags, normal, data_offset: io.data_offset, data_size: io.data_size, orig_blocks: io.orig_blocks, io_checksum: io.io_checksum });
    }

    /// The next index records, at most `max` (> 0) of them, in address order; none once all were
    /// taken. Each piece is split into the largest power-of-two aligned extents (at most 2^31 LB,
    /// and at most `cap` LB when `cap` is not 0: a power of two). The split of a piece depends only
    /// on where it starts and how long it is, so taking the records in runs gives the same ones.
    pub fn encode_next(&mut self, cap: u64, max: usize) -> Vec<u8> {
        let at = self.next.unwrap_or(0);
        let mut out = Vec::with_capacity(max.min(self.map.len() + 64) * RECORD_SIZE);
        // The piece the previous run stopped inside, else the first one from there.
        let first = self.map.range(..=at).next_back().filter(|(_, p)| p.end > at).map_or(at, |(&s, _)| s);
        for (&start, p) in self.map.range(first..) {
            let mut addr = start.max(at);
            let mut off = p.off + (addr - start);
            let mut left = p.end - addr;
            while left > 0 {
                if out.len() == max * RECORD_SIZE {
                    self.next = Some(addr);
                    return out;
                }
                let mut s = aligned_size(addr);
                if s > left { s = max_aligned_size(left); }
                if cap > 0 && s > cap { s = cap; }
                put_record(&mut out, addr, s, p, if p.normal { off } else { 0 });
                addr += s;
                off += s;
                left -= s;
            }
        }
        self.next = Some(u64::MAX);
        out
    }

    /// All the records (see [`IndexBuilder::encode_next`]).
    #[cfg(test)]
    pub fn encode(&mut self, cap: u64) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let run = self.encode_next(cap, 3);
            if run.is_empty() { return all; }
            all.extend_from_slice(&run);
        }
    }
}

/// The largest power of two that `addr` is a multiple of, at most 2^31 (2^31 for 0).
fn aligned_size(addr: u64) -> u64 {
    if addr == 0 { 1 << 31 } else { (addr & addr.wrapping_neg()).min(1 << 31) }
}

/// The largest power of two ≤ `n` (`n` > 0).
fn max_aligned_size(n: u64) -> u64 {
    1 << (63 - n.leading_zeros())
}

/// Append the record of `blocks` LB at `addr` of piece `p`, `off` LB into its image, with its
/// checksum (the twelve words of a record sum to zero).
fn put_record(out: &mut Vec<u8>, addr: u64, blocks: u64, p: &Piece, off: u64) {
    let w = [
        addr as u32, (addr >> 32) as u32, blocks as u32, p.flags,
        p.data_offset as u32, (p.data_offset >> 32) as u32, p.data_size, off as u32,
        p.orig_blocks, 0, p.io_checksum,
    ];
    let sum = w.iter().fold(0u32, |s, &x| s.wrapping_add(x));
    for x in w.iter().chain(std::iter::once(&sum.wrapping_neg())) { out.extend_from_slice(&x.to_le_bytes()); }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    fn io(addr: u64, blocks: u64, kind: u32, tag: u32) -> IndexIo {
        if kind == KIND_NORMAL {
            IndexIo { addr, blocks, kind, cmpr: 2, data_offset: 1000 + tag as u64 * 4096, data_size: 100 + tag, orig_blocks: blocks as u32, io_checksum: 0xdead_0000 ^ tag }
        } else {
            IndexIo { addr, blocks, kind, cmpr: 0, data_offset: 0, data_size: 0, orig_blocks: 0, io_checksum: 0 }
        }
    }

    fn words(rec: &[u8]) -> [u32; 12] {
        let mut w = [0u32; 12];
        for (i, x) in w.iter_mut().enumerate() { *x = u32::from_le_bytes(rec[4 * i..4 * i + 4].try_into().unwrap()); }
        w
    }

    /// What each LB of a small device shows after the IOs, one by one: (IO index, LB into its image).
    fn model(ios: &[IndexIo], size: usize) -> Vec<Option<(usize, u64)>> {
        let mut lb = vec![None; size];
        for (i, x) in ios.iter().enumerate() {
            for k in 0..x.blocks { lb[(x.addr + k) as usize] = Some((i, k)); }
        }
        lb
    }

    #[test]
    fn later_ios_hide_what_they_overlap_and_records_cover_what_is_visible() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..300 {
            let size = 64 + (rng(&mut seed) % 400) as usize;
            let n = 1 + (rng(&mut seed) % 40) as usize;
            let ios: Vec<IndexIo> = (0..n).map(|t| {
                let a = rng(&mut seed) % size as u64;
                let b = 1 + rng(&mut seed) % (size as u64 - a).min(80);
                io(a, b, (rng(&mut seed) % 5).saturating_sub(2) as u32, t as u32)
            }).collect();
            let mut ix = IndexBuilder::default();
            for x in &ios { ix.add(x); }
            let cap = [0u64, 8, 16, 2048][round % 4];
            let recs = ix.encode(cap);
            // Taken in runs of any length, the same records.
            let mut again = IndexBuilder::default();
            for x in &ios { again.add(x); }
            let mut runs = Vec::new();
            loop {
                let r = again.encode_next(cap, 1 + round % 7);
                if r.is_empty() { break; }
                runs.extend_from_slice(&r);
            }
            assert_eq!(runs, recs);
            let want = model(&ios, size);
            let mut seen = vec![None; size];
            let mut last_end = 0;
            for r in recs.chunks(RECORD_SIZE) {
                let w = words(r);
                assert_eq!(w.iter().fold(0u32, |s, &x| s.wrapping_add(x)), 0, "record checksum");
                let (addr, blocks) = (w[0] as u64 | (w[1] as u64) << 32, w[2] as u64);
                assert!(addr >= last_end, "records in address order");
                last_end = addr + blocks;
                // Aligned, a power of two, under the cap.
                assert!(blocks.is_power_of_two() && addr % blocks == 0 && (cap == 0 || blocks <= cap), "{addr}+{blocks}");
                let i = ios.iter().position(|x| if x.kind == KIND_NORMAL { x.data_offset == w[4] as u64 } else { false });
                for k in 0..blocks {
                    let at = (addr + k) as usize;
                    assert!(seen[at].is_none());
                    seen[at] = Some((w[3], i, w[7] as u64, k));
                }
            }
            for (at, v) in want.iter().enumerate() {
                match (v, seen[at]) {
                    (None, None) => {}
                    (Some((i, k)), Some((flags, j, off, in_rec))) => match ios[*i].kind {
                        KIND_NORMAL => assert_eq!((flags, j, off + in_rec), (2 << 8, Some(*i), *k), "LB {at}"),
                        KIND_ALLZERO => assert_eq!((flags, j, off), (FLAG_ALLZERO, None, 0), "LB {at}"),
                        _ => assert_eq!((flags, j, off), (FLAG_DISCARD, None, 0), "LB {at}"),
                    },
                    (a, b) => panic!("LB {at}: want {a:?}, got {b:?}"),
                }
            }
        }
    }

    #[test]
    fn records_carry_their_fields_and_ios_without_data_no_offset() {
        let mut ix = IndexBuilder::default();
        ix.add(&io(0, 12, KIND_NORMAL, 1));
        ix.add(&io(4, 2, KIND_DISCARD, 0));
        assert_eq!(ix.len(), 3);
        let recs = ix.encode(0);
        let w: Vec<[u32; 12]> = recs.chunks(RECORD_SIZE).map(words).collect();
        // [0, 4) of the first IO, the discard at 4, then [6, 8) and [8, 12) of the first IO.
        assert_eq!(w.len(), 4);
        assert_eq!(&w[0][..11], &[0, 0, 4, 2 << 8, 5096, 0, 101, 0, 12, 0, 0xdead_0001]);
        assert_eq!(&w[1][..11], &[4, 0, 2, FLAG_DISCARD, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&w[2][..11], &[6, 0, 2, 2 << 8, 5096, 0, 101, 6, 12, 0, 0xdead_0001]);
        assert_eq!(&w[3][..11], &[8, 0, 4, 2 << 8, 5096, 0, 101, 8, 12, 0, 0xdead_0001]);
        // Addresses and image offsets past 32 bits; a piece past 2^31 LB split at the largest size.
        let mut ix = IndexBuilder::default();
        let big = IndexIo { addr: 3 << 32, blocks: 3 << 30, kind: KIND_ALLZERO, cmpr: 0, data_offset: 0, data_size: 0, orig_blocks: 0, io_checksum: 0 };
        ix.add(&big);
        ix.add(&IndexIo { addr: 1 << 40, blocks: 8, kind: KIND_NORMAL, cmpr: 5, data_offset: 5 << 32, data_size: 7, orig_blocks: 8, io_checksum: 9 });
        let w: Vec<[u32; 12]> = ix.encode(0).chunks(RECORD_SIZE).map(words).collect();
        assert_eq!(w.iter().map(|r| (r[0], r[1], r[2])).collect::<Vec<_>>(), vec![(0, 3, 1 << 31), (1 << 31, 3, 1 << 30), (0, 256, 8)]);
        assert_eq!(&w[2][3..9], &[5 << 8, 0, 5, 7, 0, 8]);
    }

    #[test]
    fn bad_numbers_are_named() {
        let ok = [8.0, 8.0, 0.0, 2.0, 4096.0, 100.0, 8.0, 1.0];
        assert!(IndexIo::parse(&ok).is_ok());
        for (i, x, what) in [(0, -1.0, "address"), (1, 0.5, "length"), (2, 3.0, "kind"), (3, 256.0, "codec"), (5, 2f64.powi(32), "stored size"), (0, f64::NAN, "address"), (1, 0.0, "length 0"), (6, 4.0, "larger than its image")] {
            let mut n = ok;
            n[i] = x;
            let e = IndexIo::parse(&n).unwrap_err();
            assert!(e.contains(what), "{e}");
        }
        assert!(IndexIo::parse(&[2f64.powi(53) - 4.0, 8.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]).unwrap_err().contains("beyond"));
        assert!(IndexIo::parse(&[0.0, 8.0, 1.0, 0.0, 0.0, 0.0, 0.0, 7.0]).unwrap_err().contains("without data"));
    }
}
