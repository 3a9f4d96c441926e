package bench

// migrationYAML is the migration Live runs under traffic, in the format of a
// user's migration file so that it goes through the same parser. It covers
// each kind of work the engine does: a type change (hidden column, sync
// triggers, a backfill of every account), a rename (views only), a foreign
// key (NOT VALID, then VALIDATE), NOT NULL with up over existing NULLs (a
// second backfill, on the hottest rows of the workload: every transaction
// updates one of the few tellers), and a concurrent index build.
//
// It leaves alone every column the TPC-B script names (aid, bid, tid,
// abalance, tbalance, bbalance, delta, mtime), so that pgbench's built-in
// script runs unchanged on the new version.
const migrationYAML = `name: pgbench_v2
operations:
  - alter_column:
      table: pgbench_accounts
      column: abalance
      type: bigint
  - rename_column:
      table: pgbench_accounts
      from: filler
      to: note
  - alter_column:
      table: pgbench_accounts
      column: bid
      references:
        name: pgbench_accounts_bid_fkey
        table: pgbench_branches
        column: bid
  - alter_column:
      table: pgbench_tellers
      column: filler
      nullable: false
      up: "coalesce(filler, 'teller ' || tid)"
  - create_index:
      table: pgbench_accounts
      name: pgbench_accounts_bid_idx
      columns: [bid]
`

// What the migration defines, for the checks after complete.
const (
	renamedFrom = "filler"
	renamedTo   = "note"
	fkName      = "pgbench_accounts_bid_fkey"
	indexName   = "pgbench_accounts_bid_idx"
	// tellerFillerUp is the up of pgbench_tellers.filler; every teller
	// starts with a NULL filler and the workload never writes it, so each
	// must end up holding it.
	tellerFillerUp = "'teller ' || tid"
)

// migrationSummary says in a line per operation what migrationYAML does,
// for the report.
var migrationSummary = []string{
	"alter_column pgbench_accounts.abalance: int -> bigint (backfill of every account)",
	"rename_column pgbench_accounts.filler -> note",
	"alter_column pgbench_accounts.bid: references pgbench_branches(bid)",
	"alter_column pgbench_tellers.filler: NOT NULL, up coalesce(filler, 'teller ' || tid) (backfill)",
	"create_index pgbench_accounts_bid_idx on pgbench_accounts(bid)",
}

// blockingAlter is the statement a migration without online would run for
// the type change: it rewrites the table under ACCESS EXCLUSIVE.
const blockingAlter = "ALTER TABLE %s ALTER COLUMN abalance TYPE bigint"
