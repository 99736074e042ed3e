//! The hand-over from one walk of a log to the next. A conversion walks its log a stretch at a
//! time, each stretch starting where the one before ended. Started from JavaScript, the next walk
//! waits for a trip through the event loop after the previous one ends, and longer when that
//! thread is busy with the stretch before: on the development machine those waits added up to a
//! fifth of a compressible log's conversion. So the next walk can be queued at once behind the
//! running one, joined by a link: it waits on the thread pool for the running walk to post where
//! it ended, and goes on from there without JavaScript, or does nothing when the caller has to
//! decide first (a header the walk leaves to it, the end of the file, an error).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Where a walk ended, for the walk queued behind it.
#[derive(Default)]
pub struct WalkLink {
    /// None until posted; then where to go on (byte position, record), or None: do not.
    end: Mutex<Option<Option<(u64, u32)>>>,
    posted: Condvar,
    /// Whether a walk has taken the link to post to: a walk may only be queued behind a link
    /// that will be posted, or it would wait for ever.
    taken: AtomicBool,
    /// The address of the header block the posting walk keeps its pack in, which the walk behind
    /// it goes on from (set when taken).
    hdr: AtomicUsize,
    /// Whether a walk waits on the link: one at most, or two would go on from the same place into
    /// the same header block.
    followed: AtomicBool,
}

impl WalkLink {
    /// Take the link for a walk to post to, the walk keeping its pack's header at address `hdr`;
    /// false when a walk took it already.
    pub fn take(&self, hdr: usize) -> bool {
        if self.taken.swap(true, Ordering::AcqRel) { return false; }
        self.hdr.store(hdr, Ordering::Release);
        true
    }

    /// Let a walk with its header block at `hdr` wait on the link: why not, when it may not (no
    /// walk posts to it, a walk waits on it already, the walk before keeps another header block).
    pub fn follow(&self, hdr: usize) -> Result<(), &'static str> {
        if !self.taken.load(Ordering::Acquire) { return Err("no walk posts to this link"); }
        if self.hdr.load(Ordering::Acquire) != hdr { return Err("the walk before it keeps its header in another hdr"); }
        if self.followed.swap(true, Ordering::AcqRel) { return Err("another walk waits on this link"); }
        Ok(())
    }

    /// Post where the walk ended: `Some((position, record))` where the next walk may go on, None
    /// where it must not. The first post counts.
    pub fn post(&self, end: Option<(u64, u32)>) {
        let mut g = self.end.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some(end);
            self.posted.notify_all();
        }
    }

    /// Wait for the post.
    pub fn wait(&self) -> Option<(u64, u32)> {
        let mut g = self.end.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(end) = *g { return end; }
            g = self.posted.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Posts to a link once: what [`Poster::post`] is given, or None when dropped without (a walk
/// that failed, or panicked), so the walk waiting behind it always wakes.
pub struct Poster(pub Option<Arc<WalkLink>>);

impl Poster {
    pub fn post(mut self, end: Option<(u64, u32)>) {
        if let Some(l) = self.0.take() { l.post(end); }
    }
}

impl Drop for Poster {
    fn drop(&mut self) {
        if let Some(l) = self.0.take() { l.post(None); }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_behind_wakes_with_the_post_or_with_none_when_the_poster_is_dropped() {
        let l = Arc::new(WalkLink::default());
        assert_eq!(l.follow(64), Err("no walk posts to this link"));
        assert!(l.take(64) && !l.take(64), "taken once");
        assert_eq!(l.follow(128), Err("the walk before it keeps its header in another hdr"));
        assert_eq!(l.follow(64), Ok(()));
        assert_eq!(l.follow(64), Err("another walk waits on this link"));
        let w = { let l = l.clone(); std::thread::spawn(move || l.wait()) };
        std::thread::sleep(std::time::Duration::from_millis(20));
        Poster(Some(l.clone())).post(Some((8 << 20, 3)));
        assert_eq!(w.join().unwrap(), Some((8 << 20, 3)));
        // A second post changes nothing.
        l.post(None);
        assert_eq!(l.wait(), Some((8 << 20, 3)));

        let l = Arc::new(WalkLink::default());
        let w = { let l = l.clone(); std::thread::spawn(move || l.wait()) };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _p = Poster(Some(l.clone()));
            panic!("the walk failed");
        }));
        assert!(r.is_err());
        assert_eq!(w.join().unwrap(), None);
    }
}
