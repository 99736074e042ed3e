//! Apply's writes in one trip to the thread pool: stretches of wdiff files (their records' stored
//! bytes, kept raw) read a slice at a time into a buffer that stays in the caches, each checked
//! against its checksum before any of its slice is written, and written to the target where
//! their IOs go, adjacent ones in one write; stretches of zeros written from a zero buffer.
//!
//! The JavaScript side decodes every header with the authoritative decoders and decides every
//! piece; here the bytes are only moved and summed.

use crate::checksum::checksum;
use crate::log_scan::Source;
use crate::scratch::with_scratch;
use crate::store_batch::StoreError;

/// One piece: `len` bytes at `src` of wdiff `file` (None: zeros) written at `dst` of the target
/// (None: only checked), the bytes' salt-0 checksum first checked against `sum` when given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub file: usize,
    pub src: Option<u64>,
    pub len: u64,
    pub dst: Option<u64>,
    pub sum: Option<u32>,
}

/// Where the pieces are written.
pub trait Target: Sync {
    /// Write all of `b` at `pos`; the errno of a failure.
    fn write_at(&self, pos: u64, b: &[u8]) -> Result<(), i32>;
    /// Make `len` bytes at `pos` read as zeros without writing them, where the target can; false
    /// when it cannot (they are then written).
    fn zero_range(&self, _pos: u64, _len: u64) -> bool {
        false
    }
}

/// An open file or block device.
pub struct FdTarget(pub i32);

impl FdTarget {
    fn file(&self) -> std::mem::ManuallyDrop<std::fs::File> {
        use std::os::unix::io::FromRawFd;
        // Borrow the descriptor: dropping a File would close it.
        std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(self.0) })
    }
}

extern "C" {
    fn fallocate(fd: i32, mode: i32, offset: i64, len: i64) -> i32;
}
const FALLOC_FL_KEEP_SIZE: i32 = 0x01;
const FALLOC_FL_ZERO_RANGE: i32 = 0x10;

impl Target for FdTarget {
    fn write_at(&self, pos: u64, b: &[u8]) -> Result<(), i32> {
        use std::os::unix::fs::FileExt;
        self.file().write_all_at(b, pos).map_err(|e| e.raw_os_error().unwrap_or(0))
    }

    /// `fallocate` with `FALLOC_FL_ZERO_RANGE`: a file system marks the blocks unwritten (ext4,
    /// xfs), a block device zeroes them its own way (`WRITE_ZEROES` where it has it). A file
    /// grows as a write would make it; a block device takes the range only with `KEEP_SIZE`.
    /// Any failure (a file system without it, tmpfs) leaves the zeros to be written.
    fn zero_range(&self, pos: u64, len: u64) -> bool {
        use std::os::unix::fs::FileTypeExt;
        let Ok(meta) = self.file().metadata() else { return false };
        let mode = if meta.file_type().is_block_device() { FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE } else { FALLOC_FL_ZERO_RANGE };
        // SAFETY: fallocate only reads its integer arguments; a bad descriptor is an error return.
        unsafe { fallocate(self.0, mode, pos as i64, len as i64) == 0 }
    }
}

/// Zeros from this many bytes on are asked of the target first ([`Target::zero_range`]): a
/// discard of a whole volume, written as zeros, would otherwise write all of it.
pub const ZERO_RANGE_MIN: u64 = 1 << 20;

/// Why the pieces stopped.
#[derive(Debug, PartialEq)]
pub enum CopyError {
    Read(StoreError),
    /// A write at `pos` failed with `errno`.
    Write { pos: u64, errno: i32 },
    /// Piece `index`'s bytes sum to `got`, not to its checksum (nothing of its slice was written).
    Sum { index: usize, got: u32 },
}

impl From<StoreError> for CopyError {
    fn from(e: StoreError) -> Self { CopyError::Read(e) }
}

/// Zeros to write from (the pages of a never-written static all map the kernel's zero page).
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

fn read_full<S: Source>(src: &S, off: u64, b: &mut [u8]) -> Result<(), CopyError> {
    let off = off as usize;
    let got = src.read_at(off, b)?;
    if got < b.len() { return Err(src.short(off, got, b.len()).into()); }
    Ok(())
}

fn write<T: Target>(dst: &T, pos: u64, b: &[u8]) -> Result<(), CopyError> {
    dst.write_at(pos, b).map_err(|errno| CopyError::Write { pos, errno })
}

