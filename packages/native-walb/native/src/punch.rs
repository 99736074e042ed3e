//! Discarded ranges given back: holes punched in an image file (the size kept), or the ranges of a
//! block device discarded. One system call a range on the descriptor apply already holds, where
//! an external `fallocate` or `blkdiscard` process a range cost milliseconds each (5,000 discards of
//! one apply took 23 s), and where `blkdiscard` needed `-f` to get past apply's own exclusive open.

extern "C" {
    fn fallocate(fd: i32, mode: i32, offset: i64, len: i64) -> i32;
    fn ioctl(fd: i32, request: u64, ...) -> i32;
}

const FALLOC_FL_KEEP_SIZE: i32 = 0x01;
const FALLOC_FL_PUNCH_HOLE: i32 = 0x02;
/// `_IO(0x12, 119)`: its argument points at two u64, the start and the length in bytes.
const BLKDISCARD: u64 = (0x12 << 8) | 119;
const EINTR: i32 = 4;

/// The range the kernel refused, and its errno; the ranges before it are done.
#[derive(Debug, PartialEq)]
pub struct PunchError {
    pub index: usize,
    pub offset: u64,
    pub length: u64,
    pub errno: i32,
}

/// Punch each (offset, length) of `ranges` out of `fd`, in order, stopping at the first the kernel
/// refuses: with `block`, a `BLKDISCARD` of the block device; else a hole in the file, its size
/// kept. An empty range is passed over (to `fallocate` a length of 0 is an error, not nothing).
/// Offsets and lengths must be below 2^63 (the caller's numbers are below 2^53).
pub fn punch_holes(fd: i32, ranges: &[(u64, u64)], block: bool) -> Result<(), PunchError> {
    for (index, &(offset, length)) in ranges.iter().enumerate() {
        if length == 0 { continue; }
        loop {
            // SAFETY: integer arguments, and for the ioctl a pointer to two u64 on this frame,
            // alive for the call; a bad descriptor is an error return.
            let r = unsafe {
                if block {
                    let span = [offset, length];
                    ioctl(fd, BLKDISCARD, span.as_ptr())
                } else {
                    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset as i64, length as i64)
                }
            };
            if r == 0 { break; }
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            // A signal that interrupts a long punch leaves nothing half done that a retry harms.
            if errno != EINTR { return Err(PunchError { index, offset, length, errno }); }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::os::unix::fs::{FileExt, MetadataExt};
    use std::os::unix::io::AsRawFd;

    const ENOTTY: i32 = 25;
    const EBADF: i32 = 9;

    #[test]
    fn punched_ranges_read_as_zeros_are_freed_and_the_size_stays() {
        let path = std::env::temp_dir().join(format!("walbjs-punch-{}", std::process::id()));
        let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        f.write_all_at(&vec![0x5au8; 4 << 20], 0).unwrap();
        f.sync_all().unwrap();
        let fd = f.as_raw_fd();
        let before = f.metadata().unwrap();
        // Two whole MiB, an empty range, and 512 bytes inside a block (zeroed, nothing freed).
        assert_eq!(punch_holes(fd, &[(1 << 20, 1 << 20), (0, 0), (3 << 20, 512)], false), Ok(()));
        let mut got = vec![0u8; 4 << 20];
        f.read_exact_at(&mut got, 0).unwrap();
        let mut want = vec![0x5au8; 4 << 20];
        want[1 << 20..2 << 20].fill(0);
        want[3 << 20..(3 << 20) + 512].fill(0);
        assert!(got == want, "only the punched bytes read as zeros");
        let after = f.metadata().unwrap();
        assert_eq!(after.len(), 4 << 20, "the size is kept");
        assert!(after.blocks() + 2048 <= before.blocks(), "the whole MiB is freed: {} then {} blocks", before.blocks(), after.blocks());
        assert_eq!(crate::holes::seek_data(fd, 1 << 20), Some(2 << 20));

        // Not a block device: the discard is refused, naming the first range that is not empty.
        assert_eq!(punch_holes(fd, &[(0, 0), (4096, 4096)], true), Err(PunchError { index: 1, offset: 4096, length: 4096, errno: ENOTTY }));
        // A descriptor open only to read: refused, nothing punched.
        let ro = OpenOptions::new().read(true).open(&path).unwrap();
        let e = punch_holes(ro.as_raw_fd(), &[(0, 4096)], false).unwrap_err();
        assert_eq!((e.index, e.errno), (0, EBADF));
        f.read_exact_at(&mut got[..4096], 0).unwrap();
        assert!(got[..4096].iter().all(|&b| b == 0x5a));
        drop((f, ro));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(punch_holes(-1, &[(0, 4096)], false).map_err(|e| e.errno), Err(EBADF));
    }
}
