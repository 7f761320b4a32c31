-- Delivery: published events, one delivery per (event, target config), and
-- the log of every attempt. A publish commits its event and all its
-- deliveries in one transaction before it is answered, so an accepted event
-- is never lost; the delivery actors work from these rows and resume them
-- after a crash.

-- Which event types each config subscribes to ('*' for all), maintained by
-- the config projector with the config's row, so routing is an index lookup.
CREATE TABLE webhook_config_subscriptions
(
    config_id    bigint NOT NULL,
    organisation bigint NOT NULL,
    event_type   text   NOT NULL,
    PRIMARY KEY (config_id, event_type)
);
CREATE INDEX webhook_config_subscriptions_routing
    ON webhook_config_subscriptions (organisation, event_type, config_id);

-- Start of the current run of consecutive failures (null after a success).
ALTER TABLE webhook_configs ADD COLUMN failing_since bigint;

CREATE TABLE published_events
(
    id              text   PRIMARY KEY, -- UUID; also the webhook-id header
    organisation    bigint NOT NULL,
    idempotency_key text,               -- the publisher's "id", if given
    event_type      text   NOT NULL,
    data            text   NOT NULL,    -- JSON
    published_at    bigint NOT NULL,    -- microseconds since the epoch
    key_id          bigint
);
CREATE UNIQUE INDEX published_events_idempotency
    ON published_events (organisation, idempotency_key);

CREATE TABLE deliveries
(
    id              integer PRIMARY KEY AUTOINCREMENT,
    event_id        text   NOT NULL REFERENCES published_events (id),
    config_id       bigint NOT NULL,
    organisation    bigint NOT NULL,
    kind            text   NOT NULL,   -- 'event' or 'test' (one attempt, records a Tested event)
    task_id         text,              -- the configs API task of a test delivery
    status          text   NOT NULL,   -- 'pending', 'succeeded', 'failed'
    attempts        bigint NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    last_status_code bigint,
    last_error      text,
    created_at      bigint NOT NULL,
    updated_at      bigint NOT NULL
);
-- What the actors resume after a restart.
CREATE INDEX deliveries_pending ON deliveries (status, config_id, next_attempt_at);
-- The attempt log of one config, newest first.
CREATE INDEX deliveries_by_config ON deliveries (config_id, id);

CREATE TABLE delivery_attempts
(
    id            integer PRIMARY KEY AUTOINCREMENT,
    delivery_id   bigint  NOT NULL REFERENCES deliveries (id),
    attempted_at  bigint  NOT NULL,
    duration_ms   bigint  NOT NULL,
    status_code   bigint,
    response_body text,              -- first 4 KiB
    error         text,
    success       boolean NOT NULL
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);
