-- Cluster membership and endpoint ownership (see src/cluster/).
--
-- Every `webhookd serve` on PostgreSQL is a node: a row here, its heartbeat
-- renewed every quarter of --node-timeout. Endpoints are owned by partition
-- (config id modulo 64): a node holds a lease on a partition, renewed with
-- its heartbeat in one statement however many endpoints it covers. `epoch`
-- grows with every new holder; an attempt's record carries the epoch its
-- sender held, and a record from an older epoch does not move its delivery.
-- Times are the database's (now()), so the nodes' clocks do not matter.
CREATE TABLE cluster_nodes
(
    id           text        PRIMARY KEY,
    address      text        NOT NULL,
    role         text        NOT NULL, -- 'all', 'api' or 'worker'
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz
);

CREATE TABLE partition_leases
(
    partition  integer     PRIMARY KEY,
    node       text,
    epoch      bigint      NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO partition_leases (partition) SELECT generate_series(0, 63);
