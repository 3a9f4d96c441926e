package backfill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/onlinepg/online/internal/pg"
)

// Column is a key column: its physical name and its SQL type as format_type
// prints it (the type key values are cast back to from their text form).
type Column struct{ Name, Type string }

// Assignment is one SET "Column" = (Expr) of the batch UPDATE. Expr is SQL
// over the table's physical columns, unqualified.
type Assignment struct{ Column, Expr string }

// Task says which table to rewrite and how.
type Task struct {
	Schema, Table string
	// Key is the primary key or a NOT NULL unique column set, in the order
	// of a btree index's columns. Composite keys work.
	Key []Column
	Set []Assignment
	// Where, optional, is an extra row filter ANDed into the UPDATE, e.g.
	// `"_online_x" IS NULL`. It does not change the walk: batches still
	// count keys, the filter only decides which of them are written.
	Where string
	// Insert, when set, replaces the UPDATE: each batch inserts, into
	// another table of Schema, one row per walked row that Where keeps
	// (data moved to a new table). Set is then empty.
	Insert *Insert
}

// Insert is where a batch inserts: Columns of table Into get Exprs, SQL
// over the walked table's columns.
type Insert struct {
	Into    string
	Columns []string
	Exprs   []string
}

// Checkpoint is how far a backfill got; it is committed with each batch.
type Checkpoint struct {
	// LastKey is the text form of the last key done; nil means from the start.
	LastKey []string
	// RowsDone counts the keys walked so far (rows the Where filter skipped
	// included), across resumptions.
	RowsDone int64
	Done     bool
	// RowsTotal and Rate are for the caller's records, filled in only in
	// the checkpoints Run hands to Options.Checkpoint (zero in the one it
	// returns): the row estimate of the walk, and the rows per second over
	// the last few batches, this one included. Resume ignores them.
	RowsTotal int64   `json:"-"`
	Rate      float64 `json:"-"`
}

// Progress is reported after each batch.
type Progress struct {
	Table     string
	RowsDone  int64
	RowsTotal int64 // estimate, 0 if unknown
	Rate      float64
	ETA       time.Duration
	BatchSize int
	// BatchTime is the batch duration aimed at: Options.BatchTime, or less
	// while application sessions wait for the batches' row locks.
	BatchTime time.Duration
	Done      bool
	// ReplicaLag is set by callers that pause for standbys (the phases
	// package): the lag being waited for, 0 when not paused.
	ReplicaLag time.Duration
	// Duty is set by callers that slow the backfill for the application
	// (the phases package): the share of time the workers spend in
	// batches, 0 or 1 when not slowed.
	Duty float64
}

