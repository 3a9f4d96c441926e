// Package backfill rewrites every row of one table in short batches, so that a
// new column can be filled on a live database without one long transaction.
//
// # Contract
//
// Run walks the table in the order of Task.Key with keyset pagination. Each
// batch is its own transaction, which
//
//  1. applies Options.Settings (and the package's own planner settings) with
//     set_config(name, value, true), so they end with the transaction;
//  2. finds the upper bound of the next batch:
//     SELECT key::text ... WHERE key > lo AND key <= max ORDER BY key OFFSET n-1 LIMIT 1;
//  3. rewrites the range: UPDATE ... SET col = (expr) WHERE key > lo AND key <= hi AND (Where);
//  4. calls Options.Checkpoint with the new checkpoint, inside the transaction;
//  5. commits.
//
// The last batch (fewer than n keys left) runs up to max and counts its keys
// with count(*) instead; an empty table gets one transaction that only
// records the final checkpoint, so the caller's store always ends up Done.
//
// Because the checkpoint is written by the same transaction as the batch, a
// process killed at any moment loses nothing and repeats nothing: resuming
// from the last stored checkpoint starts exactly after the last committed
// batch. A checkpoint callback that returns an error rolls its batch back and
// Run returns the previous checkpoint with the error. The stored checkpoint
// is the one to trust: if the connection breaks during COMMIT, Run cannot
// know whether the batch committed and returns the one before.
//
// Checkpoint.RowsDone and Progress.RowsDone count keys walked, rows that the
// Where filter left alone included, so that they compare with RowsTotal.
//
// The walk ends at the largest key that existed when Run started (max above),
// so a steady stream of inserts cannot keep it going forever. Rows inserted
// or updated by others while Run works are the sync triggers' business: Run
// may or may not visit them, and visiting them again is harmless because the
// expressions only read the row's own columns. Every row whose key existed
// at the start is visited exactly once, provided its key does not change.
//
// # What the caller must guarantee
//
//   - Key is the primary key or a NOT NULL unique column set, listed in the
//     order of the columns of a btree index (Run checks both, because a key
//     with NULLs would skip rows and a key no index orders would sort the
//     table for every batch). Key values must survive a round trip through
//     their text form, as every built-in type does.
//   - Column.Type, Assignment.Expr and Task.Where are SQL text from a trusted
//     source (the catalog, the migration author); identifiers are quoted by
//     this package, these are not.
//   - The Set expressions are idempotent on a row (they read only the row's
//     columns): a batch may be retried after a lock timeout or a deadlock.
//   - conn is not inside a transaction and nobody else uses it during Run.
//     Its lock_timeout bounds every lock wait of a batch; without one a batch
//     may wait for a row lock as long as its holder keeps it.
//
// # Speed
//
// Each batch runs with enable_seqscan off. Without that, a table that was
// never ANALYZEd (or whose statistics are stale) can make the planner choose
// a sequential scan per batch, which turns the backfill quadratic. With it the
// batches use the key's index (a bitmap or index scan of the range), and the
// whole backfill runs at about the speed of one plain UPDATE of the table.
//
// The batch size adapts so that a batch takes about Options.BatchTime. Run
// pauses between batches when asked to limit its rate, when a batch was much
// slower than the target, and when other sessions wait for a lock on the
// table. Just before each batch commits, Run counts the sessions waiting for
// its transaction (application writes to rows the batch has locked): each
// of them has waited up to a whole batch, so while there are any, the target
// duration halves with every such batch, down to an eighth of BatchTime, and
// it grows back by a quarter with every batch nobody waited for. Each batch
// waits at most Options.LockTimeout (DefaultLockTimeout, 100ms) for a row
// lock: the rows it updated before stay locked while it waits. A batch
// that fails on a lock timeout or deadlock is retried, smaller, after a
// jittered pause, until Options.LockRetryDeadline is exhausted (or
// Options.LockRetries, when set).
//
// Run checks ctx between batches. A batch already running is let finish (for
// up to Options.CancelGrace) rather than cut off, so that a cancel leaves the
// connection usable and the work committed; either way the checkpoint
// returned is the last one committed.
package backfill
