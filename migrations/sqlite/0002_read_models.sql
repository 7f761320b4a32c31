-- Organisations, API keys and the event-type catalog are reference data that
-- operators and tenants write directly (they are not event-sourced; see
-- README "Design choices"). Webhook configs are a projection of the event log.

CREATE TABLE organisations
(
    id                     integer PRIMARY KEY AUTOINCREMENT,
    name                   text    NOT NULL,
    plan                   text    NOT NULL,
    features               text    NOT NULL, -- JSON array of flag names
    webhook_config_default bigint,
    created_at             bigint  NOT NULL  -- microseconds since the epoch
);

CREATE TABLE api_keys
(
    id             integer PRIMARY KEY AUTOINCREMENT,
    organisation   bigint NOT NULL REFERENCES organisations (id),
    token_hash     text   NOT NULL UNIQUE, -- hex SHA-256 of the token; the token itself is never stored
    scopes         text   NOT NULL,        -- JSON array
    webhook_config bigint,
    created_at     bigint NOT NULL
);
CREATE INDEX api_keys_by_organisation ON api_keys (organisation, id);

CREATE TABLE event_types
(
    name        text PRIMARY KEY,
    description text   NOT NULL,
    created_at  bigint NOT NULL
);
INSERT INTO event_types (name, description, created_at)
VALUES ('webhook_config.test', 'Sent by a test of a webhook config to check that its receiver answers.', 0);

-- Allocates webhook config ids before their Created event is written.
CREATE TABLE webhook_config_ids
(
    id integer PRIMARY KEY AUTOINCREMENT
);

-- The webhook config read model: one row per config aggregate, folded from
-- its events. `version` is the sequence of the last event folded in; the
-- projector only ever moves it forward. The delivery statistics at the end
-- are written by delivery outcomes, never by the projector.
CREATE TABLE webhook_configs
(
    id                  integer PRIMARY KEY,
    organisation        bigint  NOT NULL,
    profile             text    NOT NULL,
    url                 text    NOT NULL,
    name                text    NOT NULL,
    events              text    NOT NULL, -- JSON array
    headers             text    NOT NULL, -- JSON object
    retry_count         bigint  NOT NULL,
    timeout_seconds     bigint  NOT NULL,
    secret              text    NOT NULL,
    state               text    NOT NULL,
    deactivation_reason text,
    deleted             boolean NOT NULL,
    version             bigint  NOT NULL,
    created_at          bigint  NOT NULL,
    updated_at          bigint  NOT NULL,
    last_triggered_at   bigint,
    last_success_at     bigint,
    last_failure_at     bigint,
    failure_count       bigint  NOT NULL DEFAULT 0
);
-- v1 list: an organisation's live configs, newest (highest id) first.
CREATE INDEX webhook_configs_by_organisation ON webhook_configs (organisation, deleted, id);
-- configs list: filtered by state and creation date.
CREATE INDEX webhook_configs_by_state ON webhook_configs (organisation, state, id);
CREATE INDEX webhook_configs_by_created ON webhook_configs (organisation, created_at);
