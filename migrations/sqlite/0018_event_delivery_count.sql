-- How many deliveries a publish created, kept on its event: a publish that
-- repeats an idempotency key answers the first publish's count, which was
-- counted from `deliveries` by `event_id` — a column no index covers, so a
-- scan of the whole table (on SQLite inside the one write transaction) for
-- every retried publish. Events published before this are still counted.
ALTER TABLE published_events ADD COLUMN delivery_count BIGINT;
