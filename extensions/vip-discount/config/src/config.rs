//! The VIP discount's settings: what a merchant configures per discount, how it is read from the
//! discount's JSON metafield, and the rules a configuration must satisfy.
//!
//! The metafield (`$app:vip` / `config`, type `json`) is also the source of the Function's input
//! query variables, so `vipTags` and `excludedTags` reach Shopify's `hasAnyTag` checks without a
//! redeploy. Every decimal is a JSON string (as Shopify's own `Decimal` scalar), never a number, so
//! nothing passes through a float on either side:
//!
//! ```json
//! {
//!   "vipTags": ["VIP"],
//!   "excludedTags": ["no-vip"],
//!   "tagTier": "Silver",
//!   "tiers": [
//!     {"name": "Gold", "percentage": "15", "cap": "50.00", "minimumSubtotal": "100",
//!      "shipping": {"percentage": "100"}, "message": "VIP Gold — 15% off"},
//!     {"name": "Silver", "percentage": "10", "appliesTo": "ORDER_SUBTOTAL"}
//!   ]
//! }
//! ```

use core::fmt;

use crate::json::JsonView;
use crate::Decimal;

/// Shopify accepts at most 100 elements in a list variable of an input query.
pub const MAX_TAGS: usize = 100;
/// Shopify does not return metafield values longer than this to a Function.
pub const MAX_CONFIG_BYTES: usize = 10_000;
/// Tiers a discount may define; far more than any merchant needs, small enough to read quickly.
pub const MAX_TIERS: usize = 20;
/// Shopify's limit on a tag's length.
pub const MAX_TAG_CHARS: usize = 255;
pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_MESSAGE_CHARS: usize = 255;

/// One discount's VIP settings.
#[derive(Clone, Debug, PartialEq)]
pub struct VipConfig {
    /// Customer tags that make a logged-in buyer VIP (query variable `vipTags`).
    pub vip_tags: Vec<String>,
    /// Product tags whose products never get the VIP price (query variable `excludedTags`).
    pub excluded_tags: Vec<String>,
    /// Tier given to a buyer who is VIP by tag only; the first tier when absent.
    pub tag_tier: Option<String>,
    pub tiers: Vec<Tier>,
}

/// What a VIP tier gets.
#[derive(Clone, Debug, PartialEq)]
pub struct Tier {
    /// Matched, ignoring ASCII case and surrounding blanks, against the customer's `vip_tier`
    /// metafield, which Keel's Tag VIP action writes.
    pub name: String,
    /// Percent off, 0–100 (0 for a tier that only has a shipping benefit).
    pub percentage: Decimal,
    pub applies_to: AppliesTo,
    /// In shop currency: the eligible lines must add up to at least this (before discounts).
    pub minimum_subtotal: Option<Decimal>,
    /// In shop currency: the most the percentage may take off.
    pub cap: Option<Decimal>,
    pub shipping: Option<ShippingBenefit>,
    /// Shown to the buyer; "VIP {name} — {percentage}% off" when absent.
    pub message: Option<String>,
}

/// Where the tier's percentage applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AppliesTo {
    /// Each eligible cart line (a product discount; needs the discount's PRODUCT class).
    #[default]
    Lines,
    /// The order subtotal minus excluded lines (an order discount; needs the ORDER class).
    OrderSubtotal,
}

impl AppliesTo {
    pub fn as_str(self) -> &'static str {
        match self {
            AppliesTo::Lines => "LINES",
            AppliesTo::OrderSubtotal => "ORDER_SUBTOTAL",
        }
    }

    fn parse(text: &str) -> Option<AppliesTo> {
        match text {
            "LINES" => Some(AppliesTo::Lines),
            "ORDER_SUBTOTAL" => Some(AppliesTo::OrderSubtotal),
            _ => None,
        }
    }
}

/// Discounted or free shipping (100 %) on every delivery group.
#[derive(Clone, Debug, PartialEq)]
pub struct ShippingBenefit {
    pub percentage: Decimal,
    /// "VIP {name} — free shipping" / "— {percentage}% off shipping" when absent.
    pub message: Option<String>,
}

/// One thing wrong with a configuration, located by its JSON path (`tiers[1].percentage`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.problem)
        } else {
            write!(f, "{}: {}", self.path, self.problem)
        }
    }
}

