-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY projects_title_idx ON projects (title);
-- +goose Down
DROP INDEX CONCURRENTLY projects_title_idx;
