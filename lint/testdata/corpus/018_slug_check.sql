-- NOT NULL in two migrations, as strong_migrations advises: the check first,
SET lock_timeout = '3s';
ALTER TABLE projects ADD CONSTRAINT projects_slug_nn CHECK (slug IS NOT NULL) NOT VALID;