/// Every problem found, so a settings page can show them all at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn first(&self) -> Option<&ConfigError> {
        self.0.first()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Where a problem is, rendered into a JSON path only when there is a problem (the Function
/// reads a valid configuration on every VIP checkout, and formatting costs instructions there).
#[derive(Clone, Copy)]
enum Loc {
    /// A top-level member.
    Top(&'static str),
    /// An element of a top-level list.
    Item(&'static str, usize),
    /// A tier, or a member of it (`""` for the tier itself; may be nested: `"shipping.message"`).
    Tier(usize, &'static str),
}

impl Loc {
    fn render(self) -> String {
        match self {
            Loc::Top(key) => key.to_owned(),
            Loc::Item(key, index) => format!("{key}[{index}]"),
            Loc::Tier(index, "") => format!("tiers[{index}]"),
            Loc::Tier(index, key) => format!("tiers[{index}].{key}"),
        }
    }
}

/// Collects errors while reading and checking.
#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    fn add(&mut self, at: Loc, problem: impl Into<String>) {
        self.0.push(ConfigError {
            path: at.render(),
            problem: problem.into(),
        });
    }

    fn add_root(&mut self, problem: &str) {
        self.0.push(ConfigError {
            path: String::new(),
            problem: problem.to_owned(),
        });
    }
}

impl VipConfig {
    /// Reads and validates a configuration. Unknown members are ignored (the same JSON object
    /// carries the query variables, and older Functions must accept newer settings).
    pub fn from_json<V: JsonView>(value: &V) -> Result<VipConfig, ConfigErrors> {
        let mut problems = Problems::default();
        if !value.is_object() {
            problems.add_root("the configuration must be a JSON object");
            return Err(ConfigErrors(problems.0));
        }
        let vip_tags = read_tags(value, "vipTags", &mut problems);
        let excluded_tags = read_tags(value, "excludedTags", &mut problems);
        let tag_tier = read_optional_string(value, "tagTier", Loc::Top("tagTier"), &mut problems);
        let tiers = match value.member("tiers").map(|tiers| tiers.elements()) {
            None => {
                problems.add(Loc::Top("tiers"), "at least one tier is required");
                Vec::new()
            }
            Some(None) => {
                problems.add(Loc::Top("tiers"), "must be a list of tiers");
                Vec::new()
            }
            Some(Some(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| read_tier(item, index, &mut problems))
                .collect(),
        };
        let config = VipConfig {
            vip_tags,
            excluded_tags,
            tag_tier,
            tiers,
        };
        // Rules are only checked on a well-formed shape, so each mistake is reported once.
        if problems.0.is_empty() {
            config.check(&mut problems);
        }
        if problems.0.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(problems.0))
        }
    }

    /// Checks the rules a configuration must satisfy (for configurations built in code).
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::default();
        self.check(&mut problems);
        if problems.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(problems.0))
        }
    }

    fn check(&self, problems: &mut Problems) {
        check_tags(&self.vip_tags, "vipTags", problems);
        check_tags(&self.excluded_tags, "excludedTags", problems);
        if self.tiers.is_empty() {
            problems.add(Loc::Top("tiers"), "at least one tier is required");
        }
        if self.tiers.len() > MAX_TIERS {
            problems.add(Loc::Top("tiers"), format!("at most {MAX_TIERS} tiers"));
        }
        for (index, tier) in self.tiers.iter().enumerate() {
            tier.check(index, problems);
            let duplicate = self.tiers[..index]
                .iter()
                .any(|earlier| same_name(&earlier.name, &tier.name));
            if duplicate {
                problems.add(
                    Loc::Tier(index, "name"),
                    format!("another tier is already named \"{}\"", tier.name),
                );
            }
        }
        if let Some(tag_tier) = &self.tag_tier {
            if self.tier(tag_tier).is_none() {
                problems.add(
                    Loc::Top("tagTier"),
                    format!("\"{tag_tier}\" is not one of the tiers"),
                );
            }
        }
    }

    /// The tier called `name`, ignoring ASCII case and surrounding blanks.
    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.iter().find(|tier| same_name(&tier.name, name))
    }

    /// The tier a buyer gets: the one their `vip_tier` metafield names, else — when they carry
    /// one of the VIP tags — the tag tier. `None` means not VIP (guests never reach this).
    pub fn tier_for_buyer(&self, metafield_tier: Option<&str>, has_vip_tag: bool) -> Option<&Tier> {
        if let Some(tier) = metafield_tier.and_then(|name| self.tier(name)) {
            return Some(tier);
        }
        if !has_vip_tag {
            return None;
        }
        match &self.tag_tier {
            Some(name) => self.tier(name),
            None => self.tiers.first(),
        }
    }
}

