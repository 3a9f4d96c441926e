-- expect: table-rewrite
-- expect: missing-lock-timeout
VACUUM FULL accounts;
VACUUM (ANALYZE, VERBOSE) projects;
ANALYZE accounts;
-- expect: table-rewrite
CLUSTER projects USING projects_pkey;
-- expect: reindex-without-concurrently
REINDEX TABLE projects;
REINDEX TABLE CONCURRENTLY accounts;
-- expect: table-rewrite
ALTER TABLE accounts SET TABLESPACE fast_ssd;
ALTER TABLE accounts SET (autovacuum_vacuum_scale_factor = 0.01);
