//! The `Store` contract, told once and run against both backends: every story below is an
//! `async fn(&TestDb)` that `conformance!` expands into `on_sqlite::<story>` and
//! `on_postgres::<story>`. A behaviour that differs between SQLite and PostgreSQL fails here.
//!
//! Stories check real rows (through the store's reads and, where the store has no read, through
//! a raw pool), never only the values a write returned.

use crate::support::db::{Backend, TestDb};
use chrono::DateTime;
use keel::store::{
    CustomerRef, DataExport, DynStore, IgnoreReason, JobCounts, NewJob, NewToken, NewWebhook,
    RedactCounts, RefreshClaim, Shop, ShopRequirement, SyncStatus, Timestamp, TokenRecord,
    VipSettings, VipSyncClaim, VipSyncOutcome, WebhookRecorded,
};
use std::collections::{BTreeSet, HashMap};

macro_rules! conformance {
    ($($story:ident),* $(,)?) => {
        conformance!(@backend on_sqlite, Sqlite, $($story),*);
        conformance!(@backend on_postgres, Postgres, $($story),*);
    };
    (@backend $module:ident, $backend:ident, $($story:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $story() {
                    let db = super::TestDb::new(super::Backend::$backend).await;
                    super::$story(&db).await;
                }
            )*
        }
    };
}

conformance!(
    install_stores_the_shop_and_its_token_and_reinstall_bumps_the_version,
    token_versions_are_never_reused_after_the_token_is_deleted,
    only_one_of_two_concurrent_refresh_claims_wins,
    an_expired_refresh_lease_passes_to_another_holder_and_the_old_one_cannot_finish,
    set_scopes_changes_a_known_shop_only,
    uninstall_deletes_the_token_and_cancels_queued_jobs_except_kept_kinds,
    uninstall_after_a_newer_install_changes_nothing,
    duplicate_webhook_key_is_recorded_once,
    twenty_concurrent_deliveries_of_one_key_queue_exactly_one,
    concurrent_batches_sharing_keys_in_opposite_orders_record_each_key_once,
    concurrent_batches_on_one_store_each_get_their_own_outcomes_in_order,
    record_webhooks_for_unknown_shop_is_ignored_without_payload,
    deliveries_for_an_uninstalled_shop_are_ignored_unless_only_a_known_shop_is_required,
    receipts_are_listed_newest_first_and_their_status_can_be_set,
    claim_takes_the_oldest_due_job_first_and_never_a_future_one,
    concurrent_claims_never_get_the_same_job,
    expired_lease_makes_a_running_job_claimable_again,
    retry_requeues_the_job_at_its_new_time_and_bury_makes_it_dead,
    job_counts_tally_every_status,
    customer_data_finds_receipts_by_id_or_email_and_the_customers_exports,
    redact_customer_scrubs_payloads_and_deletes_exports,
    redact_shop_erases_every_row_of_that_shop_only,
    migrations_are_current_only_after_migrate,
    jobs_of_a_shop_needing_reauthorisation_wait_until_it_reauthorises,
    saving_vip_settings_bumps_the_version_and_queues_its_sync_job_in_the_same_write,
    vip_settings_of_an_unknown_shop_are_not_saved_and_queue_nothing,
    one_vip_sync_of_a_shop_holds_the_lease_at_a_time,
    a_superseded_vip_sync_records_the_discount_but_never_the_newer_saves_status,
    uninstall_fails_a_pending_vip_sync_whose_job_it_cancelled_and_keeps_the_settings,
    every_queued_delivery_becomes_one_job_in_arrival_order_even_after_a_reopen,
    a_backlog_of_deliveries_is_claimed_once_each_in_order,
    uninstall_cancels_deliveries_recorded_just_before_it_except_kept_kinds,
);

const SHOP: &str = "keel-test.myshopify.com";
const OTHER: &str = "other-test.myshopify.com";

/// The test clock: seconds after a fixed instant (whole milliseconds, as the store keeps them).
fn at(secs: i64) -> Timestamp {
    DateTime::from_timestamp_millis(1_767_603_600_000 + secs * 1000).unwrap()
}

fn token(tag: &str) -> NewToken {
    NewToken {
        access_token: format!("sealed-access-{tag}").into_bytes(),
        access_expires_at: Some(at(3600)),
        refresh_token: Some(format!("sealed-refresh-{tag}").into_bytes()),
        refresh_expires_at: Some(at(86_400)),
        scope: "read_customers,write_customers".into(),
    }
}

fn customer(id: Option<i64>, email: Option<&str>) -> CustomerRef {
    CustomerRef {
        id,
        email: email.map(str::to_string),
    }
}