// Options tune a Run. The zero value is usable.
type Options struct {
	// BatchTime is the target duration of one batch; default 100ms. The
	// batch size adapts to it, within [MinBatch, MaxBatch].
	BatchTime                        time.Duration
	InitialBatch, MinBatch, MaxBatch int // defaults 1000, 50, 200000
	// Rate is the most rows per second to walk; 0 is unlimited. A limited
	// Run also keeps each batch to at most about a second's worth of rows.
	Rate float64
	// Settings are applied with set_config(name, value, true) in every batch
	// transaction, after the package's own (so they may override them).
	Settings map[string]string
	// Resume starts after this checkpoint instead of at the beginning.
	Resume *Checkpoint
	// Until, when set, ends the walk at the largest key not above it
	// instead of at the table's largest: with Resume's LastKey as the
	// exclusive lower bound, Run walks one range of the key (see Split).
	Until []string
	// Total, when positive, is the row estimate of the walk instead of the
	// table's, which is wrong for a range. It counts from the walk's start,
	// Resume's rows included.
	Total int64
	// PaceLast pauses after the last batch too, as after any other (the
	// pause of Rate, then Pause): for a caller that walks on in another
	// range on the same connection, so that Rate and Pause hold across
	// ranges instead of letting each range's last batch go unpaced.
	PaceLast bool
	// Pause, when set, is called between batches, after the pause of
	// Rate and the waiter checks; it may block (return nil after
	// waiting) to hold the walk back for a reason of the caller's, such as
	// replication lag. An error ends Run.
	Pause func(ctx context.Context) error
	// Checkpoint is called inside each batch's transaction before commit,
	// so the checkpoint commits atomically with the batch. An error rolls
	// the batch back and ends Run.
	Checkpoint func(ctx context.Context, tx pgx.Tx, cp Checkpoint) error
	// Progress is called after each batch, from Run's goroutine.
	Progress func(Progress)
	// Logger gets debug lines only, and none per batch: the start, the end,
	// retries and pauses. The zero value, like zerolog.Nop(), discards them.
	Logger zerolog.Logger

	// LockRetries, when positive, bounds the attempts at one batch that
	// fails because of a lock timeout (55P03), a deadlock or a
	// serialization failure; zero leaves LockRetryDeadline the one bound.
	// Each retry halves the batch after a jittered, doubling pause.
	LockRetries int
	// LockRetryDeadline bounds the time spent retrying one batch; default
	// one minute. The engine passes its own (--lock-retry-deadline).
	LockRetryDeadline time.Duration
	// LockTimeout is the lock_timeout of each batch transaction; zero means
	// DefaultLockTimeout, negative keeps the connection's own. A batch
	// waiting for a row an application holds keeps the locks of every row
	// it updated before it, and the application's writers of those rows
	// queue behind it: the wait must be short, and a smaller batch tried
	// again.
	LockTimeout time.Duration
	// WaiterPause is how long Run pauses before a batch while other sessions
	// wait for the table's lock (a pending DDL statement or LOCK TABLE, as
	// pg_locks shows), at most ten times in a row; default BatchTime.
	// Negative turns that check off, and also the one for sessions waiting
	// on a batch's row locks, which shortens the batches while there are
	// any (see the package documentation).
	WaiterPause time.Duration
	// CancelGrace is how long a batch already running may go on once ctx
	// is cancelled before its statement is cancelled too; default 5s.
	CancelGrace time.Duration
}

// DefaultBatchTime is the batch duration aimed at when Options.BatchTime is
// zero; phases.DefaultBackfillBatchTime and the CLI's flag read it.
const DefaultBatchTime = 100 * time.Millisecond

// DefaultLockTimeout is a batch's lock_timeout when Options.LockTimeout is
// zero: about an application transaction's length, so that a batch behind
// one waits it out, and one behind a long one gives way soon.
const DefaultLockTimeout = 100 * time.Millisecond

const (
	slowFactor        = 4               // a batch this many times over target is "much slower"
	maxSlowPause      = 5 * time.Second // longest pause after a slow batch
	maxWaiterPauses   = 10
	retryInitial      = 100 * time.Millisecond
	retryMax          = 5 * time.Second
	countTimeout      = "500ms" // bound on the count(*) of the row estimate
	defaultGrace      = 5 * time.Second
	defaultRetryLimit = time.Minute
)

// batchSettings are set in every batch transaction, before Options.Settings.
//
// enable_seqscan=off keeps the plan on the key's index whatever the
// statistics say: a never-analyzed table is estimated from its page count, a
// stale one from old numbers, and either can make a per-batch sequential scan
// look cheapest, which reads the whole table for every batch.
//
// synchronous_commit=off: a batch's commit does not wait for its WAL to reach
// disk (the WAL writer flushes it within a few hundred milliseconds), which
// saved the 5% of a worker's time that sampling found it waiting in the
// commit's fsync. A crash of the server can lose the last batches, but only
// whole and only with their checkpoints, which commit in the same
// transaction (Options.Checkpoint): recovery replays the WAL in order, so
// what survives is a prefix of the batches, and a resume walks on from the
// last checkpoint that survived. Any later synchronous commit, such as the
// one that records the backfill done, flushes every batch before it.
var batchSettings = [][2]string{{"enable_seqscan", "off"}, {"synchronous_commit", "off"}}

