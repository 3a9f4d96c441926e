SET lock_timeout = '3s';
CREATE MATERIALIZED VIEW project_stats AS SELECT account_id, count(*) AS n FROM projects GROUP BY account_id;
CREATE UNIQUE INDEX project_stats_account ON project_stats (account_id);
REFRESH MATERIALIZED VIEW CONCURRENTLY project_stats;
CREATE OR REPLACE VIEW active_projects AS SELECT * FROM projects WHERE NOT archived;
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER projects_touch BEFORE UPDATE ON projects FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
GRANT SELECT ON project_stats TO reporting;
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX project_stats_n ON project_stats (n);
ALTER TABLE projects ALTER COLUMN title SET STATISTICS 500;
ALTER TABLE accounts REPLICA IDENTITY FULL;
