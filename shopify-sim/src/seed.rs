//! Seeding a shop's data: [`Seed`] is the JSON accepted by [`crate::Sim::seed`],
//! `POST /_sim/shops/{shop}/seed` and the binary's `--seed FILE` (see `fixtures/`).
//!
//! Seeding merges: entities with an id already present are replaced, others added, so a test can
//! load a fixture and then add the one customer it is about.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::data::{
    gid, resolve_namespace, Customer, Discount, InventoryLevel, Location, MetafieldSeed, Order,
    Product, ShopData,
};

/// Everything a shop can be seeded with. Field names follow Shopify's REST/webhook payloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Shop currency (default `USD`).
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub customers: Vec<Customer>,
    #[serde(default)]
    pub orders: Vec<Order>,
    #[serde(default)]
    pub products: Vec<Product>,
    #[serde(default)]
    pub locations: Vec<Location>,
    #[serde(default)]
    pub inventory_levels: Vec<InventoryLevel>,
    #[serde(default)]
    pub discounts: Vec<Discount>,
    /// Metafields on the shop itself.
    #[serde(default)]
    pub shop_metafields: Vec<MetafieldSeed>,
    /// Flow trigger handles the app has deployed; when non-empty, `flowTriggerReceive` with any
    /// other handle gets Flow's "Invalid handle" userError.
    #[serde(default)]
    pub flow_trigger_handles: Vec<String>,
    /// Function handles the app has deployed; when non-empty, discounts naming another handle
    /// are refused.
    #[serde(default)]
    pub function_handles: Vec<String>,
}

/// How many entities a seed added or replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedSummary {
    pub customers: usize,
    pub orders: usize,
    pub products: usize,
    pub variants: usize,
    pub locations: usize,
    pub inventory_levels: usize,
    pub discounts: usize,
    pub metafields: usize,
}

impl Seed {
    /// Parses a fixture file's contents.
    pub fn from_json(text: &str) -> Result<Seed, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// Merges `seed` into `data`. Missing timestamps become `now`.
pub(crate) fn apply(
    data: &mut ShopData,
    seed: Seed,
    shop_gid: &str,
    client_id: &str,
    now: DateTime<Utc>,
) -> SeedSummary {
    let mut summary = SeedSummary::default();
    let mut metafields: Vec<(String, MetafieldSeed)> = Vec::new();
    if let Some(c) = seed.currency {
        data.currency = c;
    }
    for m in seed.shop_metafields {
        metafields.push((shop_gid.to_owned(), m));
    }
    for mut c in seed.customers {
        c.created_at.get_or_insert(now);
        c.updated_at = c.updated_at.or(c.created_at);
        for m in c.metafields.drain(..) {
            metafields.push((gid("Customer", c.id), m));
        }
        data.customers.insert(c.id, c);
        summary.customers += 1;
    }
    for mut o in seed.orders {
        o.created_at.get_or_insert(now);
        o.processed_at = o.processed_at.or(o.created_at);
        o.updated_at = o.updated_at.or(o.created_at);
        for f in &mut o.fulfillments {
            f.created_at = f.created_at.or(o.created_at);
        }
        for m in o.metafields.drain(..) {
            metafields.push((gid("Order", o.id), m));
        }
        data.orders.insert(o.id, o);
        summary.orders += 1;
    }
    for mut p in seed.products {
        p.created_at.get_or_insert(now);
        p.updated_at = p.updated_at.or(p.created_at);
        for m in p.metafields.drain(..) {
            metafields.push((gid("Product", p.id), m));
        }
        summary.variants += p.variants.len();
        data.products.insert(p.id, p);
        summary.products += 1;
    }
    for l in seed.locations {
        data.locations.insert(l.id, l);
        summary.locations += 1;
    }
    for l in seed.inventory_levels {
        data.inventory
            .insert((l.inventory_item_id, l.location_id), l);
        summary.inventory_levels += 1;
    }
    for mut d in seed.discounts {
        let owner = d.gid();
        for m in d.metafields.drain(..) {
            metafields.push((owner.clone(), m));
        }
        data.discounts.insert(d.id, d);
        summary.discounts += 1;
    }
    data.flow_trigger_handles.extend(seed.flow_trigger_handles);
    data.function_handles.extend(seed.function_handles);
    for (owner, m) in metafields {
        let namespace = resolve_namespace(&m.namespace, client_id);
        data.put_metafield(owner, namespace, m.key, m.kind, m.value, now);
        summary.metafields += 1;
    }
    summary
}