func (o Options) withDefaults() (Options, error) {
	if o.BatchTime <= 0 {
		o.BatchTime = DefaultBatchTime
	}
	if o.MinBatch <= 0 {
		o.MinBatch = 50
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 200000
	}
	if o.MinBatch > o.MaxBatch {
		return o, fmt.Errorf("MinBatch %d is larger than MaxBatch %d", o.MinBatch, o.MaxBatch)
	}
	if o.Rate < 0 {
		return o, fmt.Errorf("negative Rate %g", o.Rate)
	}
	if o.Rate > 0 {
		// A limited run should trickle, not burst: at most about one
		// second's worth of rows per batch.
		o.MaxBatch = clamp(int(o.Rate), o.MinBatch, o.MaxBatch)
	}
	if o.InitialBatch <= 0 {
		o.InitialBatch = 1000
	}
	o.InitialBatch = clamp(o.InitialBatch, o.MinBatch, o.MaxBatch)
	if o.LockRetries < 0 {
		o.LockRetries = 0
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.LockRetryDeadline <= 0 {
		o.LockRetryDeadline = defaultRetryLimit
	}
	if o.WaiterPause == 0 {
		o.WaiterPause = o.BatchTime
	}
	if o.CancelGrace <= 0 {
		o.CancelGrace = defaultGrace
	}
	for k := range o.Settings {
		if k == "" {
			return o, errors.New("empty setting name in Settings")
		}
	}
	return o, nil
}

// Validate checks a task for mistakes that need no database to see.
func Validate(t Task) error {
	if strings.TrimSpace(t.Table) == "" {
		return errors.New("backfill: empty table name")
	}
	if len(t.Key) == 0 {
		return fmt.Errorf("backfill %s: empty key: the walk needs the primary key or a NOT NULL unique column set", t.name())
	}
	keys := map[string]bool{}
	for i, k := range t.Key {
		if k.Name == "" {
			return fmt.Errorf("backfill %s: key column %d has no name", t.name(), i+1)
		}
		if strings.TrimSpace(k.Type) == "" {
			return fmt.Errorf("backfill %s: key column %q has no type", t.name(), k.Name)
		}
		if keys[k.Name] {
			return fmt.Errorf("backfill %s: key column %q listed twice", t.name(), k.Name)
		}
		keys[k.Name] = true
	}
	if in := t.Insert; in != nil {
		if len(t.Set) > 0 {
			return fmt.Errorf("backfill %s: both an insert and assignments", t.name())
		}
		if in.Into == "" || len(in.Columns) == 0 || len(in.Columns) != len(in.Exprs) {
			return fmt.Errorf("backfill %s: an insert needs a table and one expression per column", t.name())
		}
		return nil
	}
	if len(t.Set) == 0 {
		return fmt.Errorf("backfill %s: nothing to set", t.name())
	}
	set := map[string]bool{}
	for i, a := range t.Set {
		if a.Column == "" {
			return fmt.Errorf("backfill %s: assignment %d has no column name", t.name(), i+1)
		}
		if strings.TrimSpace(a.Expr) == "" {
			return fmt.Errorf("backfill %s: assignment to %q has no expression", t.name(), a.Column)
		}
		if set[a.Column] {
			return fmt.Errorf("backfill %s: column %q assigned twice", t.name(), a.Column)
		}
		if keys[a.Column] {
			// Rewriting the key would move rows under the walk.
			return fmt.Errorf("backfill %s: column %q is part of the key and cannot be assigned", t.name(), a.Column)
		}
		set[a.Column] = true
	}
	return nil
}

func (t Task) name() string { return pg.Ident(t.Schema, t.Table) }

// runner is the state of one Run.
type runner struct {
	conn           *pgx.Conn
	t              Task
	o              Options
	log            zerolog.Logger
	q              queries
	setKeys, setVs []string
	oid            uint32
	max            []string // largest key when Run started; nil if the table was empty
	total          int64
	size           int
	win            window
	// target is the batch duration aimed at: Options.BatchTime, lowered
	// while application sessions queue behind the batches' row locks.
	target       time.Duration
	noRowWaiters bool      // the row lock waiter check failed once; not asked again
	lastEnd      time.Time // when the previous batch ended, for the rate
}

type batchStats struct {
	size    int   // batch size asked for
	walked  int64 // keys in the range
	updated int64 // rows the UPDATE changed
	waiters int   // sessions waiting for the batch's row locks just before it committed; -1 if unknown
	took    time.Duration
}

// Run rewrites the rows of t in batches, as the package documentation says,
// and returns the last committed checkpoint, with an error if it stopped
// early (ctx cancelled, a failed batch, retries exhausted).
func Run(ctx context.Context, conn *pgx.Conn, t Task, o Options) (Checkpoint, error) {
	if err := Validate(t); err != nil {
		return Checkpoint{}, err
	}
	o, err := o.withDefaults()
	if err != nil {
		return Checkpoint{}, fmt.Errorf("backfill %s: %w", t.name(), err)
	}
	var cp Checkpoint
	if o.Resume != nil {
		cp = *o.Resume
		cp.LastKey = slices.Clone(cp.LastKey)
		if len(cp.LastKey) == 0 {
			cp.LastKey = nil
		} else if len(cp.LastKey) != len(t.Key) {
			return cp, fmt.Errorf("backfill %s: checkpoint has %d key values, the key has %d columns", t.name(), len(cp.LastKey), len(t.Key))
		}
	}
	if o.Until != nil && len(o.Until) != len(t.Key) {
		return cp, fmt.Errorf("backfill %s: Until has %d key values, the key has %d columns", t.name(), len(o.Until), len(t.Key))
	}
	r := &runner{conn: conn, t: t, o: o, log: o.Logger, q: buildQueries(t), size: o.InitialBatch, target: o.BatchTime}
	if cp.Done {
		r.report(cp)
		return cp, nil
	}
	if conn == nil {
		return cp, fmt.Errorf("backfill %s: nil connection", t.name())
	}
	if s := conn.PgConn().TxStatus(); s != 'I' {
		// Our COMMITs would end the caller's transaction.
		return cp, fmt.Errorf("backfill %s: the connection is inside a transaction", t.name())
	}
	if err := ctx.Err(); err != nil {
		return cp, fmt.Errorf("backfill %s: %w", t.name(), err)
	}
	r.settings()
	if err := r.retry(ctx, func() error { return r.prepare(ctx) }); err != nil {
		return cp, fmt.Errorf("backfill %s: %w", t.name(), err)
	}
	r.log.Debug().Str("table", t.name()).Int64("rows_estimate", r.total).Int64("rows_done", cp.RowsDone).
		Bool("resume", cp.LastKey != nil).Msg("backfill start")

	started := time.Now()
	r.lastEnd = started
	var updated int64
	stopped := func(err error) (Checkpoint, error) {
		return cp, fmt.Errorf("backfill %s: %w", t.name(), err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return stopped(err)
		}
		batchStart := time.Now()
		if err := r.waitForWaiters(ctx); err != nil {
			return stopped(err)
		}
		var next Checkpoint
		var st batchStats
		err := r.retry(ctx, func() error {
			var err error
			next, st, err = r.batch(ctx, cp, r.size)
			return err
		})
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
				err = fmt.Errorf("%w (%v)", ctxErr, err)
			}
			return stopped(fmt.Errorf("batch after key %v: %w", cp.LastKey, err))
		}
		cp = next
		updated += st.updated
		now := time.Now()
		r.win.add(st.walked, now.Sub(r.lastEnd))
		r.lastEnd = now
		if !cp.Done {
			if target := nextTarget(r.target, o.BatchTime, st.waiters); target != r.target {
				r.log.Debug().Str("table", t.name()).Int("waiters", st.waiters).Dur("batch_time", target).
					Msg("backfill batch time changed for sessions waiting on its row locks")
				r.target = target
			}
			r.size = nextSize(st.size, st.took, r.target, o.MinBatch, o.MaxBatch)
		}
		r.report(cp)
		if !cp.Done || o.PaceLast {
			if err := r.rest(ctx, st, batchStart); err != nil {
				return stopped(err)
			}
		}
		if cp.Done {
			r.log.Debug().Str("table", t.name()).Int64("rows_done", cp.RowsDone).Int64("rows_updated", updated).
				Dur("elapsed", time.Since(started)).Msg("backfill done")
			return cp, nil
		}
	}
}

