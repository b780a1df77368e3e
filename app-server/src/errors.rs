//! Helpers for error values shared by every layer.

/// "outer: inner: innermost": an error and its sources on one line, for logs and the job's
/// `last_error` column.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
