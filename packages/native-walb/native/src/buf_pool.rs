//! Buffers for received write data that go round: a connection reads a request into one, the
//! applier gives it back once its data are on the data device. Before, every request was a fresh
//! allocation freed by the applier's thread, and glibc's free of another thread's memory takes
//! that thread's arena lock: the connection waited on it while it allocated the next request.

use std::sync::Mutex;

/// Size classes: 4 KiB << i.
const CLASSES: usize = 9;
const MIN_BYTES: usize = 4096;
/// Largest buffer pooled (a logged piece is at most this long; larger ones are not kept).
pub const MAX_POOLED: usize = MIN_BYTES << (CLASSES - 1);
/// Bytes the shared pool keeps at most; beyond, given-back buffers are freed.
const POOL_BYTES: usize = 32 << 20;
/// Buffers a connection takes from the shared pool at a time, per class: at most this many, and
/// no more than [`TAKE_BYTES`] (at least one), so what a connection keeps aside stays small.
const TAKE_AT_ONCE: usize = 64;
const TAKE_BYTES: usize = 1 << 20;

fn class_of(len: usize) -> Option<usize> {
    if len > MAX_POOLED { return None; }
    let units = len.max(MIN_BYTES).div_ceil(MIN_BYTES);
    Some(units.next_power_of_two().trailing_zeros() as usize)
}

/// The shared pool: buffers whose length is their class size, all bytes initialized.
pub struct BufPool {
    inner: Mutex<([Vec<Vec<u8>>; CLASSES], usize)>,
}

impl BufPool {
    pub fn new() -> BufPool { BufPool { inner: Mutex::new((Default::default(), 0)) } }

    /// Give back buffers (any length; those not of a class size are dropped), in one lock.
    pub fn give(&self, bufs: &mut Vec<Vec<u8>>) {
        if bufs.is_empty() { return; }
        let mut g = self.inner.lock().unwrap();
        let (stacks, bytes) = &mut *g;
        for b in bufs.drain(..) {
            let Some(c) = class_of(b.len()) else { continue };
            if b.len() != MIN_BYTES << c || *bytes + b.len() > POOL_BYTES { continue; }
            *bytes += b.len();
            stacks[c].push(b);
        }
    }

    fn take_many(&self, c: usize, into: &mut Vec<Vec<u8>>) {
        let mut g = self.inner.lock().unwrap();
        let (stacks, bytes) = &mut *g;
        let s = &mut stacks[c];
        let keep = s.len().saturating_sub(TAKE_AT_ONCE.min((TAKE_BYTES >> c) / MIN_BYTES).max(1));
        *bytes -= (s.len() - keep) * (MIN_BYTES << c);
        into.extend(s.drain(keep..));
    }
}

/// A connection's own stock, refilled from the shared pool a batch at a time.
pub struct LocalBufs {
    stacks: [Vec<Vec<u8>>; CLASSES],
}

impl LocalBufs {
    pub fn new() -> LocalBufs { LocalBufs { stacks: Default::default() } }

    /// A buffer of at least `len` initialized bytes (its class size, or exactly `len` above the
    /// largest class).
    pub fn take(&mut self, pool: &BufPool, len: usize) -> Vec<u8> {
        let Some(c) = class_of(len) else { return vec![0u8; len] };
        if self.stacks[c].is_empty() { pool.take_many(c, &mut self.stacks[c]); }
        self.stacks[c].pop().unwrap_or_else(|| vec![0u8; MIN_BYTES << c])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(class_of(1), Some(0));
        assert_eq!(class_of(4096), Some(0));
        assert_eq!(class_of(4097), Some(1));
        assert_eq!(class_of(MAX_POOLED), Some(CLASSES - 1));
        assert_eq!(class_of(MAX_POOLED + 1), None);
    }

    #[test]
    fn buffers_go_round_within_the_bound() {
        let pool = BufPool::new();
        let mut local = LocalBufs::new();
        let a = local.take(&pool, 5000);
        assert_eq!(a.len(), 8192);
        let p = a.as_ptr();
        pool.give(&mut vec![a, vec![0u8; 100]]);
        let again = local.take(&pool, 6000);
        assert_eq!(again.as_ptr(), p);
        // A connection takes a bounded share: 1 MiB of 256 KiB buffers is 4 of them.
        pool.give(&mut (0..10).map(|_| vec![0u8; 256 << 10]).collect());
        let _ = local.take(&pool, 256 << 10);
        assert_eq!(local.stacks[6].len(), 3);
        assert_eq!(pool.inner.lock().unwrap().0[6].len(), 6);
        // The pool keeps no more than its bound.
        let mut many: Vec<Vec<u8>> = (0..(POOL_BYTES / MAX_POOLED + 5)).map(|_| vec![0u8; MAX_POOLED]).collect();
        pool.give(&mut many);
        assert!(pool.inner.lock().unwrap().1 <= POOL_BYTES);
    }
}
