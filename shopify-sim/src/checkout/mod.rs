//! `POST /_sim/checkout`: a buyer checks out, and the shop's VIP discount Function prices the
//! cart, as Shopify's checkout would run it.
//!
//! For each active automatic app discount whose `functionHandle` is the deployed Function's
//! ([`function`]), the simulator builds each target's input by executing the Function's own input
//! query over the checkout ([`input`]) — the discount's classes and metafields, the buyer's
//! metafields and tags, lines priced from the seeded variants — with the query variables taken
//! from the discount's metafield named in the extension's `[extensions.input.variables]`. It runs
//! both targets (`cart.lines…` and `cart.delivery-options…`) in wasmtime with Shopify's provider
//! and limits, then applies the operations the discount's classes allow:
//!
//! 1. product discounts (`productDiscountsAdd`, PRODUCT) on lines, by selection strategy;
//! 2. order discounts (`orderDiscountsAdd`, ORDER) on the subtotal after product discounts, minus
//!    excluded lines, if their conditions hold;
//! 3. delivery discounts (`deliveryDiscountsAdd`, SHIPPING) on the selected delivery option.
//!
//! An operation of a class the discount lacks is not applied and is listed under the run's
//! `rejected`; a run that traps or exceeds a limit gives no discount, as on Shopify. Money has
//! two decimals, rounded half away from zero. Not simulated: several discounts' `combinesWith`
//! (every active VIP discount applies), discount codes, currencies without two decimals.

pub(crate) mod cart;
pub(crate) mod function;
pub(crate) mod input;

use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};

use self::cart::{format_money, money, Cart};
use self::function::{Deployment, DELIVERY_TARGET, LINES_TARGET};
use crate::data::{resolve_namespace, Metafield};
use crate::error::SimError;
use crate::Shared;

pub use self::cart::{CheckoutLine, CheckoutRequest, DEFAULT_SHIPPING_PRICE};

