//! A small read buffer per thread, for the jobs that read a file a slice at a time: a slice is
//! summed (and stored) while it is still in the core's caches. Reading the same bytes into large
//! buffers cost the log walk as much as its sums and compression together.

/// Bytes read at a time.
pub const READ_STEP: usize = 2 << 20;

/// A page-aligned buffer of [`READ_STEP`] bytes, allocated on first use.
#[derive(Default)]
struct Scratch(Option<(std::ptr::NonNull<u8>, std::alloc::Layout)>);

impl Scratch {
    fn get(&mut self) -> &mut [u8] {
        let (p, l) = *self.0.get_or_insert_with(|| {
            let l = std::alloc::Layout::from_size_align(READ_STEP, 4096).expect("layout");
            // SAFETY: the layout has a non-zero size.
            let p = std::ptr::NonNull::new(unsafe { std::alloc::alloc(l) }).unwrap_or_else(|| std::alloc::handle_alloc_error(l));
            (p, l)
        });
        // SAFETY: p points at l.size() bytes owned by this Scratch (contents arbitrary, only written before read).
        unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), l.size()) }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout above.
        if let Some((p, l)) = self.0 { unsafe { std::alloc::dealloc(p.as_ptr(), l) } }
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Run `f` with this thread's read buffer ([`READ_STEP`] bytes, page-aligned, contents left from
/// the previous use).
pub fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH.with(|sc| f(sc.borrow_mut().get()))
}
