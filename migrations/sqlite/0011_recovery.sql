-- Bulk recovery (src/delivery/recovery.rs): which task sent a failed delivery
-- again, so that the task can count how its deliveries ended.
ALTER TABLE deliveries ADD COLUMN recovered_by BIGINT;
CREATE INDEX deliveries_recovered ON deliveries (recovered_by) WHERE recovered_by IS NOT NULL;
