//! A second thread that a thread-pool job can split its work with.
//!
//! Starting a thread per job cost 0.5–0.9 ms here before it ran (the scheduler kept it on the
//! starting core until that one waited), about as much as the half of the work it took over. A
//! helper that waits for work is woken in tens of microseconds. There is one helper: a job that
//! finds it taken (another job splitting its work) does both halves itself.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

type Task = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct State {
    /// A job holds the helper.
    taken: bool,
    task: Option<Task>,
    /// The task handed over has finished.
    done: bool,
}

struct Helper {
    state: Mutex<State>,
    cv: Condvar,
}

/// The helper, started on first use; `None` on a single core or when it could not be started.
fn helper() -> Option<&'static Helper> {
    static H: OnceLock<Option<&'static Helper>> = OnceLock::new();
    *H.get_or_init(|| {
        if std::thread::available_parallelism().map(|n| n.get() < 2).unwrap_or(true) { return None; }
        let h: &'static Helper = Box::leak(Box::new(Helper { state: Mutex::new(State::default()), cv: Condvar::new() }));
        std::thread::Builder::new().name("walb-helper".into()).spawn(move || serve(h)).ok().map(|_| h)
    })
}

fn serve(h: &'static Helper) {
    loop {
        let task = {
            let mut s = h.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(t) = s.task.take() { break t; }
                s = h.cv.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        };
        // The task catches its own panics (see `beside`).
        task();
        let mut s = h.state.lock().unwrap_or_else(|e| e.into_inner());
        s.done = true;
        h.cv.notify_all();
    }
}

/// Waits, when dropped, for the task handed to the helper: whatever happens on this thread, the
/// task's borrows outlive it.
struct Handover(&'static Helper);

impl Drop for Handover {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        while !s.done { s = self.0.cv.wait(s).unwrap_or_else(|e| e.into_inner()); }
        s.taken = false;
        s.done = false;
    }
}

/// Run `f` on the helper while this thread runs `g`, and return both results; both run here, one
/// after the other, when there is no helper or another job holds it. A panic in either is
/// raised here once both have finished.
pub fn beside<A, B: Send>(f: impl FnOnce() -> B + Send, g: impl FnOnce() -> A) -> (A, B) {
    let Some(h) = helper() else { return (g(), f()) };
    {
        let mut s = h.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.taken {
            drop(s);
            return (g(), f());
        }
        s.taken = true;
    }
    let mut result: Option<std::thread::Result<B>> = None;
    let slot = &mut result as *mut Option<std::thread::Result<B>> as usize;
    let task: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        // SAFETY: `result` lives until the Handover below has seen this task finish.
        unsafe { *(slot as *mut Option<std::thread::Result<B>>) = Some(r) };
    });
    // SAFETY: the task borrows from this frame; the Handover's drop waits for it to finish before
    // this frame can end, by return or by unwinding.
    let task: Task = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Task>(task) };
    let wait = Handover(h);
    {
        let mut s = h.state.lock().unwrap_or_else(|e| e.into_inner());
        s.task = Some(task);
        h.cv.notify_all();
    }
    let a = g();
    drop(wait);
    match result.take() {
        Some(Ok(b)) => (a, b),
        Some(Err(p)) => resume_unwind(p),
        None => unreachable!("the helper finished without a result"),
    }
}

/// Run `f` on every item, this thread and the helper taking the next one in turn until none is
/// left (each item runs once): where one of the two is slowed (the core shared with another
/// thread), the other takes more, which a split in two halves cannot. The first error ends the
/// work (items not begun are dropped) and is returned; without a helper everything runs here.
pub fn share<T: Send, E: Send>(items: Vec<T>, f: impl Fn(T) -> Result<(), E> + Sync) -> Result<(), E> {
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let run = || -> Result<(), E> {
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = slots.get(i) else { break };
            let Some(t) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() else { continue };
            if let Err(e) = f(t) {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    };
    let (a, b) = beside(run, run);
    a.and(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_items_each_run_once_and_an_error_ends_the_work() {
        for round in 0..50usize {
            let mut cells: Vec<u64> = vec![0; 37];
            let items: Vec<(usize, &mut u64)> = cells.iter_mut().enumerate().collect();
            share(items, |(i, c): (usize, &mut u64)| -> Result<(), ()> { *c += (i * round) as u64 + 1; Ok(()) }).unwrap();
            assert!(cells.iter().enumerate().all(|(i, &c)| c == (i * round) as u64 + 1));
        }
        let ran = AtomicUsize::new(0);
        let r = share((0..1000).collect(), |i: u32| { ran.fetch_add(1, Ordering::Relaxed); if i == 10 { Err(i) } else { Ok(()) } });
        assert_eq!(r, Err(10));
        assert!(ran.load(Ordering::Relaxed) < 1000);
    }

    #[test]
    fn both_run_and_borrow_from_the_caller() {
        let mut left = vec![0u32; 1000];
        let mut right = vec![0u32; 1000];
        for round in 0..50 {
            let (a, b) = beside(|| { right.iter_mut().for_each(|x| *x += 1); right[0] }, || { left.iter_mut().for_each(|x| *x += 2); left[0] });
            assert_eq!((a, b), (2 * (round + 1), round + 1));
        }
    }

    #[test]
    fn a_panic_on_the_helper_reaches_the_caller_after_both_finished() {
        let mut ran = false;
        let r = catch_unwind(AssertUnwindSafe(|| beside(|| -> u32 { panic!("on the helper") }, || { ran = true; 1 })));
        assert!(r.is_err() && ran);
        // The helper is free again.
        assert_eq!(beside(|| 3, || 4), (4, 3));
    }

    #[test]
    fn jobs_that_find_it_taken_run_both_halves_themselves() {
        let hs: Vec<_> = (0..4).map(|i| std::thread::spawn(move || (0..200).map(|k| { let (a, b) = beside(|| k * i, || k + i); a + b }).sum::<u64>())).collect();
        for (i, h) in hs.into_iter().enumerate() {
            let i = i as u64;
            assert_eq!(h.join().unwrap(), (0..200).map(|k| k * i + k + i).sum::<u64>());
        }
    }
}
