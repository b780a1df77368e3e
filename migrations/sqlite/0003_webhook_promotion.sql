-- Webhook deliveries are acknowledged as soon as their receipt is committed; their jobs are
-- created afterwards, in bulk, by a claim that finds no job to claim, an uninstall or a shop
-- redaction, which promote the queued webhook receipts recorded since the last promotion.
--
-- Why: SQLite has one writer, and writing the job beside each receipt doubled the writer's work
-- per delivery (seven b-trees instead of four), which made it the limit of `POST /webhooks`
-- (tests/bench/webhooks.sh, `cargo bench -p keel --bench webhook_batches`). One
-- `insert … select` per promotion writes the same jobs for a fraction of the cost.
--
-- The mark below is sound because SQLite commits one transaction at a time and receipt ids
-- grow with every insert (autoincrement): once a receipt id is visible, every smaller one is
-- committed too, so nothing can appear behind the mark. That is not true of PostgreSQL's
-- sequences, which is why PostgreSQL (whose transactions commit side by side) keeps writing each
-- job in the receipt's own transaction; see migrations/postgres/0003_webhook_promotion.sql.

create table webhook_promotion (
    -- a single row
    id integer primary key check (id = 1),
    -- every queued webhook receipt with an id up to this one has its job
    promoted_through bigint not null
);

-- Receipts recorded before this migration were written with their jobs.
insert into webhook_promotion (id, promoted_through) select 1, coalesce(max(id), 0) from receipts;
