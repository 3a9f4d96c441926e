package phases

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/backfill"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/state"
)

// Automatic worker count: one worker per rowsPerWorker rows of a table, at
// most maxAutoWorkers and no more than this client's CPUs. PostgreSQL does
// not tell a client how many cores it has; a backfill worker keeps about one
// server core busy, and a few leave the rest to the application.
const (
	maxAutoWorkers = 4
	rowsPerWorker  = 250_000
)

// A table walked by several workers is split into rangesPerWorker key
// ranges per worker, taken from one queue: a worker whose range ends first
// takes the next, so the workers end within about a range of each other.
// With one range each, two workers of a 1M-row rewrite were seen to end a
// second apart (one was slowed by its neighbour on the CPU), the last
// second walked by one worker alone. A range is kept at minRangeRows or
// more: each costs a few statements to start.
const (
	rangesPerWorker = 4
	minRangeRows    = 25_000
)

// rangeCount is how many ranges n workers walk a table of about rows rows
// in: at least n, so that each worker has one.
func rangeCount(n int, rows int64) int {
	if n <= 1 {
		return 1
	}
	return max(n, min(n*rangesPerWorker, int(rows/minRangeRows)))
}

// autoWorkers is the worker count for a table of about rows rows.
func autoWorkers(rows int64) int {
	return max(1, min(maxAutoWorkers, runtime.NumCPU(), int(rows/rowsPerWorker)))
}

// workerLostError is a backfill worker's connection lost midway: like the
// engine's own connection lost, the migration is interrupted, not failed.
type workerLostError struct{ err error }

func (e *workerLostError) Error() string { return "backfill worker connection lost: " + e.err.Error() }
func (e *workerLostError) Unwrap() error { return e.err }

func (e *Engine) runBackfills(ctx context.Context, rec *state.Record, plan *operations.Plan) error {
	if len(plan.Backfill) == 0 {
		return nil
	}
	all, err := e.store.BackfillParts(ctx, e.conn, rec.Schema, rec.Name)
	if err != nil {
		return err
	}
	byTask := map[int][]state.Backfill{}
	for _, p := range all {
		byTask[p.Task] = append(byTask[p.Task], p)
	}
	for i, bf := range plan.Backfill {
		parts := byTask[i]
		if allDone(parts) {
			continue
		}
		if bf.Parent != "" {
			gone, err := e.leafGone(ctx, plan.Schema, bf)
			if err != nil {
				return err
			}
			if gone {
				// Detached or dropped since start: its rows are no longer
				// the migrated table's.
				e.log.Info().Str(keyEvent, evBackfillSkipped).Str(keyTable, bf.Table).Str("parent", bf.Parent).
					Msg("partition is no longer part of the table; nothing to backfill")
				if err := e.store.SaveBackfill(ctx, e.conn, rec.Schema, rec.Name, state.Backfill{Task: i, Table: bf.Table, Done: true}); err != nil {
					return err
				}
				continue
			}
		}
		task := backfillTask(plan, bf)
		if len(parts) == 0 {
			if parts, err = e.splitTask(ctx, rec, i, bf.Table, task, bf.Data != nil); err != nil {
				return err
			}
		} else {
			var done int64
			for _, p := range parts {
				done += p.RowsDone
			}
			e.log.Info().Str(keyEvent, evBackfillResume).Str(keyTable, bf.Table).Int64("rows_done", done).Int("ranges", len(parts)).
				Msg("resuming backfill from its checkpoints")
		}
		if bf.Data != nil {
			e.log.Info().Str(keyEvent, evPhaseStarted).Str(keyPhase, "data migration").Str(keyTable, bf.Table).
				Bool("reversible", bf.Data.Reversible()).Msgf("data migration (operation %d) on %s", bf.Ops[0], bf.Table)
		} else {
			e.log.Info().Str(keyEvent, evPhaseStarted).Str(keyPhase, "backfill").Str(keyTable, bf.Table).Msgf("backfill %s", bf.Table)
		}
		if err := e.walkParts(ctx, rec, plan, bf.Table, task, parts, bf.Data != nil); err != nil {
			return err
		}
	}
	return nil
}

func allDone(parts []state.Backfill) bool {
	for _, p := range parts {
		if !p.Done {
			return false
		}
	}
	return len(parts) > 0
}