// rest is the pause after a batch that began at batchStart: the time back
// after a batch much slower than its target, the pace of Options.Rate, then
// Options.Pause.
func (r *runner) rest(ctx context.Context, st batchStats, batchStart time.Time) error {
	o := r.o
	var pause time.Duration
	if st.took > slowFactor*o.BatchTime {
		// The server took far longer than usual: give the
		// application the same time back before going on.
		pause = min(st.took, maxSlowPause)
		r.log.Debug().Str("table", r.t.name()).Dur("took", st.took).Dur("pause", pause).Int("next_batch", r.size).
			Msg("backfill batch much slower than its target; pausing")
	}
	if o.Rate > 0 {
		// Pace each batch on its own: a run that fell behind (lock
		// retries, pauses) does not catch up in a burst above Rate.
		interval := time.Duration(float64(st.walked) / o.Rate * float64(time.Second))
		pause = max(pause, interval-time.Since(batchStart))
	}
	if err := pg.Sleep(ctx, pause); err != nil {
		return err
	}
	if o.Pause != nil {
		return o.Pause(ctx)
	}
	return nil
}

// settings lays out the transaction-local settings as two parallel arrays,
// ours first, then the caller's in name order.
func (r *runner) settings() {
	add := func(k, v string) {
		r.setKeys = append(r.setKeys, k)
		r.setVs = append(r.setVs, v)
	}
	for _, s := range batchSettings {
		add(s[0], s[1])
	}
	if r.o.LockTimeout > 0 {
		add("lock_timeout", strconv.FormatInt(r.o.LockTimeout.Milliseconds(), 10)+"ms")
	}
	names := make([]string, 0, len(r.o.Settings))
	for k := range r.o.Settings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		add(k, r.o.Settings[k])
	}
}

