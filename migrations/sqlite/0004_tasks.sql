-- Tasks of the configs API (ricloud dialect): a `webhook_config.test` task
-- is one test delivery to one config. Its delivery row carries the task id.
CREATE TABLE tasks
(
    id             integer PRIMARY KEY AUTOINCREMENT,
    organisation   bigint NOT NULL,
    key_id         bigint,
    type           text   NOT NULL,
    target         bigint NOT NULL,
    state          text   NOT NULL, -- pending, processing, succeeded, failed
    results        text,            -- JSON
    error          text,
    date_created   bigint NOT NULL,
    date_started   bigint,
    date_completed bigint
);
CREATE INDEX tasks_by_organisation ON tasks (organisation, id);
