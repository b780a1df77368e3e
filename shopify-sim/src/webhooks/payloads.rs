//! Bodies of the webhook topics every app must handle, with Shopify's field names and types
//! (REST-shaped JSON, integer ids; reference app-platform.md §5.5–5.7). Values are the
//! simulator's own demo data; ids are derived from the shop domain so they agree with
//! [`crate::ShopInfo::id`] and across simulator instances.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::state::{app_installation_id_for, shop_display_name, shop_handle, shop_id_for};

/// The customer block of `customers/data_request` and `customers/redact`. Shopify may send only
/// some of the fields (e.g. only `email`), so each is optional and omitted when `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceCustomer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// `app/uninstalled`: the shop object.
pub fn app_uninstalled(shop: &str) -> Value {
    let handle = shop_handle(shop);
    let email = format!("owner@{handle}.example");
    // Two halves: one `json!` of ~55 fields exceeds the macro's recursion limit.
    let identity = json!({
        "id": shop_id_for(shop),
        "name": shop_display_name(shop),
        "email": email,
        "domain": shop,
        "province": "Ontario",
        "country": "CA",
        "address1": "150 Elgin Street",
        "zip": "K2P 1L4",
        "city": "Ottawa",
        "source": null,
        "phone": "6135550100",
        "latitude": 45.4215,
        "longitude": -75.6972,
        "primary_locale": "en",
        "address2": "",
        "created_at": "2025-03-04T10:15:00-05:00",
        "updated_at": "2026-09-01T08:00:00-04:00",
        "country_code": "CA",
        "country_name": "Canada",
        "currency": "CAD",
        "customer_email": email,
    });
    let settings = json!({
        "timezone": "(GMT-05:00) Eastern Time (US & Canada)",
        "iana_timezone": "America/Toronto",
        "shop_owner": "Sam Keel",
        "money_format": "${{amount}}",
        "money_with_currency_format": "${{amount}} CAD",
        "weight_unit": "kg",
        "province_code": "ON",
        "taxes_included": false,
        "auto_configure_tax_inclusivity": null,
        "tax_shipping": null,
        "county_taxes": true,
        "plan_display_name": "Basic",
        "plan_name": "basic",
        "has_discounts": true,
        "has_gift_cards": false,
        "myshopify_domain": shop,
        "google_apps_domain": null,
        "google_apps_login_enabled": null,
        "money_in_emails_format": "${{amount}}",
        "money_with_currency_in_emails_format": "${{amount}} CAD",
        "eligible_for_payments": true,
        "requires_extra_payments_agreement": false,
        "password_enabled": false,
        "has_storefront": true,
        "finances": true,
        "primary_location_id": shop_id_for(&format!("location:{shop}")),
        "checkout_api_supported": true,
        "multi_location_enabled": true,
        "setup_required": false,
        "pre_launch_enabled": false,
        "enabled_presentment_currencies": ["CAD"],
        "marketing_sms_consent_enabled_at_checkout": false,
        "transactional_sms_disabled": false,
    });
    merge(identity, settings)
}

fn merge(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut a), Value::Object(b)) => {
            a.extend(b);
            Value::Object(a)
        }
        (a, _) => a,
    }
}

/// `app/scopes_update`: scopes before and after the change.
pub fn app_scopes_update(
    shop: &str,
    previous: &[&str],
    current: &[&str],
    updated_at: DateTime<Utc>,
) -> Value {
    json!({
        "id": app_installation_id_for(shop),
        "previous": previous,
        "current": current,
        "updated_at": updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

/// `customers/data_request`: report what the app stores about the customer.
pub fn customers_data_request(
    shop: &str,
    customer: &ComplianceCustomer,
    orders_requested: &[u64],
    data_request_id: u64,
) -> Value {
    json!({
        "shop_id": shop_id_for(shop),
        "shop_domain": shop,
        "customer": customer,
        "orders_requested": orders_requested,
        "data_request": { "id": data_request_id },
    })
}

/// `customers/redact`: erase the customer's data and these orders.
pub fn customers_redact(
    shop: &str,
    customer: &ComplianceCustomer,
    orders_to_redact: &[u64],
) -> Value {
    json!({
        "shop_id": shop_id_for(shop),
        "shop_domain": shop,
        "customer": customer,
        "orders_to_redact": orders_to_redact,
    })
}

/// `shop/redact`: erase everything for the shop.
pub fn shop_redact(shop: &str) -> Value {
    json!({ "shop_id": shop_id_for(shop), "shop_domain": shop })
}
