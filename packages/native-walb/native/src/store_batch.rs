//! The stored form of many wdiff records in one trip to the thread pool: read their bytes from
//! the log files, compress each one (raw when that does not shrink it) and sum what will be
//! stored. A conversion hands its records over a batch at a time, so this work runs on another
//! core while the JS thread builds the packs of the previous batch; one request per record cost
//! more in queueing than in work.
//!
//! Everything here works on slices the caller checked; the binding in lib.rs checks the JS
//! arguments and keeps their memory alive until the job ends.

use crate::checksum::checksum;
use crate::snappy;
use std::fs::File;
use std::io::ErrorKind;
use std::mem::ManuallyDrop;
use std::os::unix::fs::FileExt;
use std::os::unix::io::FromRawFd;

/// Compression type of raw records.
pub const CODEC_NONE: u32 = 0;
/// Compression type of raw snappy blocks.
pub const CODEC_SNAPPY: u32 = 2;
/// `out` entry offset that means "stored raw: the bytes stay where they are in `src`".
pub const IN_SRC: u32 = u32::MAX;
/// u32 words per record in `out`: compression type, offset in `dst`, stored size, checksum.
pub const OUT_WORDS: usize = 4;

/// One record: `len` bytes at `at` of `src`, and the salt-0 checksum of those bytes when the
/// caller knows it already (a whole log IO's, derived from the log): a record stored raw then
/// costs no pass over its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Piece {
    pub at: usize,
    pub len: usize,
    pub raw_sum: Option<u32>,
}

/// One read: `len` bytes at `pos` of the open file `fd`, into `src[at ..]`.
#[derive(Clone, Copy, Debug)]
pub struct Read {
    pub fd: i32,
    pub pos: u64,
    pub len: usize,
    pub at: usize,
}

/// Why a batch failed.
#[derive(Debug, PartialEq)]
pub enum StoreError {
    /// A read failed with `errno`.
    Io { fd: i32, pos: u64, errno: i32 },
    /// The file ended `got` bytes into a read of `len` at `pos`.
    Short { fd: i32, pos: u64, got: usize, len: usize },
}

/// Read into `dst` from `fd` at `pos` until `dst` is full or the file ends; the bytes read.
pub fn read_at_most(fd: i32, pos: u64, dst: &mut [u8]) -> Result<usize, StoreError> {
    // Borrow the descriptor without taking ownership: dropping a File would close it.
    let f = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
    let mut got = 0;
    while got < dst.len() {
        match f.read_at(&mut dst[got..], pos + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(StoreError::Io { fd, pos: pos + got as u64, errno: e.raw_os_error().unwrap_or(0) }),
        }
    }
    Ok(got)
}

fn read_exact_at(r: &Read, dst: &mut [u8]) -> Result<(), StoreError> {
    let got = read_at_most(r.fd, r.pos, dst)?;
    if got < dst.len() { return Err(StoreError::Short { fd: r.fd, pos: r.pos, got, len: r.len }); }
    Ok(())
}

