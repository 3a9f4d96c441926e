package lint

// Rule is one check: what it finds, why that hurts a live database, and
// what to do instead.
type Rule struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
	Why     string `json:"why"`
	Instead string `json:"instead"`
}

// Rules lists every rule, in the order the README documents them.
var Rules = []Rule{
	{
		ID:      "changing-column-type",
		Summary: "ALTER COLUMN ... TYPE",
		Why:     "takes ACCESS EXCLUSIVE (no reads, no writes) and, unless the change only relabels the data (varchar(n) to varchar(m>n) or text, numeric(p,s) to numeric(q>p,s) or numeric), rewrites the whole table and rebuilds every index on it for as long as that takes; old code reading or writing the column with the old type may fail",
		Instead: "alter_column with type and up/down: a new column filled in batches, both versions served until complete",
	},
	{
		ID:      "require-concurrent-index-creation",
		Summary: "CREATE INDEX without CONCURRENTLY on a table that exists",
		Why:     "takes SHARE on the table: every INSERT, UPDATE and DELETE waits until the whole index is built (minutes on a large table)",
		Instead: "CREATE INDEX CONCURRENTLY outside a transaction, or create_index (built CONCURRENTLY)",
	},
	{
		ID:      "require-concurrent-index-deletion",
		Summary: "DROP INDEX without CONCURRENTLY",
		Why:     "takes ACCESS EXCLUSIVE on the index's table: waits behind every running query on it, and every query that arrives meanwhile queues behind the DROP",
		Instead: "DROP INDEX CONCURRENTLY outside a transaction, or drop_index",
	},
	{
		ID:      "constraint-missing-not-valid",
		Summary: "CHECK or FOREIGN KEY added to an existing table without NOT VALID",
		Why:     "checks every row while holding the lock: ACCESS EXCLUSIVE for CHECK (no reads or writes), SHARE ROW EXCLUSIVE on both tables for a foreign key (no writes), for the whole scan",
		Instead: "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later transaction (SHARE UPDATE EXCLUSIVE: reads and writes go on); or create_constraint",
	},
	{
		ID:      "set-not-null",
		Summary: "ALTER COLUMN ... SET NOT NULL",
		Why:     "scans the whole table under ACCESS EXCLUSIVE to prove no NULL, unless a validated CHECK (col IS NOT NULL) already proves it (PostgreSQL 12+); old code inserting without the column fails",
		Instead: "ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT; then SET NOT NULL (no scan) and drop the check; or alter_column nullable: false with up",
	},
	{
		ID:      "volatile-default",
		Summary: "a column added with a volatile default (random(), gen_random_uuid(), clock_timestamp(), a serial, an identity)",
		Why:     "PostgreSQL 11+ stores a constant or stable default (0, 'x', now()) in the catalog without a rewrite, but a volatile one is computed for every row: the whole table is rewritten under ACCESS EXCLUSIVE",
		Instead: "add the column without a default (or with a constant one), set the default in a second statement, backfill in batches; or add_column with up",
	},
	{
		ID:      "adding-stored-generated-column",
		Summary: "ADD COLUMN ... GENERATED ALWAYS AS (...) STORED",
		Why:     "computes the column for every row: the whole table is rewritten under ACCESS EXCLUSIVE",
		Instead: "add_column with generated.expression (a plain column kept by a trigger, filled by a batched backfill)",
	},
	{
		ID:      "not-null-without-default",
		Summary: "ADD COLUMN ... NOT NULL without a default on a table that exists",
		Why:     "fails at once on a table with rows; and once added, every INSERT of old code, which does not name the column, fails",
		Instead: "add_column with nullable: false and up (the value for existing rows); old code keeps inserting through its version",
	},
	{
		ID:      "renaming-column",
		Summary: "RENAME COLUMN",
		Why:     "instant, but every running query, prepared statement and ORM model that names the old column fails from that moment until the new code is deployed",
		Instead: "rename_column: the old name keeps working for old code until complete",
	},
	{
		ID:      "renaming-table",
		Summary: "ALTER TABLE ... RENAME TO",
		Why:     "instant, but all code that names the old table fails until the new code is deployed",
		Instead: "rename_table: both names work until complete",
	},
	{
		ID:      "dropping-column",
		Summary: "DROP COLUMN",
		Why:     "instant (ACCESS EXCLUSIVE, catalog only), but old code that selects or inserts the column fails at once, and rollback cannot bring the data back",
		Instead: "drop_column: hidden from the new version at once, dropped at complete when no old code is left",
	},
	{
		ID:      "dropping-table",
		Summary: "DROP TABLE",
		Why:     "old code that reads or writes the table fails at once, and the data is gone",
		Instead: "drop_table: hidden from the new version, dropped at complete",
	},
	{
		ID:      "unique-under-exclusive-lock",
		Summary: "UNIQUE, PRIMARY KEY or EXCLUDE added to an existing table without USING INDEX",
		Why:     "builds the index while holding ACCESS EXCLUSIVE: no reads and no writes for the whole build; a PRIMARY KEY also scans for NULLs",
		Instead: "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE/PRIMARY KEY USING INDEX (instant); or create_constraint",
	},
	{
		ID:      "table-rewrite",
		Summary: "VACUUM FULL, CLUSTER, ALTER TABLE SET TABLESPACE / SET LOGGED / SET UNLOGGED",
		Why:     "rewrites the whole table (and its indexes) under ACCESS EXCLUSIVE: no reads or writes until it ends",
		Instead: "pg_repack or pg_squeeze for VACUUM FULL and CLUSTER; plain VACUUM for space reuse; schedule the rest in a maintenance window",
	},
	{
		ID:      "reindex-without-concurrently",
		Summary: "REINDEX without CONCURRENTLY",
		Why:     "blocks writes to the table (SHARE) and reads that would use the index (ACCESS EXCLUSIVE on the index) until the rebuild ends",
		Instead: "REINDEX ... CONCURRENTLY (PostgreSQL 12+), outside a transaction",
	},
	{
		ID:      "explicit-lock",
		Summary: "LOCK TABLE",
		Why:     "holds the lock (ACCESS EXCLUSIVE unless a mode is given) until the transaction ends: every query on the table waits, and the LOCK itself queues behind running ones",
		Instead: "let each statement take the lock it needs, under a short lock_timeout; online's operations do",
	},
	{
		ID:      "enum-value-rename",
		Summary: "ALTER TYPE ... RENAME VALUE",
		Why:     "instant, but old code that writes or compares the old label fails or silently matches nothing",
		Instead: "ADD VALUE the new label, migrate the rows (alter_column with up), drop the old label's use later; or keep both",
	},
	{
		ID:      "concurrently-in-transaction",
		Summary: "CREATE/DROP INDEX CONCURRENTLY or REINDEX CONCURRENTLY inside a transaction",
		Why:     "PostgreSQL refuses it (\"cannot run inside a transaction block\"): the migration fails. Explicit BEGIN...COMMIT, goose (unless -- +goose NO TRANSACTION), golang-migrate with several statements in the file (one implicit transaction) and online's sql operation all run a file in one transaction",
		Instead: "one statement per file outside a transaction (goose: -- +goose NO TRANSACTION; golang-migrate: a file of its own); or create_index/drop_index",
	},
	{
		ID:      "missing-lock-timeout",
		Summary: "a statement that takes ACCESS EXCLUSIVE with no lock_timeout set before it in the file",
		Why:     "while it waits for its lock behind a long query, every query on the table queues behind it: a lock wait becomes an outage",
		Instead: "SET lock_timeout = '2s' (and retry) at the top of the file; online sets one for every statement it runs",
	},
	{
		ID:      "ignore-without-reason",
		Summary: "an online-lint-ignore comment without a reason",
		Why:     "an ignored finding must say why it is safe, for the next reader",
		Instead: "-- online-lint-ignore RULE-ID: the reason",
	},
}

func ruleByID(id string) *Rule {
	for i := range Rules {
		if Rules[i].ID == id {
			return &Rules[i]
		}
	}
	return nil
}