fn delivery(shop: &str, key: &str, topic: &str) -> NewWebhook {
    NewWebhook {
        shop: shop.into(),
        topic: topic.into(),
        dedupe_key: format!("event:{key}"),
        webhook_id: format!("webhook-{key}"),
        event_id: Some(key.into()),
        api_version: Some("2025-10".into()),
        triggered_at: Some("2026-01-05T09:00:00.000Z".into()),
        payload: format!(r#"{{"key":"{key}"}}"#),
        customer: CustomerRef::default(),
        requires: ShopRequirement::Installed,
    }
}

fn about(mut w: NewWebhook, who: CustomerRef) -> NewWebhook {
    w.customer = who;
    w
}

fn job(shop: Option<&str>, kind: &str, run_at: Timestamp) -> NewJob {
    NewJob {
        shop: shop.map(str::to_string),
        kind: kind.into(),
        payload: r#"{"n":1}"#.into(),
        receipt_id: None,
        run_at,
        max_attempts: 5,
    }
}

async fn record_one(store: &DynStore, w: NewWebhook, now: Timestamp) -> WebhookRecorded {
    let outcomes = store.record_webhooks(vec![w], now).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    outcomes[0]
}

/// The receipt id of a delivery that was queued.
fn queued(outcome: WebhookRecorded) -> i64 {
    match outcome {
        WebhookRecorded::Queued { receipt_id } => receipt_id,
        other => panic!("expected the delivery to be queued, got {other:?}"),
    }
}

async fn install_stores_the_shop_and_its_token_and_reinstall_bumps_the_version(db: &TestDb) {
    let store = db.store().await;
    assert_eq!(store.shop(SHOP).await.unwrap(), None);
    assert_eq!(store.token(SHOP).await.unwrap(), None);

    let first = token("first");
    let stored = store.install_shop(SHOP, &first, at(0)).await.unwrap();
    assert_eq!(
        stored,
        TokenRecord {
            token: first.clone(),
            version: 1,
            updated_at: at(0)
        }
    );
    assert_eq!(store.token(SHOP).await.unwrap(), Some(stored));
    assert_eq!(
        store.shop(SHOP).await.unwrap(),
        Some(Shop {
            domain: SHOP.into(),
            installed: true,
            scopes: first.scope.clone(),
            installed_at: Some(at(0)),
            uninstalled_at: None,
            needs_reauth: false,
            created_at: at(0),
            updated_at: at(0),
        })
    );

    // A legacy, non-expiring token with narrower scopes replaces the first one.
    let second = NewToken {
        access_token: b"sealed-access-second".to_vec(),
        access_expires_at: None,
        refresh_token: None,
        refresh_expires_at: None,
        scope: "read_customers".into(),
    };
    let stored = store.install_shop(SHOP, &second, at(60)).await.unwrap();
    assert_eq!(
        stored,
        TokenRecord {
            token: second.clone(),
            version: 2,
            updated_at: at(60)
        }
    );
    assert_eq!(store.token(SHOP).await.unwrap(), Some(stored));
    let shop = store.shop(SHOP).await.unwrap().unwrap();
    assert_eq!(shop.scopes, "read_customers");
    assert_eq!(
        shop.installed_at,
        Some(at(0)),
        "an installed shop keeps its install time"
    );
    assert_eq!((shop.created_at, shop.updated_at), (at(0), at(60)));
}

async fn token_versions_are_never_reused_after_the_token_is_deleted(db: &TestDb) {
    let store = db.store().await;
    assert_eq!(
        store
            .install_shop(SHOP, &token("a"), at(0))
            .await
            .unwrap()
            .version,
        1
    );

    store.mark_needs_reauth(SHOP, at(10)).await.unwrap();
    assert_eq!(store.token(SHOP).await.unwrap(), None);
    let shop = store.shop(SHOP).await.unwrap().unwrap();
    assert!(shop.needs_reauth && shop.installed);
    assert_eq!(shop.updated_at, at(10));

    let again = store.install_shop(SHOP, &token("b"), at(20)).await.unwrap();
    assert_eq!(
        again.version, 2,
        "a deleted token's version is not handed out again"
    );
    assert!(!store.shop(SHOP).await.unwrap().unwrap().needs_reauth);
}

async fn only_one_of_two_concurrent_refresh_claims_wins(db: &TestDb) {
    // Two stores on one database stand for two replicas.
    let replicas = [db.store().await, db.store().await];
    let installed = replicas[0]
        .install_shop(SHOP, &token("a"), at(0))
        .await
        .unwrap();
    for round in 0..10i64 {
        let now = at(100 * round);
        let claims = (0..8).map(|i| {
            let store = replicas[i % 2].clone();
            tokio::spawn(async move {
                let holder = format!("holder-{round}-{i}");
                let claim = store
                    .claim_token_refresh(SHOP, &holder, now + chrono::Duration::seconds(30), now)
                    .await;
                (holder, claim.unwrap())
            })
        });
        let mut winners = Vec::new();
        for claim in join_all(claims).await {
            match claim {
                (holder, RefreshClaim::Claimed(record)) => {
                    assert_eq!(record, installed);
                    winners.push(holder);
                }
                (_, RefreshClaim::Busy) => {}
                (_, RefreshClaim::NoToken) => panic!("the token exists"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert!(replicas[1]
            .finish_token_refresh(SHOP, &winners[0], None, now)
            .await
            .unwrap());
    }
    assert_eq!(
        replicas[0].token(SHOP).await.unwrap(),
        Some(installed),
        "claims alone write no token"
    );
}

async fn join_all<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        out.push(task.await.unwrap());
    }
    out
}

async fn an_expired_refresh_lease_passes_to_another_holder_and_the_old_one_cannot_finish(
    db: &TestDb,
) {
    let store = db.store().await;
    let v1 = store.install_shop(SHOP, &token("v1"), at(0)).await.unwrap();

    assert_eq!(
        store
            .claim_token_refresh(SHOP, "a", at(30), at(0))
            .await
            .unwrap(),
        RefreshClaim::Claimed(v1.clone())
    );
    assert_eq!(
        store
            .claim_token_refresh(SHOP, "b", at(40), at(10))
            .await
            .unwrap(),
        RefreshClaim::Busy
    );
    assert_eq!(
        store
            .claim_token_refresh(SHOP, "b", at(40), at(29))
            .await
            .unwrap(),
        RefreshClaim::Busy
    );
    // The lease ends at its instant.
    assert_eq!(
        store
            .claim_token_refresh(SHOP, "b", at(60), at(30))
            .await
            .unwrap(),
        RefreshClaim::Claimed(v1.clone())
    );

    // "a" refreshed too late: its result is discarded and nothing is written.
    assert!(!store
        .finish_token_refresh(SHOP, "a", Some(&token("from-a")), at(31))
        .await
        .unwrap());
    assert!(!store
        .finish_token_refresh(SHOP, "a", None, at(31))
        .await
        .unwrap());
    assert_eq!(store.token(SHOP).await.unwrap(), Some(v1));

    assert!(store
        .finish_token_refresh(SHOP, "b", Some(&token("from-b")), at(32))
        .await
        .unwrap());
    let v2 = TokenRecord {
        token: token("from-b"),
        version: 2,
        updated_at: at(32),
    };
    assert_eq!(store.token(SHOP).await.unwrap(), Some(v2.clone()));

    // Finishing released the lease: the next refresher need not wait for its expiry.
    assert_eq!(
        store
            .claim_token_refresh(SHOP, "c", at(90), at(33))
            .await
            .unwrap(),
        RefreshClaim::Claimed(v2.clone())
    );
    assert!(store
        .finish_token_refresh(SHOP, "c", None, at(34))
        .await
        .unwrap());
    assert!(
        !store
            .finish_token_refresh(SHOP, "c", None, at(35))
            .await
            .unwrap(),
        "c no longer holds the lease"
    );
    assert_eq!(
        store.token(SHOP).await.unwrap(),
        Some(v2),
        "releasing without a token writes none"
    );

    assert_eq!(
        store
            .claim_token_refresh(OTHER, "a", at(90), at(36))
            .await
            .unwrap(),
        RefreshClaim::NoToken
    );
    store.mark_needs_reauth(SHOP, at(37)).await.unwrap();
    assert_eq!(
        store
            .claim_token_refresh(SHOP, "a", at(90), at(38))
            .await
            .unwrap(),
        RefreshClaim::NoToken
    );
}

async fn set_scopes_changes_a_known_shop_only(db: &TestDb) {
    let store = db.store().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    assert!(store
        .set_scopes(SHOP, "read_orders,write_orders", at(5))
        .await
        .unwrap());
    let shop = store.shop(SHOP).await.unwrap().unwrap();
    assert_eq!(
        (shop.scopes.as_str(), shop.updated_at),
        ("read_orders,write_orders", at(5))
    );
    assert!(!store.set_scopes(OTHER, "read_orders", at(5)).await.unwrap());
    assert_eq!(
        store.shop(OTHER).await.unwrap(),
        None,
        "set_scopes creates no shop"
    );
}

async fn uninstall_deletes_the_token_and_cancels_queued_jobs_except_kept_kinds(db: &TestDb) {
    let store = db.store().await;
    let raw = db.raw().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    store.install_shop(OTHER, &token("b"), at(0)).await.unwrap();
    let running = store
        .enqueue_job(&job(Some(SHOP), "sweep/delays", at(-10)), at(0))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_job("w", at(90), at(0))
            .await
            .unwrap()
            .unwrap()
            .id,
        running
    );
    let due = store
        .enqueue_job(&job(Some(SHOP), "webhook/orders/updated", at(0)), at(0))
        .await
        .unwrap();
    let later = store
        .enqueue_job(&job(Some(SHOP), "webhook/orders/create", at(500)), at(0))
        .await
        .unwrap();
    let kept = store
        .enqueue_job(&job(Some(SHOP), "webhook/shop/redact", at(0)), at(0))
        .await
        .unwrap();
    let others = store
        .enqueue_job(&job(Some(OTHER), "webhook/orders/updated", at(0)), at(0))
        .await
        .unwrap();

    let kinds = ["webhook/customers/redact", "webhook/shop/redact"];
    assert!(store
        .uninstall_shop(SHOP, at(100), &kinds, at(101))
        .await
        .unwrap());

    let shop = store.shop(SHOP).await.unwrap().unwrap();
    assert!(!shop.installed);
    assert_eq!(
        (shop.uninstalled_at, shop.updated_at),
        (Some(at(100)), at(101))
    );
    assert_eq!(store.token(SHOP).await.unwrap(), None);
    assert!(store.token(OTHER).await.unwrap().is_some());
    for (id, status) in [
        (running, "running"),
        (due, "cancelled"),
        (later, "cancelled"),
        (kept, "queued"),
        (others, "queued"),
    ] {
        assert_eq!(
            raw.text("jobs", "status", id).await.as_deref(),
            Some(status),
            "job {id}"
        );
    }
    assert_eq!(
        raw.int("jobs", "finished_at", due).await,
        Some(at(101).timestamp_millis())
    );
    assert_eq!(
        store.job_counts().await.unwrap(),
        JobCounts {
            queued: 2,
            running: 1,
            cancelled: 2,
            ..JobCounts::default()
        }
    );

    assert!(
        !store
            .uninstall_shop(SHOP, at(200), &kinds, at(201))
            .await
            .unwrap(),
        "already uninstalled"
    );
    assert_eq!(
        store.shop(SHOP).await.unwrap().unwrap().uninstalled_at,
        Some(at(100))
    );
    assert!(!store
        .uninstall_shop("unknown.myshopify.com", at(200), &kinds, at(201))
        .await
        .unwrap());
    raw.close().await;
}

async fn uninstall_after_a_newer_install_changes_nothing(db: &TestDb) {
    let store = db.store().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    let pending = store
        .enqueue_job(&job(Some(SHOP), "webhook/orders/updated", at(0)), at(0))
        .await
        .unwrap();
    // The merchant uninstalled at 100 and reinstalled at 200 before Keel processed the
    // uninstall: the shop never looked uninstalled, yet the token exchange at 200 is newer.
    let reinstalled = store
        .install_shop(SHOP, &token("b"), at(200))
        .await
        .unwrap();
    assert!(!store
        .uninstall_shop(SHOP, at(100), &[], at(201))
        .await
        .unwrap());
    let shop = store.shop(SHOP).await.unwrap().unwrap();
    assert!(shop.installed);
    assert_eq!((shop.uninstalled_at, shop.updated_at), (None, at(200)));
    assert_eq!(store.token(SHOP).await.unwrap(), Some(reinstalled));
    assert_eq!(
        store.job_counts().await.unwrap().queued,
        1,
        "job {pending} stays queued"
    );

    // A real uninstall applies; a reinstall after it wins over a late copy of an older one.
    assert!(store
        .uninstall_shop(SHOP, at(300), &[], at(301))
        .await
        .unwrap());
    let back = store
        .install_shop(SHOP, &token("c"), at(400))
        .await
        .unwrap();
    assert_eq!(
        store.shop(SHOP).await.unwrap().unwrap().installed_at,
        Some(at(400))
    );
    assert!(!store
        .uninstall_shop(SHOP, at(350), &[], at(401))
        .await
        .unwrap());
    assert!(store.shop(SHOP).await.unwrap().unwrap().installed);
    assert_eq!(store.token(SHOP).await.unwrap(), Some(back));
}

async fn duplicate_webhook_key_is_recorded_once(db: &TestDb) {
    let store = db.store().await;
    let raw = db.raw().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    store.install_shop(OTHER, &token("b"), at(0)).await.unwrap();
    let who = customer(Some(7), Some("ada@example.com"));
    let w = about(delivery(SHOP, "1", "customers/data_request"), who.clone());

    let receipt_id = queued(record_one(&store, w.clone(), at(1)).await);
    assert_eq!(
        record_one(&store, w.clone(), at(2)).await,
        WebhookRecorded::Duplicate { receipt_id }
    );

    let receipt = store.receipt(receipt_id).await.unwrap().unwrap();
    assert_eq!(
        (
            receipt.shop.as_str(),
            receipt.source.as_str(),
            receipt.topic.as_str(),
            receipt.dedupe_key.as_str()
        ),
        (SHOP, "webhook", "customers/data_request", "event:1")
    );
    assert_eq!(
        (receipt.status.as_str(), receipt.payload.as_deref()),
        ("queued", Some(w.payload.as_str()))
    );
    assert_eq!(
        (receipt.customer, receipt.received_at),
        (who, at(1)),
        "the second copy changed nothing"
    );
    assert_eq!(
        raw.text("receipts", "webhook_id", receipt_id)
            .await
            .as_deref(),
        Some("webhook-1")
    );
    assert_eq!(
        raw.text("receipts", "event_id", receipt_id)
            .await
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        raw.text("receipts", "api_version", receipt_id)
            .await
            .as_deref(),
        Some("2025-10")
    );
    assert_eq!(
        raw.text("receipts", "triggered_at", receipt_id)
            .await
            .as_deref(),
        w.triggered_at.as_deref()
    );

    // Within one batch, a second copy is a duplicate of the first.
    let outcomes = store
        .record_webhooks(
            vec![
                delivery(SHOP, "2", "orders/updated"),
                delivery(SHOP, "2", "orders/updated"),
            ],
            at(3),
        )
        .await
        .unwrap();
    let second = queued(outcomes[0]);
    assert_eq!(
        outcomes[1],
        WebhookRecorded::Duplicate { receipt_id: second }
    );

    // Keys are per shop.
    queued(
        record_one(
            &store,
            delivery(OTHER, "1", "customers/data_request"),
            at(4),
        )
        .await,
    );

    assert_eq!(raw.count("receipts", "shop", SHOP).await, 2);
    // Every queued delivery is one queued job (on SQLite, still waiting in its receipt).
    assert_eq!(store.job_counts().await.unwrap().queued, 3);
    let job = store.claim_job("w", at(90), at(5)).await.unwrap().unwrap();
    assert_eq!(
        (job.receipt_id, job.kind.as_str()),
        (Some(receipt_id), "webhook/customers/data_request")
    );
    assert_eq!(job.kind, keel::store::webhook_job_kind(&receipt.topic));
    assert_eq!(job.shop.as_deref(), Some(SHOP));
    // Due, and created, when the delivery arrived (SQLite creates it later, at the claim).
    for column in ["run_at", "created_at"] {
        assert_eq!(
            raw.int("jobs", column, job.id).await,
            Some(at(1).timestamp_millis())
        );
    }
    assert_eq!(raw.count("jobs", "shop", SHOP).await, 2);
    assert_eq!(raw.count("jobs", "shop", OTHER).await, 1);
    assert_eq!(store.job_counts().await.unwrap().queued, 2);
    raw.close().await;
}

async fn twenty_concurrent_deliveries_of_one_key_queue_exactly_one(db: &TestDb) {
    let replicas = [db.store().await, db.store().await];
    replicas[0]
        .install_shop(SHOP, &token("a"), at(0))
        .await
        .unwrap();
    let copies = (0..20).map(|i| {
        let store = replicas[i % 2].clone();
        tokio::spawn(async move {
            record_one(&store, delivery(SHOP, "same", "orders/updated"), at(1)).await
        })
    });
    let outcomes = join_all(copies).await;
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, WebhookRecorded::Queued { .. }))
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let receipt_id = queued(*winners[0]);
    let duplicates = outcomes
        .iter()
        .filter(|o| **o == WebhookRecorded::Duplicate { receipt_id })
        .count();
    assert_eq!(duplicates, 19, "{outcomes:?}");

    let raw = db.raw().await;
    assert_eq!(raw.count("receipts", "shop", SHOP).await, 1);
    raw.close().await;
    assert_eq!(replicas[0].job_counts().await.unwrap().queued, 1);
}

