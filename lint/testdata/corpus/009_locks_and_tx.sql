BEGIN;
SET LOCAL lock_timeout = '2s';
-- expect: explicit-lock
LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE;
UPDATE accounts SET plan = 'free' WHERE plan IS NULL;
-- expect: concurrently-in-transaction
CREATE INDEX CONCURRENTLY accounts_last_login_idx ON accounts (last_login_at);
COMMIT;
CREATE INDEX CONCURRENTLY accounts_last_login_idx2 ON accounts (last_login_at);
BEGIN;
INSERT INTO projects (account_id, title) SELECT id, 'Default' FROM accounts WHERE NOT EXISTS (SELECT 1 FROM projects p WHERE p.account_id = accounts.id);
DELETE FROM projects WHERE archived AND updated_at < now() - interval '2 years';
COMMIT;
