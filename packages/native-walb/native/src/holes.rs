//! Where a file's holes are: `lseek` with `SEEK_DATA`, so that reading a sparse image can skip
//! what reads as zeros without reading it.

extern "C" {
    fn lseek(fd: i32, offset: i64, whence: i32) -> i64;
}

const SEEK_DATA: i32 = 3;
const ENXIO: i32 = 6;

/// The first offset at or after `offset` where `fd` holds data; `None` when only a hole follows
/// up to the end of the file (or `offset` is at or past it). Any other failure (a file system that
/// cannot tell, a descriptor that is not a file) gives `Some(offset)`: the caller reads there.
pub fn seek_data(fd: i32, offset: u64) -> Option<u64> {
    if offset > i64::MAX as u64 {
        return Some(offset);
    }
    // SAFETY: lseek only reads its integer arguments; a bad descriptor is an error return.
    let r = unsafe { lseek(fd, offset as i64, SEEK_DATA) };
    if r >= 0 {
        return Some(r as u64);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(ENXIO) => None,
        _ => Some(offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::io::AsRawFd;

    #[test]
    fn finds_data_after_a_hole_and_none_after_the_last() {
        let path = std::env::temp_dir().join(format!("walbjs-holes-{}", std::process::id()));
        let mut f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        // A hole of 4 MiB, 64 KiB of data, then a hole to 16 MiB.
        f.seek(SeekFrom::Start(4 << 20)).unwrap();
        f.write_all(&[7u8; 64 << 10]).unwrap();
        f.set_len(16 << 20).unwrap();
        f.sync_all().unwrap();
        let fd = f.as_raw_fd();
        let first = seek_data(fd, 0).unwrap();
        // A file system without holes reports data everywhere; one with them, the data at 4 MiB.
        assert!(first == 0 || first == 4 << 20, "first data at {first}");
        assert_eq!(seek_data(fd, 4 << 20), Some(4 << 20));
        assert_eq!(seek_data(fd, (4 << 20) + 100), Some((4 << 20) + 100));
        if first == 4 << 20 {
            assert_eq!(seek_data(fd, 8 << 20), None);
        }
        assert_eq!(seek_data(fd, 16 << 20), None);
        assert_eq!(seek_data(fd, 1 << 40), None);
        assert_eq!(seek_data(-1, 0), Some(0));
        drop(f);
        std::fs::remove_file(&path).unwrap();
    }
}