func backfillTask(plan *operations.Plan, bf operations.Backfill) backfill.Task {
	schemaName := plan.Schema
	if bf.Schema != "" {
		schemaName = bf.Schema
	}
	task := backfill.Task{Schema: schemaName, Table: bf.Table, Where: bf.Where}
	for _, k := range bf.Key {
		task.Key = append(task.Key, backfill.Column{Name: k.Name, Type: k.Type})
	}
	for _, a := range bf.Set {
		task.Set = append(task.Set, backfill.Assignment{Column: a.Column, Expr: a.Expr})
	}
	if in := bf.Insert; in != nil {
		task.Insert = &backfill.Insert{Into: in.Into, Columns: in.Columns, Exprs: in.Exprs}
	}
	return task
}

// splitTask divides a task's keys into ranges for its workers (rangeCount)
// and records every range before the first batch, so that a run killed at
// any point resumes the same ranges.
func (e *Engine) splitTask(ctx context.Context, rec *state.Record, i int, table string, task backfill.Task, data bool) ([]state.Backfill, error) {
	n := e.cfg.BackfillWorkers
	ranges := []backfill.Range{{}}
	if data {
		// A data migration's down at rollback walks back to the one
		// checkpoint of its forward pass: it keeps a single range.
		n = 1
	} else if n != 1 {
		_, total, err := backfill.Split(ctx, e.conn, task, 1)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			n = autoWorkers(total)
		}
		if k := rangeCount(n, total); k > 1 {
			if ranges, _, err = backfill.Split(ctx, e.conn, task, k); err != nil {
				return nil, err
			}
		}
	}
	e.log.Info().Str(keyTable, table).Int("workers", n).Int("ranges", len(ranges)).Msg("backfill workers chosen")
	parts := make([]state.Backfill, len(ranges))
	for k, r := range ranges {
		parts[k] = state.Backfill{Task: i, Part: k, Table: table, LastKey: r.Lo, RangeLo: r.Lo, RangeHi: r.Hi}
		if len(ranges) > 1 {
			parts[k].RowsTotal = r.Rows
		}
	}
	err := pgx.BeginFunc(ctx, e.conn, func(tx pgx.Tx) error {
		for _, p := range parts {
			if err := e.store.SaveBackfill(ctx, tx, rec.Schema, rec.Name, p); err != nil {
				return err
			}
		}
		return nil
	})
	return parts, err
}

// workerConn opens one more session for a backfill worker, set up as the
// engine's own.
func (e *Engine) workerConn(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pg.Connect(ctx, e.cfg.URL, pg.Options{LockTimeout: e.cfg.LockTimeout, ApplicationName: "online backfill", KeepAlive: true, Tracer: e.tracer()})
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "SELECT set_config('client_connection_check_interval', '1s', false) WHERE current_setting('server_version_num')::int >= 140000"); err != nil {
		pg.Close(ctx, conn)
		return nil, fmt.Errorf("set client_connection_check_interval: %w", err)
	}
	return conn, nil
}

