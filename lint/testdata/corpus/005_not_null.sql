SET lock_timeout = '3s';
-- expect: set-not-null
ALTER TABLE accounts ALTER COLUMN name SET NOT NULL;
ALTER TABLE projects ADD CONSTRAINT projects_description_nn CHECK (description IS NOT NULL) NOT VALID;
ALTER TABLE projects VALIDATE CONSTRAINT projects_description_nn;
ALTER TABLE projects ALTER COLUMN description SET NOT NULL;
ALTER TABLE projects DROP CONSTRAINT projects_description_nn;
ALTER TABLE accounts ALTER COLUMN locale DROP NOT NULL;
ALTER TABLE accounts ALTER COLUMN locale SET DEFAULT 'en-US';
ALTER TABLE accounts ALTER COLUMN locale DROP DEFAULT;