/// Do `reads` into `src`, then store each record `pieces[i]` of `src` with `codec`:
/// `out[4i ..]` gets (compression type, offset in `dst` or [`IN_SRC`], stored size, checksum with
/// salt 0 of the stored bytes). Compressed records are packed one after another from `dst[0]`; a
/// record is kept compressed only when that is shorter, so `dst` needs no more room than the
/// records' total size. The caller guarantees every range lies inside its slice and `out` has
/// `4·pieces.len()` words.
pub fn store_batch(reads: &[Read], src: &mut [u8], pieces: &[Piece], codec: u32, dst: &mut [u8], out: &mut [u32]) -> Result<(), StoreError> {
    for r in reads {
        read_exact_at(r, &mut src[r.at..r.at + r.len])?;
    }
    let mut cursor = 0usize;
    for (i, &Piece { at, len, raw_sum }) in pieces.iter().enumerate() {
        let raw = &src[at..at + len];
        let o = &mut out[i * OUT_WORDS..(i + 1) * OUT_WORDS];
        let kept = codec == CODEC_SNAPPY && snappy::compress_with_scratch(raw, true, |block| match block {
            Some(b) => {
                let n = b.len();
                dst[cursor..cursor + n].copy_from_slice(b);
                o.copy_from_slice(&[CODEC_SNAPPY, cursor as u32, n as u32, checksum(b, 0)]);
                cursor += n;
                true
            }
            None => false,
        });
        if !kept { o.copy_from_slice(&[CODEC_NONE, IN_SRC, len as u32, raw_sum.unwrap_or_else(|| checksum(raw, 0))]); }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::io::AsRawFd;

    fn rng(seed: &mut u64) -> u64 { *seed ^= *seed << 13; *seed ^= *seed >> 7; *seed ^= *seed << 17; *seed }

    #[test]
    fn reads_compresses_and_sums_each_record() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut content: Vec<u8> = (0..40_000).map(|_| rng(&mut seed) as u8).collect();
        content.extend(std::iter::repeat(9u8).take(24_000));
        let path = std::env::temp_dir().join(format!("walb-store-batch-{}", std::process::id()));
        File::create(&path).unwrap().write_all(&content).unwrap();
        let f = File::open(&path).unwrap();
        let fd = f.as_raw_fd();
        // Two reads: random bytes, then the run of nines, landing in the opposite order.
        let reads = [Read { fd, pos: 0, len: 40_000, at: 24_000 }, Read { fd, pos: 40_000, len: 24_000, at: 0 }];
        let mut src = vec![0u8; 64_000];
        let piece = |at, len| Piece { at, len, raw_sum: None };
        let pieces = [piece(24_000, 40_000), piece(0, 24_000), piece(100, 0)];
        let mut dst = vec![0u8; 64_000];
        let mut out = vec![0u32; 12];
        store_batch(&reads, &mut src, &pieces, CODEC_SNAPPY, &mut dst, &mut out).unwrap();
        assert_eq!(&src[24_000..], &content[..40_000]);
        assert_eq!(&out[0..4], &[CODEC_NONE, IN_SRC, 40_000, checksum(&content[..40_000], 0)]);
        assert_eq!(out[4], CODEC_SNAPPY);
        assert_eq!(out[5], 0);
        let n = out[6] as usize;
        assert!(n > 0 && n < 2000);
        let mut alone = Vec::new();
        assert!(snappy::compress_into(&content[40_000..], &mut alone, &mut Vec::new(), true));
        assert_eq!(&dst[..n], &alone[..]);
        assert_eq!(out[7], checksum(&alone, 0));
        assert_eq!(&out[8..12], &[CODEC_NONE, IN_SRC, 0, checksum(&[], 0)]);

        // codec none: every record raw, its sum over the raw bytes.
        store_batch(&[], &mut src, &pieces[..2], CODEC_NONE, &mut dst, &mut out[..8]).unwrap();
        assert_eq!(&out[4..8], &[CODEC_NONE, IN_SRC, 24_000, checksum(&content[40_000..], 0)]);

        // A sum the caller knows is taken as given for a record stored raw, not for a compressed one.
        let known = [Piece { raw_sum: Some(77), ..pieces[0] }, Piece { raw_sum: Some(78), ..pieces[1] }];
        store_batch(&[], &mut src, &known, CODEC_SNAPPY, &mut dst, &mut out[..8]).unwrap();
        assert_eq!(&out[0..4], &[CODEC_NONE, IN_SRC, 40_000, 77]);
        assert_eq!(out[7], checksum(&dst[..out[6] as usize], 0));

        // A read past the end is a short read, with where it stopped.
        let r = store_batch(&[Read { fd, pos: 60_000, len: 8_000, at: 0 }], &mut src, &[], CODEC_NONE, &mut dst, &mut []);
        assert_eq!(r, Err(StoreError::Short { fd, pos: 60_000, got: 4_000, len: 8_000 }));
        drop(f);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_bad_descriptor_is_an_io_error() {
        // A number far above any descriptor this process opened: EBADF.
        let mut src = vec![0u8; 16];
        let r = store_batch(&[Read { fd: 999_999, pos: 0, len: 16, at: 0 }], &mut src, &[], CODEC_NONE, &mut [], &mut []);
        assert!(matches!(r, Err(StoreError::Io { fd: 999_999, pos: 0, errno }) if errno == 9), "{r:?}");
    }
}