async fn concurrent_batches_sharing_keys_in_opposite_orders_record_each_key_once(db: &TestDb) {
    let replicas = [db.store().await, db.store().await];
    replicas[0]
        .install_shop(SHOP, &token("a"), at(0))
        .await
        .unwrap();
    let keys: Vec<String> = (0..6).map(|k| format!("k{k}")).collect();
    let batches = (0..10).map(|i| {
        let store = replicas[i % 2].clone();
        let mut batch: Vec<_> = keys
            .iter()
            .map(|k| delivery(SHOP, k, "orders/updated"))
            .collect();
        if i % 2 == 1 {
            batch.reverse();
        }
        tokio::spawn(async move {
            let keys: Vec<String> = batch.iter().map(|w| w.dedupe_key.clone()).collect();
            let outcomes = store.record_webhooks(batch, at(1)).await.unwrap();
            keys.into_iter().zip(outcomes).collect::<Vec<_>>()
        })
    });
    let mut queued_per_key: HashMap<String, usize> = HashMap::new();
    for (key, outcome) in join_all(batches).await.into_iter().flatten() {
        match outcome {
            WebhookRecorded::Queued { .. } => *queued_per_key.entry(key).or_default() += 1,
            WebhookRecorded::Duplicate { .. } => {}
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_eq!(queued_per_key.len(), keys.len());
    assert!(
        queued_per_key.values().all(|n| *n == 1),
        "{queued_per_key:?}"
    );
    let raw = db.raw().await;
    assert_eq!(raw.count("receipts", "shop", SHOP).await, 6);
    raw.close().await;
    assert_eq!(replicas[0].job_counts().await.unwrap().queued, 6);
}

/// Batches written at once through one store may share a transaction (the SQLite writer merges
/// the ones waiting for it): each caller must still get one outcome per delivery it sent, in its
/// order, and a key shared between batches must be queued once.
async fn concurrent_batches_on_one_store_each_get_their_own_outcomes_in_order(db: &TestDb) {
    let store = db.store().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    let shared: Vec<String> = (0..4).map(|k| format!("shared{k}")).collect();
    let calls = (0..12).map(|i| {
        let store = store.clone();
        let mut keys: Vec<String> = (0..3).map(|u| format!("own{i}-{u}")).collect();
        keys.extend(shared.iter().cycle().skip(i).take(shared.len()).cloned());
        let turn = i % keys.len();
        keys.rotate_left(turn);
        tokio::spawn(async move {
            let batch = keys
                .iter()
                .map(|k| delivery(SHOP, k, "orders/updated"))
                .collect();
            let outcomes = store.record_webhooks(batch, at(1)).await.unwrap();
            assert_eq!(outcomes.len(), keys.len(), "{keys:?}: {outcomes:?}");
            keys.into_iter().zip(outcomes).collect::<Vec<_>>()
        })
    });
    let mut receipt_of_key: HashMap<String, i64> = HashMap::new();
    let mut queued_per_key: HashMap<String, usize> = HashMap::new();
    let answers: Vec<(String, WebhookRecorded)> =
        join_all(calls).await.into_iter().flatten().collect();
    for (key, outcome) in &answers {
        let receipt_id = match *outcome {
            WebhookRecorded::Queued { receipt_id, .. } => {
                *queued_per_key.entry(key.clone()).or_default() += 1;
                receipt_id
            }
            WebhookRecorded::Duplicate { receipt_id } => receipt_id,
            other => panic!("{key}: {other:?}"),
        };
        // Every answer names the receipt of its own key, whoever's transaction stored it.
        let stored = store.receipt(receipt_id).await.unwrap().unwrap();
        assert_eq!(stored.dedupe_key, format!("event:{key}"));
        assert_eq!(
            *receipt_of_key.entry(key.clone()).or_insert(receipt_id),
            receipt_id
        );
    }
    assert_eq!(queued_per_key.len(), 12 * 3 + shared.len());
    assert!(
        queued_per_key.values().all(|n| *n == 1),
        "{queued_per_key:?}"
    );
    let raw = db.raw().await;
    assert_eq!(raw.count("receipts", "shop", SHOP).await, 40);
    raw.close().await;
    assert_eq!(store.job_counts().await.unwrap().queued, 40);
}

/// SQLite's checkpoints run beside the writer, and a checkpoint alone never lets the WAL start
/// over while writes keep coming; the writer restarts it, and waits for a slow checkpoint pass
/// rather than let the WAL grow during it. Without that the file grew without
/// bound under sustained webhook load (about 80 MB/s in tests/bench/webhooks.sh).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_wal_stays_bounded_under_sustained_webhook_batches() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    let wal = std::path::PathBuf::from(format!("{}-wal", db.url().trim_start_matches("sqlite://")));
    let mut largest = 0;
    for round in 0..60 {
        let writers = (0..4).map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for b in 0..25 {
                    let batch = (0..8)
                        .map(|d| delivery(SHOP, &format!("{round}-{w}-{b}-{d}"), "orders/updated"))
                        .collect();
                    store.record_webhooks(batch, at(1)).await.unwrap();
                }
            })
        });
        join_all(writers).await;
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    let raw = db.raw().await;
    assert_eq!(raw.count("receipts", "shop", SHOP).await, 60 * 4 * 25 * 8);
    raw.close().await;
    // The writer restarts the WAL past 16 MiB, and truncates it past 32 MiB when the checkpointer
    // falls behind (its fsync was seen to take seconds while the whole suite ran); without both
    // this run leaves well over 48 MiB.
    assert!(largest < 48 << 20, "the WAL reached {largest} bytes");
}

