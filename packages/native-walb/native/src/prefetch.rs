//! Reads of a file asked of the kernel ahead of writes that cover pages of it in part (apply's
//! target: see @walbjs/diff's target-prefetch.ts). Each batch is first sampled for pages already
//! in the page cache: when every sampled page is, the batch is left alone, as asking for cached
//! pages costs a system call each for nothing (an apply to an image still in the cache).

extern "C" {
    fn posix_fadvise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
    fn preadv2(fd: i32, iov: *const IoVec, iovcnt: i32, offset: i64, flags: i32) -> isize;
}

#[repr(C)]
struct IoVec {
    base: *mut u8,
    len: usize,
}

const POSIX_FADV_WILLNEED: i32 = 3;
const RWF_NOWAIT: i32 = 0x08;
/// One range in this many is sampled.
const SAMPLE_EVERY: usize = 32;

/// Whether the byte at `off` of `fd` is in the page cache: a read that must not wait for the
/// disk gets it. Anything else (not cached, a hole, past the end, a kernel without `RWF_NOWAIT`)
/// counts as not cached.
pub fn cached(fd: i32, off: u64) -> bool {
    let mut b = 0u8;
    let iov = IoVec { base: &mut b, len: 1 };
    // SAFETY: the vector points at one byte on this stack frame, alive for the call.
    unsafe { preadv2(fd, &iov, 1, off as i64, RWF_NOWAIT) == 1 }
}

/// Ask the kernel to read each (offset, length) of `ranges` of `fd`, without waiting, unless the
/// sampled ones are all cached already. An empty range asks for nothing (to the kernel, a length
/// of 0 means the whole rest of the file). The ranges asked for; an errno when the kernel refuses.
pub fn prefetch(fd: i32, ranges: &[(u64, u64)]) -> Result<usize, (i32, u64, u64)> {
    if !ranges.is_empty() && ranges.iter().step_by(SAMPLE_EVERY).all(|&(off, _)| cached(fd, off)) { return Ok(0); }
    let mut asked = 0;
    for &(off, len) in ranges.iter().filter(|r| r.1 > 0) {
        // SAFETY: only integer arguments; a bad descriptor is an error return.
        let e = unsafe { posix_fadvise(fd, off as i64, len as i64, POSIX_FADV_WILLNEED) };
        if e != 0 { return Err((e, off, len)); }
        asked += 1;
    }
    Ok(asked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::io::AsRawFd;

    const POSIX_FADV_DONTNEED: i32 = 4;

    #[test]
    fn cached_pages_are_left_alone_others_asked_for() {
        let path = std::env::temp_dir().join(format!("walb-prefetch-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![0x5au8; 1 << 20]).unwrap();
        f.sync_all().unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let fd = f.as_raw_fd();
        // Clean pages dropped from the cache: not cached, so asked for.
        assert_eq!(unsafe { posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) }, 0);
        let some_file_systems_keep_them = cached(fd, 0);
        if !some_file_systems_keep_them {
            assert_eq!(prefetch(fd, &[(0, 4096), (8192, 4096)]), Ok(2));
        }
        // Read into the cache: left alone.
        let mut b = vec![0u8; 1 << 20];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, 0).unwrap();
        assert!(cached(fd, 4096));
        assert_eq!(prefetch(fd, &[(0, 4096), (65536, 8192)]), Ok(0));
        // Past the end counts as not cached; the kernel takes the advice anyway.
        assert!(!cached(fd, 2 << 20));
        assert_eq!(prefetch(fd, &[(2 << 20, 4096)]), Ok(1));
        assert_eq!(prefetch(fd, &[]), Ok(0));
        // An empty range asks for nothing (not the whole file).
        assert_eq!(prefetch(fd, &[(2 << 20, 0), (3 << 20, 4096)]), Ok(1));
        drop(f);
        std::fs::remove_file(&path).unwrap();
        // A bad descriptor is an error, not a crash.
        assert!(matches!(prefetch(-1, &[(0, 4096)]), Err((9, 0, 4096))));
    }
}
