-- The console (src/http/console): sessions of signed-in users and the
-- one-time portal links a platform hands to its customers. Tokens are
-- stored as SHA-256 hashes only, like API keys.
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    organisation BIGINT NOT NULL,
    -- Who acts through it, as recorded in the events it causes:
    -- `console:key:<id>` (signed in with a key) or `portal:<link id>`.
    actor TEXT NOT NULL,
    -- The key it was opened with (revoking the key ends the session).
    key_id BIGINT,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE portal_links (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    organisation BIGINT NOT NULL,
    key_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
