-- The Svix dialect (src/http/svix). An application is an organisation of
-- its own, owned by the organisation whose keys manage it (Svix's
-- "environment"): its endpoints are configs of that organisation and its
-- messages are events published for it, so routing, idempotency, the
-- console and retention need nothing new. What Svix has and a config has
-- not (an application's uid, name and metadata; an endpoint's uid and
-- metadata; a message's channels) lives beside them here.
CREATE TABLE svix_applications (
    organisation BIGINT NOT NULL PRIMARY KEY,
    environment BIGINT NOT NULL,
    uid TEXT,
    name TEXT NOT NULL,
    rate_limit BIGINT,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX svix_applications_uid ON svix_applications (environment, uid);
CREATE INDEX svix_applications_by_environment ON svix_applications (environment, organisation);

-- `channels`: a JSON array; such an endpoint receives only messages with
-- one of them (NULL: every message its event types let through).
CREATE TABLE svix_endpoints (
    config_id BIGINT NOT NULL PRIMARY KEY,
    organisation BIGINT NOT NULL,
    uid TEXT,
    metadata TEXT NOT NULL,
    channels TEXT
);
CREATE INDEX svix_endpoints_with_channels ON svix_endpoints (organisation)
    WHERE channels IS NOT NULL;
CREATE UNIQUE INDEX svix_endpoints_uid ON svix_endpoints (organisation, uid);

CREATE TABLE svix_messages (
    event_id TEXT NOT NULL PRIMARY KEY,
    organisation BIGINT NOT NULL,
    channels TEXT NOT NULL
);

-- `Idempotency-Key` of a POST: the first answer, replayed to a repeat of
-- the key by the same organisation. `status` 0: the first request is
-- still running. Rows older than a day are deleted by retention.
CREATE TABLE idempotency_keys (
    organisation BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (organisation, idempotency_key)
);

-- Svix's event types can be archived (hidden from lists, still valid).
ALTER TABLE event_types ADD COLUMN archived BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE event_types ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
