-- Nothing to change on PostgreSQL; this file keeps both backends' migration numbers aligned.
--
-- On SQLite, webhook jobs are created after the acknowledgement, in bulk, from receipts behind
-- a promotion mark (migrations/sqlite/0003_webhook_promotion.sql). Such a mark needs ids that
-- become visible in order, which PostgreSQL's sequences do not promise when transactions commit
-- side by side, so here each webhook's job is still written in its receipt's transaction.
select 1;
