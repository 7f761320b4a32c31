-- Only pending deliveries need finding by the actors: a partial index keeps
-- finished ones (almost all rows) out of it. (PostgreSQL's 0005 also drops
-- two foreign keys; SQLite cannot drop a constraint without rebuilding the
-- table, and its checks are plain index lookups in-process.)
DROP INDEX deliveries_pending;
CREATE INDEX deliveries_pending ON deliveries (config_id, next_attempt_at) WHERE status = 'pending';
