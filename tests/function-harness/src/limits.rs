//! Shopify's resource limits for a Function run, and how they scale with the cart.
//!
//! shopify.dev, Functions "Limitations" (1 kB = 1000 bytes): 11M instructions, 128 kB input and
//! 20 kB output for carts up to 200 lines; above that "these values scale proportionally".
//! Shopify's runner computes the factor from the fields marked `@scaleLimits(rate)` in the schema —
//! `Cart.lines` has rate 0.005 — as Σ(length × rate), clamped to [1, 10], and multiplies the
//! instruction, input and output limits by it. Memory and binary size do not scale.

/// Limits of a run, already scaled for its cart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub scale: f64,
    pub instructions: u64,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub memory_bytes: u64,
    pub log_bytes: u64,
}

pub const INSTRUCTIONS: u64 = 11_000_000;
pub const INPUT_BYTES: u64 = 128_000;
pub const OUTPUT_BYTES: u64 = 20_000;
/// Runtime linear memory, 10,000 kB.
pub const MEMORY_BYTES: u64 = 10_000_000;
/// Logs are truncated beyond 1 kB.
pub const LOG_BYTES: u64 = 1_000;
/// Compiled module size (after Shopify's wasm-opt and trampoline).
pub const BINARY_BYTES: u64 = 256_000;
/// `@scaleLimits(rate: 0.005)` on `Cart.lines`.
pub const CART_LINES_RATE: f64 = 0.005;

/// The factor Shopify scales limits by for a cart of `lines` lines.
pub fn scale_factor(lines: usize) -> f64 {
    (lines as f64 * CART_LINES_RATE).clamp(1.0, 10.0)
}

impl Limits {
    pub fn for_cart_lines(lines: usize) -> Limits {
        let scale = scale_factor(lines);
        let scaled = |limit: u64| (limit as f64 * scale) as u64;
        Limits {
            scale,
            instructions: scaled(INSTRUCTIONS),
            input_bytes: scaled(INPUT_BYTES),
            output_bytes: scaled(OUTPUT_BYTES),
            memory_bytes: MEMORY_BYTES,
            log_bytes: LOG_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_scale_above_two_hundred_lines_up_to_ten_times() {
        assert_eq!(Limits::for_cart_lines(3).instructions, 11_000_000);
        assert_eq!(Limits::for_cart_lines(200).instructions, 11_000_000);
        let at_500 = Limits::for_cart_lines(500);
        assert_eq!(at_500.scale, 2.5);
        assert_eq!(at_500.instructions, 27_500_000);
        assert_eq!(at_500.input_bytes, 320_000);
        assert_eq!(at_500.output_bytes, 50_000);
        assert_eq!(at_500.memory_bytes, MEMORY_BYTES);
        assert_eq!(Limits::for_cart_lines(5_000).scale, 10.0);
    }
}
