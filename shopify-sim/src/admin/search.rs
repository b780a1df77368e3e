//! Shopify's `query:` search syntax, the part Keel uses: `field:value` terms joined by spaces
//! (AND), comparators `<`, `<=`, `>`, `>=` after the colon (`created_at:<2026-11-20`),
//! negation with a leading `-` or `NOT`, quoted values (`title:"Blue shirt"`), a trailing `*`
//! for prefix matches, and bare words matched against a resource's default text fields.
//! (shopify.dev/docs/api/usage/search-syntax.) `OR` and parentheses are not simulated: `AND`
//! and `OR` keywords are skipped, so `a OR b` behaves like `a b`.
//!
//! Terms on fields a resource does not know are ignored, as Shopify ignores unknown filters
//! (it reports them as search warnings).

use chrono::{DateTime, NaiveDate, Utc};

/// A value a resource exposes to search.
#[derive(Debug, Clone)]
pub(crate) enum SearchValue {
    Text(String),
    Num(f64),
    Date(DateTime<Utc>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
struct Term {
    negated: bool,
    field: Option<String>,
    op: Op,
    value: String,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Search {
    terms: Vec<Term>,
}

impl Search {
    pub fn parse(query: &str) -> Search {
        let mut terms = Vec::new();
        let mut negate_next = false;
        for token in tokenize(query) {
            match token.as_str() {
                "AND" | "OR" => continue,
                "NOT" => {
                    negate_next = true;
                    continue;
                }
                _ => {}
            }
            let (negated, body) = match token.strip_prefix('-') {
                Some(rest) if !rest.is_empty() => (true, rest),
                _ => (false, token.as_str()),
            };
            let negated = negated ^ std::mem::take(&mut negate_next);
            let (field, raw) = match body.split_once(':') {
                Some((f, v)) if !f.is_empty() => (Some(f.to_ascii_lowercase()), v),
                _ => (None, body),
            };
            let (op, value) = if let Some(v) = raw.strip_prefix("<=") {
                (Op::Le, v)
            } else if let Some(v) = raw.strip_prefix(">=") {
                (Op::Ge, v)
            } else if let Some(v) = raw.strip_prefix('<') {
                (Op::Lt, v)
            } else if let Some(v) = raw.strip_prefix('>') {
                (Op::Gt, v)
            } else {
                (Op::Eq, raw)
            };
            terms.push(Term {
                negated,
                field,
                op,
                value: unquote(value).to_owned(),
            });
        }
        Search { terms }
    }

    /// Whether a resource matches every term. `lookup(field)` gives the resource's values for a
    /// field (`None` = the resource has no such field, term ignored); `lookup("")` gives the
    /// default text fields for bare words.
    pub fn matches(&self, lookup: impl Fn(&str) -> Option<Vec<SearchValue>>) -> bool {
        self.terms.iter().all(|t| {
            let field = t.field.as_deref().unwrap_or("");
            let Some(values) = lookup(field) else {
                return true;
            };
            let hit = values.iter().any(|v| term_matches(t, v));
            hit != t.negated
        })
    }
}

fn term_matches(t: &Term, v: &SearchValue) -> bool {
    use std::cmp::Ordering;
    let ord = match v {
        SearchValue::Text(s) => {
            if t.field.is_none() {
                return s.to_lowercase().contains(&t.value.to_lowercase());
            }
            if t.op == Op::Eq {
                return match t.value.strip_suffix('*') {
                    Some(prefix) => s.to_lowercase().starts_with(&prefix.to_lowercase()),
                    None => s.eq_ignore_ascii_case(&t.value),
                };
            }
            Some(s.to_lowercase().cmp(&t.value.to_lowercase()))
        }
        SearchValue::Num(n) => t.value.parse::<f64>().ok().and_then(|x| n.partial_cmp(&x)),
        SearchValue::Date(d) => {
            let Some((start, whole_day)) = parse_date(&t.value) else {
                return false;
            };
            if whole_day && t.op == Op::Eq {
                return d.date_naive() == start.date_naive();
            }
            // `<=2026-11-20` includes the whole day; `>2026-11-20` starts after it.
            let bound = if whole_day && matches!(t.op, Op::Le | Op::Gt) {
                start + chrono::TimeDelta::days(1)
            } else {
                start
            };
            return match t.op {
                Op::Eq => *d == bound,
                Op::Lt => *d < bound,
                Op::Le => *d < bound || (!whole_day && *d == bound),
                Op::Gt => *d >= bound && (whole_day || *d > bound),
                Op::Ge => *d >= bound,
            };
        }
    };
    let Some(ord) = ord else { return false };
    match t.op {
        Op::Eq => ord == Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
    }
}

/// A date term: RFC 3339, or a bare `YYYY-MM-DD` (UTC midnight; the simulator's shops are on
/// UTC) flagged as a whole day.
fn parse_date(s: &str) -> Option<(DateTime<Utc>, bool)> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some((d.with_timezone(&Utc), false));
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some((day.and_hms_opt(0, 0, 0)?.and_utc(), true))
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// Splits on whitespace outside quotes.
fn tokenize(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in q.chars() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