// walkParts walks the unfinished ranges of one task, each on a connection
// of its own: the engine's for the first worker, new ones for the others.
// The first error stops the other workers after their batch in flight; each
// range keeps its own checkpoint.
func (e *Engine) walkParts(ctx context.Context, rec *state.Record, plan *operations.Plan, table string, task backfill.Task, parts []state.Backfill, data bool) error {
	var pending []int
	for k, p := range parts {
		if !p.Done {
			pending = append(pending, k)
		}
	}
	// As many workers as splitTask chose: the ranges are more than that.
	want := e.cfg.BackfillWorkers
	if want <= 0 {
		var rows int64
		for _, p := range parts {
			rows += max(p.RowsTotal, p.RowsDone)
		}
		want = autoWorkers(rows)
	}
	workers := max(1, min(len(pending), want))
	e.workersUsed = max(e.workersUsed, workers)

	conns := []*pgx.Conn{e.conn}
	defer func() {
		for _, c := range conns[1:] {
			pg.Close(context.WithoutCancel(ctx), c)
		}
	}()
	for len(conns) < workers {
		c, err := e.workerConn(ctx)
		if err != nil {
			return fmt.Errorf("backfill %s: open worker connection: %w", table, err)
		}
		conns = append(conns, c)
	}

	gov, stopGov, err := e.startGovernor(ctx, task, conns)
	if err != nil {
		return err
	}
	defer stopGov()
	agg := newAggregate(table, parts, e.cfg.OnProgress)
	agg.gov = gov
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan int, len(pending))
	for _, k := range pending {
		queue <- k
	}
	close(queue)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range queue {
				if wctx.Err() != nil {
					return
				}
				if err := e.walkPart(wctx, conns[w], rec, plan, task, parts[k], workers, agg, gov, data); err != nil {
					if w > 0 && conns[w].IsClosed() {
						err = &workerLostError{err: err}
					}
					errs[w] = err
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	// The first worker's error is the cause; the others' are mostly the
	// cancel it caused.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

// walkPart walks one range from its checkpoint to its end.
func (e *Engine) walkPart(ctx context.Context, conn *pgx.Conn, rec *state.Record, plan *operations.Plan, task backfill.Task, p state.Backfill, workers int, agg *aggregate, gov *governor, data bool) error {
	settings := map[string]string{backfillSetting: "on", "search_path": pg.Ident(plan.Schema)}
	if data {
		// A data migration's table has no sync triggers (the compiler
		// refuses one that also has a rewrite), and a trigger of the
		// user's it fires may write a table whose sync triggers must see
		// the write: the backfill setting stays off.
		delete(settings, backfillSetting)
	}
	save := func(ctx context.Context, q state.Querier, c backfill.Checkpoint) error {
		b := p
		b.LastKey, b.RowsDone, b.RowsTotal, b.Done, b.Rate = c.LastKey, c.RowsDone, agg.partTotal(p.Part, c), c.Done, c.Rate
		b.ReplicaLag = agg.lag()
		b.Duty = gov.Duty()
		return e.store.SaveBackfill(ctx, q, rec.Schema, rec.Name, b)
	}
	// The rate limit is the whole backfill's: each worker takes its share.
	opts := e.backfillOptions(conn, table(task), e.cfg.BackfillRate/float64(workers), agg, gov)
	// The backfill resolves names in up expressions as the sync triggers
	// do: in the migrated schema.
	opts.Settings = settings
	// With more ranges than this one, the worker goes on to the next: its
	// last batch is paced as any other, so that the rate limit and the
	// governor's duty cycle and holds apply across ranges.
	opts.PaceLast = agg.ranges > 1
	opts.Resume = &backfill.Checkpoint{LastKey: p.LastKey, RowsDone: p.RowsDone}
	opts.Until = p.RangeHi
	opts.Checkpoint = func(ctx context.Context, tx pgx.Tx, c backfill.Checkpoint) error {
		return save(ctx, tx, c)
	}
	opts.Progress = func(pr backfill.Progress) { agg.update(p.Part, pr) }
	// A range's own estimate, or on a resume the one the first run took:
	// Run's would be the whole table's, or none when its count(*) of a
	// table never analyzed times out, which a backfill's dead rows make
	// likelier on a resume. A first run of a whole table has none and
	// lets Run estimate.
	opts.Total = p.RowsTotal
	final, err := backfill.Run(ctx, conn, task, opts)
	if err != nil {
		return err // Run names the table
	}
	// Record completion even when the range was empty and no batch ran.
	final.Done = true
	return save(ctx, conn, final)
}

// backfillOptions are the options every walk of the engine starts from, on
// the worker connection conn: a backfill's ranges and an update_rows' undo
// at rollback alike, so that each keeps to the same batch time, rate, lock
// bounds, replica lag and yield to the application. agg takes the replica
// lag; gov is nil when the walk does not yield.
func (e *Engine) backfillOptions(conn *pgx.Conn, tbl string, rate float64, agg *aggregate, gov *governor) backfill.Options {
	return backfill.Options{
		BatchTime: e.cfg.BackfillBatchTime,
		Rate:      rate,
		Logger:    e.log,
		Pause:     pauses(e.replicaPause(conn, tbl, agg), gov.pauser(conn)),
		// --lock-retry-deadline bounds a batch's retries as it does DDL's.
		LockRetryDeadline: e.cfg.LockRetryDeadline,
		LockTimeout:       e.cfg.BackfillLockTimeout,
	}
}

// aggregate sums the progress of a task's ranges for OnProgress.
type aggregate struct {
	gov      *governor // nil when the backfill does not yield
	ranges   int       // how many ranges the task has; set once
	mu       sync.Mutex
	table    string
	parts    map[int]backfill.Progress
	est      map[int]int64 // each range's row estimate from the split, 0 when none
	replica  time.Duration
	progress func(backfill.Progress)
}

func newAggregate(table string, parts []state.Backfill, fn func(backfill.Progress)) *aggregate {
	a := &aggregate{table: table, ranges: len(parts), parts: map[int]backfill.Progress{}, est: map[int]int64{}, progress: fn}
	for _, p := range parts {
		a.parts[p.Part] = backfill.Progress{RowsDone: p.RowsDone, RowsTotal: max(p.RowsTotal, p.RowsDone), Done: p.Done}
		if len(parts) > 1 {
			a.est[p.Part] = p.RowsTotal
		}
	}
	return a
}

// totalOf is the row estimate of one range, corrected by the ranges that
// finished: their actual rows against their estimates scale the estimates
// of the others (an estimate off for the whole table, as after a stats
// reset, is off for each range alike), and never below the rows done. A
// finished range's total is its rows. a.mu is held.
func (a *aggregate) totalOf(part int, pr backfill.Progress) int64 {
	if pr.Done {
		return pr.RowsDone
	}
	var actual, estimated int64
	for k, p := range a.parts {
		if p.Done && a.est[k] > 0 {
			actual += p.RowsDone
			estimated += a.est[k]
		}
	}
	est := a.est[part]
	if estimated == 0 || est == 0 {
		return max(pr.RowsTotal, pr.RowsDone)
	}
	return max(pr.RowsDone, int64(float64(est)*float64(actual)/float64(estimated)))
}

// partTotal is totalOf for a range's checkpoint, so that status shows the
// corrected estimate too.
func (a *aggregate) partTotal(part int, c backfill.Checkpoint) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.totalOf(part, backfill.Progress{RowsDone: c.RowsDone, RowsTotal: c.RowsTotal, Done: c.Done})
}

func (a *aggregate) update(part int, pr backfill.Progress) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.parts[part] = pr
	if a.progress == nil {
		return
	}
	sum := backfill.Progress{Table: a.table, BatchSize: pr.BatchSize, BatchTime: pr.BatchTime, Done: true, ReplicaLag: a.replica, Duty: a.gov.Duty()}
	for k, p := range a.parts {
		sum.RowsDone += p.RowsDone
		sum.RowsTotal += a.totalOf(k, p)
		sum.Done = sum.Done && p.Done
		if !p.Done {
			sum.Rate += p.Rate
		}
	}
	if sum.Done {
		sum.RowsTotal = sum.RowsDone
	}
	if sum.Rate > 0 && sum.RowsTotal > sum.RowsDone {
		sum.ETA = time.Duration(float64(sum.RowsTotal-sum.RowsDone) / sum.Rate * float64(time.Second))
	}
	a.progress(sum)
}

