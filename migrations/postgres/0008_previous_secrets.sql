-- Secrets replaced by a rotation that still sign until their expiry:
-- JSON [{"secret", "expires_at" (µs)}], newest first (see ConfigRow).
ALTER TABLE webhook_configs ADD COLUMN previous_secrets TEXT NOT NULL DEFAULT '[]';
