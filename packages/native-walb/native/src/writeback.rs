//! Writeback started, not waited for: `sync_file_range(SYNC_FILE_RANGE_WRITE)` over a whole file
//! asks the kernel to start writing its dirty pages and returns once they are submitted. Apply
//! starts it every 16 MiB it writes, so the disk works alongside the writes instead of after
//! them; the final `fdatasync` then finds little left. On the development machine a 427 MiB
//! merged diff applied in 0.375 s that way against 0.406 s with an `fdatasync` every 64 MiB
//! (which waits, and leaves the disk idle between two), the 596 MB apply of small writes
//! in 0.838 against 0.865 s (medians of 9, alternating). A start may itself take a while: it
//! submits what is dirty, and waits where the disk's queue is full.

extern "C" {
    fn sync_file_range(fd: i32, offset: i64, nbytes: i64, flags: u32) -> i32;
}
const SYNC_FILE_RANGE_WRITE: u32 = 2;

/// Start writing back every dirty page of `fd` (a file or block device); the errno of a refusal.
/// Nothing is made durable: that takes `fdatasync`.
pub fn start_writeback(fd: i32) -> Result<(), i32> {
    // SAFETY: sync_file_range only reads its integer arguments; a bad descriptor is an error return.
    if unsafe { sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_file_with_dirty_pages_starts_and_a_pipe_or_closed_descriptor_is_refused() {
        let p = std::env::temp_dir().join(format!("walb-writeback-{}", std::process::id()));
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(&vec![7u8; 1 << 20]).unwrap();
        assert_eq!(start_writeback(f.as_raw_fd()), Ok(()));
        drop(f);
        std::fs::remove_file(&p).unwrap();
        // ESPIPE for a pipe; EBADF for no descriptor.
        let mut fds = [0i32; 2];
        extern "C" { fn pipe(fds: *mut i32) -> i32; fn close(fd: i32) -> i32; }
        // SAFETY: pipe fills the two descriptors it is given room for; both are closed below.
        assert_eq!(unsafe { pipe(fds.as_mut_ptr()) }, 0);
        assert_eq!(start_writeback(fds[1]), Err(29));
        // SAFETY: closing the descriptors pipe made.
        unsafe { close(fds[0]); close(fds[1]); }
        assert_eq!(start_writeback(-1), Err(9));
    }
}
