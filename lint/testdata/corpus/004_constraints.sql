SET lock_timeout = '3s';
-- expect: constraint-missing-not-valid
ALTER TABLE memberships ADD CONSTRAINT memberships_project_fk FOREIGN KEY (project_id) REFERENCES projects (id);
ALTER TABLE projects ADD CONSTRAINT projects_owner_fk FOREIGN KEY (owner_id) REFERENCES accounts (id) NOT VALID;
ALTER TABLE projects VALIDATE CONSTRAINT projects_owner_fk;
-- expect: constraint-missing-not-valid
ALTER TABLE accounts ADD CONSTRAINT accounts_email_lower CHECK (email = lower(email));
ALTER TABLE accounts ADD CONSTRAINT accounts_plan_known CHECK (plan IN ('free', 'pro', 'team')) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_plan_known;
-- expect: unique-under-exclusive-lock
ALTER TABLE accounts ADD CONSTRAINT accounts_email_unique UNIQUE (email);
CREATE UNIQUE INDEX CONCURRENTLY projects_slug_uq ON projects (slug);
ALTER TABLE projects ADD CONSTRAINT projects_slug_uq UNIQUE USING INDEX projects_slug_uq;
ALTER TABLE memberships DROP CONSTRAINT memberships_project_fk;
ALTER TABLE accounts RENAME CONSTRAINT accounts_email_lower TO accounts_email_is_lower;
