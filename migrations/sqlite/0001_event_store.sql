-- The cqrs-es event store (the shape sqlite-es reads and writes), plus two
-- columns webhookd owns:
--   position    a global, gap-free order of commits (assigned by the trigger
--               below; SQLite serialises writers, so MAX()+1 is safe), used
--               by audits and rebuilds to stream the log in commit order;
--   recorded_at the commit time in microseconds since the Unix epoch.
-- The primary key must stay as it is: sqlite-es detects a concurrent append
-- (AggregateConflict) by SQLite's primary-key violation code 1555.
CREATE TABLE events
(
    aggregate_type text                          NOT NULL,
    aggregate_id   text                          NOT NULL,
    sequence       integer CHECK (sequence >= 0) NOT NULL,
    event_type     text                          NOT NULL,
    event_version  text                          NOT NULL,
    payload        text                          NOT NULL,
    metadata       text                          NOT NULL,
    position       integer,
    recorded_at    integer                       NOT NULL
        DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE UNIQUE INDEX events_position ON events (position);

CREATE TRIGGER events_assign_position
    AFTER INSERT ON events
BEGIN
    UPDATE events
    SET position = (SELECT COALESCE(MAX(position), 0) + 1 FROM events)
    WHERE rowid = NEW.rowid;
END;

-- Unused by webhookd (cqrs-es 0.5 snapshot stores apply events twice), kept
-- so that the crate's expectations of the schema hold.
CREATE TABLE snapshots
(
    aggregate_type   text                                  NOT NULL,
    aggregate_id     text                                  NOT NULL,
    last_sequence    integer CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
    payload          text                                  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;
