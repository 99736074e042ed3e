//! Numbers handed in from JS as doubles: whole, and within the range of the field they fill.

/// The largest integer a double holds exactly (2^53 - 1).
pub const MAX_SAFE: u64 = 9_007_199_254_740_991;

/// `x` as a whole number in `[0, max]`, else an error naming `what`.
pub fn whole_number(x: f64, max: u64, what: &str) -> Result<u64, String> {
    if x >= 0.0 && x <= max as f64 && x.fract() == 0.0 { Ok(x as u64) } else { Err(format!("{what} {x} is not a whole number in [0, {max}]")) }
}
