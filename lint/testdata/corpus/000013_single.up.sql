CREATE INDEX CONCURRENTLY audit_events_action_idx ON audit_events (action);