// begin opens a batch transaction with the settings applied.
func (r *runner) begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := r.conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, r.q.settings, r.setKeys, r.setVs); err != nil {
		r.rollback(tx)
		return nil, pg.WithSQL(err, r.q.settings)
	}
	return tx, nil
}

// rollback ends tx if it is still open. It has a context of its own: the
// statement context may be the one that was just cancelled, and pgx closes
// the connection when a ROLLBACK cannot be sent.
func (r *runner) rollback(tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), r.o.CancelGrace)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// prepare looks the table up, checks the key, and takes the end of the walk
// and the row estimate.
func (r *runner) prepare(ctx context.Context) error {
	ctx, cancel := detach(ctx, r.o.CancelGrace)
	defer cancel()
	tx, err := r.begin(ctx)
	if err != nil {
		return err
	}
	defer r.rollback(tx)

	var oid *uint32
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1)::oid`, r.t.name()).Scan(&oid); err != nil {
		return err
	}
	if oid == nil {
		return fmt.Errorf("table %s does not exist", r.t.name())
	}
	r.oid = *oid
	if err := r.checkKey(ctx, tx); err != nil {
		return err
	}

	r.max = nil
	key := make([]string, len(r.t.Key))
	maxQ, maxArgs := r.q.maxKey, []any(nil)
	if r.o.Until != nil {
		maxQ, maxArgs = r.q.maxUntil, keyArgs(r.o.Until)
	}
	if err := tx.QueryRow(ctx, maxQ, maxArgs...).Scan(scanDest(key)...); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return pg.WithSQL(err, maxQ)
	} else if err == nil {
		r.max = key
	}
	if r.o.Total > 0 {
		r.total = r.o.Total
		return tx.Commit(ctx)
	}

	var reltuples float64
	var relpages, pages, live, dead int64
	if err := tx.QueryRow(ctx, `SELECT c.reltuples::float8, c.relpages::int8,
		pg_relation_size(c.oid) / current_setting('block_size')::int8,
		pg_stat_get_live_tuples(c.oid), pg_stat_get_dead_tuples(c.oid)
		FROM pg_class c WHERE c.oid = $1`, r.oid).Scan(&reltuples, &relpages, &pages, &live, &dead); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if r.max == nil {
		r.total = 0
		return nil
	}
	if r.total = rowEstimate(reltuples, relpages, pages, live, dead); r.total < 0 {
		// Never vacuumed or analyzed (reltuples -1), or last seen empty
		// and grown since: count, unless that takes long, and then take
		// the statistics' live count.
		if r.total = r.count(ctx); r.total == 0 {
			r.total = live
		}
	}
	return nil
}

// rowEstimate is the number of live rows of a table, from pg_class's
// reltuples and relpages (as of the last VACUUM or ANALYZE), its size in
// pages now, and the statistics system's live and dead row counts; -1 when
// the table was never vacuumed or analyzed (or was empty then and grew
// since): a count(*) is better then.
//
// Scaling the density of the last VACUUM/ANALYZE to today's size, as the
// planner does, counts the row versions an UPDATE of every row leaves dead
// (after a backfill the table has twice its pages until a vacuum), and
// overstates the rows by as much: the dead rows the statistics know of are
// taken off. The statistics' live count, which leaves them out and follows
// inserts and deletes, is the other estimate; it lags the writes of the last
// second or so, and is too low after a statistics reset: the larger of the
// two is taken, the live count capped by the scaled one.
func rowEstimate(reltuples float64, relpages, pages, live, dead int64) int64 {
	var scaled int64
	switch {
	case reltuples >= 0 && relpages > 0:
		scaled = int64(reltuples / float64(relpages) * float64(pages))
	case reltuples >= 0 && pages == 0:
		scaled = int64(reltuples)
	default:
		return -1
	}
	// The live count can also run high: an ANALYZE sets it, and the
	// inserts its own session made before are added again when that
	// session publishes them a moment later. No more rows than the pages
	// hold at the last density can be live.
	return max(min(live, scaled), scaled-dead, 0)
}

// count is count(*) of the table under a short statement_timeout; 0 (unknown)
// when it fails.
func (r *runner) count(ctx context.Context) int64 {
	tx, err := r.begin(ctx)
	if err != nil {
		return 0
	}
	defer r.rollback(tx)
	var n int64
	// A count reads everything: here a sequential scan is the right plan.
	if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true), set_config('enable_seqscan', 'on', true)`, countTimeout); err != nil {
		return 0
	}
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+r.t.name()).Scan(&n); err != nil {
		r.log.Debug().Str("table", r.t.name()).Err(err).Msg("backfill row count gave up; total unknown")
		return 0
	}
	return n
}

