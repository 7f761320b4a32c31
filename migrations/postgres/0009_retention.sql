-- Retention (src/delivery/retention.rs) deletes published events by age.
CREATE INDEX published_events_by_time ON published_events (published_at);
