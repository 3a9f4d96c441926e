SET lock_timeout = '3s';
-- expect: changing-column-type
ALTER TABLE memberships ALTER COLUMN account_id TYPE bigint;
ALTER TABLE projects ALTER COLUMN title TYPE text;
-- expect: changing-column-type
ALTER TABLE accounts ALTER COLUMN plan TYPE varchar(20);
-- expect: changing-column-type
ALTER TABLE projects ALTER COLUMN settings TYPE json USING settings::json;
CREATE TABLE invoices (id bigserial PRIMARY KEY, number varchar(20) NOT NULL, amount numeric(10, 2) NOT NULL);
ALTER TABLE invoices ALTER COLUMN number TYPE varchar(40);
ALTER TABLE invoices ALTER COLUMN amount TYPE numeric(14, 2);