// checkKey makes sure the key columns exist, are NOT NULL and lead a btree
// index in this order: a NULL key would be skipped by the row comparisons, and
// without such an index every batch would sort the rest of the table.
func (r *runner) checkKey(ctx context.Context, tx pgx.Tx) error {
	names := make([]string, len(r.t.Key))
	for i, k := range r.t.Key {
		names[i] = k.Name
	}
	type attr struct {
		Name    string
		Num     *int16
		NotNull *bool
	}
	rows, _ := tx.Query(ctx, `SELECT k.name, a.attnum, a.attnotnull
		FROM unnest($2::text[]) WITH ORDINALITY AS k(name, ord)
		LEFT JOIN pg_attribute a ON a.attrelid = $1 AND a.attname = k.name AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY k.ord`, r.oid, names)
	attrs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[attr])
	if err != nil {
		return err
	}
	var attnums []string
	for _, a := range attrs {
		if a.Num == nil {
			return fmt.Errorf("key column %s does not exist in %s", pg.Ident(a.Name), r.t.name())
		}
		if !*a.NotNull {
			return fmt.Errorf("key column %s of %s is nullable: rows with a NULL key would be skipped; use the primary key or NOT NULL unique columns", pg.Ident(a.Name), r.t.name())
		}
		attnums = append(attnums, strconv.Itoa(int(*a.Num)))
	}

	type index struct{ Key, Option string }
	rows, _ = tx.Query(ctx, `SELECT i.indkey::text, i.indoption::text
		FROM pg_index i
		JOIN pg_class ic ON ic.oid = i.indexrelid
		JOIN pg_am am ON am.oid = ic.relam
		WHERE i.indrelid = $1 AND i.indisvalid AND i.indpred IS NULL AND am.amname = 'btree'`, r.oid)
	indexes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[index])
	if err != nil {
		return err
	}
	for _, ix := range indexes {
		cols, opts := strings.Fields(ix.Key), strings.Fields(ix.Option)
		if len(cols) < len(attnums) || !slices.Equal(cols[:len(attnums)], attnums) {
			continue
		}
		// All the same direction (indoption: bit 0 DESC, bit 1 NULLS
		// FIRST; NULLs cannot occur): one index scan, forward or
		// backward, yields our order.
		uniform := true
		for _, o := range opts[:len(attnums)] {
			uniform = uniform && descending(o) == descending(opts[0])
		}
		if uniform {
			return nil
		}
	}
	return fmt.Errorf("no btree index of %s starts with the key columns (%s) in this order; the walk needs one (list the key in the index's column order)",
		r.t.name(), pg.Idents(names))
}