/// Check and write `pieces` (each from `srcs[piece.file]`, which the caller checked exists) in
/// order; `done` counts the pieces finished (all of them, or those before the one that failed).
pub fn copy_pieces<S: Source, T: Target>(srcs: &[S], dst: &T, pieces: &[Piece], done: &mut usize) -> Result<(), CopyError> {
    with_scratch(|scratch| copy_with(srcs, dst, pieces, done, scratch))
}

fn copy_with<S: Source, T: Target>(srcs: &[S], dst: &T, pieces: &[Piece], done: &mut usize, scratch: &mut [u8]) -> Result<(), CopyError> {
    let step = scratch.len() as u64;
    let mut i = 0;
    while i < pieces.len() {
        let p = pieces[i];
        let Some(from) = p.src else {
            if let Some(at) = p.dst.filter(|&at| p.len < ZERO_RANGE_MIN || !dst.zero_range(at, p.len)) {
                let mut w = 0;
                while w < p.len {
                    let n = (p.len - w).min(ZEROS.len() as u64);
                    write(dst, at + w, &ZEROS[..n as usize])?;
                    w += n;
                }
            }
            i += 1;
            *done = i;
            continue;
        };
        let src = &srcs[p.file];
        if p.len > step {
            big_piece(src, dst, p, i, scratch)?;
            i += 1;
            *done = i;
            continue;
        }
        // The pieces of the same file whose bytes lie within one slice from here, read at once.
        let mut to = from + p.len;
        let mut j = i + 1;
        while j < pieces.len() && pieces[j].file == p.file {
            let Some(s) = pieces[j].src else { break };
            if s < from || s + pieces[j].len - from > step { break; }
            to = to.max(s + pieces[j].len);
            j += 1;
        }
        let slice = &mut scratch[..(to - from) as usize];
        read_full(src, from, slice)?;
        let at = |q: &Piece| (q.src.unwrap_or(0) - from) as usize;
        // Every piece of the slice checked before any of it is written.
        for (k, q) in pieces[i..j].iter().enumerate() {
            if let Some(want) = q.sum {
                let got = checksum(&slice[at(q)..at(q) + q.len as usize], 0);
                if got != want { return Err(CopyError::Sum { index: i + k, got }); }
            }
        }
        let mut k = i;
        while k < j {
            let Some(d) = pieces[k].dst else { k += 1; continue };
            // Pieces that follow on in both files go out in one write.
            let (s0, mut end) = (at(&pieces[k]), at(&pieces[k]) + pieces[k].len as usize);
            let mut dend = d + pieces[k].len;
            k += 1;
            while k < j && pieces[k].dst == Some(dend) && at(&pieces[k]) == end {
                end += pieces[k].len as usize;
                dend += pieces[k].len;
                k += 1;
            }
            write(dst, d, &slice[s0..end])?;
        }
        i = j;
        *done = i;
    }
    Ok(())
}

