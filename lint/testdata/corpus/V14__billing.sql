SET lock_timeout = '5s';
CREATE TABLE subscriptions (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id bigint NOT NULL,
  status text NOT NULL DEFAULT 'active',
  renews_on date
);
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id);
-- expect: constraint-missing-not-valid
ALTER TABLE invoices ADD COLUMN subscription_id bigint REFERENCES subscriptions (id);
-- expect: adding-stored-generated-column
ALTER TABLE invoices ADD COLUMN amount_cents bigint GENERATED ALWAYS AS ((amount * 100)::bigint) STORED;
-- expect: unique-under-exclusive-lock
ALTER TABLE invoices ADD COLUMN external_ref text UNIQUE;
-- expect: volatile-default
ALTER TABLE invoices ADD COLUMN issued_at timestamptz NOT NULL DEFAULT clock_timestamp();
-- expect: unique-under-exclusive-lock
ALTER TABLE subscriptions_history ADD PRIMARY KEY (id);
ALTER TABLE invoices ALTER COLUMN number SET DEFAULT '';
