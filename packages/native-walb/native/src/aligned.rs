//! Heap buffers aligned for direct IO.

/// Alignment of every buffer (a page: what any direct write asks at most).
const ALIGN: usize = 4096;

/// A buffer aligned for direct IO.
pub struct ABuf {
    ptr: *mut u8,
    pub cap: usize,
}

unsafe impl Send for ABuf {}

impl ABuf {
    /// At least `cap` bytes (rounded up to the alignment), zeroed.
    pub fn new(cap: usize) -> ABuf {
        let cap = cap.div_ceil(ALIGN).max(1) * ALIGN;
        let layout = std::alloc::Layout::from_size_align(cap, ALIGN).expect("a valid layout");
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() { std::alloc::handle_alloc_error(layout); }
        ABuf { ptr, cap }
    }
    pub fn bytes(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.cap) }
    }
}

impl Drop for ABuf {
    fn drop(&mut self) {
        unsafe { std::alloc::dealloc(self.ptr, std::alloc::Layout::from_size_align_unchecked(self.cap, ALIGN)) }
    }
}

