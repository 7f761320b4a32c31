-- The cqrs-es event store (the shape postgres-es reads and writes), plus two
-- columns webhookd owns:
--   position    a global order of commits (identity; may have gaps and, under
--               concurrent commits, becomes visible out of order: readers that
--               follow the log must not assume "no row below the max is missing");
--   recorded_at the commit time in microseconds since the Unix epoch.
-- postgres-es detects a concurrent append (AggregateConflict) by the
-- unique-violation code 23505 of the primary key.
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    position       bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    recorded_at    bigint                       NOT NULL
        DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

-- Unused by webhookd (cqrs-es 0.5 snapshot stores apply events twice), kept
-- so that the crate's expectations of the schema hold.
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);
