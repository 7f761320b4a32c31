-- The delivery hot path writes one delivery row per target, one attempt row
-- per request, and moves each delivery from 'pending' to its end.
--
-- * Foreign keys from deliveries to published_events and from attempts to
--   deliveries cost a trigger, a lookup and a row lock per written row.
--   Both sides are written by webhookd in the same transaction (publish) or
--   from a row it just read (attempts), so the keys guard nothing a
--   constraint must catch; the indexes stay.
-- * Only pending deliveries need finding by the actors: a partial index
--   keeps finished ones (almost all rows) out of it.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_event_id_fkey;
ALTER TABLE delivery_attempts DROP CONSTRAINT IF EXISTS delivery_attempts_delivery_id_fkey;
DROP INDEX deliveries_pending;
CREATE INDEX deliveries_pending ON deliveries (config_id, next_attempt_at) WHERE status = 'pending';
