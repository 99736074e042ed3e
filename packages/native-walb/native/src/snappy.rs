//! A snappy block encoder (the raw format: a varint of the length, then literals and copies),
//! written for wdiff records: it encodes into a reused buffer and can give up as soon as the
//! output stops being shorter than the input, so an incompressible record (the common case for
//! random data) costs no allocation at all. Any snappy decoder reads its output; its bytes may
//! differ from other encoders' (the format leaves the choice of matches to the encoder).
//!
//! The input is cut into 64 KiB blocks, each encoded on its own with a hash table of 4-byte
//! sequences; when lookups keep missing, the step between them grows, so random data is skipped
//! through at close to copy speed.

const BLOCK: usize = 1 << 16;
const MAX_TABLE_BITS: u32 = 14;
/// Blocks shorter than this are one literal; the last bytes of a block are never a match start.
const INPUT_MARGIN: usize = 15;

#[inline]
fn load32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// How many bytes from `a` on equal those from `b` (`a < b`), up to the end of `src`: sixteen at
/// a time (a run of zeros in a record is matched at close to memory speed), the first difference
/// found from the lowest differing bit.
#[inline]
fn match_len(src: &[u8], a: usize, b: usize) -> usize {
    let y = &src[b..];
    let x = &src[a..a + y.len()];
    let mut m = 0;
    for (cx, cy) in x.chunks_exact(16).zip(y.chunks_exact(16)) {
        let d0 = u64::from_le_bytes(cx[..8].try_into().unwrap()) ^ u64::from_le_bytes(cy[..8].try_into().unwrap());
        if d0 != 0 { return m + (d0.trailing_zeros() / 8) as usize; }
        let d1 = u64::from_le_bytes(cx[8..].try_into().unwrap()) ^ u64::from_le_bytes(cy[8..].try_into().unwrap());
        if d1 != 0 { return m + 8 + (d1.trailing_zeros() / 8) as usize; }
        m += 16;
    }
    while m < y.len() && x[m] == y[m] { m += 1; }
    m
}

#[inline]
fn hash(v: u32, shift: u32) -> usize {
    (v.wrapping_mul(0x1e35_a7bd) >> shift) as usize
}

fn emit_literal(out: &mut Vec<u8>, lit: &[u8]) {
    let n = lit.len() - 1;
    if n < 60 {
        out.push((n as u8) << 2);
    } else {
        let bytes = if n < 1 << 8 { 1 } else if n < 1 << 16 { 2 } else if n < 1 << 24 { 3 } else { 4 };
        out.push(((59 + bytes) as u8) << 2);
        out.extend_from_slice(&(n as u32).to_le_bytes()[..bytes]);
    }
    out.extend_from_slice(lit);
}

/// Whether a literal of `len` (≥ 1) bytes would take the output from `out_len` bytes to `limit` or
/// more: then the block has failed, and the literal need not be copied (for an incompressible
/// record that copy would be as costly as the search that came before it).
#[inline]
fn literal_reaches(out_len: usize, len: usize, limit: usize) -> bool {
    let n = len - 1;
    let header = if n < 60 { 1 } else if n < 1 << 8 { 2 } else if n < 1 << 16 { 3 } else if n < 1 << 24 { 4 } else { 5 };
    out_len.saturating_add(header + len) >= limit
}

/// One copy element of 4..=64 bytes (1..=64 with a 2-byte offset).
fn emit_copy_upto64(out: &mut Vec<u8>, offset: usize, len: usize) {
    if len < 12 && offset < 2048 {
        out.push(1 | (((len - 4) as u8) << 2) | (((offset >> 8) as u8) << 5));
        out.push(offset as u8);
    } else {
        out.push(2 | (((len - 1) as u8) << 2));
        out.extend_from_slice(&(offset as u16).to_le_bytes());
    }
}

fn emit_copy(out: &mut Vec<u8>, offset: usize, mut len: usize) {
    // Pieces of 64, leaving at least 4 for the last one: all alike, so laid down as one pattern.
    if len >= 68 {
        let k = (len - 4) / 64;
        let piece = [2 | (63 << 2), offset as u8, (offset >> 8) as u8];
        let start = out.len();
        out.resize(start + 3 * k, 0);
        for c in out[start..].chunks_exact_mut(3) { c.copy_from_slice(&piece); }
        len -= 64 * k;
    }
    if len > 64 {
        emit_copy_upto64(out, offset, 60);
        len -= 60;
    }
    emit_copy_upto64(out, offset, len);
}