impl Tier {
    fn check(&self, index: usize, problems: &mut Problems) {
        let name = self.name.trim();
        if name.is_empty() {
            problems.add(Loc::Tier(index, "name"), "a tier needs a name");
        } else if char_count(name) > MAX_NAME_CHARS {
            problems.add(
                Loc::Tier(index, "name"),
                format!("at most {MAX_NAME_CHARS} characters"),
            );
        }
        if self.percentage.is_negative() || self.percentage > Decimal::HUNDRED {
            problems.add(Loc::Tier(index, "percentage"), "must be between 0 and 100");
        }
        if self.percentage.is_zero() && self.shipping.is_none() {
            problems.add(
                Loc::Tier(index, ""),
                "a tier must give a percentage off or a shipping benefit",
            );
        }
        if let Some(minimum) = self.minimum_subtotal {
            if minimum.is_negative() {
                problems.add(Loc::Tier(index, "minimumSubtotal"), "must not be negative");
            }
        }
        if let Some(cap) = self.cap {
            if cap.is_negative() || cap.is_zero() {
                problems.add(Loc::Tier(index, "cap"), "must be more than 0");
            }
        }
        if let Some(shipping) = &self.shipping {
            let p = shipping.percentage;
            if p.is_negative() || p.is_zero() || p > Decimal::HUNDRED {
                problems.add(
                    Loc::Tier(index, "shipping.percentage"),
                    "must be more than 0 and at most 100",
                );
            }
            check_message(
                &shipping.message,
                Loc::Tier(index, "shipping.message"),
                problems,
            );
        }
        check_message(&self.message, Loc::Tier(index, "message"), problems);
    }

    /// The message shown to the buyer for the percentage off.
    pub fn message(&self) -> String {
        match &self.message {
            Some(message) => message.clone(),
            None => format!("VIP {} — {}% off", self.name.trim(), self.percentage),
        }
    }

    /// Whether checking the tier needs the eligible lines' subtotal.
    pub fn needs_subtotal(&self) -> bool {
        self.minimum_subtotal.is_some() || self.cap.is_some()
    }
}

impl ShippingBenefit {
    /// The message shown to the buyer for the shipping benefit of `tier_name`.
    pub fn message(&self, tier_name: &str) -> String {
        match &self.message {
            Some(message) => message.clone(),
            None if self.percentage == Decimal::HUNDRED => {
                format!("VIP {} — free shipping", tier_name.trim())
            }
            None => format!(
                "VIP {} — {}% off shipping",
                tier_name.trim(),
                self.percentage
            ),
        }
    }
}

/// Characters in `text` (UTF-8 lead bytes): what Shopify's length limits count, without pulling
/// the standard library's vectorised counter into the wasm.
fn char_count(text: &str) -> usize {
    text.bytes().filter(|byte| byte & 0xC0 != 0x80).count()
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

fn check_tags(tags: &[String], key: &'static str, problems: &mut Problems) {
    if tags.len() > MAX_TAGS {
        problems.add(
            Loc::Top(key),
            format!("at most {MAX_TAGS} tags (Shopify's limit for a list variable)"),
        );
    }
    for (index, tag) in tags.iter().enumerate() {
        if tag.trim().is_empty() {
            problems.add(Loc::Item(key, index), "a tag cannot be blank");
        } else if char_count(tag) > MAX_TAG_CHARS {
            problems.add(
                Loc::Item(key, index),
                format!("at most {MAX_TAG_CHARS} characters"),
            );
        }
    }
}

fn check_message(message: &Option<String>, path: Loc, problems: &mut Problems) {
    if let Some(message) = message {
        if message.trim().is_empty() {
            problems.add(path, "leave the message out rather than blank");
        } else if char_count(message) > MAX_MESSAGE_CHARS {
            problems.add(path, format!("at most {MAX_MESSAGE_CHARS} characters"));
        }
    }
}

fn read_tags<V: JsonView>(value: &V, key: &'static str, problems: &mut Problems) -> Vec<String> {
    let Some(member) = value.member(key) else {
        return Vec::new();
    };
    let Some(items) = member.elements() else {
        problems.add(Loc::Top(key), "must be a list of tags");
        return Vec::new();
    };
    let mut tags = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match item.as_string() {
            Some(tag) => tags.push(tag),
            None => problems.add(Loc::Item(key, index), "must be a string"),
        }
    }
    tags
}

