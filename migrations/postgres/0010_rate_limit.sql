-- A config's rate limit: deliveries per second, NULL for none.
ALTER TABLE webhook_configs ADD COLUMN rate_limit BIGINT;
