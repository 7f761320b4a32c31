-- Most publishes carry no idempotency key, yet each put a (organisation,
-- NULL) entry into the unique index that only keyed publishes need: one
-- B-tree insertion (and its WAL) per event for nothing. The index now holds
-- the keyed events alone; `ON CONFLICT` names its predicate.
DROP INDEX published_events_idempotency;
CREATE UNIQUE INDEX published_events_idempotency
    ON published_events (organisation, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