async fn record_webhooks_for_unknown_shop_is_ignored_without_payload(db: &TestDb) {
    let store = db.store().await;
    let raw = db.raw().await;
    let mut w = about(
        delivery(SHOP, "1", "customers/redact"),
        customer(Some(7), Some("ada@example.com")),
    );
    w.requires = ShopRequirement::Known;

    let receipt_id = match record_one(&store, w.clone(), at(1)).await {
        WebhookRecorded::Ignored {
            receipt_id,
            reason: IgnoreReason::UnknownShop,
        } => receipt_id,
        other => panic!("expected an ignored delivery, got {other:?}"),
    };
    let receipt = store.receipt(receipt_id).await.unwrap().unwrap();
    assert_eq!(
        (receipt.status.as_str(), receipt.payload),
        ("ignored", None)
    );
    assert_eq!(
        receipt.customer,
        CustomerRef::default(),
        "nothing about the customer is kept"
    );
    assert_eq!(
        raw.text("receipts", "ignore_reason", receipt_id)
            .await
            .as_deref(),
        Some("unknown_shop")
    );
    assert_eq!(store.job_counts().await.unwrap(), JobCounts::default());
    assert_eq!(
        store.shop(SHOP).await.unwrap(),
        None,
        "recording creates no shop"
    );

    assert_eq!(
        record_one(&store, w, at(2)).await,
        WebhookRecorded::Duplicate { receipt_id }
    );
    assert_eq!(raw.count("receipts", "shop", SHOP).await, 1);
    raw.close().await;
}

async fn deliveries_for_an_uninstalled_shop_are_ignored_unless_only_a_known_shop_is_required(
    db: &TestDb,
) {
    let store = db.store().await;
    let raw = db.raw().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    assert!(store
        .uninstall_shop(SHOP, at(10), &[], at(10))
        .await
        .unwrap());
    let orders = delivery(SHOP, "1", "orders/updated");
    let mut redact = about(
        delivery(SHOP, "2", "customers/redact"),
        customer(Some(7), None),
    );
    redact.requires = ShopRequirement::Known;

    let outcomes = store
        .record_webhooks(vec![orders, redact.clone()], at(11))
        .await
        .unwrap();
    let ignored = match outcomes[0] {
        WebhookRecorded::Ignored {
            receipt_id,
            reason: IgnoreReason::ShopUninstalled,
        } => receipt_id,
        other => panic!("expected the order webhook to be ignored, got {other:?}"),
    };
    let kept = queued(outcomes[1]);
    assert_eq!(
        raw.text("receipts", "ignore_reason", ignored)
            .await
            .as_deref(),
        Some("shop_uninstalled")
    );
    assert_eq!(store.receipt(ignored).await.unwrap().unwrap().payload, None);
    let receipt = store.receipt(kept).await.unwrap().unwrap();
    assert_eq!(
        (receipt.payload, receipt.customer),
        (Some(redact.payload), redact.customer)
    );
    assert_eq!(store.job_counts().await.unwrap().queued, 1);
    let job = store.claim_job("w", at(90), at(12)).await.unwrap().unwrap();
    assert_eq!(
        (job.receipt_id, job.kind.as_str()),
        (Some(kept), "webhook/customers/redact")
    );
    raw.close().await;
}

async fn receipts_are_listed_newest_first_and_their_status_can_be_set(db: &TestDb) {
    let store = db.store().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    let mut ids = Vec::new();
    for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
        ids.push(queued(
            record_one(&store, delivery(SHOP, key, "orders/updated"), at(i as i64)).await,
        ));
    }
    record_one(&store, delivery(OTHER, "z", "orders/updated"), at(9)).await;

    let listed: Vec<i64> = store
        .receipts(SHOP, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, vec![ids[2], ids[1], ids[0]]);
    let limited: Vec<i64> = store
        .receipts(SHOP, 2)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(limited, vec![ids[2], ids[1]]);

    store
        .set_receipt_status(ids[0], "done", at(20))
        .await
        .unwrap();
    let receipt = store.receipt(ids[0]).await.unwrap().unwrap();
    assert_eq!(receipt.status, "done");
    assert_eq!(
        store.receipt(ids[1]).await.unwrap().unwrap().status,
        "queued"
    );
    assert_eq!(store.receipt(i64::MAX).await.unwrap(), None);
}

