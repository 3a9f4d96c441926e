SET lock_timeout = '3s';
ALTER TABLE accounts ADD COLUMN last_login_at timestamptz;
ALTER TABLE accounts ADD COLUMN plan text NOT NULL DEFAULT 'free';
ALTER TABLE accounts ADD COLUMN locale text DEFAULT 'en';
-- expect: volatile-default
ALTER TABLE accounts ADD COLUMN api_token uuid DEFAULT gen_random_uuid();
-- expect: not-null-without-default
ALTER TABLE projects ADD COLUMN slug text NOT NULL;
ALTER TABLE projects ADD COLUMN settings jsonb NOT NULL DEFAULT '{}';
ALTER TABLE projects ADD COLUMN updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP;
-- expect: volatile-default
ALTER TABLE projects ADD COLUMN position bigserial;
ALTER TABLE projects ADD COLUMN description text;
-- expect: constraint-missing-not-valid
ALTER TABLE projects ADD COLUMN owner_id bigint REFERENCES accounts (id);
