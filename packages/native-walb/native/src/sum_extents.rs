//! Checksums of many stretches of one file in one trip to the thread pool: the stored data of a
//! wdiff's records or images, so that apply's check of its inputs sums them on both cores.
//!
//! A file's extents are summed where they lie in the page cache, through mappings of 8 MiB
//! windows ([`sum_file_extents`]): no copy into a buffer first. The 596 MB diff of small
//! IOs, cached, was summed from C in about 21 ms that way against 48 ms by reads (two threads
//! each); by the addon, a call per 64 MiB as apply makes them, 34–43 against 59–75 ms. A window
//! that cannot be mapped, or whose mapping faulted (the file cut meanwhile, a failing disk), is
//! read instead, a slice at a time into a buffer that stays in the caches, which reports the
//! short read or the error where it is.
//!
//! Only sums: the caller decodes every header with the authoritative decoders and compares each
//! sum with its record, which is where the typed errors come from.

use crate::checksum::checksum;
use crate::log_scan::{FileAt, Source};
use crate::mapped::MappedStretch;
use crate::scratch::with_scratch;
use crate::store_batch::StoreError;

/// `len` bytes at `off` of the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub off: usize,
    pub len: usize,
}

/// Bytes below which one thread does all the work.
const SPLIT_MIN: usize = 1 << 20;

/// Put the salt-0 WalB checksum of each extent of `src` in `sums` (as long as `ext`). Extents in
/// ascending order are read together, a slice at a time; any order is summed right. Split in two
/// at half the bytes, the later half on the helper thread when there is one.
#[cfg_attr(not(test), allow(dead_code))]
pub fn sum_extents<S: Source>(src: &S, ext: &[Extent], sums: &mut [u32]) -> Result<(), StoreError> {
    in_two(ext, sums, &|e, s| with_scratch(|scratch| sum_slices(src, e, s, scratch)))
}

/// [`sum_extents`] of the open file `fd`, through mappings of the stretches the extents lie in,
/// a window at a time; the extents of a window that cannot be mapped, or whose mapping faulted,
/// are read.
pub fn sum_file_extents(fd: i32, ext: &[Extent], sums: &mut [u32]) -> Result<(), StoreError> {
    let file = FileAt { fd, pos: 0 };
    let flen = file.len()?;
    in_two(ext, sums, &|e, s| sum_windows(&file, flen, e, s))
}

/// Sums some extents into their words.
type SumPart<'a> = dyn Fn(&[Extent], &mut [u32]) -> Result<(), StoreError> + Sync + 'a;

/// Run `part` on the extents split in two at half their bytes, the later half on the helper.
fn in_two(ext: &[Extent], sums: &mut [u32], part: &SumPart) -> Result<(), StoreError> {
    let total = ext.iter().fold(0usize, |n, e| n.saturating_add(e.len));
    if total < SPLIT_MIN || ext.len() < 2 {
        return part(ext, sums);
    }
    let mut k = 0;
    let mut acc = 0;
    while k < ext.len() - 1 && acc + ext[k].len <= total / 2 {
        acc += ext[k].len;
        k += 1;
    }
    let k = k.max(1);
    let (ea, eb) = ext.split_at(k);
    let (sa, sb) = sums.split_at_mut(k);
    let (a, b) = crate::helper::beside(move || part(eb, sb), || part(ea, sa));
    a.and(b)
}

/// Bytes mapped at once by [`sum_windows`], a larger extent a window at a time: small enough that
/// the mapped pages add little to the process's resident size, whatever an extent's length.
const WINDOW: usize = 8 << 20;

/// Run `f` on the `len` (> 0) bytes of `file` (`flen` bytes long) at `from`, mapped; false when
/// they could not be mapped (past the file's end, no mapping to be had) or reading them faulted
/// (then what `f` computed is worthless).
fn on_mapped(file: &FileAt, flen: usize, from: usize, len: usize, f: impl FnOnce(&[u8])) -> bool {
    match from.checked_add(len) {
        Some(to) if to <= flen => {}
        _ => return false,
    }
    MappedStretch::new(file.fd, from as u64, len).is_some_and(|m| {
        f(m.bytes());
        !m.faulted()
    })
}

