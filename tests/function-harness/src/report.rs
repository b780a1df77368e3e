//! Human-readable lines for runs: each measurement beside Shopify's limit.

use crate::runner::RunReport;

/// `1176105` → `"1,176,105"`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `value / limit` as a percentage with one decimal.
pub fn percent_of(value: u64, limit: u64) -> String {
    format!("{:.1}%", value as f64 * 100.0 / limit as f64)
}

/// One line per run: instructions, memory, input and output size, each with its limit.
pub fn run_line(name: &str, run: &RunReport) -> String {
    let l = &run.limits;
    let input = run.input_json_bytes.max(run.input_msgpack_bytes);
    let output = run.output_json_bytes.max(run.output_msgpack_bytes);
    format!(
        "{name:<48} lines {:>4}  instr {:>10} / {:>10} ({:>5})  mem {:>5} KiB / {} KiB  in {:>7} B / {}  out {:>6} B / {}",
        run.cart_lines,
        thousands(run.instructions),
        thousands(l.instructions),
        percent_of(run.instructions, l.instructions),
        run.memory_bytes / 1024,
        l.memory_bytes / 1024,
        thousands(input),
        thousands(l.input_bytes),
        thousands(output),
        thousands(l.output_bytes),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(48_681), "48,681");
        assert_eq!(super::thousands(1_176_105), "1,176,105");
    }
}