// paused reports the progress again with the lag it is waiting for.
func (a *aggregate) paused() {
	a.mu.Lock()
	fn, lag := a.progress, a.replica
	var sum backfill.Progress
	for k, p := range a.parts {
		sum.RowsDone += p.RowsDone
		sum.RowsTotal += a.totalOf(k, p)
	}
	a.mu.Unlock()
	if fn != nil {
		sum.Table, sum.ReplicaLag = a.table, lag
		fn(sum)
	}
}

func (a *aggregate) setLag(d time.Duration) {
	a.mu.Lock()
	a.replica = d
	a.mu.Unlock()
}

func (a *aggregate) lag() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.replica
}

// maxReplicaGapBytes is the WAL a standby may have left to replay while
// replay_lag is NULL (no recent measurement) before the backfill waits.
const maxReplicaGapBytes = 64 << 20

func table(t backfill.Task) string { return t.Table }

// replicaPause holds a worker back between batches while a streaming standby
// lags more than Config.MaxReplicaLag behind: each batch writes WAL the
// standbys must replay, and a backfill faster than their replay would leave
// them further behind every second. nil when the check is off.
//
// The lag is measured from the worker's own writes: after each batch it
// notes the WAL position and the time, and the standby lags by the age of
// the oldest noted position it has not replayed yet. pg_stat_replication's
// replay_lag alone is not enough: it is NULL once a standby has caught up,
// and stays NULL until a new measurement arrives, by which time a fast
// backfill has written a lot. replay_lag is used for WAL others wrote.
func (e *Engine) replicaPause(conn *pgx.Conn, tbl string, agg *aggregate) func(context.Context) error {
	limit := e.cfg.MaxReplicaLag
	if limit <= 0 {
		return nil
	}
	off := false
	var marks []walMark
	return func(ctx context.Context) error {
		if off {
			return nil
		}
		var began time.Time
		for {
			r, err := readReplication(ctx, conn)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// The check is advice: a role that cannot read
				// pg_stat_replication should not stop the backfill.
				e.log.Warn().Err(err).Str(keyTable, tbl).Msg("cannot read pg_stat_replication; replication lag not checked")
				off = true
				return nil
			}
			if r.standbys == 0 && r.hidden > 0 {
				// The check would see no standby and never pause:
				// say so once, rather than throttle nothing in silence.
				e.log.Warn().Str(keyTable, tbl).Int("standbys", r.hidden).
					Msg("standbys are connected, but this role cannot read their replay position (it needs pg_read_all_stats or pg_monitor): replication lag not checked")
				off = true
				return nil
			}
			now := time.Now()
			if began.IsZero() && r.standbys > 0 {
				marks = append(marks, walMark{lsn: r.current, at: now})
			}
			// Forget what every standby has replayed.
			for len(marks) > 0 && marks[0].lsn <= r.replayed {
				marks = marks[1:]
			}
			if r.standbys == 0 {
				marks = nil
			}
			lag := time.Duration(0)
			if len(marks) > 0 {
				lag = now.Sub(marks[0].at)
			} else if r.gap > 0 && r.replayLag > 0 {
				lag = r.replayLag
			}
			over := lag > limit || (r.replayLag < 0 && r.gap > maxReplicaGapBytes)
			if !over {
				if !began.IsZero() {
					e.log.Info().Str(keyEvent, evReplicaResumed).Str(keyTable, tbl).Dur(keyWait, time.Since(began)).
						Msg("standby caught up; backfill resumes")
					agg.setLag(0)
				}
				return nil
			}
			if began.IsZero() {
				began = now
				e.log.Warn().Str(keyEvent, evReplicaPaused).Str(keyTable, tbl).Dur("replica_lag", lag).Int64("replica_gap_bytes", r.gap).
					Dur("max_replica_lag", limit).Msg("a standby lags behind; backfill paused")
			}
			agg.setLag(max(lag, time.Millisecond))
			agg.paused()
			if err := pg.Sleep(ctx, replicaPoll); err != nil {
				return err
			}
		}
	}
}

