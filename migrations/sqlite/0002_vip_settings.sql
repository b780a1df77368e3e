-- The VIP discount settings of each shop (issue #5) and the state of their sync to the shop's
-- automatic discount. Same table and meaning as migrations/postgres/0002_vip_settings.sql.
--
-- One row per shop, written by `PUT /api/settings` together with the job that syncs it (one
-- transaction). Times are bigint unix milliseconds handed in by the app.

create table vip_settings (
    shop text primary key references shops (domain) on delete cascade,
    -- the configuration as written to the discount's `$app:vip`/`config` metafield (JSON text,
    -- validated by the app with the types the Function uses)
    config text not null,
    -- grows by one on every save
    version bigint not null,
    -- the job that syncs the latest version; a sync job with another id was superseded
    sync_job_id bigint,
    -- pending (a save not yet on Shopify), synced or failed
    sync_status text not null check (sync_status in ('pending', 'synced', 'failed')),
    -- why the last sync of the latest version failed (or is being retried); null otherwise
    sync_error text,
    -- the Shopify discount (DiscountAutomaticNode GID) once created or found
    discount_id text,
    -- the version the discount on Shopify carries, and when it got it
    synced_version bigint,
    synced_at bigint,
    -- one sync per shop at a time: whoever holds an unexpired lease talks to Shopify
    sync_holder text,
    sync_lease_until bigint,
    created_at bigint not null,
    updated_at bigint not null
);