/// A piece larger than the slice buffer: read and summed through once, then read again and
/// written, so that nothing of it is written unless all of it sums right.
fn big_piece<S: Source, T: Target>(src: &S, dst: &T, p: Piece, index: usize, scratch: &mut [u8]) -> Result<(), CopyError> {
    let from = p.src.unwrap_or(0);
    let step = scratch.len() as u64;
    if let Some(want) = p.sum {
        let mut s = 0u32;
        let mut r = 0;
        while r < p.len {
            let n = (p.len - r).min(step);
            read_full(src, from + r, &mut scratch[..n as usize])?;
            // Whole words but for the last step: the partial sums add up.
            s = s.wrapping_add(checksum(&scratch[..n as usize], 0).wrapping_neg());
            r += n;
        }
        let got = s.wrapping_neg();
        if got != want { return Err(CopyError::Sum { index, got }); }
    }
    let Some(at) = p.dst else { return Ok(()) };
    let mut w = 0;
    while w < p.len {
        let n = (p.len - w).min(step);
        read_full(src, from + w, &mut scratch[..n as usize])?;
        write(dst, at + w, &scratch[..n as usize])?;
        w += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Mem(Mutex<Vec<u8>>, Option<u64>);

    /// A target that zeroes ranges itself, and counts the bytes it was asked to.
    struct Zeroing(Mem, Mutex<u64>);

    impl Target for Zeroing {
        fn write_at(&self, pos: u64, b: &[u8]) -> Result<(), i32> { self.0.write_at(pos, b) }
        fn zero_range(&self, pos: u64, len: u64) -> bool {
            *self.1.lock().unwrap() += len;
            let mut v = self.0 .0.lock().unwrap();
            let end = (pos + len) as usize;
            if v.len() < end { v.resize(end, 0xee); }
            v[pos as usize..end].fill(0);
            true
        }
    }

    #[test]
    fn large_zeros_are_asked_of_the_target_small_ones_written() {
        let src: &[u8] = &[];
        let ps = [Piece { file: 0, src: None, len: ZERO_RANGE_MIN, dst: Some(4096), sum: None }, Piece { file: 0, src: None, len: 8192, dst: Some(ZERO_RANGE_MIN + 4096), sum: None }];
        let t = Zeroing(Mem(Mutex::new(vec![0x55; 2 << 20]), None), Mutex::new(0));
        let mut done = 0;
        copy_pieces(&[src], &t, &ps, &mut done).unwrap();
        assert_eq!(*t.1.lock().unwrap(), ZERO_RANGE_MIN);
        let v = t.0 .0.lock().unwrap();
        assert!(v[..4096].iter().all(|&b| b == 0x55) && v[4096..(ZERO_RANGE_MIN + 4096 + 8192) as usize].iter().all(|&b| b == 0) && v[(ZERO_RANGE_MIN + 4096 + 8192) as usize..].iter().all(|&b| b == 0x55));
        // A target that cannot (the default) gets them written.
        let m = Mem(Mutex::new(vec![0x55; 2 << 20]), None);
        copy_pieces(&[src], &m, &ps, &mut done).unwrap();
        assert!(m.0.lock().unwrap()[4096..(ZERO_RANGE_MIN + 4096) as usize].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_file_zeroes_a_range_in_place_and_grows_as_a_write_would() {
        use std::os::unix::io::AsRawFd;
        let path = std::env::temp_dir().join(format!("walb-zero-range-{}", std::process::id()));
        std::fs::write(&path, vec![0x55u8; 3 << 20]).unwrap();
        let f = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let t = FdTarget(f.as_raw_fd());
        let src: &[u8] = &[];
        let mut done = 0;
        // Inside, then past the end (the file grows to the range's end, as with written zeros).
        let ps = [Piece { file: 0, src: None, len: 1 << 20, dst: Some(512), sum: None }, Piece { file: 0, src: None, len: 2 << 20, dst: Some(2 << 20), sum: None }];
        copy_pieces(&[src], &t, &ps, &mut done).unwrap();
        drop(f);
        let v = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(v.len(), 4 << 20);
        assert!(v[..512].iter().all(|&b| b == 0x55));
        assert!(v[512..512 + (1 << 20)].iter().all(|&b| b == 0));
        assert!(v[512 + (1 << 20)..2 << 20].iter().all(|&b| b == 0x55));
        assert!(v[2 << 20..].iter().all(|&b| b == 0));
    }

    impl Target for Mem {
        fn write_at(&self, pos: u64, b: &[u8]) -> Result<(), i32> {
            // A target that fails past a limit, as a full device would (ENOSPC).
            if self.1.is_some_and(|lim| pos + b.len() as u64 > lim) { return Err(28); }
            let mut v = self.0.lock().unwrap();
            let end = pos as usize + b.len();
            if v.len() < end { v.resize(end, 0xee); }
            v[pos as usize..end].copy_from_slice(b);
            Ok(())
        }
    }

    fn data(n: usize) -> Vec<u8> {
        let mut x = 0x2545_f491u32;
        (0..n).map(|_| { x ^= x << 13; x ^= x >> 17; x ^= x << 5; x as u8 }).collect()
    }

    fn piece(src: Option<u64>, len: u64, dst: Option<u64>, with_sum: Option<&[u8]>) -> Piece {
        Piece { file: 0, src, len, dst, sum: with_sum.map(|b| checksum(&b[src.unwrap() as usize..(src.unwrap() + len) as usize], 0)) }
    }

    #[test]
    fn pieces_land_where_they_go_adjacent_or_not() {
        let src = data(12 << 20);
        let s: &[u8] = &src;
        let ps = vec![
            piece(Some(512), 4096, Some(0), Some(s)),
            // Follows on in both: one write with the one before.
            piece(Some(4608), 512, Some(4096), Some(s)),
            // Follows on in the source only.
            piece(Some(5120), 512, Some(50_000), Some(s)),
            piece(Some(9000), 1000, Some(100_000), None),
            piece(None, 3 << 20, Some(200_000), None),
            // Only checked.
            piece(Some(20_000), 70_000, None, Some(s)),
            // Larger than a slice.
            piece(Some(1 << 20), (5 << 20) + 4, Some(4 << 20), Some(s)),
            // Out of order in the source.
            piece(Some(0), 512, Some(5000), Some(s)),
        ];
        let t = Mem(Mutex::new(vec![0xee; 12 << 20]), None);
        let mut done = 0;
        copy_pieces(&[s], &t, &ps, &mut done).unwrap();
        assert_eq!(done, ps.len());
        let mut want = vec![0xeeu8; 12 << 20];
        for p in &ps {
            let Some(d) = p.dst else { continue };
            let d = d as usize;
            match p.src {
                Some(o) => want[d..d + p.len as usize].copy_from_slice(&src[o as usize..(o + p.len) as usize]),
                None => want[d..d + p.len as usize].fill(0),
            }
        }
        assert!(*t.0.lock().unwrap() == want);
    }

    #[test]
    fn pieces_of_several_files_are_read_from_their_own() {
        let (a, b) = (data(1 << 20), data(3 << 20));
        let (sa, sb): (&[u8], &[u8]) = (&a, &b[1 << 20..]);
        // Same offsets in both files, interleaved: a piece is never read from the other one.
        let ps = [(0usize, 0u64, 0u64), (1, 0, 4096), (0, 4096, 8192), (1, 4096, 12288), (1, 8192, 16384), (0, 8192, 20480)]
            .map(|(file, src, dst)| Piece { file, src: Some(src), len: 4096, dst: Some(dst), sum: Some(checksum(&[sa, sb][file][src as usize..src as usize + 4096], 0)) });
        let t = Mem(Mutex::new(Vec::new()), None);
        let mut done = 0;
        copy_pieces(&[sa, sb], &t, &ps, &mut done).unwrap();
        let v = t.0.lock().unwrap();
        for p in &ps {
            let (s, d) = (p.src.unwrap() as usize, p.dst.unwrap() as usize);
            assert!(v[d..d + 4096] == [sa, sb][p.file][s..s + 4096], "{p:?}");
        }
    }

    #[test]
    fn a_bad_sum_stops_before_its_slice_is_written() {
        let src = data(6 << 20);
        let s: &[u8] = &src;
        for bad in [1usize, 3] {
            let mut ps = vec![
                piece(Some(0), 4096, Some(0), Some(s)),
                piece(Some(4096), 4096, Some(8192), Some(s)),
                piece(Some(3 << 20), 4096, Some(16384), Some(s)),
                piece(Some(4096), 3 << 20, Some(1 << 20), Some(s)),
            ];
            ps[bad].sum = Some(ps[bad].sum.unwrap() ^ 1);
            let t = Mem(Mutex::new(Vec::new()), None);
            let mut done = 0;
            let e = copy_pieces(&[s], &t, &ps, &mut done).unwrap_err();
            assert!(matches!(e, CopyError::Sum { index, got } if index == bad && got == checksum(&src[ps[bad].src.unwrap() as usize..(ps[bad].src.unwrap() + ps[bad].len) as usize], 0)), "{e:?}");
            let v = t.0.lock().unwrap();
            if bad == 1 {
                // Pieces 0 and 1 share a slice: nothing was written.
                assert!(v.is_empty() && done == 0);
            } else {
                // The big piece is summed whole first: only the pieces before it were written.
                assert_eq!(done, 3);
                assert!(v.len() == 16384 + 4096);
            }
        }
    }

    #[test]
    fn short_sources_and_failed_writes_are_errors() {
        let src = data(1 << 20);
        let s: &[u8] = &src;
        let mut done = 0;
        let t = Mem(Mutex::new(Vec::new()), None);
        assert!(matches!(copy_pieces(&[s], &t, &[piece(Some((1 << 20) - 100), 4096, Some(0), None)], &mut done), Err(CopyError::Read(StoreError::Short { .. }))));
        let t = Mem(Mutex::new(Vec::new()), Some(10_000));
        let e = copy_pieces(&[s], &t, &[piece(Some(0), 4096, Some(0), None), piece(None, 8192, Some(8192), None)], &mut done).unwrap_err();
        assert_eq!(e, CopyError::Write { pos: 8192, errno: 28 });
        assert_eq!(done, 1);
    }
}