/// Sum `ext` of `file` (`flen` bytes long) where they lie, the extents within a window from the
/// first one at a time; by reads where that cannot be done.
fn sum_windows(file: &FileAt, flen: usize, ext: &[Extent], sums: &mut [u32]) -> Result<(), StoreError> {
    let mut i = 0;
    while i < ext.len() {
        let from = ext[i].off;
        let mut j = i + 1;
        let done = if ext[i].len > WINDOW {
            // A window at a time: the windows are whole words, so their sums add up (as in
            // `sum_slices`).
            let (e, mut s, mut at, mut ok) = (ext[i], 0u32, 0, true);
            while ok && at < e.len {
                let n = (e.len - at).min(WINDOW);
                ok = on_mapped(file, flen, e.off + at, n, |b| s = s.wrapping_add(checksum(b, 0).wrapping_neg()));
                at += n;
            }
            if ok { sums[i] = s.wrapping_neg(); }
            ok
        } else {
            let mut to = from + ext[i].len;
            while j < ext.len() && ext[j].off >= from && ext[j].off.saturating_add(ext[j].len) - from <= WINDOW {
                to = to.max(ext[j].off + ext[j].len);
                j += 1;
            }
            // Nothing to map when all are empty (their sums are the reads' to give).
            to > from && on_mapped(file, flen, from, to - from, |b| {
                for (e, s) in ext[i..j].iter().zip(sums[i..j].iter_mut()) {
                    *s = checksum(&b[e.off - from..e.off - from + e.len], 0);
                }
            })
        };
        if !done { with_scratch(|scratch| sum_slices(file, &ext[i..j], &mut sums[i..j], scratch))?; }
        i = j;
    }
    Ok(())
}

fn read_full<S: Source>(src: &S, off: usize, b: &mut [u8]) -> Result<(), StoreError> {
    let got = src.read_at(off, b)?;
    // The file ends before the extent does.
    if got < b.len() { return Err(src.short(off, got, b.len())); }
    Ok(())
}

