SET lock_timeout = '3s';
-- expect: require-concurrent-index-creation
CREATE INDEX accounts_created_at_idx ON accounts (created_at);
-- expect: require-concurrent-index-creation
CREATE UNIQUE INDEX projects_slug_key ON projects (account_id, slug);
CREATE INDEX CONCURRENTLY accounts_plan_idx ON accounts (plan) WHERE plan <> 'free';
CREATE INDEX CONCURRENTLY IF NOT EXISTS projects_updated_at_idx ON projects (updated_at DESC);
-- expect: require-concurrent-index-deletion
DROP INDEX projects_account_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS accounts_created_at_idx;
-- expect: reindex-without-concurrently
REINDEX INDEX accounts_email_key;
REINDEX INDEX CONCURRENTLY projects_slug_key;
