-- Secrets at rest (see projections/src/vault.rs): each config's data key,
-- which seals the secrets in its events, wrapped by the master key named
-- by key_id. Deleting a config deletes its row (crypto-shredding).
CREATE TABLE config_keys (
    aggregate_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    wrapped TEXT NOT NULL
);
