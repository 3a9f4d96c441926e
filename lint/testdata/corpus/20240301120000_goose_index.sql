-- +goose Up
-- expect: concurrently-in-transaction
CREATE INDEX CONCURRENTLY projects_owner_idx ON projects (owner_id);
-- +goose Down
DROP INDEX CONCURRENTLY projects_owner_idx;