fn read_optional_string<V: JsonView>(
    value: &V,
    key: &str,
    at: Loc,
    problems: &mut Problems,
) -> Option<String> {
    let member = value.member(key)?;
    let text = member.as_string();
    if text.is_none() {
        problems.add(at, "must be a string");
    }
    text
}

fn read_decimal<V: JsonView>(
    value: &V,
    key: &str,
    at: Loc,
    problems: &mut Problems,
) -> Option<Decimal> {
    decimal_of(value.member(key), at, problems)
}

/// The decimal in `member`, if present; a problem when it is not a decimal string.
fn decimal_of<V: JsonView>(member: Option<V>, at: Loc, problems: &mut Problems) -> Option<Decimal> {
    let member = member?;
    let parsed = member.as_string().as_deref().and_then(Decimal::parse);
    if parsed.is_none() {
        problems.add(at, "must be a decimal written as a string, like \"12.5\"");
    }
    parsed
}

fn read_tier<V: JsonView>(value: &V, index: usize, problems: &mut Problems) -> Option<Tier> {
    if !value.is_object() {
        problems.add(Loc::Tier(index, ""), "must be an object");
        return None;
    }
    let errors_before = problems.0.len();
    let name = read_optional_string(value, "name", Loc::Tier(index, "name"), problems);
    if name.is_none() && problems.0.len() == errors_before {
        problems.add(Loc::Tier(index, "name"), "a tier needs a name");
    }
    let shipping_member = value.member("shipping");
    let percentage = match value.member("percentage") {
        // A shipping-only tier may leave the percentage out.
        None if shipping_member.is_some() => Some(Decimal::ZERO),
        None => {
            problems.add(Loc::Tier(index, "percentage"), "a tier needs a percentage");
            None
        }
        member => decimal_of(member, Loc::Tier(index, "percentage"), problems),
    };
    let applies_to = match value.member("appliesTo") {
        None => Some(AppliesTo::Lines),
        Some(member) => {
            let parsed = member.as_string().as_deref().and_then(AppliesTo::parse);
            if parsed.is_none() {
                problems.add(
                    Loc::Tier(index, "appliesTo"),
                    "must be \"LINES\" or \"ORDER_SUBTOTAL\"",
                );
            }
            parsed
        }
    };
    let minimum_subtotal = read_decimal(
        value,
        "minimumSubtotal",
        Loc::Tier(index, "minimumSubtotal"),
        problems,
    );
    let cap = read_decimal(value, "cap", Loc::Tier(index, "cap"), problems);
    let shipping = match shipping_member {
        None => None,
        Some(shipping) if !shipping.is_object() => {
            problems.add(Loc::Tier(index, "shipping"), "must be an object");
            None
        }
        Some(shipping) => {
            let at = Loc::Tier(index, "shipping.percentage");
            let percentage = match shipping.member("percentage") {
                None => {
                    problems.add(at, "use \"100\" for free shipping");
                    None
                }
                member => decimal_of(member, at, problems),
            };
            let message = read_optional_string(
                &shipping,
                "message",
                Loc::Tier(index, "shipping.message"),
                problems,
            );
            percentage.map(|percentage| ShippingBenefit {
                percentage,
                message,
            })
        }
    };
    let message = read_optional_string(value, "message", Loc::Tier(index, "message"), problems);
    if problems.0.len() > errors_before {
        return None;
    }
    Some(Tier {
        name: name?,
        percentage: percentage?,
        applies_to: applies_to?,
        minimum_subtotal,
        cap,
        shipping,
        message,
    })
}