fn sum_slices<S: Source>(src: &S, ext: &[Extent], sums: &mut [u32], scratch: &mut [u8]) -> Result<(), StoreError> {
    let step = scratch.len();
    let mut i = 0;
    while i < ext.len() {
        let from = ext[i].off;
        if ext[i].len > step {
            // One large extent, a step at a time: the steps are whole words, so their sums add up
            // (the walb checksum pads only the last partial word).
            let mut s = 0u32;
            let mut done = 0;
            while done < ext[i].len {
                let n = (ext[i].len - done).min(step);
                read_full(src, from + done, &mut scratch[..n])?;
                s = s.wrapping_add(checksum(&scratch[..n], 0).wrapping_neg());
                done += n;
            }
            sums[i] = s.wrapping_neg();
            i += 1;
            continue;
        }
        // The extents that lie within one step from here, read with what lies between them.
        let mut to = from + ext[i].len;
        let mut j = i + 1;
        while j < ext.len() && ext[j].off >= from && ext[j].off + ext[j].len - from <= step {
            to = to.max(ext[j].off + ext[j].len);
            j += 1;
        }
        read_full(src, from, &mut scratch[..to - from])?;
        for (e, s) in ext[i..j].iter().zip(sums[i..j].iter_mut()) {
            *s = checksum(&scratch[e.off - from..e.off - from + e.len], 0);
        }
        i = j;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    fn data(n: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9u32;
        (0..n).map(|_| { x ^= x << 13; x ^= x >> 17; x ^= x << 5; x as u8 }).collect()
    }

    fn expect(src: &[u8], ext: &[Extent]) -> Vec<u32> {
        ext.iter().map(|e| checksum(&src[e.off..e.off + e.len], 0)).collect()
    }

    /// Ascending with gaps, odd sizes (compressed records), empty ones, one larger than a read
    /// step and than a mapped window (at an odd offset), and some out of order at the end.
    fn layout() -> Vec<Extent> {
        let mut ext = Vec::new();
        let mut off = 17;
        for k in 0..700 {
            let len = [4096, 511, 3, 0, 65536, 12345][k % 6];
            ext.push(Extent { off, len });
            off += len + [0, 4096, 1][k % 3];
        }
        ext.push(Extent { off, len: (2 << 20) + 7 });
        ext.push(Extent { off: off + (3 << 20) + 1, len: WINDOW * 2 + 5 });
        ext.push(Extent { off: 5, len: 100 });
        ext.push(Extent { off: 3 << 20, len: 4 << 20 });
        ext.push(Extent { off: 0, len: 0 });
        ext
    }

    fn temp_file(bytes: &[u8], tag: &str) -> (std::path::PathBuf, std::fs::File) {
        let p = std::env::temp_dir().join(format!("walb-sum-extents-{}-{tag}", std::process::id()));
        let mut f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&p).unwrap();
        f.write_all(bytes).unwrap();
        (p, f)
    }

    #[test]
    fn sums_match_one_pass_in_any_layout() {
        let src = data(40 << 20);
        let s: &[u8] = &src;
        let ext = layout();
        let mut sums = vec![0u32; ext.len()];
        sum_extents(&s, &ext, &mut sums).unwrap();
        assert_eq!(sums, expect(s, &ext));
        // Too little for the helper: the same on one thread.
        let few = &ext[..5];
        let mut sums = vec![0u32; few.len()];
        sum_extents(&s, few, &mut sums).unwrap();
        assert_eq!(sums, expect(s, few));
    }

    #[test]
    fn a_file_is_summed_through_its_mapping_as_by_reads() {
        let src = data(40 << 20);
        let (p, f) = temp_file(&src, "layout");
        let ext = layout();
        let mut sums = vec![0u32; ext.len()];
        sum_file_extents(f.as_raw_fd(), &ext, &mut sums).unwrap();
        assert_eq!(sums, expect(&src, &ext));
        let few = &ext[..5];
        let mut sums = vec![0u32; few.len()];
        sum_file_extents(f.as_raw_fd(), few, &mut sums).unwrap();
        assert_eq!(sums, expect(&src, few));
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn an_extent_past_the_end_is_a_short_read() {
        let src = data(3 << 20);
        let s: &[u8] = &src;
        let (p, f) = temp_file(&src, "short");
        let cases = [
            vec![Extent { off: 0, len: 1 << 20 }, Extent { off: (3 << 20) - 10, len: 20 }],
            vec![Extent { off: 1 << 20, len: 3 << 20 }],
            // Larger than a window: mapped a window at a time until the file ends.
            vec![Extent { off: 0, len: WINDOW + 1 }],
        ];
        for ext in cases {
            let mut sums = vec![0u32; ext.len()];
            assert!(matches!(sum_extents(&s, &ext, &mut sums), Err(StoreError::Short { .. })), "{ext:?}");
            let mut sums = vec![0u32; ext.len()];
            assert!(matches!(sum_file_extents(f.as_raw_fd(), &ext, &mut sums), Err(StoreError::Short { .. })), "file: {ext:?}");
        }
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn a_mapping_that_faults_is_worthless() {
        let src = data(1 << 20);
        let (p, f) = temp_file(&src, "cut");
        let flen = src.len();
        let file = FileAt { fd: f.as_raw_fd(), pos: 0 };
        let mut sum = 0;
        assert!(on_mapped(&file, flen, 0, flen, |b| sum = checksum(b, 0)));
        assert_eq!(sum, checksum(&src, 0));
        // Cut while mapped: its pages past the new end fault (read as zeros), and the sum is let go.
        assert!(!on_mapped(&file, flen, 0, flen, |b| {
            f.set_len(4096).unwrap();
            sum = checksum(b, 0);
        }));
        // Past the end it is not even mapped.
        assert!(!on_mapped(&file, 4096, 0, 8192, |_| unreachable!()));
        // The sums then come from reads, which find the file short.
        let mut sums = [0u32; 1];
        assert!(matches!(sum_file_extents(f.as_raw_fd(), &[Extent { off: 0, len: flen }], &mut sums), Err(StoreError::Short { .. })));
        std::fs::remove_file(p).unwrap();
    }
}
