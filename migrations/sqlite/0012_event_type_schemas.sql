-- An event type's JSON Schema (text), which a publish's data must satisfy.
ALTER TABLE event_types ADD COLUMN schema TEXT;