// walMark is a WAL position a worker wrote up to, and when.
type walMark struct {
	lsn uint64
	at  time.Time
}

// replicaPoll is how often a paused backfill looks at the standbys again.
const replicaPoll = 200 * time.Millisecond

// replication is what pg_stat_replication says of the streaming standbys.
type replication struct {
	standbys  int
	hidden    int           // walsenders whose details this role may not read
	current   uint64        // the primary's WAL position
	replayed  uint64        // the least replayed position of the standbys
	replayLag time.Duration // the largest replay_lag; -1 when none is measured
	gap       int64         // the largest WAL byte gap
}

func readReplication(ctx context.Context, conn *pgx.Conn) (replication, error) {
	var r replication
	var cur string
	var replayed *string
	var lagMS, gap *float64
	// A role without pg_read_all_stats sees a row per walsender with
	// every column but pid NULL, state included: those are counted apart.
	err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'streaming')::int, count(*) FILTER (WHERE state IS NULL)::int,
  pg_current_wal_lsn()::text, (min(coalesce(replay_lsn, '0/0')) FILTER (WHERE state = 'streaming'))::text,
  (max(extract(epoch FROM replay_lag) * 1000) FILTER (WHERE state = 'streaming'))::float8,
  (max(pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(replay_lsn, '0/0'))) FILTER (WHERE state = 'streaming'))::float8
FROM pg_stat_replication`).Scan(&r.standbys, &r.hidden, &cur, &replayed, &lagMS, &gap)
	if err != nil {
		return r, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	r.current = parseLSN(cur)
	if replayed != nil {
		r.replayed = parseLSN(*replayed)
	}
	r.replayLag = -1
	if lagMS != nil {
		r.replayLag = time.Duration(*lagMS * float64(time.Millisecond))
	}
	if gap != nil {
		r.gap = int64(*gap)
	}
	return r, nil
}

// parseLSN reads PostgreSQL's text form of a WAL position, "16/B374D848".
func parseLSN(s string) uint64 {
	hi, lo, _ := strings.Cut(s, "/")
	h, _ := strconv.ParseUint(hi, 16, 32)
	l, _ := strconv.ParseUint(lo, 16, 32)
	return h<<32 | l
}