/// Encode one block (at most 64 KiB, so every offset fits 16 bits).
fn encode_block(src: &[u8], table: &mut [u16], out: &mut Vec<u8>, limit: usize) -> bool {
    let n = src.len();
    let mut next_emit = 0usize;
    if n >= INPUT_MARGIN {
        let mut bits = 8;
        while bits < MAX_TABLE_BITS && (1usize << bits) < n { bits += 1; }
        let shift = 32 - bits;
        let table = &mut table[..1 << bits];
        table.fill(0);
        let ip_limit = n - INPUT_MARGIN;
        let mut ip = 1usize;
        'outer: loop {
            // Find a 4-byte match, looking further apart the longer nothing is found.
            let mut skip = 32usize;
            let mut next_ip = ip;
            let mut candidate;
            loop {
                ip = next_ip;
                let step = skip >> 5;
                skip += step;
                next_ip = ip + step;
                if next_ip > ip_limit { break 'outer; }
                let h = hash(load32(src, ip), shift);
                candidate = table[h] as usize;
                table[h] = ip as u16;
                if load32(src, candidate) == load32(src, ip) { break; }
            }
            if literal_reaches(out.len(), ip - next_emit, limit) { return false; }
            emit_literal(out, &src[next_emit..ip]);
            // Copies, as long as one follows another.
            loop {
                let m = 4 + match_len(src, candidate + 4, ip + 4);
                emit_copy(out, ip - candidate, m);
                ip += m;
                next_emit = ip;
                if out.len() >= limit { return false; }
                if ip >= ip_limit { break 'outer; }
                table[hash(load32(src, ip - 1), shift)] = (ip - 1) as u16;
                let h = hash(load32(src, ip), shift);
                candidate = table[h] as usize;
                table[h] = ip as u16;
                if load32(src, candidate) != load32(src, ip) { break; }
            }
            ip += 1;
        }
    }
    if next_emit < n {
        if literal_reaches(out.len(), n - next_emit, limit) { return false; }
        emit_literal(out, &src[next_emit..]);
    }
    out.len() < limit
}

/// Encode `input` as a raw snappy block into `out` (cleared first; `table` is scratch space kept
/// between calls). With `only_if_smaller`, stop and return false as soon as the output reaches the
/// input's length; otherwise always true.
pub fn compress_into(input: &[u8], out: &mut Vec<u8>, table: &mut Vec<u16>, only_if_smaller: bool) -> bool {
    out.clear();
    let limit = if only_if_smaller { input.len() } else { usize::MAX };
    let mut v = input.len() as u64;
    while v >= 0x80 { out.push((v as u8) | 0x80); v >>= 7; }
    out.push(v as u8);
    if out.len() >= limit { return false; }
    table.resize(1 << MAX_TABLE_BITS, 0);
    for block in input.chunks(BLOCK) {
        if !encode_block(block, table, out, limit) { return false; }
    }
    out.len() < limit
}

thread_local! {
    /// This thread's output buffer and hash table, kept between records.
    static SCRATCH: std::cell::RefCell<(Vec<u8>, Vec<u16>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// [`compress_into`] with this thread's scratch space, handing `f` the block (or `None` when, with
/// `only_if_smaller`, it would not be shorter than `input`). A huge record's output buffer is not
/// kept for the next one.
pub fn compress_with_scratch<R>(input: &[u8], only_if_smaller: bool, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    SCRATCH.with(|s| {
        let (out, table) = &mut *s.borrow_mut();
        let ok = compress_into(input, out, table, only_if_smaller);
        let r = f(if ok { Some(out.as_slice()) } else { None });
        if out.capacity() > 8 << 20 { *out = Vec::new(); }
        r
    })
}

/// Why a raw snappy block does not decode.
pub type DecodeError = &'static str;

/// Decode the raw snappy block `src` into `out` (cleared first), which must come to exactly
/// `expect` bytes: a stored image decompresses to its size or is refused. Every length and offset
/// is checked against what is there, so a hostile block can only be refused; `out` never grows
/// past `expect`.
pub fn decompress_into(src: &[u8], out: &mut Vec<u8>, expect: usize) -> Result<(), DecodeError> {
    out.clear();
    let mut at = 0usize;
    let mut len = 0u64;
    let mut shift = 0;
    loop {
        let b = *src.get(at).ok_or("the length preamble is cut short")?;
        at += 1;
        len |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 { break; }
        shift += 7;
        if shift > 28 { return Err("the length preamble is longer than 5 bytes"); }
    }
    if len != expect as u64 { return Err("the length preamble is not the image's size"); }
    out.reserve_exact(expect);
    while at < src.len() {
        let tag = src[at];
        at += 1;
        let (n, offset) = match tag & 3 {
            0 => {
                let mut n = (tag >> 2) as usize;
                if n >= 60 {
                    let k = n - 59;
                    let b = src.get(at..at + k).ok_or("a literal's length is cut short")?;
                    n = b.iter().rev().fold(0usize, |v, &x| (v << 8) | x as usize);
                    at += k;
                }
                let n = n + 1;
                let lit = src.get(at..at.saturating_add(n)).ok_or("a literal runs past the end of the block")?;
                if out.len() + n > expect { return Err("the data run past the image's size"); }
                out.extend_from_slice(lit);
                at += n;
                continue;
            }
            1 => {
                let b = *src.get(at).ok_or("a copy is cut short")? as usize;
                at += 1;
                ((((tag >> 2) & 7) + 4) as usize, (((tag >> 5) as usize) << 8) | b)
            }
            2 => {
                let b = src.get(at..at + 2).ok_or("a copy is cut short")?;
                at += 2;
                (((tag >> 2) + 1) as usize, u16::from_le_bytes([b[0], b[1]]) as usize)
            }
            _ => {
                let b = src.get(at..at + 4).ok_or("a copy is cut short")?;
                at += 4;
                (((tag >> 2) + 1) as usize, u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            }
        };
        if offset == 0 || offset > out.len() { return Err("a copy reaches before the start of the data"); }
        if out.len() + n > expect { return Err("the data run past the image's size"); }
        let from = out.len() - offset;
        if offset >= n {
            out.extend_from_within(from..from + n);
        } else {
            // Overlapping: the bytes repeat with period `offset`.
            for i in 0..n { let x = out[from + i]; out.push(x); }
        }
    }
    if out.len() != expect { return Err("the data end before the image's size"); }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{compress_into, decompress_into, emit_copy, emit_copy_upto64, match_len};

    /// A plain decoder, for the tests only.
    fn decode(b: &[u8]) -> Vec<u8> {
        let (mut len, mut shift, mut i) = (0usize, 0, 0);
        loop { let c = b[i]; i += 1; len |= ((c & 0x7f) as usize) << shift; shift += 7; if c < 0x80 { break; } }
        let mut out = Vec::with_capacity(len);
        while i < b.len() {
            let tag = b[i];
            i += 1;
            match tag & 3 {
                0 => {
                    let mut n = (tag >> 2) as usize;
                    if n >= 60 { let k = n - 59; n = 0; for j in 0..k { n |= (b[i + j] as usize) << (8 * j); } i += k; }
                    out.extend_from_slice(&b[i..i + n + 1]);
                    i += n + 1;
                }
                t => {
                    let (n, off) = match t {
                        1 => { let o = ((tag as usize >> 5) << 8) | b[i] as usize; i += 1; (((tag >> 2) & 7) as usize + 4, o) }
                        2 => { let o = u16::from_le_bytes([b[i], b[i + 1]]) as usize; i += 2; ((tag >> 2) as usize + 1, o) }
                        _ => { let o = u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize; i += 4; ((tag >> 2) as usize + 1, o) }
                    };
                    assert!(off > 0 && off <= out.len());
                    for _ in 0..n { out.push(out[out.len() - off]); }
                }
            }
        }
        assert_eq!(out.len(), len);
        out
    }

    fn rng(seed: &mut u64) -> u64 { *seed ^= *seed << 13; *seed ^= *seed >> 7; *seed ^= *seed << 17; *seed }

    #[test]
    fn long_copies_and_matches_as_one_at_a_time() {
        // The 64-byte pieces laid down as one pattern: the same elements as emitted one by one.
        for offset in [1usize, 7, 2047, 2048, 65_535] {
            for len in 4..600 {
                let (mut fast, mut slow) = (Vec::new(), Vec::new());
                emit_copy(&mut fast, offset, len);
                let mut left = len;
                while left >= 68 { emit_copy_upto64(&mut slow, offset, 64); left -= 64; }
                if left > 64 { emit_copy_upto64(&mut slow, offset, 60); left -= 60; }
                emit_copy_upto64(&mut slow, offset, left);
                assert_eq!(fast, slow, "offset {offset}, length {len}");
            }
        }
        // Sixteen bytes a step: a difference at every position of a step, and tails of every length.
        for n in 0..80usize {
            for diff in 0..=n {
                let mut v = vec![0u8; 3 + n];
                if diff < n { v[3 + diff] = 1; }
                assert_eq!(match_len(&v, 0, 3), if diff < n { diff } else { n }, "n {n}, diff {diff}");
            }
        }
    }

    #[test]
    fn round_trips() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut out = Vec::new();
        let mut t = Vec::new();
        let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![7], vec![0; 14], vec![0; 15], vec![0; 70_000], b"abcabcabcabcabcabcabcabcabcabc".to_vec()];
        for len in [16, 100, 4096, 65_535, 65_536, 65_537, 200_000] {
            inputs.push((0..len).map(|_| rng(&mut seed) as u8).collect());
            inputs.push((0..len).map(|i| (i / 7 % 13) as u8).collect());
            inputs.push((0..len).map(|_| (rng(&mut seed) % 3) as u8).collect());
        }
        for inp in &inputs {
            assert!(compress_into(inp, &mut out, &mut t, false));
            assert_eq!(decode(&out), *inp, "length {}", inp.len());
            if compress_into(inp, &mut out, &mut t, true) { assert!(out.len() < inp.len()); assert_eq!(decode(&out), *inp); }
        }
        // Inputs built from pieces that make every kind of element: noise, runs, copies from
        // near and far back (across the 64 KiB block edge too), at every length up to 200 KB.
        for case in 0..600 {
            let target = (rng(&mut seed) % if case % 10 == 0 { 200_000 } else { 5_000 }) as usize;
            let mut v: Vec<u8> = Vec::with_capacity(target);
            while v.len() < target {
                let n = 1 + (rng(&mut seed) % 300) as usize;
                match rng(&mut seed) % 4 {
                    0 => v.extend((0..n).map(|_| rng(&mut seed) as u8)),
                    1 => { let b = rng(&mut seed) as u8; v.extend(std::iter::repeat(b).take(n)); }
                    _ if !v.is_empty() => {
                        let from = (rng(&mut seed) % v.len() as u64) as usize;
                        for k in 0..n { let c = v[from + k % (v.len() - from)]; v.push(c); }
                    }
                    _ => v.push(1),
                }
            }
            v.truncate(target);
            assert!(compress_into(&v, &mut out, &mut t, false));
            assert_eq!(decode(&out), v, "case {case}, length {}", v.len());
            let full = out.clone();
            if compress_into(&v, &mut out, &mut t, true) { assert_eq!(out, full); } else { assert!(full.len() >= v.len()); }
        }
        // Random data does not shrink; repetitive data does.
        let r: Vec<u8> = (0..65_536).map(|_| rng(&mut seed) as u8).collect();
        assert!(!compress_into(&r, &mut out, &mut t, true));
        assert!(compress_into(&vec![5u8; 65_536], &mut out, &mut t, true) && out.len() < 4096);
    }

    #[test]
    fn decodes_what_it_encodes_and_refuses_damage() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; seed };
        let mut out = Vec::new();
        let mut table = Vec::new();
        let mut back = Vec::new();
        for len in [0usize, 1, 4, 61, 4096, 70_000, 200_000] {
            // Runs and repeats so that every kind of copy is used, and some noise for literals.
            let data: Vec<u8> = (0..len).map(|i| if (i / 3000) % 3 == 0 { next() as u8 } else { (i % 251) as u8 }).collect();
            compress_into(&data, &mut out, &mut table, false);
            decompress_into(&out, &mut back, len).unwrap();
            assert_eq!(back, data);
            assert!(decompress_into(&out, &mut back, len + 1).is_err(), "a size other than the preamble's");
            for cut in [1usize, 2, out.len() / 2, out.len().saturating_sub(1)] {
                if cut < out.len() && len > 0 { assert!(decompress_into(&out[..cut], &mut back, len).is_err(), "cut at {cut} of {len}"); }
            }
            // Any single byte changed: refused, or decoded to the size asked, never a panic.
            for _ in 0..200 {
                if out.is_empty() { break; }
                let mut bad = out.clone();
                let k = next() as usize % bad.len();
                bad[k] ^= 1 << (next() % 8);
                if decompress_into(&bad, &mut back, len).is_ok() { assert_eq!(back.len(), len); }
            }
        }
        // A copy whose offset reaches before the data, and a literal longer than the block.
        assert!(decompress_into(&[4, 0b0000_0001, 0], &mut back, 4).is_err());
        assert!(decompress_into(&[8, 7 << 2, 1, 2], &mut back, 8).is_err());
    }
}
