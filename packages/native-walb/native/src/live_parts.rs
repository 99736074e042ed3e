//! What later IOs of a log leave visible of each IO (newer wins), for the indexed conversion of
//! wlog files: the sweep of @walbjs/diff's `LivePartsBuilder`, here because it runs once per
//! conversion, cold, where the same loops in JavaScript took 6–10 ms for 4,000 IOs.
//!
//! A sweep over the addresses where some IO starts or ends: between two of them the newest IO
//! over the stretch (the highest index among those that cover it) is the visible one.

use std::collections::BinaryHeap;

/// The largest end of an IO (2^53 LB), as JavaScript numbers hold it exactly.
const MAX_END: f64 = 9_007_199_254_740_992.0;

/// Work out the visible parts of IOs `0..n` (LB address `addrs[k]`, `blocks[k]` LB, index `k` in log
/// order). `whole[k]` gets 1 where all of IO `k` is visible; the others' visible pieces go to
/// `pieces` as (address, LB) pairs, IO by IO in index order and by address within one, those of IO
/// `k` at `pieces[2 * start[k] .. 2 * start[k + 1]]`. `pieces` must hold `4 n` numbers (at most
/// `2 n` pieces are visible). Returns the numbers written to `pieces`.
pub fn live_parts(addrs: &[f64], blocks: &[f64], whole: &mut [u8], start: &mut [u32], pieces: &mut [f64]) -> Result<usize, String> {
    let n = addrs.len();
    if blocks.len() != n || whole.len() != n || start.len() != n + 1 || pieces.len() < 4 * n {
        return Err(format!("{n} IOs need {n} sizes, {n} flags, {} starts and {} piece numbers", n + 1, 4 * n));
    }
    if n > u32::MAX as usize / 4 { return Err(format!("{n} IOs: too many")); }
    // Every number is checked before anything is written.
    let mut a = Vec::with_capacity(n);
    let mut e = Vec::with_capacity(n);
    for k in 0..n {
        let (x, b) = (addrs[k], blocks[k]);
        // In integers: in doubles 2^53 + 1 rounds to 2^53.
        if !(x >= 0.0 && x.fract() == 0.0 && x <= MAX_END && b >= 1.0 && b.fract() == 0.0 && b <= MAX_END && x as u64 + b as u64 <= MAX_END as u64) {
            return Err(format!("IO {k}: address {x} and {b} LB are not whole numbers ending by 2^53 with at least 1 LB"));
        }
        a.push(x as u64);
        e.push(x as u64 + b as u64);
    }
    let mut by_start: Vec<u32> = (0..n as u32).collect();
    by_start.sort_unstable_by_key(|&k| (a[k as usize], k));
    let mut by_end: Vec<u32> = (0..n as u32).collect();
    by_end.sort_unstable_by_key(|&k| (e[k as usize], k));

    // The visible stretches in address order, each joined to the one before when it continues it.
    let mut segs: Vec<(u32, u64, u64)> = Vec::with_capacity(2 * n);
    let mut heap: BinaryHeap<u32> = BinaryHeap::with_capacity(n);
    let (mut si, mut ei) = (0usize, 0usize);
    let mut x = if n > 0 { a[by_start[0] as usize] } else { 0 };
    while si < n || !heap.is_empty() {
        while si < n && a[by_start[si] as usize] == x { heap.push(by_start[si]); si += 1; }
        // An IO that ended leaves when it reaches the top.
        while heap.peek().is_some_and(|&k| e[k as usize] <= x) { heap.pop(); }
        while ei < n && e[by_end[ei] as usize] <= x { ei += 1; }
        let next_start = if si < n { a[by_start[si] as usize] } else { u64::MAX };
        let next_end = if ei < n { e[by_end[ei] as usize] } else { u64::MAX };
        let y = next_start.min(next_end);
        if let Some(&k) = heap.peek() {
            match segs.last_mut() {
                Some(last) if last.0 == k && last.1 + last.2 == x => last.2 += y - x,
                _ => segs.push((k, x, y - x)),
            }
        }
        if y == u64::MAX { break; }
        x = y;
    }

    // Counting sort of the stretches by the IO they belong to: one visible whole is only marked.
    let mut count = vec![0u32; n];
    for s in &segs { count[s.0 as usize] += 1; }
    whole.fill(0);
    for s in &segs {
        let k = s.0 as usize;
        if count[k] == 1 && s.1 == a[k] && s.2 == e[k] - a[k] { whole[k] = 1; }
    }
    start[0] = 0;
    for k in 0..n { start[k + 1] = start[k] + if whole[k] == 1 { 0 } else { count[k] }; }
    let mut at: Vec<u32> = start[..n].to_vec();
    for s in &segs {
        let k = s.0 as usize;
        if whole[k] == 1 { continue; }
        let i = 2 * at[k] as usize;
        pieces[i] = s.1 as f64;
        pieces[i + 1] = s.2 as f64;
        at[k] += 1;
    }
    Ok(2 * start[n] as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ios: &[(u64, u64)]) -> (Vec<u8>, Vec<u32>, Vec<f64>) {
        let n = ios.len();
        let a: Vec<f64> = ios.iter().map(|x| x.0 as f64).collect();
        let b: Vec<f64> = ios.iter().map(|x| x.1 as f64).collect();
        let (mut w, mut s, mut p) = (vec![9u8; n], vec![0u32; n + 1], vec![0f64; 4 * n]);
        let used = live_parts(&a, &b, &mut w, &mut s, &mut p).unwrap();
        p.truncate(used);
        (w, s, p)
    }

    #[test]
    fn each_io_keeps_the_lbs_it_writes_last() {
        // Pseudo-random IOs on 64 LB against the last writer of each LB.
        let mut x = 7u64;
        for round in 0..200 {
            let n = (round % 37) + 1;
            let ios: Vec<(u64, u64)> = (0..n).map(|_| {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                (x % 56, 1 + (x >> 8) % 12)
            }).collect();
            let (w, s, p) = run(&ios);
            let mut last = vec![usize::MAX; 80];
            for (k, &(a, b)) in ios.iter().enumerate() { for l in a..a + b { last[l as usize] = k; } }
            for (k, &(a, b)) in ios.iter().enumerate() {
                let mut runs: Vec<f64> = Vec::new();
                for l in a..a + b {
                    if last[l as usize] != k { continue; }
                    let m = runs.len();
                    if m >= 2 && runs[m - 2] + runs[m - 1] == l as f64 { runs[m - 1] += 1.0; } else { runs.extend([l as f64, 1.0]); }
                }
                if runs == [a as f64, b as f64] {
                    assert_eq!(w[k], 1, "round {round} IO {k}");
                    assert_eq!(s[k], s[k + 1]);
                } else {
                    assert_eq!(w[k], 0, "round {round} IO {k}");
                    assert_eq!(p[2 * s[k] as usize..2 * s[k + 1] as usize], runs[..], "round {round} IO {k}");
                }
            }
        }
    }

    #[test]
    fn bad_input_is_refused() {
        let (mut w, mut s, mut p) = (vec![0u8; 1], vec![0u32; 2], vec![0f64; 4]);
        assert!(live_parts(&[1.5], &[1.0], &mut w, &mut s, &mut p).is_err());
        assert!(live_parts(&[1.0], &[0.0], &mut w, &mut s, &mut p).is_err());
        assert!(live_parts(&[-1.0], &[1.0], &mut w, &mut s, &mut p).is_err());
        assert!(live_parts(&[MAX_END], &[1.0], &mut w, &mut s, &mut p).is_err());
        assert!(live_parts(&[f64::NAN], &[1.0], &mut w, &mut s, &mut p).is_err());
        assert!(live_parts(&[1.0], &[1.0], &mut w, &mut s, &mut p[..3]).is_err());
        assert_eq!(live_parts(&[], &[], &mut [], &mut [0], &mut []), Ok(0));
        assert_eq!(live_parts(&[MAX_END - 2.0], &[2.0], &mut w, &mut s, &mut p), Ok(0));
        assert_eq!(w[0], 1);
    }
}