async fn claim_takes_the_oldest_due_job_first_and_never_a_future_one(db: &TestDb) {
    let store = db.store().await;
    assert_eq!(store.next_job_due().await.unwrap(), None);
    assert_eq!(store.claim_job("w", at(90), at(0)).await.unwrap(), None);

    let future = store
        .enqueue_job(&job(Some(SHOP), "sweep/a", at(60)), at(0))
        .await
        .unwrap();
    let late = store
        .enqueue_job(&job(None, "sweep/b", at(-1)), at(0))
        .await
        .unwrap();
    let early = store
        .enqueue_job(&job(Some(SHOP), "sweep/c", at(-5)), at(0))
        .await
        .unwrap();
    assert_eq!(store.next_job_due().await.unwrap(), Some(at(-5)));

    let first = store.claim_job("w", at(90), at(0)).await.unwrap().unwrap();
    assert_eq!(first.id, early);
    assert_eq!(
        (
            first.shop.as_deref(),
            first.kind.as_str(),
            first.payload.as_str()
        ),
        (Some(SHOP), "sweep/c", r#"{"n":1}"#)
    );
    assert_eq!(
        (
            first.receipt_id,
            first.attempt,
            first.max_attempts,
            first.created_at
        ),
        (None, 1, 5, at(0))
    );
    let second = store.claim_job("w", at(90), at(0)).await.unwrap().unwrap();
    assert_eq!((second.id, second.shop), (late, None));
    assert_eq!(
        store.claim_job("w", at(90), at(0)).await.unwrap(),
        None,
        "the future job is not due"
    );
    assert_eq!(store.next_job_due().await.unwrap(), Some(at(60)));

    assert_eq!(
        store
            .claim_job("w", at(150), at(60))
            .await
            .unwrap()
            .unwrap()
            .id,
        future
    );
    assert_eq!(store.next_job_due().await.unwrap(), None);
}

async fn concurrent_claims_never_get_the_same_job(db: &TestDb) {
    let replicas = [db.store().await, db.store().await];
    let mut all = BTreeSet::new();
    for i in 0..40 {
        all.insert(
            replicas[0]
                .enqueue_job(&job(Some(SHOP), &format!("sweep/{i}"), at(0)), at(0))
                .await
                .unwrap(),
        );
    }
    let workers = (0..8).map(|w| {
        let store = replicas[w % 2].clone();
        tokio::spawn(async move {
            let name = format!("worker-{w}");
            let mut got = Vec::new();
            while let Some(job) = store.claim_job(&name, at(90), at(1)).await.unwrap() {
                assert_eq!(job.attempt, 1);
                assert!(store.complete_job(job.id, &name, at(2)).await.unwrap());
                got.push(job.id);
            }
            got
        })
    });
    let claimed: Vec<i64> = join_all(workers).await.into_iter().flatten().collect();
    let distinct: BTreeSet<i64> = claimed.iter().copied().collect();
    assert_eq!(
        claimed.len(),
        distinct.len(),
        "a job was claimed twice: {claimed:?}"
    );
    assert_eq!(distinct, all, "every due job was claimed");
    assert_eq!(
        replicas[1].job_counts().await.unwrap(),
        JobCounts {
            done: 40,
            ..JobCounts::default()
        }
    );
}

async fn expired_lease_makes_a_running_job_claimable_again(db: &TestDb) {
    let store = db.store().await;
    let raw = db.raw().await;
    let id = store
        .enqueue_job(&job(Some(SHOP), "sweep/a", at(0)), at(0))
        .await
        .unwrap();
    let first = store.claim_job("w1", at(30), at(0)).await.unwrap().unwrap();
    assert_eq!((first.id, first.attempt), (id, 1));
    assert_eq!(
        store.claim_job("w2", at(40), at(10)).await.unwrap(),
        None,
        "the lease is still held"
    );
    assert_eq!(
        store.job_counts().await.unwrap(),
        JobCounts {
            running: 1,
            ..JobCounts::default()
        }
    );

    let second = store
        .claim_job("w2", at(60), at(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((second.id, second.attempt), (id, 2));
    assert_eq!(
        raw.text("jobs", "locked_by", id).await.as_deref(),
        Some("w2")
    );

    // The first worker lost its lease: whatever it reports is refused.
    assert!(!store.complete_job(id, "w1", at(31)).await.unwrap());
    assert!(!store
        .retry_job(id, "w1", at(100), "late", at(31))
        .await
        .unwrap());
    assert!(!store.bury_job(id, "w1", "late", at(31)).await.unwrap());
    assert_eq!(
        raw.text("jobs", "status", id).await.as_deref(),
        Some("running")
    );

    assert!(store.complete_job(id, "w2", at(32)).await.unwrap());
    assert!(
        !store.complete_job(id, "w2", at(33)).await.unwrap(),
        "a done job is not running"
    );
    assert_eq!(
        raw.text("jobs", "status", id).await.as_deref(),
        Some("done")
    );
    assert_eq!(
        raw.int("jobs", "finished_at", id).await,
        Some(at(32).timestamp_millis())
    );
    assert_eq!(
        store.claim_job("w3", at(10_000), at(5_000)).await.unwrap(),
        None,
        "done jobs never come back"
    );
    assert_eq!(
        store.job_counts().await.unwrap(),
        JobCounts {
            done: 1,
            ..JobCounts::default()
        }
    );
    raw.close().await;
}

async fn retry_requeues_the_job_at_its_new_time_and_bury_makes_it_dead(db: &TestDb) {
    let store = db.store().await;
    let raw = db.raw().await;
    let id = store
        .enqueue_job(&job(Some(SHOP), "sweep/a", at(0)), at(0))
        .await
        .unwrap();
    store.claim_job("w", at(90), at(0)).await.unwrap().unwrap();

    assert!(store
        .retry_job(id, "w", at(60), "Shopify answered 503", at(1))
        .await
        .unwrap());
    assert_eq!(
        raw.text("jobs", "status", id).await.as_deref(),
        Some("queued")
    );
    assert_eq!(
        raw.text("jobs", "last_error", id).await.as_deref(),
        Some("Shopify answered 503")
    );
    assert_eq!(raw.text("jobs", "locked_by", id).await, None);
    assert_eq!(store.next_job_due().await.unwrap(), Some(at(60)));
    assert_eq!(store.claim_job("w", at(150), at(59)).await.unwrap(), None);

    let again = store
        .claim_job("w", at(150), at(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.id, again.attempt), (id, 2));
    assert!(!store
        .bury_job(id, "someone-else", "nope", at(61))
        .await
        .unwrap());
    assert!(store
        .bury_job(id, "w", "payload does not match the topic", at(61))
        .await
        .unwrap());
    assert_eq!(
        raw.text("jobs", "status", id).await.as_deref(),
        Some("dead")
    );
    assert_eq!(
        raw.text("jobs", "last_error", id).await.as_deref(),
        Some("payload does not match the topic")
    );
    assert_eq!(raw.int("jobs", "attempts", id).await, Some(2));
    assert_eq!(
        store.job_counts().await.unwrap(),
        JobCounts {
            dead: 1,
            ..JobCounts::default()
        }
    );
    assert_eq!(
        store.claim_job("w", at(10_000), at(5_000)).await.unwrap(),
        None,
        "dead jobs wait for a replay"
    );
    assert_eq!(store.next_job_due().await.unwrap(), None);
    raw.close().await;
}

async fn job_counts_tally_every_status(db: &TestDb) {
    let store = db.store().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    for (i, due) in [-4, -3, -2, -1].into_iter().enumerate() {
        store
            .enqueue_job(&job(None, &format!("sweep/{i}"), at(due)), at(0))
            .await
            .unwrap();
    }
    let done = store.claim_job("w", at(90), at(0)).await.unwrap().unwrap();
    assert!(store.complete_job(done.id, "w", at(1)).await.unwrap());
    let dead = store.claim_job("w", at(90), at(0)).await.unwrap().unwrap();
    assert!(store.bury_job(dead.id, "w", "bad", at(1)).await.unwrap());
    store.claim_job("w", at(90), at(0)).await.unwrap().unwrap();
    store
        .enqueue_job(&job(Some(SHOP), "webhook/orders/updated", at(500)), at(0))
        .await
        .unwrap();
    assert!(store.uninstall_shop(SHOP, at(2), &[], at(2)).await.unwrap());
    assert_eq!(
        store.job_counts().await.unwrap(),
        JobCounts {
            queued: 1,
            running: 1,
            done: 1,
            dead: 1,
            cancelled: 1
        }
    );
}

/// Receipts and exports about customers 7 (ada@) and 8 (bob@) of SHOP, and about 7 of OTHER.
struct People {
    by_id_and_email: i64,
    by_email_only: i64,
    by_id_only: i64,
    someone_else: i64,
    other_shop: i64,
    ada_export: i64,
    bob_export: i64,
}

async fn people(store: &DynStore) -> People {
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    store.install_shop(OTHER, &token("b"), at(0)).await.unwrap();
    let ada = customer(Some(7), Some("ada@example.com"));
    let record = |shop: &'static str, key: &'static str, who: CustomerRef, secs: i64| {
        let store = store.clone();
        async move {
            queued(
                record_one(
                    &store,
                    about(delivery(shop, key, "orders/updated"), who),
                    at(secs),
                )
                .await,
            )
        }
    };
    let by_id_and_email = record(SHOP, "1", ada.clone(), 1).await;
    let by_email_only = record(SHOP, "2", customer(None, Some("ada@example.com")), 2).await;
    let by_id_only = record(SHOP, "3", customer(Some(7), None), 3).await;
    let someone_else = record(SHOP, "4", customer(Some(8), Some("bob@example.com")), 4).await;
    let other_shop = record(OTHER, "5", ada.clone(), 5).await;
    let report = serde_json::json!({"webhook_payloads": [{"key": "1"}], "customer": {"id": 7}});
    let ada_export = store
        .save_data_export(SHOP, &ada, Some(99), &report, at(6))
        .await
        .unwrap();
    let bob = customer(Some(8), Some("bob@example.com"));
    let bob_export = store
        .save_data_export(SHOP, &bob, None, &serde_json::json!({}), at(7))
        .await
        .unwrap();
    store
        .save_data_export(OTHER, &ada, None, &serde_json::json!({}), at(8))
        .await
        .unwrap();
    People {
        by_id_and_email,
        by_email_only,
        by_id_only,
        someone_else,
        other_shop,
        ada_export,
        bob_export,
    }
}

async fn customer_data_finds_receipts_by_id_or_email_and_the_customers_exports(db: &TestDb) {
    let store = db.store().await;
    let p = people(&store).await;
    let ada = customer(Some(7), Some("ada@example.com"));

    let held = store.customer_data(SHOP, &ada).await.unwrap();
    let ids: Vec<i64> = held.receipts.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![p.by_id_and_email, p.by_email_only, p.by_id_only]);
    assert_eq!(held.receipts[0].payload.as_deref(), Some(r#"{"key":"1"}"#));
    assert_eq!(
        held.exports,
        vec![DataExport {
            id: p.ada_export,
            shop: SHOP.into(),
            customer: ada.clone(),
            data_request_id: Some(99),
            report: serde_json::json!({"webhook_payloads": [{"key": "1"}], "customer": {"id": 7}}),
            created_at: at(6),
        }]
    );

    let by_email: Vec<i64> = store
        .customer_data(SHOP, &customer(None, Some("ada@example.com")))
        .await
        .unwrap()
        .receipts
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(by_email, vec![p.by_id_and_email, p.by_email_only]);
    let nobody = store
        .customer_data(SHOP, &CustomerRef::default())
        .await
        .unwrap();
    assert!(nobody.receipts.is_empty() && nobody.exports.is_empty());

    let exports: Vec<i64> = store
        .data_exports(SHOP)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        exports,
        vec![p.bob_export, p.ada_export],
        "newest first, this shop only"
    );
    let _ = (p.someone_else, p.other_shop);
}

async fn redact_customer_scrubs_payloads_and_deletes_exports(db: &TestDb) {
    let store = db.store().await;
    let p = people(&store).await;
    let ada = customer(Some(7), Some("ada@example.com"));

    let counts = store.redact_customer(SHOP, &ada, at(100)).await.unwrap();
    assert_eq!(
        counts,
        RedactCounts {
            receipts: 3,
            exports: 1,
            ..RedactCounts::default()
        }
    );
    for id in [p.by_id_and_email, p.by_email_only, p.by_id_only] {
        let r = store.receipt(id).await.unwrap().unwrap();
        assert_eq!(
            (r.status.as_str(), r.payload, r.customer),
            ("redacted", None, CustomerRef::default()),
            "receipt {id}"
        );
    }
    let bob = store.receipt(p.someone_else).await.unwrap().unwrap();
    assert_eq!(
        (bob.status.as_str(), bob.payload.is_some()),
        ("queued", true)
    );
    let elsewhere = store.receipt(p.other_shop).await.unwrap().unwrap();
    assert_eq!(
        (elsewhere.payload.is_some(), elsewhere.customer),
        (true, ada.clone()),
        "another shop's data stays"
    );

    let exports: Vec<i64> = store
        .data_exports(SHOP)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(exports, vec![p.bob_export]);
    assert_eq!(store.data_exports(OTHER).await.unwrap().len(), 1);
    let held = store.customer_data(SHOP, &ada).await.unwrap();
    assert!(
        held.receipts.is_empty() && held.exports.is_empty(),
        "nothing about ada is left: {held:?}"
    );
    assert_eq!(
        store.redact_customer(SHOP, &ada, at(101)).await.unwrap(),
        RedactCounts::default()
    );
}

async fn redact_shop_erases_every_row_of_that_shop_only(db: &TestDb) {
    let store = db.store().await;
    let raw = db.raw().await;
    let p = people(&store).await;
    let mut request = delivery(SHOP, "redact", "shop/redact");
    request.requires = ShopRequirement::Known;
    let keep = queued(record_one(&store, request, at(9)).await);
    // A job of the shop without a receipt, and one that belongs to it only through its receipt.
    store
        .enqueue_job(&job(Some(SHOP), "sweep/delays", at(0)), at(9))
        .await
        .unwrap();
    let mut via_receipt = job(None, "replay", at(0));
    via_receipt.receipt_id = Some(p.someone_else);
    store.enqueue_job(&via_receipt, at(9)).await.unwrap();
    // VIP settings of both shops, each with its queued sync job.
    for shop in [SHOP, OTHER] {
        store
            .save_vip_settings(shop, CONFIG_V1, &vip_job(shop), at(9))
            .await
            .unwrap()
            .unwrap();
    }
    // A claim before anything is due changes no job, but on SQLite it gives the queued webhook
    // receipts their jobs, as redact_shop will: the snapshot is then the same on both backends.
    assert!(store
        .claim_job("w", at(-1), at(-3600))
        .await
        .unwrap()
        .is_none());
    let other_before = raw.rows_of_shop(OTHER).await;

    let counts = store.redact_shop(SHOP, Some(keep)).await.unwrap();
    assert_eq!(
        counts,
        RedactCounts {
            receipts: 4,
            exports: 2,
            jobs: 7,
            tokens: 1,
            shops: 1,
            settings: 1,
        }
    );
    assert_eq!(
        raw.rows_of_shop(SHOP).await,
        vec![
            ("shops", 0),
            ("shop_tokens", 0),
            ("receipts", 1),
            ("jobs", 1),
            ("data_exports", 0),
            ("vip_settings", 0),
        ]
    );
    assert_eq!(store.vip_settings(SHOP).await.unwrap(), None);
    assert_eq!(raw.rows_of_shop(OTHER).await, other_before);
    assert_eq!(store.shop(SHOP).await.unwrap(), None);
    assert_eq!(store.token(SHOP).await.unwrap(), None);

    let kept = store.receipt(keep).await.unwrap().unwrap();
    assert_eq!(
        (kept.topic.as_str(), kept.status.as_str()),
        ("shop/redact", "queued")
    );
    assert_eq!(
        (kept.payload, kept.customer),
        (None, CustomerRef::default()),
        "the proof holds no data"
    );
    assert_eq!(
        raw.job_statuses_of_receipt(keep).await,
        ["queued"],
        "the redact job itself survives"
    );

    // Redacting again (a retried job) finds nothing more; without a receipt to keep, nothing stays.
    assert_eq!(
        store.redact_shop(SHOP, Some(keep)).await.unwrap(),
        RedactCounts::default()
    );
    let counts = store.redact_shop(OTHER, None).await.unwrap();
    assert_eq!(
        counts,
        RedactCounts {
            receipts: 1,
            exports: 1,
            jobs: 2,
            tokens: 1,
            shops: 1,
            settings: 1,
        }
    );
    assert!(raw.rows_of_shop(OTHER).await.iter().all(|(_, n)| *n == 0));
    raw.close().await;
}

async fn migrations_are_current_only_after_migrate(db: &TestDb) {
    let store = db.connect().await;
    store.ping().await.unwrap();
    let expected = match db.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(store.backend(), expected);
    assert!(!store.migrations_current().await.unwrap());
    store.migrate().await.unwrap();
    assert!(store.migrations_current().await.unwrap());
    store.migrate().await.unwrap();
    assert!(
        store.migrations_current().await.unwrap(),
        "migrating twice is harmless"
    );
    // A second store (another replica, a restart) sees the same state.
    assert!(db.connect().await.migrations_current().await.unwrap());
}

#[tokio::test]
async fn sqlite_store_creates_its_directory_and_runs_in_wal_mode() {
    let db = TestDb::sqlite().await;
    let path = db.url().trim_start_matches("sqlite://").to_string();
    assert!(!std::path::Path::new(&path).exists());
    let _store = db.store().await;
    assert!(std::path::Path::new(&path).exists());
    let crate::support::db::RawDb::Sqlite(pool) = db.raw().await else {
        unreachable!()
    };
    let mode: String = sqlx::query_scalar("pragma journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

async fn jobs_of_a_shop_needing_reauthorisation_wait_until_it_reauthorises(db: &TestDb) {
    let store = db.store().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    store.install_shop(OTHER, &token("b"), at(0)).await.unwrap();
    let paused = store
        .enqueue_job(&job(Some(SHOP), "sweep/a", at(0)), at(0))
        .await
        .unwrap();
    let webhook = store
        .enqueue_job(&job(Some(SHOP), "webhook/customers/redact", at(1)), at(0))
        .await
        .unwrap();
    let other = store
        .enqueue_job(&job(Some(OTHER), "sweep/b", at(2)), at(0))
        .await
        .unwrap();
    store.mark_needs_reauth(SHOP, at(3)).await.unwrap();

    // Another shop's work and the shop's webhook (privacy) jobs go on; its other jobs wait.
    let claimed: Vec<i64> = [
        store.claim_job("w", at(100), at(5)).await.unwrap(),
        store.claim_job("w", at(100), at(5)).await.unwrap(),
        store.claim_job("w", at(100), at(5)).await.unwrap(),
    ]
    .into_iter()
    .flatten()
    .map(|j| j.id)
    .collect();
    assert_eq!(claimed, [webhook, other]);
    assert_eq!(
        store.job_counts().await.unwrap().queued,
        1,
        "the paused job stays queued"
    );

    // Re-authorisation (a new token exchange) resumes it, with no attempt spent.
    store.install_shop(SHOP, &token("c"), at(6)).await.unwrap();
    let resumed = store.claim_job("w", at(100), at(7)).await.unwrap().unwrap();
    assert_eq!((resumed.id, resumed.attempt), (paused, 1));
}

// ---- VIP discount settings ------------------------------------------------------------------

const CONFIG_V1: &str = r#"{"tiers":[{"name":"Gold","percentage":"15"}]}"#;
const CONFIG_V2: &str = r#"{"tiers":[{"name":"Gold","percentage":"20"}]}"#;
const DISCOUNT: &str = "gid://shopify/DiscountAutomaticNode/42";

fn vip_job(shop: &str) -> NewJob {
    job(Some(shop), "vip/sync-discount", at(0))
}

async fn save(store: &DynStore, config: &str, secs: i64) -> VipSettings {
    store
        .save_vip_settings(SHOP, config, &vip_job(SHOP), at(secs))
        .await
        .unwrap()
        .expect("the shop is known")
}

async fn claim(store: &DynStore, holder: &str, secs: i64) -> VipSyncClaim {
    store
        .claim_vip_sync(SHOP, holder, at(secs + 90), at(secs))
        .await
        .unwrap()
}

async fn saving_vip_settings_bumps_the_version_and_queues_its_sync_job_in_the_same_write(
    db: &TestDb,
) {
    let store = db.store().await;
    let raw = db.raw().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    assert_eq!(store.vip_settings(SHOP).await.unwrap(), None);

    let first = save(&store, CONFIG_V1, 1).await;
    let job1 = first.sync_job_id.expect("the save names its sync job");
    assert_eq!(
        (first.version, first.sync_status, first.config.as_str()),
        (1, SyncStatus::Pending, CONFIG_V1)
    );
    assert_eq!((first.created_at, first.updated_at), (at(1), at(1)));
    assert_eq!(store.vip_settings(SHOP).await.unwrap(), Some(first.clone()));
    assert_eq!(
        raw.text("jobs", "kind", job1).await.as_deref(),
        Some("vip/sync-discount")
    );
    assert_eq!(
        raw.text("jobs", "status", job1).await.as_deref(),
        Some("queued")
    );

    // Synced once; the next save keeps what is on Shopify and starts a new pending sync.
    assert!(matches!(
        claim(&store, "job-1", 2).await,
        VipSyncClaim::Claimed(_)
    ));
    let synced = VipSyncOutcome::Synced {
        version: 1,
        discount_id: DISCOUNT.into(),
    };
    assert!(store
        .finish_vip_sync(SHOP, "job-1", &synced, at(3))
        .await
        .unwrap());
    let now = store.vip_settings(SHOP).await.unwrap().unwrap();
    assert_eq!(
        (
            now.sync_status,
            now.synced_version,
            now.synced_at,
            now.discount_id.as_deref()
        ),
        (SyncStatus::Synced, Some(1), Some(at(3)), Some(DISCOUNT))
    );

    let second = save(&store, CONFIG_V2, 4).await;
    let job2 = second.sync_job_id.unwrap();
    assert_ne!(job1, job2);
    assert_eq!(
        (
            second.version,
            second.sync_status,
            second.sync_error.as_deref()
        ),
        (2, SyncStatus::Pending, None)
    );
    assert_eq!(
        (
            second.discount_id.as_deref(),
            second.synced_version,
            second.created_at
        ),
        (Some(DISCOUNT), Some(1), at(1))
    );
    assert_eq!(second.config, CONFIG_V2);
    assert_eq!(store.job_counts().await.unwrap().queued, 2);
    raw.close().await;
}

async fn vip_settings_of_an_unknown_shop_are_not_saved_and_queue_nothing(db: &TestDb) {
    let store = db.store().await;
    let raw = db.raw().await;
    assert_eq!(
        store
            .save_vip_settings(SHOP, CONFIG_V1, &vip_job(SHOP), at(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.vip_settings(SHOP).await.unwrap(), None);
    assert_eq!(store.job_counts().await.unwrap(), JobCounts::default());
    assert_eq!(raw.count("vip_settings", "shop", SHOP).await, 0);
    assert_eq!(claim(&store, "job-1", 1).await, VipSyncClaim::NoSettings);
    raw.close().await;
}

async fn one_vip_sync_of_a_shop_holds_the_lease_at_a_time(db: &TestDb) {
    let store = db.store().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    save(&store, CONFIG_V1, 0).await;

    assert!(matches!(
        claim(&store, "job-1", 0).await,
        VipSyncClaim::Claimed(_)
    ));
    assert_eq!(claim(&store, "job-2", 10).await, VipSyncClaim::Busy);
    // The same holder (a retried attempt) takes it again.
    assert!(matches!(
        claim(&store, "job-1", 20).await,
        VipSyncClaim::Claimed(_)
    ));
    // Concurrent claimers: exactly one wins once the lease expires (20 + 90 = 110).
    let claims = join_all((0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .claim_vip_sync(SHOP, &format!("racer-{i}"), at(300), at(110))
                .await
                .unwrap()
        })
    }))
    .await;
    let winners: Vec<_> = claims
        .iter()
        .filter(|c| matches!(c, VipSyncClaim::Claimed(_)))
        .collect();
    assert_eq!(winners.len(), 1, "{claims:?}");

    // The expired holder can no longer record anything.
    let synced = VipSyncOutcome::Synced {
        version: 1,
        discount_id: DISCOUNT.into(),
    };
    assert!(!store
        .finish_vip_sync(SHOP, "job-1", &synced, at(111))
        .await
        .unwrap());
    let unchanged = store.vip_settings(SHOP).await.unwrap().unwrap();
    assert_eq!(
        (unchanged.sync_status, unchanged.discount_id),
        (SyncStatus::Pending, None)
    );
    // Releasing frees the lease at once.
    for i in 0..8 {
        store
            .finish_vip_sync(
                SHOP,
                &format!("racer-{i}"),
                &VipSyncOutcome::Released,
                at(112),
            )
            .await
            .unwrap();
    }
    assert!(matches!(
        claim(&store, "job-3", 113).await,
        VipSyncClaim::Claimed(_)
    ));
}

async fn a_superseded_vip_sync_records_the_discount_but_never_the_newer_saves_status(db: &TestDb) {
    let store = db.store().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    save(&store, CONFIG_V1, 0).await;
    assert!(matches!(
        claim(&store, "job-1", 1).await,
        VipSyncClaim::Claimed(_)
    ));
    // The merchant saves again while version 1 is being pushed.
    save(&store, CONFIG_V2, 2).await;
    let synced_v1 = VipSyncOutcome::Synced {
        version: 1,
        discount_id: DISCOUNT.into(),
    };
    assert!(store
        .finish_vip_sync(SHOP, "job-1", &synced_v1, at(3))
        .await
        .unwrap());
    let s = store.vip_settings(SHOP).await.unwrap().unwrap();
    assert_eq!(
        (
            s.version,
            s.sync_status,
            s.synced_version,
            s.discount_id.as_deref()
        ),
        (2, SyncStatus::Pending, Some(1), Some(DISCOUNT)),
        "the discount is remembered, version 2 is still pending"
    );

    // A failure of an old version leaves the newer state alone.
    assert!(matches!(
        claim(&store, "job-1", 4).await,
        VipSyncClaim::Claimed(_)
    ));
    let old_failure = VipSyncOutcome::Failed {
        version: 1,
        error: "old".into(),
        gave_up: true,
        discount_id: None,
    };
    assert!(store
        .finish_vip_sync(SHOP, "job-1", &old_failure, at(5))
        .await
        .unwrap());
    let s = store.vip_settings(SHOP).await.unwrap().unwrap();
    assert_eq!((s.sync_status, s.sync_error), (SyncStatus::Pending, None));

    // Version 2: a retried failure stays pending with its reason, a final one fails, and a
    // later success clears the error.
    let failure = |gave_up| VipSyncOutcome::Failed {
        version: 2,
        error: "Shopify refused the change: Function not found.".into(),
        gave_up,
        discount_id: None,
    };
    for (gave_up, status) in [(false, SyncStatus::Pending), (true, SyncStatus::Failed)] {
        assert!(matches!(
            claim(&store, "job-2", 6).await,
            VipSyncClaim::Claimed(_)
        ));
        assert!(store
            .finish_vip_sync(SHOP, "job-2", &failure(gave_up), at(7))
            .await
            .unwrap());
        let s = store.vip_settings(SHOP).await.unwrap().unwrap();
        assert_eq!(s.sync_status, status);
        assert_eq!(
            s.sync_error.as_deref(),
            Some("Shopify refused the change: Function not found.")
        );
        assert_eq!(
            (s.synced_version, s.discount_id.as_deref()),
            (Some(1), Some(DISCOUNT))
        );
    }
    assert!(matches!(
        claim(&store, "job-2", 8).await,
        VipSyncClaim::Claimed(_)
    ));
    let synced_v2 = VipSyncOutcome::Synced {
        version: 2,
        discount_id: DISCOUNT.into(),
    };
    assert!(store
        .finish_vip_sync(SHOP, "job-2", &synced_v2, at(9))
        .await
        .unwrap());
    let s = store.vip_settings(SHOP).await.unwrap().unwrap();
    assert_eq!(
        (s.sync_status, s.sync_error, s.synced_version, s.synced_at),
        (SyncStatus::Synced, None, Some(2), Some(at(9)))
    );
    // A late success of version 1 never moves the synced version back.
    assert!(matches!(
        claim(&store, "job-1", 10).await,
        VipSyncClaim::Claimed(_)
    ));
    assert!(store
        .finish_vip_sync(SHOP, "job-1", &synced_v1, at(11))
        .await
        .unwrap());
    let s = store.vip_settings(SHOP).await.unwrap().unwrap();
    assert_eq!(
        (s.sync_status, s.synced_version, s.synced_at),
        (SyncStatus::Synced, Some(2), Some(at(9)))
    );
}

async fn uninstall_fails_a_pending_vip_sync_whose_job_it_cancelled_and_keeps_the_settings(
    db: &TestDb,
) {
    let store = db.store().await;
    let raw = db.raw().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    store.install_shop(OTHER, &token("b"), at(0)).await.unwrap();
    let pending = save(&store, CONFIG_V1, 1).await;
    // OTHER's save is synced already; its sync job has run.
    let other = store
        .save_vip_settings(OTHER, CONFIG_V1, &vip_job(OTHER), at(1))
        .await
        .unwrap()
        .unwrap();
    let synced = VipSyncOutcome::Synced {
        version: 1,
        discount_id: DISCOUNT.into(),
    };
    store
        .claim_vip_sync(OTHER, "job-9", at(90), at(2))
        .await
        .unwrap();
    assert!(store
        .finish_vip_sync(OTHER, "job-9", &synced, at(3))
        .await
        .unwrap());

    for shop in [SHOP, OTHER] {
        assert!(store
            .uninstall_shop(shop, at(10), &[], at(11))
            .await
            .unwrap());
    }
    let s = store.vip_settings(SHOP).await.unwrap().unwrap();
    assert_eq!(
        (s.config.as_str(), s.version),
        (CONFIG_V1, 1),
        "the settings stay"
    );
    assert_eq!(s.sync_status, SyncStatus::Failed);
    assert!(
        s.sync_error
            .as_deref()
            .is_some_and(|e| e.contains("uninstalled")),
        "{s:?}"
    );
    assert_eq!(
        raw.text("jobs", "status", pending.sync_job_id.unwrap())
            .await
            .as_deref(),
        Some("cancelled")
    );
    let o = store.vip_settings(OTHER).await.unwrap().unwrap();
    assert_eq!(
        (o.sync_status, o.sync_error, o.discount_id.as_deref()),
        (SyncStatus::Synced, None, Some(DISCOUNT)),
        "a synced shop's state is true as it was: {other:?}"
    );
    raw.close().await;
}

/// Claims until nothing is due at `now`, completing each job; answers (receipt id, kind) in claim
/// order.
async fn claim_all(store: &DynStore, now: Timestamp) -> Vec<(Option<i64>, String)> {
    let mut claimed = Vec::new();
    while let Some(job) = store.claim_job("w", at(100_000), now).await.unwrap() {
        assert!(store.complete_job(job.id, "w", now).await.unwrap());
        claimed.push((job.receipt_id, job.kind));
    }
    claimed
}

async fn every_queued_delivery_becomes_one_job_in_arrival_order_even_after_a_reopen(db: &TestDb) {
    let store = db.store().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    let outcomes = store
        .record_webhooks(
            vec![
                delivery(SHOP, "a", "orders/updated"),
                delivery("unknown.myshopify.com", "b", "orders/updated"),
                delivery(SHOP, "a", "orders/updated"),
                delivery(SHOP, "c", "app/scopes_update"),
            ],
            at(1),
        )
        .await
        .unwrap();
    let (a, c) = (queued(outcomes[0]), queued(outcomes[3]));
    assert!(matches!(outcomes[1], WebhookRecorded::Ignored { .. }));
    let d = queued(record_one(&store, delivery(SHOP, "d", "orders/create"), at(2)).await);
    assert_eq!(store.next_job_due().await.unwrap(), Some(at(1)));
    assert_eq!(store.job_counts().await.unwrap().queued, 3);

    // A new process (a restart after a crash) finds every acknowledged delivery.
    drop(store);
    let store = db.connect().await;
    assert_eq!(store.job_counts().await.unwrap().queued, 3);
    // One claim at a time, with a delivery recorded between two claims.
    let first = store.claim_job("w", at(100), at(3)).await.unwrap().unwrap();
    assert_eq!(first.receipt_id, Some(a));
    let e = queued(record_one(&store, delivery(SHOP, "e", "orders/create"), at(4)).await);
    assert_eq!(
        store.job_counts().await.unwrap(),
        JobCounts {
            queued: 3,
            running: 1,
            ..JobCounts::default()
        }
    );
    assert_eq!(
        claim_all(&store, at(5)).await,
        [
            (Some(c), "webhook/app/scopes_update".to_owned()),
            (Some(d), "webhook/orders/create".to_owned()),
            (Some(e), "webhook/orders/create".to_owned()),
        ]
    );
    assert_eq!(store.next_job_due().await.unwrap(), None);
    assert_eq!(
        store.job_counts().await.unwrap(),
        JobCounts {
            running: 1,
            done: 3,
            ..JobCounts::default()
        }
    );
}

async fn a_backlog_of_deliveries_is_claimed_once_each_in_order(db: &TestDb) {
    // More deliveries than SQLite promotes to jobs in one go (4096 receipt ids).
    const BATCHES: i64 = 17;
    const PER_BATCH: i64 = 256;
    let store = db.store().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    let mut receipts = Vec::new();
    for b in 0..BATCHES {
        let batch = (0..PER_BATCH)
            .map(|i| delivery(SHOP, &format!("{b}-{i}"), "orders/updated"))
            .collect();
        let outcomes = store.record_webhooks(batch, at(1 + b)).await.unwrap();
        receipts.extend(outcomes.into_iter().map(queued));
    }
    let total = BATCHES * PER_BATCH;
    assert_eq!(store.job_counts().await.unwrap().queued, total);
    assert_eq!(store.next_job_due().await.unwrap(), Some(at(1)));
    let claimed: Vec<Option<i64>> = claim_all(&store, at(BATCHES + 1))
        .await
        .into_iter()
        .map(|(receipt, _)| receipt)
        .collect();
    assert_eq!(claimed.len() as i64, total);
    // Within one arrival time the claim order is the job id's, which need not follow the receipt
    // ids; across arrival times it is strict. Every receipt exactly once.
    let batch_of: HashMap<Option<i64>, i64> = receipts
        .iter()
        .enumerate()
        .map(|(i, r)| (Some(*r), i as i64 / PER_BATCH))
        .collect();
    assert!(claimed
        .windows(2)
        .all(|w| batch_of[&w[0]] <= batch_of[&w[1]]));
    let unique: BTreeSet<_> = claimed.iter().copied().collect();
    assert_eq!(unique.len() as i64, total);
    assert_eq!(store.job_counts().await.unwrap().done, total);
}

async fn uninstall_cancels_deliveries_recorded_just_before_it_except_kept_kinds(db: &TestDb) {
    let store = db.store().await;
    store.install_shop(SHOP, &token("a"), at(0)).await.unwrap();
    store.install_shop(OTHER, &token("b"), at(0)).await.unwrap();
    let mut redact = delivery(SHOP, "r", "customers/redact");
    redact.requires = ShopRequirement::Known;
    let outcomes = store
        .record_webhooks(
            vec![
                delivery(SHOP, "o", "orders/updated"),
                redact,
                delivery(OTHER, "o", "orders/updated"),
            ],
            at(1),
        )
        .await
        .unwrap();
    let (redact, other) = (queued(outcomes[1]), queued(outcomes[2]));
    let kinds = ["webhook/customers/redact", "webhook/shop/redact"];
    assert!(store
        .uninstall_shop(SHOP, at(2), &kinds, at(3))
        .await
        .unwrap());
    assert_eq!(
        store.job_counts().await.unwrap(),
        JobCounts {
            queued: 2,
            cancelled: 1,
            ..JobCounts::default()
        }
    );
    let mut left: Vec<_> = claim_all(&store, at(4)).await;
    left.sort();
    let mut expected = vec![
        (Some(redact), "webhook/customers/redact".to_owned()),
        (Some(other), "webhook/orders/updated".to_owned()),
    ];
    expected.sort();
    assert_eq!(left, expected);
}
