-- Key revocation and the admin log (see migrations/postgres/0006_admin.sql).
ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;

CREATE TABLE admin_log
(
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at  INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    request_id   TEXT,
    action       TEXT    NOT NULL,
    organisation INTEGER,
    target       TEXT    NOT NULL,
    details      TEXT    NOT NULL
);
CREATE INDEX admin_log_by_time ON admin_log (recorded_at, id);