// batch runs one batch transaction after prev and returns the checkpoint it
// committed. On error nothing of it is committed and prev still holds.
func (r *runner) batch(ctx context.Context, prev Checkpoint, n int) (Checkpoint, batchStats, error) {
	st := batchStats{size: n}
	start := time.Now()
	ctx, cancel := detach(ctx, r.o.CancelGrace)
	defer cancel()
	tx, err := r.begin(ctx)
	if err != nil {
		return prev, st, err
	}
	defer r.rollback(tx) // a no-op once committed

	lo := prev.LastKey
	v := variant(lo)
	next := Checkpoint{LastKey: lo, RowsDone: prev.RowsDone, Done: true}
	if r.max != nil {
		hi := make([]string, len(r.t.Key))
		args := append(keyArgs(lo, r.max), int64(n-1))
		err := tx.QueryRow(ctx, r.q.bound[v], args...).Scan(scanDest(hi)...)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// Fewer than n keys left: the last batch, up to the end.
			hi = r.max
			if err := tx.QueryRow(ctx, r.q.count[v], keyArgs(lo, r.max)...).Scan(&st.walked); err != nil {
				return prev, st, pg.WithSQL(err, r.q.count[v])
			}
		case err != nil:
			return prev, st, pg.WithSQL(err, r.q.bound[v])
		default:
			st.walked = int64(n)
			// Equal text means equal values once cast: the walk's end.
			next.Done = slices.Equal(hi, r.max)
		}
		if r.q.lock[v] != "" {
			if _, err := tx.Exec(ctx, r.q.lock[v], keyArgs(lo, hi)...); err != nil {
				return prev, st, pg.WithSQL(err, r.q.lock[v])
			}
		}
		tag, err := tx.Exec(ctx, r.q.update[v], keyArgs(lo, hi)...)
		if err != nil {
			return prev, st, pg.WithSQL(err, r.q.update[v])
		}
		st.updated = tag.RowsAffected()
		next.LastKey = hi
	}
	next.RowsDone += st.walked
	if r.o.Checkpoint != nil {
		full := next
		full.RowsTotal = r.totalFor(next)
		full.Rate = r.win.rateWith(st.walked, time.Since(r.lastEnd))
		if err := r.o.Checkpoint(ctx, tx, full); err != nil {
			return prev, st, fmt.Errorf("checkpoint: %w", err)
		}
	}
	st.waiters = r.rowLockWaiters(ctx, tx)
	if err := tx.Commit(ctx); err != nil {
		return prev, st, err
	}
	st.took = time.Since(start)
	return next, st, nil
}

// retry runs fn through pg.Retry: again while it fails on a lock timeout,
// a deadlock or a serialization failure, halving the batch each time, with
// jittered doubling pauses in between, within Options.LockRetries and
// LockRetryDeadline.
func (r *runner) retry(ctx context.Context, fn func() error) error {
	return pg.Retry{
		Deadline:    r.o.LockRetryDeadline,
		MaxAttempts: r.o.LockRetries,
		Initial:     retryInitial,
		Max:         retryMax,
		Retryable:   retryable,
		OnRetry: func(attempt int, pause time.Duration, err error) {
			// A smaller batch holds fewer row locks and may stop short of
			// the row someone else holds.
			r.size = max(r.o.MinBatch, r.size/2)
			r.log.Debug().Str("table", r.t.name()).Int("attempt", attempt).Dur("pause", pause).Int("next_batch", r.size).Err(err).
				Msg("backfill batch retry")
		},
	}.Do(ctx, func(context.Context) error { return fn() })
}

// retryable: a batch is one transaction, so one that lost a lock conflict
// or a serialization failure committed nothing and may run again.
func retryable(err error) bool { return pg.IsLockConflict(err) || pg.IsSerializationFailure(err) }

