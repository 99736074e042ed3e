//! The WalB checksum: a salted sum of little-endian u32 words (a trailing 1..3 bytes zero-padded),
//! stored as its two's complement.

pub fn checksum(data: &[u8], salt: u32) -> u32 {
    let mut chunks = data.chunks_exact(32);
    // Eight independent lanes so the additions pipeline and vectorize.
    let mut acc = [0u32; 8];
    for c in &mut chunks {
        for (i, a) in acc.iter_mut().enumerate() {
            *a = a.wrapping_add(u32::from_le_bytes([c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3]]));
        }
    }
    let mut sum = acc.iter().fold(salt, |s, a| s.wrapping_add(*a));
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(4);
    for w in &mut words {
        sum = sum.wrapping_add(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut w = [0u8; 4];
        w[..tail.len()].copy_from_slice(tail);
        sum = sum.wrapping_add(u32::from_le_bytes(w));
    }
    sum.wrapping_neg()
}

#[cfg(test)]
mod tests {
    use super::checksum;

    #[test]
    fn known_vectors() {
        assert_eq!(checksum(&[1, 0, 0, 0, 2, 0, 0, 0], 0), 0xffff_fffd);
        assert_eq!(checksum(&[0u8; 512], 0x1234_5678), 0xedcb_a988);
        assert_eq!(checksum(&[1, 0, 0, 0, 5], 0), checksum(&[1, 0, 0, 0, 5, 0, 0, 0], 0));
    }

    #[test]
    fn lanes_match_a_plain_sum() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0, 3, 4, 31, 32, 33, 999] {
            let mut s = 5u32;
            for w in data[..len].chunks(4) {
                let mut b = [0u8; 4];
                b[..w.len()].copy_from_slice(w);
                s = s.wrapping_add(u32::from_le_bytes(b));
            }
            assert_eq!(checksum(&data[..len], 5), s.wrapping_neg(), "len {len}");
        }
    }
}
