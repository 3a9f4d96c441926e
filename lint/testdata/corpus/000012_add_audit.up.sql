SET lock_timeout = '2s';
CREATE TABLE audit_events (
  id bigserial PRIMARY KEY,
  account_id bigint REFERENCES accounts (id),
  action text NOT NULL,
  payload jsonb,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_account_idx ON audit_events (account_id, at DESC);
-- expect: concurrently-in-transaction
CREATE INDEX CONCURRENTLY accounts_display_name_idx ON accounts (display_name);
