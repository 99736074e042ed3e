//! The hand-over from one walk of a log to the next. A conversion walks its log a stretch at a
//! time, each stretch starting where the one before ended. Started from JavaScript, the next walk
//! waits for a trip through the event loop after the previous one ends, and longer when that
//! thread is busy with the stretch before: on the development machine those waits added up to a
//! fifth of a compressible log's conversion. So the next walk can be queued at once behind the
//! running one, joined by a link: it waits on the thread pool for the running walk to post where
//! it ended, and goes on from there without JavaScript, or does nothing when the caller has to
//! decide first (a header the walk leaves to it, the end of the file, an error).

use std::sync::atomic::{AtomicBool, Ordering};
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
}

impl WalkLink {
    /// Take the link for a walk to post to; false when a walk took it already.
    pub fn take(&self) -> bool {
        !self.taken.swap(true, Ordering::AcqRel)
    }

    /// Whether a walk took the link to post to (and will post, or its [`Poster`] will).
    pub fn taken(&self) -> bool {
        self.taken.load(Ordering::Acquire)
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
        assert!(!l.taken() && l.take() && l.taken() && !l.take(), "taken once");
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