/// The priced checkout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckoutAnswer {
    pub shop: String,
    /// The buyer's GID; `null` for a guest.
    pub customer: Option<String>,
    pub currency: String,
    pub lines: Vec<LineAnswer>,
    /// Lines before any discount.
    pub lines_subtotal: String,
    /// Every discount applied: product and order discounts, then shipping.
    pub discounts: Vec<AppliedDiscount>,
    /// Lines after product and order discounts.
    pub subtotal: String,
    /// `null` when nothing ships (gift cards only).
    pub shipping: Option<ShippingAnswer>,
    /// `subtotal` + shipping after its discount.
    pub total: String,
    /// One entry per Function run, for diagnosis.
    pub function_runs: Vec<FunctionRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineAnswer {
    /// `gid://shopify/CartLine/{n}`, numbered from 1 in request order.
    pub id: String,
    pub variant: String,
    pub product: String,
    pub title: String,
    pub quantity: u64,
    pub unit_price: String,
    pub subtotal: String,
    /// Product discounts on this line.
    pub discount: String,
    pub total: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppliedDiscount {
    /// The discount node's GID.
    pub discount_id: String,
    pub title: String,
    /// `PRODUCT`, `ORDER` or `SHIPPING`.
    pub class: String,
    /// The candidate's message, shown to the buyer.
    pub message: Option<String>,
    pub amount: String,
    /// Cart line ids (PRODUCT), excluded line ids (ORDER) or delivery option handles (SHIPPING).
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShippingAnswer {
    pub delivery_group: String,
    pub handle: String,
    pub title: String,
    pub price: String,
    pub discount: String,
    pub total: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionRun {
    pub discount_id: String,
    pub target: String,
    pub export: String,
    pub instructions: u64,
    pub logs: String,
    /// The Function's output; `null` when the run failed.
    pub output: Option<Value>,
    /// Why the run gave no discount: a trap, or a Shopify limit exceeded.
    pub error: Option<String>,
    /// Operations not applied, each with the reason.
    pub rejected: Vec<String>,
}

/// A discount as the checkout needs it, copied out of the shop's state.
struct ActiveDiscount {
    gid: String,
    title: String,
    classes: Vec<String>,
    metafields: Vec<Metafield>,
}

/// The deployed Function, loaded on first use by this simulator.
async fn deployment(shared: &Arc<Shared>) -> Result<Arc<Deployment>, SimError> {
    shared
        .function
        .get_or_try_init(|| async {
            let dir = function::extension_dir();
            // Building and compiling the wasm takes seconds: off the async workers.
            tokio::task::spawn_blocking(move || Deployment::load(&dir))
                .await
                .map_err(|e| SimError::FunctionUnavailable(format!("loading panicked: {e}")))?
                .map(Arc::new)
                .map_err(SimError::FunctionUnavailable)
        })
        .await
        .cloned()
}

/// Prices `request` (see the module doc).
pub(crate) async fn checkout(
    shared: &Arc<Shared>,
    request: CheckoutRequest,
) -> Result<CheckoutAnswer, SimError> {
    let deployment = deployment(shared).await?;
    let client_id = shared.config.api_key.clone();
    let now = chrono::Utc::now();
    let (cart, discounts) = {
        let state = shared.state();
        let admin = state
            .admin_ref(&request.shop)
            .ok_or_else(|| SimError::NotFound(format!("unknown shop {}", request.shop)))?;
        let data = &admin.data;
        let cart = Cart::resolve(data, &request).map_err(SimError::BadControlRequest)?;
        let discounts: Vec<ActiveDiscount> = data
            .discounts
            .values()
            .filter(|d| d.function_handle == deployment.handle && d.status(now) == "ACTIVE")
            .map(|d| ActiveDiscount {
                gid: d.gid(),
                title: d.title.clone(),
                classes: d.discount_classes.clone(),
                metafields: data.metafields_of(&d.gid()).into_iter().cloned().collect(),
            })
            .collect();
        (cart, discounts)
    };
    // The wasm runs are CPU work; the state lock is not held meanwhile.
    tokio::task::spawn_blocking(move || price(&deployment, &client_id, request, cart, discounts))
        .await
        .map_err(|e| SimError::FunctionUnavailable(format!("the checkout panicked: {e}")))?
}

/// One discount's operations from one run, kept until every run is done.
struct Operations<'a> {
    discount: &'a ActiveDiscount,
    run: usize,
    operations: Vec<Value>,
}

fn price(
    deployment: &Deployment,
    client_id: &str,
    request: CheckoutRequest,
    cart: Cart,
    discounts: Vec<ActiveDiscount>,
) -> Result<CheckoutAnswer, SimError> {
    let mut runs = Vec::new();
    let mut line_ops = Vec::new();
    let mut delivery_ops = Vec::new();
    for discount in &discounts {
        let variables = match &deployment.variables {
            Some((namespace, key)) => {
                let namespace = resolve_namespace(namespace, client_id);
                discount
                    .metafields
                    .iter()
                    .find(|m| m.namespace == namespace && &m.key == key)
                    .and_then(|m| serde_json::from_str::<Value>(&m.value).ok())
                    .and_then(|v| match v {
                        Value::Object(map) => Some(map),
                        _ => None,
                    })
                    .unwrap_or_default()
            }
            None => Map::new(),
        };
        let ctx = input::RunContext {
            cart: &cart,
            classes: &discount.classes,
            discount_metafields: &discount.metafields,
            client_id,
        };
        for target_name in [LINES_TARGET, DELIVERY_TARGET] {
            let Some(target) = deployment.target(target_name) else {
                continue;
            };
            let input = input::build(&target.query, &variables, &ctx)
                .map_err(SimError::FunctionUnavailable)?;
            let report = deployment
                .harness
                .run(&target.export, &input)
                .map_err(|e| SimError::FunctionUnavailable(format!("{e:#}")))?;
            let violations = report.limit_violations();
            let error = report
                .trap
                .clone()
                .or_else(|| (!violations.is_empty()).then(|| violations.join("; ")));
            let output = report.output.as_ref().map(|o| o.to_value());
            let operations = match (&error, &output) {
                (None, Some(out)) => out
                    .get("operations")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let ops = Operations {
                discount,
                run: runs.len(),
                operations,
            };
            if target_name == LINES_TARGET {
                line_ops.push(ops);
            } else {
                delivery_ops.push(ops);
            }
            runs.push(FunctionRun {
                discount_id: discount.gid.clone(),
                target: target.target.clone(),
                export: target.export.clone(),
                instructions: report.instructions,
                logs: report.logs.clone(),
                output: if error.is_some() { None } else { output },
                error,
                rejected: Vec::new(),
            });
        }
    }

    let mut line_discounts = vec![Decimal::ZERO; cart.lines.len()];
    let mut applied = Vec::new();
    // Product discounts first: order discounts apply to what the lines cost after them.
    for ops in &line_ops {
        for op in &ops.operations {
            if let Some(add) = op.get("productDiscountsAdd") {
                if !has_class(ops.discount, "PRODUCT") {
                    runs[ops.run]
                        .rejected
                        .push(rejected_class("productDiscountsAdd", "PRODUCT"));
                    continue;
                }
                if let Err(why) =
                    apply_product(&cart, ops.discount, add, &mut line_discounts, &mut applied)
                {
                    runs[ops.run]
                        .rejected
                        .push(format!("productDiscountsAdd: {why}"));
                }
            }
        }
    }
    let mut order_discount = Decimal::ZERO;
    for ops in &line_ops {
        for op in &ops.operations {
            let Some((name, body)) = op.as_object().and_then(|o| o.iter().next()) else {
                continue;
            };
            match name.as_str() {
                "productDiscountsAdd" => {}
                "orderDiscountsAdd" if !has_class(ops.discount, "ORDER") => {
                    runs[ops.run]
                        .rejected
                        .push(rejected_class("orderDiscountsAdd", "ORDER"));
                }
                "orderDiscountsAdd" => {
                    match apply_order(
                        &cart,
                        ops.discount,
                        body,
                        &line_discounts,
                        order_discount,
                        &mut applied,
                    ) {
                        Ok(amount) => order_discount += amount,
                        Err(why) => runs[ops.run]
                            .rejected
                            .push(format!("orderDiscountsAdd: {why}")),
                    }
                }
                other => runs[ops.run].rejected.push(format!(
                    "{other}: no discount codes in the simulated checkout"
                )),
            }
        }
    }
    let mut shipping_discounts = vec![Decimal::ZERO; cart.delivery_groups.len()];
    for ops in &delivery_ops {
        for op in &ops.operations {
            match op.get("deliveryDiscountsAdd") {
                Some(_) if !has_class(ops.discount, "SHIPPING") => {
                    runs[ops.run].rejected.push(rejected_class("deliveryDiscountsAdd", "SHIPPING"));
                }
                Some(add) => {
                    if let Err(why) = apply_delivery(&cart, ops.discount, add, &mut shipping_discounts, &mut applied) {
                        runs[ops.run].rejected.push(format!("deliveryDiscountsAdd: {why}"));
                    }
                }
                None => runs[ops.run]
                    .rejected
                    .push("an operation other than deliveryDiscountsAdd: no discount codes in the simulated checkout".into()),
            }
        }
    }

    let lines: Vec<LineAnswer> = cart
        .lines
        .iter()
        .zip(&line_discounts)
        .map(|(l, discount)| LineAnswer {
            id: l.id.clone(),
            variant: crate::data::gid("ProductVariant", l.variant.id),
            product: crate::data::gid("Product", l.product.id),
            title: format!("{} — {}", l.product.title, l.variant.title),
            quantity: l.quantity,
            unit_price: format_money(l.unit_price),
            subtotal: format_money(l.subtotal()),
            discount: format_money(*discount),
            total: format_money(l.subtotal() - discount),
        })
        .collect();
    let lines_subtotal = cart.subtotal();
    let subtotal = lines_subtotal - line_discounts.iter().sum::<Decimal>() - order_discount;
    let shipping = cart.delivery_groups.first().and_then(|g| {
        let option = g.options.first()?;
        let discount = shipping_discounts[0];
        Some((
            ShippingAnswer {
                delivery_group: g.id.clone(),
                handle: option.handle.clone(),
                title: option.title.clone(),
                price: format_money(option.price),
                discount: format_money(discount),
                total: format_money(option.price - discount),
            },
            option.price - discount,
        ))
    });
    let shipping_total = shipping.as_ref().map_or(Decimal::ZERO, |(_, t)| *t);
    Ok(CheckoutAnswer {
        shop: request.shop,
        customer: request.customer,
        currency: cart.currency.clone(),
        lines,
        lines_subtotal: format_money(lines_subtotal),
        discounts: applied,
        subtotal: format_money(subtotal),
        shipping: shipping.map(|(s, _)| s),
        total: format_money(subtotal + shipping_total),
        function_runs: runs,
    })
}

fn has_class(d: &ActiveDiscount, class: &str) -> bool {
    d.classes.iter().any(|c| c == class)
}

fn rejected_class(operation: &str, class: &str) -> String {
    format!("{operation}: the discount does not have the {class} class")
}

/// A Decimal from the Function's output (a string, as the schema's `Decimal`, or a number).
fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

/// A candidate's `value`.
enum Amount {
    Percentage(Decimal),
    Fixed { amount: Decimal, each_item: bool },
}

fn amount(candidate: &Value) -> Result<Amount, String> {
    let value = &candidate["value"];
    if let Some(p) = value.get("percentage") {
        let p = decimal(&p["value"]).ok_or("percentage.value is not a decimal")?;
        if p < Decimal::ZERO || p > Decimal::ONE_HUNDRED {
            return Err(format!("percentage {p} is not between 0 and 100"));
        }
        return Ok(Amount::Percentage(p));
    }
    if let Some(f) = value.get("fixedAmount") {
        let amount = decimal(&f["amount"]).ok_or("fixedAmount.amount is not a decimal")?;
        if amount < Decimal::ZERO {
            return Err("fixedAmount.amount is negative".into());
        }
        let each_item = f
            .get("appliesToEachItem")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        return Ok(Amount::Fixed { amount, each_item });
    }
    Err("the candidate's value is neither percentage nor fixedAmount".into())
}

fn candidates(add: &Value) -> Result<&Vec<Value>, String> {
    add["candidates"]
        .as_array()
        .ok_or_else(|| "no candidates list".to_owned())
}

fn message(candidate: &Value) -> Option<String> {
    candidate["message"].as_str().map(str::to_owned)
}

/// What one product candidate takes off each targeted line (line index, amount).
fn product_reductions(cart: &Cart, candidate: &Value) -> Result<Vec<(usize, Decimal)>, String> {
    let targets = candidate["targets"].as_array().ok_or("no targets")?;
    let mut bases = Vec::new();
    for t in targets {
        let target = &t["cartLine"];
        let id = target["id"].as_str().ok_or("a target is not a cartLine")?;
        let index = cart
            .lines
            .iter()
            .position(|l| l.id == id)
            .ok_or_else(|| format!("target {id} is not a line of the cart"))?;
        let line = &cart.lines[index];
        let quantity = target["quantity"]
            .as_u64()
            .unwrap_or(line.quantity)
            .min(line.quantity);
        bases.push((index, quantity, line.unit_price * Decimal::from(quantity)));
    }
    let total_base: Decimal = bases.iter().map(|(_, _, b)| *b).sum();
    Ok(match amount(candidate)? {
        Amount::Percentage(p) => bases
            .iter()
            .map(|(i, _, base)| (*i, money(base * p / Decimal::ONE_HUNDRED)))
            .collect(),
        Amount::Fixed {
            amount,
            each_item: true,
        } => bases
            .iter()
            .map(|(i, q, base)| (*i, money(amount * Decimal::from(*q)).min(*base)))
            .collect(),
        Amount::Fixed {
            amount,
            each_item: false,
        } => {
            // One amount spread over the targets in proportion to what they cost; the last
            // target takes the rounding remainder.
            let total = amount.min(total_base);
            let mut left = total;
            let mut out = Vec::new();
            for (n, (i, _, base)) in bases.iter().enumerate() {
                let share = if n + 1 == bases.len() || total_base.is_zero() {
                    left
                } else {
                    money(total * base / total_base)
                };
                left -= share;
                out.push((*i, share));
            }
            out
        }
    })
}

fn apply_product(
    cart: &Cart,
    discount: &ActiveDiscount,
    add: &Value,
    line_discounts: &mut [Decimal],
    applied: &mut Vec<AppliedDiscount>,
) -> Result<(), String> {
    let mut scored = Vec::new();
    for c in candidates(add)? {
        let reductions = product_reductions(cart, c)?;
        let total: Decimal = reductions.iter().map(|(_, a)| *a).sum();
        scored.push((c, reductions, total));
    }
    let strategy = add["selectionStrategy"].as_str().unwrap_or("FIRST");
    let chosen: Vec<_> = match strategy {
        "ALL" => scored.iter().collect(),
        "FIRST" => scored.iter().take(1).collect(),
        "MAXIMUM" => scored
            .iter()
            .max_by_key(|(_, _, total)| *total)
            .into_iter()
            .collect(),
        other => return Err(format!("unknown selectionStrategy {other}")),
    };
    for (candidate, reductions, _) in chosen {
        let mut taken = Decimal::ZERO;
        let mut targets = Vec::new();
        for (i, amount) in reductions {
            // A line never goes below zero, whatever several candidates add up to.
            let room = cart.lines[*i].subtotal() - line_discounts[*i];
            let amount = (*amount).min(room);
            line_discounts[*i] += amount;
            taken += amount;
            targets.push(cart.lines[*i].id.clone());
        }
        applied.push(AppliedDiscount {
            discount_id: discount.gid.clone(),
            title: discount.title.clone(),
            class: "PRODUCT".into(),
            message: message(candidate),
            amount: format_money(taken),
            targets,
        });
    }
    Ok(())
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an order candidate's conditions hold (amounts before discounts).
fn conditions_hold(cart: &Cart, candidate: &Value) -> Result<bool, String> {
    let Some(conditions) = candidate.get("conditions").and_then(Value::as_array) else {
        return Ok(true);
    };
    for c in conditions {
        let holds = if let Some(min) = c.get("orderMinimumSubtotal") {
            let excluded = ids(&min["excludedCartLineIds"]);
            let minimum = decimal(&min["minimumAmount"]).ok_or("minimumAmount is not a decimal")?;
            let sum: Decimal = cart
                .lines
                .iter()
                .filter(|l| !excluded.contains(&l.id))
                .map(|l| l.subtotal())
                .sum();
            sum >= minimum
        } else if let Some(min) = c.get("cartLineMinimumQuantity") {
            let wanted = ids(&min["ids"]);
            let minimum = min["minimumQuantity"]
                .as_u64()
                .ok_or("minimumQuantity is not a count")?;
            let sum: u64 = cart
                .lines
                .iter()
                .filter(|l| wanted.contains(&l.id))
                .map(|l| l.quantity)
                .sum();
            sum >= minimum
        } else if let Some(min) = c.get("cartLineMinimumSubtotal") {
            let wanted = ids(&min["ids"]);
            let minimum = decimal(&min["minimumAmount"]).ok_or("minimumAmount is not a decimal")?;
            let sum: Decimal = cart
                .lines
                .iter()
                .filter(|l| wanted.contains(&l.id))
                .map(|l| l.subtotal())
                .sum();
            sum >= minimum
        } else {
            return Err(format!("unknown condition {c}"));
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Applies one `orderDiscountsAdd`; returns what it took off.
fn apply_order(
    cart: &Cart,
    discount: &ActiveDiscount,
    add: &Value,
    line_discounts: &[Decimal],
    already: Decimal,
    applied: &mut Vec<AppliedDiscount>,
) -> Result<Decimal, String> {
    let after_lines: Decimal = cart.subtotal() - line_discounts.iter().sum::<Decimal>();
    let mut scored = Vec::new();
    for c in candidates(add)? {
        if !conditions_hold(cart, c)? {
            continue;
        }
        let target = &c["targets"][0]["orderSubtotal"];
        if target.is_null() {
            return Err("a target is not orderSubtotal".into());
        }
        let excluded = ids(&target["excludedCartLineIds"]);
        let base: Decimal = cart
            .lines
            .iter()
            .zip(line_discounts)
            .filter(|(l, _)| !excluded.contains(&l.id))
            .map(|(l, d)| l.subtotal() - d)
            .sum();
        let amount = match amount(c)? {
            Amount::Percentage(p) => money(base * p / Decimal::ONE_HUNDRED),
            Amount::Fixed { amount, .. } => amount.min(base),
        };
        scored.push((c, excluded, amount));
    }
    let strategy = add["selectionStrategy"].as_str().unwrap_or("FIRST");
    let chosen = match strategy {
        "FIRST" => scored.into_iter().next(),
        "MAXIMUM" => scored.into_iter().max_by_key(|(_, _, a)| *a),
        other => {
            return Err(format!(
                "selectionStrategy {other} is not one of FIRST, MAXIMUM"
            ))
        }
    };
    let Some((candidate, excluded, amount)) = chosen else {
        return Ok(Decimal::ZERO);
    };
    let amount = amount.min(after_lines - already).max(Decimal::ZERO);
    applied.push(AppliedDiscount {
        discount_id: discount.gid.clone(),
        title: discount.title.clone(),
        class: "ORDER".into(),
        message: message(candidate),
        amount: format_money(amount),
        targets: excluded,
    });
    Ok(amount)
}

fn apply_delivery(
    cart: &Cart,
    discount: &ActiveDiscount,
    add: &Value,
    shipping_discounts: &mut [Decimal],
    applied: &mut Vec<AppliedDiscount>,
) -> Result<(), String> {
    if let Some(s) = add["selectionStrategy"].as_str().filter(|s| *s != "ALL") {
        return Err(format!("selectionStrategy {s} is not ALL"));
    }
    for c in candidates(add)? {
        let mut taken = Decimal::ZERO;
        let mut handles = Vec::new();
        for t in c["targets"].as_array().ok_or("no targets")? {
            let group = if let Some(id) = t["deliveryGroup"]["id"].as_str() {
                cart.delivery_groups.iter().position(|g| g.id == id)
            } else if let Some(handle) = t["deliveryOption"]["handle"].as_str() {
                cart.delivery_groups
                    .iter()
                    .position(|g| g.options.first().is_some_and(|o| o.handle == handle))
            } else {
                return Err("a target is neither deliveryGroup nor deliveryOption".into());
            };
            let Some(g) = group else {
                return Err(format!("target {t} is not in the cart"));
            };
            let Some(option) = cart.delivery_groups[g].options.first() else {
                continue;
            };
            let off = match amount(c)? {
                Amount::Percentage(p) => money(option.price * p / Decimal::ONE_HUNDRED),
                Amount::Fixed { amount, .. } => amount,
            };
            let off = off.min(option.price - shipping_discounts[g]);
            shipping_discounts[g] += off;
            taken += off;
            handles.push(option.handle.clone());
        }
        applied.push(AppliedDiscount {
            discount_id: discount.gid.clone(),
            title: discount.title.clone(),
            class: "SHIPPING".into(),
            message: message(c),
            amount: format_money(taken),
            targets: handles,
        });
    }
    Ok(())
}
