// Package bench is the live-traffic proof of online's promises: it runs
// pgbench's TPC-B-like workload against a scratch database while a migration
// goes through expand, backfill and contract, and measures what the
// application saw.
//
// # What Live does
//
//  1. Creates a scratch database (dropped at the end) and fills pgbench's four
//     tables with `pgbench -i -s SCALE`. Without pgbench, it creates the same
//     tables with generate_series and runs an equivalent TPC-B transaction
//     from Go instead.
//  2. Runs the workload through the old version (search_path=public) for one
//     phase, then calls Engine.Start with the migration of migrationYAML:
//     abalance int → bigint, a rename of pgbench_accounts.filler, a foreign
//     key on bid, NOT NULL with up on pgbench_tellers.filler and a new index.
//  3. Once the new version is published, starts a second workload on its
//     search_path, lets both run, stops the old one, runs Complete, and lets
//     the new one run on.
//  4. Checks the data: the TPC-B invariant row by row (each balance is the
//     sum of its history deltas; all start at 0), the history against the
//     transactions the workloads counted, and every migrated column.
//  5. Unless told not to, repeats the workload on a fresh copy of the data
//     with no migration and then with the blocking
//     `ALTER TABLE ... ALTER COLUMN abalance TYPE bigint`, for comparison.
//
// Every figure is per phase and per application: transactions, failed
// transactions, throughput, average / p99 / max latency, and the longest
// stall (the longest time in which the application finished no
// transaction). Throughput during the backfill is also given as a fraction
// of the throughput before the migration.
//
// # How the workloads are driven
//
// pgbench picks its version through PGOPTIONS='-c search_path=...' and
// logs every transaction (-l) with its completion time, from which the
// phases are cut. pgbench cannot be stopped gently (SIGINT loses its
// buffered log), so a workload is stopped by terminating its sessions,
// found by application_name; the client aborts this causes after the stop
// was asked for are expected and not counted as failures. Any other abort,
// and every transaction pgbench logs as failed, is.
//
// The package prints nothing: Config.Out gets a running account, Report
// renders the results, and logs go to Config.Log.
package bench
