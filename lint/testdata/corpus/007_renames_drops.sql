SET lock_timeout = '3s';
-- expect: renaming-column
ALTER TABLE accounts RENAME COLUMN name TO display_name;
-- expect: renaming-table
ALTER TABLE memberships RENAME TO project_members;
-- expect: dropping-column
ALTER TABLE accounts DROP COLUMN locale;
-- expect: dropping-column
ALTER TABLE projects DROP COLUMN IF EXISTS archived;
-- expect: dropping-table
DROP TABLE IF EXISTS legacy_sessions;
ALTER INDEX accounts_plan_idx RENAME TO accounts_paid_plan_idx;
-- expect: enum-value-rename
ALTER TYPE project_role RENAME VALUE 'viewer' TO 'reader';
ALTER TYPE project_role ADD VALUE 'admin' BEFORE 'editor';
ALTER TYPE project_role ADD VALUE IF NOT EXISTS 'guest';
