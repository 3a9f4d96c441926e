-- then validate it and set NOT NULL, which the validated check spares a scan.
SET lock_timeout = '3s';
ALTER TABLE projects VALIDATE CONSTRAINT projects_slug_nn;
ALTER TABLE projects ALTER COLUMN slug SET NOT NULL;
ALTER TABLE projects DROP CONSTRAINT projects_slug_nn;
-- invoices.number is varchar(40) since 006: varchar(60) only relabels
ALTER TABLE invoices ALTER COLUMN number TYPE varchar(60);
-- projects.title is text since 006: varchar(200) must check every value
-- expect: changing-column-type
ALTER TABLE projects ALTER COLUMN title TYPE varchar(200);