// waitForWaiters pauses while other sessions wait for a lock on the table, up
// to maxWaiterPauses times: between batches we hold no lock, and a batch
// started now would queue behind the waiter (and hold up everyone queued
// behind itself), so letting the waiter through first is cheaper for all.
func (r *runner) waitForWaiters(ctx context.Context) error {
	if r.o.WaiterPause < 0 {
		return nil
	}
	for i := 0; i < maxWaiterPauses; i++ {
		qctx, cancel := detach(ctx, r.o.CancelGrace)
		var waiting bool
		// Only waits for the table lock itself count (a DDL statement or a
		// LOCK TABLE queued behind someone): the application's sessions
		// waiting for each other's row locks are no sign of us being in
		// the way, and pausing for them could stall the backfill for good.
		err := r.conn.QueryRow(qctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE locktype = 'relation' AND NOT granted AND relation = $1
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`, r.oid).Scan(&waiting)
		cancel()
		if err != nil {
			// The check is advice; a failure of it is no reason to stop.
			r.log.Debug().Str("table", r.t.name()).Err(err).Msg("backfill lock waiter check failed; turning it off")
			r.o.WaiterPause = -1
			return ctx.Err()
		}
		if !waiting {
			return nil
		}
		r.log.Debug().Str("table", r.t.name()).Dur("pause", r.o.WaiterPause).Msg("backfill pausing for lock waiters")
		if err := pg.Sleep(ctx, r.o.WaiterPause); err != nil {
			return err
		}
	}
	return nil
}

// rowLockWaiters counts the sessions waiting for this transaction to end,
// that is for the row locks of the batch it is about to commit: asked just
// before COMMIT, it sees whoever queued behind the batch. Other waiters for
// the same rows queue on the tuple lock behind the first, so a positive
// count means at least that many. It returns -1 when the check fails or is
// turned off, which changes nothing.
func (r *runner) rowLockWaiters(ctx context.Context, tx pgx.Tx) int {
	if r.o.WaiterPause < 0 || r.noRowWaiters {
		return -1
	}
	// Inside a savepoint, so that a failure here cannot doom the batch, and
	// sent as one pipeline, so that it costs the batch one round trip.
	const sp = "online_backfill_waiters"
	b := &pgx.Batch{}
	b.Queue("SAVEPOINT " + sp)
	n := -1
	b.Queue(`SELECT count(*) FROM pg_locks w
		WHERE w.locktype = 'transactionid' AND NOT w.granted
		AND w.transactionid = (SELECT h.transactionid FROM pg_locks h
			WHERE h.locktype = 'transactionid' AND h.pid = pg_backend_pid() AND h.granted AND h.mode = 'ExclusiveLock'
			LIMIT 1)`).QueryRow(func(row pgx.Row) error { return row.Scan(&n) })
	b.Queue("RELEASE SAVEPOINT " + sp)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		r.log.Debug().Str("table", r.t.name()).Err(err).Msg("backfill row lock waiter check failed; turning it off")
		// If this fails too the transaction is lost, and COMMIT says so.
		_, _ = tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+sp)
		r.noRowWaiters = true
		return -1
	}
	return n
}

// totalFor is the row estimate shown with cp: never below the rows done, and
// exact once the walk is done.
func (r *runner) totalFor(cp Checkpoint) int64 {
	if cp.Done || (r.total > 0 && r.total < cp.RowsDone) {
		return cp.RowsDone
	}
	return r.total
}

func (r *runner) report(cp Checkpoint) {
	if r.o.Progress == nil {
		return
	}
	total := r.totalFor(cp)
	rate := r.win.rate()
	r.o.Progress(Progress{
		Table:     r.t.name(),
		RowsDone:  cp.RowsDone,
		RowsTotal: total,
		Rate:      rate,
		ETA:       eta(total, cp.RowsDone, rate),
		BatchSize: r.size,
		BatchTime: r.target,
		Done:      cp.Done,
	})
}

// detach returns a context that outlives ctx's cancellation by grace. A batch
// is short and is better finished than cut off: plain pgx closes the
// connection when a query's context ends, which would leave the caller's
// connection dead. The grace bounds a batch stuck on a lock.
func detach(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	d, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return d, func() {
		stop()
		cancel()
	}
}

func descending(indoption string) bool {
	n, _ := strconv.Atoi(indoption)
	return n&1 == 1
}

func scanDest(key []string) []any {
	d := make([]any, len(key))
	for i := range key {
		d[i] = &key[i]
	}
	return d
}
