-- Keel's foundation: shops and their offline tokens, the receipts of everything Keel was asked to
-- do (webhooks now; Flow actions, triggers and sweeps later), the job queue that does it, and the
-- compliance exports. Same tables and meaning as migrations/postgres/0001_foundation.sql.
--
-- Times are bigint unix milliseconds handed in by the app, never the database's clock, so a
-- test clock governs leases, schedules and expiries. Booleans are 0/1.

create table shops (
    domain text primary key,
    installed boolean not null,
    -- granted scopes, comma-separated as Shopify sends them
    scopes text not null default '',
    installed_at bigint,
    -- the latest token exchange (install_shop), even of an installed shop: it proves the app was
    -- installed then, so an uninstall webhook from before it is stale
    authorized_at bigint,
    uninstalled_at bigint,
    needs_reauth boolean not null default 0,
    -- the last token version handed out for this shop; kept here rather than on the token row so
    -- a version is never reused after the token is deleted and the shop installs again
    token_version bigint not null default 0,
    created_at bigint not null,
    updated_at bigint not null
);

-- One offline token per shop. Token columns hold ciphertexts; the store never sees plaintext.
create table shop_tokens (
    shop text primary key references shops (domain) on delete cascade,
    access_token blob not null,
    access_expires_at bigint,
    refresh_token blob,
    refresh_expires_at bigint,
    scope text not null,
    version bigint not null,
    -- single-flight refresh: whoever holds an unexpired lease is the one refresher
    refresh_holder text,
    refresh_lease_until bigint,
    created_at bigint not null,
    -- when the token itself was last written (taking or releasing the lease does not count)
    updated_at bigint not null
);

-- Every request Keel accepted, deduplicated per shop. No foreign key to shops: deliveries for
-- unknown shops are recorded as ignored, and the shop/redact receipt outlives its shop.
create table receipts (
    id integer primary key autoincrement,
    shop text not null,
    -- where the request came from: 'webhook' now; Flow actions, triggers and sweeps later
    source text not null,
    topic text not null,
    dedupe_key text not null,
    webhook_id text,
    event_id text,
    api_version text,
    triggered_at text,
    -- queued, done, failed, ignored or redacted
    status text not null,
    ignore_reason text,
    -- raw JSON body; null when ignored or redacted
    payload text,
    -- who the payload is about, so compliance requests can find it; cleared by redaction
    customer_id bigint,
    customer_email text,
    received_at bigint not null,
    updated_at bigint not null,
    unique (shop, dedupe_key)
);

create index receipts_shop_customer_id on receipts (shop, customer_id) where customer_id is not null;
create index receipts_shop_customer_email on receipts (shop, customer_email) where customer_email is not null;
create index receipts_shop_received on receipts (shop, received_at);

-- The durable queue. A job is claimed by setting a lease (locked_by, locked_until) and runs outside
-- any transaction; an expired lease makes it claimable again.
create table jobs (
    id integer primary key autoincrement,
    shop text,
    kind text not null,
    -- JSON; never customer data (jobs point at receipts, which redaction scrubs)
    payload text not null,
    receipt_id bigint references receipts (id),
    status text not null check (status in ('queued', 'running', 'done', 'dead', 'cancelled')),
    attempts integer not null default 0,
    max_attempts integer not null,
    -- when the job (or its next attempt) is due
    run_at bigint not null,
    locked_by text,
    locked_until bigint,
    last_error text,
    created_at bigint not null,
    updated_at bigint not null,
    finished_at bigint
);

-- The claim scans due work in run_at order; only queued and running rows are ever candidates.
create index jobs_claim on jobs (run_at, id) where status in ('queued', 'running');
create index jobs_shop_status on jobs (shop, status);
create index jobs_receipt on jobs (receipt_id) where receipt_id is not null;

-- Assembled customers/data_request answers, kept for the merchant.
create table data_exports (
    id integer primary key autoincrement,
    shop text not null references shops (domain) on delete cascade,
    customer_id bigint,
    customer_email text,
    data_request_id bigint,
    -- JSON
    report text not null,
    created_at bigint not null,
    updated_at bigint not null
);

create index data_exports_shop on data_exports (shop, created_at);
