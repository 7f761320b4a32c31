-- Ordered delivery (`ordering: "fifo"`): a config's choice, and for each
-- delivery to a FIFO config its place in that config's line, fixed when
-- its publish commits. `fifo_sequences` hands the places out: the row is
-- locked from the moment a publish takes places until it commits, so the
-- places of one config follow the commit order of its publishes.
ALTER TABLE webhook_configs ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none';
ALTER TABLE deliveries ADD COLUMN fifo_seq BIGINT;
CREATE TABLE fifo_sequences (
    config_id BIGINT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
CREATE INDEX deliveries_fifo_pending ON deliveries (config_id, fifo_seq)
    WHERE status = 'pending' AND fifo_seq IS NOT NULL;
