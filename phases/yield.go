package phases

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/backfill"
	"github.com/onlinepg/online/internal/pg"
)

// The backfill yields to the application: while the application writes, a
// governor slows the backfill's workers down so that the application keeps
// at least Config.BackfillYield of the transaction rate it had with the
// backfill held back.
//
// The application is the migrated database's: the signal is the database's
// own count of ended transactions (pg_stat_database's xact_commit +
// xact_rollback for this database), so that other databases on the same
// server, however busy, do not slow the backfill. The engine counts the
// transactions its own sessions end (a pgx tracer on each of them: txCounter)
// and leaves them out. The counters are in shared memory, but each session
// publishes its own at most about once a second: a busy application's count
// lags by up to a second, which evens out over the governor's periods; the
// backfill's workers, whose count is subtracted at once, ask for theirs to be
// published after each batch (pg_stat_force_next_flush), so that the two
// sides of the subtraction agree. Read-only transactions count too: a
// database that only reads is an application to yield to as well.
//
// PostgreSQL 14 has no pg_stat_force_next_flush, and its statistics
// collector lags by half a second more: there the signal is the server's
// transaction counter, as before. pg_current_snapshot()'s xmax is one past
// the newest finished transaction ID, exact at any instant, but every writing
// transaction of any database takes one, so the backfill also yields to
// writes in the server's other databases.
//
// The baseline is measured with the backfill held: once the governor first
// sees others write (it looks after yieldGlance, then every yieldPeriod),
// and again every yieldReprobe, all workers wait at their next pause for
// yieldProbe while the governor counts. A workload that grows or shrinks
// over a long backfill is so followed, for about 6% of the backfill's time
// while the application writes and nothing while it does not.
// In between, each second, the governor compares the rate with the
// baseline and sets the duty cycle of the workers: the share of wall time
// they spend in batches. Below the target it cuts the duty cycle by a
// quarter, at or above it gives back a twentieth (additive increase,
// multiplicative decrease, so a workload that suffers is relieved at once
// and the backfill creeps back). A worker that ran a batch for t then
// pauses t*(1-duty)/duty.
//
// When no other session is connected to the database, or the table is under
// yieldMinBytes (its backfill takes about as long as a probe), there is no
// governor. While the application ends fewer than yieldMinRate transactions
// per second there is nothing to protect, and the governor only watches.

const (
	// yieldProbe is how long the workers are held while the baseline is
	// measured.
	yieldProbe = time.Second
	// yieldGlance is when the governor first looks at the application's
	// write rate, with the backfill running.
	yieldGlance = 250 * time.Millisecond
	// yieldSettle is how long a hold waits for the batches in flight.
	yieldSettle = 200 * time.Millisecond
	// yieldReprobe is how often the baseline is measured again.
	yieldReprobe = 20 * time.Second
	// yieldPeriod is how often the duty cycle is adjusted.
	yieldPeriod = time.Second
	// yieldMinRate is the application's rate, in transactions per
	// second, below which the governor does not slow the backfill.
	yieldMinRate = 5.0
	// yieldMinTxns is the fewest transactions of others in one period
	// that can wake an idle governor, whatever their rate.
	yieldMinTxns = 5
	// yieldMinBytes is the smallest table whose backfill yields: a
	// smaller one is done in about the time a probe takes.
	yieldMinBytes = 16 << 20
	// yieldMinDuty is the least duty cycle: the backfill never stops
	// outright, so that it always ends.
	yieldMinDuty = 0.05
	// yieldCut and yieldGive are the multiplicative decrease and the
	// additive increase of the duty cycle.
	yieldCut  = 0.75
	yieldGive = 0.05
)

// nextDuty is the governor's rule: the duty cycle after a period in which
// the application wrote at rate against its baseline.
func nextDuty(duty, rate, baseline, target float64) float64 {
	if baseline < yieldMinRate {
		return 1
	}
	if rate < target*baseline {
		return max(yieldMinDuty, duty*yieldCut)
	}
	return min(1, duty+yieldGive)
}

// governor paces the workers of one table's backfill.
type governor struct {
	conn     *pgx.Conn
	target   float64
	tbl      string
	log      func(duty, rate, baseline float64)
	logStart func(baseline float64)
	logProbe func(rate float64)

	// perDB is whether the signal is the database's own transaction
	// count (PostgreSQL 15 and later) rather than the server's IDs.
	perDB bool
	// txns counts the transactions the engine's sessions end (perDB).
	txns *txCounter
	// batches counts the workers' batches: the transaction IDs they took
	// (not perDB).
	batches atomic.Int64
	// flushMu keeps a reading of the counter from falling between a
	// worker's publishing of its statistics and its marking them (perDB).
	flushMu sync.RWMutex

	mu       sync.Mutex
	duty     float64
	baseline float64
	hold     chan struct{} // closed when a probe ends; nil when none runs
}

// startGovernor starts the governor of one table's backfill, or returns nil
// when Config.BackfillYield is off, the table is small or no other session
// is connected. stop ends it.
func (e *Engine) startGovernor(ctx context.Context, task backfill.Task, workers []*pgx.Conn) (g *governor, stop func(), err error) {
	tbl := task.Table
	if e.cfg.BackfillYield <= 0 {
		return nil, func() {}, nil
	}
	var size int64
	if err := e.conn.QueryRow(ctx, "SELECT pg_relation_size($1::regclass)", pg.Ident(task.Schema, task.Table)).Scan(&size); err != nil {
		return nil, nil, fmt.Errorf("backfill %s: read its size: %w", tbl, err)
	}
	if size < yieldMinBytes {
		// Done in about a second: not worth a probe.
		return nil, func() {}, nil
	}
	pids := make([]uint32, len(workers))
	for i, c := range workers {
		pids[i] = c.PgConn().PID()
	}
	others, err := otherSessions(ctx, e.conn, pids)
	if err != nil {
		return nil, nil, err
	}
	if others == 0 {
		e.log.Debug().Str(keyTable, tbl).Msg("no other session connected to the database: the backfill does not yield")
		return nil, func() {}, nil
	}
	conn, err := e.workerConn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("backfill %s: open the governor's connection: %w", tbl, err)
	}
	var sv int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&sv); err != nil {
		pg.Close(context.WithoutCancel(ctx), conn)
		return nil, nil, fmt.Errorf("backfill %s: read the server version: %w", tbl, err)
	}
	g = &governor{conn: conn, target: e.cfg.BackfillYield, tbl: tbl, duty: 1, perDB: sv >= 150000 && e.txns != nil, txns: e.txns}
	g.logStart = func(base float64) {
		e.log.Info().Str(keyTable, tbl).Float64("app_write_rate", base).Float64("yield", g.target).
			Msg("backfill yields to the application's writes")
	}
	if g.perDB {
		// What the engine's sessions did before (the DDL of start, a
		// worker's setup) is published now, before the first reading,
		// or it would come into the first periods as the application's.
		for _, c := range append(workers, conn) {
			if _, err := c.Exec(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
				pg.Close(context.WithoutCancel(ctx), conn)
				return nil, nil, fmt.Errorf("backfill %s: publish the sessions' statistics: %w", tbl, err)
			}
			e.txns.markFlushed(c)
		}
	}
	g.logProbe = func(rate float64) {
		e.log.Debug().Str(keyTable, tbl).Float64("app_rate", rate).Msg("backfill held to measure the application's rate")
	}
	g.log = func(duty, rate, baseline float64) {
		e.log.Debug().Str(keyTable, tbl).Float64("duty", duty).Float64("app_rate", rate).Float64("app_baseline", baseline).
			Msg("backfill duty cycle")
	}
	// The governor starts watching, with no baseline: the workers start
	// at once, and a server where nobody else writes costs them nothing.
	// The first look, after yieldGlance, takes a baseline with the workers
	// held if anyone wrote meanwhile.
	e.log.Debug().Str(keyTable, tbl).Float64("yield", g.target).Msg("backfill governor watches the application's writes")
	gctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.loop(gctx)
	}()
	return g, func() {
		cancel()
		<-done
		pg.Close(context.WithoutCancel(ctx), conn)
	}, nil
}

// otherSessions counts the client sessions connected to the database that
// are not this engine's: sessions of other databases are no application of
// this one.
func otherSessions(ctx context.Context, conn *pgx.Conn, ours []uint32) (int, error) {
	var n int
	err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND datname = current_database()
		  AND pid <> pg_backend_pid() AND pid <> ALL($1::int[])`, ours).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count the other sessions: %w", err)
	}
	return n, nil
}

// xids reads the transaction counter: the database's ended transactions,
// or on PostgreSQL 14 the server's transaction IDs; and, at the same
// instant, how many of those are the engine's own. The reading's own
// transaction is published at once, as the workers' are. A worker publishes
// and marks its batches under flushMu's read lock, so that a reading never
// falls between the server counting a batch and the engine marking it.
func (g *governor) xids(ctx context.Context) (x, ours int64, at time.Time, err error) {
	if !g.perDB {
		// Read before the counter: a batch counted after it is in the
		// next reading on both sides.
		ours = g.batches.Load()
		err = g.conn.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&x)
		return x, ours, time.Now(), err
	}
	g.flushMu.Lock()
	defer g.flushMu.Unlock()
	err = g.conn.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database, pg_stat_force_next_flush()
		WHERE datname = current_database()`).Scan(&x)
	// The reading's own transaction is in the next reading, and from now
	// in ours: each period has one, on both sides.
	g.txns.markFlushed(g.conn)
	return x, g.txns.flushed(), time.Now(), err
}

// txCounter is a pgx tracer that counts the transactions the engine's
// sessions end, commits and rollbacks alike: a statement (or batch) after
// which the session is outside a transaction block ended one. It counts per
// session, and keeps apart those the session has published to the
// statistics (markFlushed after a pg_stat_force_next_flush): the governor
// subtracts only what the database's count can already hold.
type txCounter struct {
	mu    sync.Mutex
	conns map[*pgx.Conn]*connTxns
}

type connTxns struct{ ended, flushed int64 }

var (
	_ pgx.QueryTracer   = (*txCounter)(nil)
	_ pgx.BatchTracer   = (*txCounter)(nil)
	_ pgx.PrepareTracer = (*txCounter)(nil)
)

func (c *txCounter) ended(conn *pgx.Conn) {
	if conn.PgConn().TxStatus() != 'I' {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns == nil {
		c.conns = map[*pgx.Conn]*connTxns{}
	}
	n := c.conns[conn]
	if n == nil {
		n = &connTxns{}
		c.conns[conn] = n
	}
	n.ended++
}

// markFlushed notes that conn's session has just published its statistics:
// every transaction it ended so far is in the database's count.
func (c *txCounter) markFlushed(conn *pgx.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.conns[conn]; n != nil {
		n.flushed = n.ended
	}
}

// flushed is the number of the engine's transactions the database's count
// holds, as far as the engine knows.
func (c *txCounter) flushed() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var sum int64
	for _, n := range c.conns {
		sum += n.flushed
	}
	return sum
}

func (c *txCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (c *txCounter) TraceQueryEnd(_ context.Context, conn *pgx.Conn, _ pgx.TraceQueryEndData) {
	c.ended(conn)
}

func (c *txCounter) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return ctx
}

// TracePrepareEnd counts a statement pgx prepared on the server before it
// ran it (the first time a session runs a text): outside a transaction
// block, the server runs the Parse in a transaction of its own.
func (c *txCounter) TracePrepareEnd(_ context.Context, conn *pgx.Conn, d pgx.TracePrepareEndData) {
	if !d.AlreadyPrepared {
		c.ended(conn)
	}
}

func (c *txCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (c *txCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (c *txCounter) TraceBatchEnd(_ context.Context, conn *pgx.Conn, _ pgx.TraceBatchEndData) {
	c.ended(conn)
}

// appRate is the write rate of everyone but the backfill between two
// readings, in transactions per second.
func appRate(x0, x1, ours int64, t0, t1 time.Time) float64 {
	s := t1.Sub(t0).Seconds()
	if s <= 0 {
		return 0
	}
	return max(0, float64(x1-x0-ours)) / s
}

// measure counts the application's write rate over d. With hold, the
// workers wait at their next pause until it ends, and the count begins a
// little later: a batch in flight when the hold begins still commits.
func (g *governor) measure(ctx context.Context, d time.Duration, hold bool) (float64, error) {
	if hold {
		ch := make(chan struct{})
		g.mu.Lock()
		g.hold = ch
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			g.hold = nil
			g.mu.Unlock()
			close(ch)
		}()
		if err := pg.Sleep(ctx, yieldSettle); err != nil {
			return 0, err
		}
	}
	x0, o0, t0, err := g.xids(ctx)
	if err != nil {
		return 0, fmt.Errorf("backfill %s: read the transaction counter: %w", g.tbl, err)
	}
	if err := pg.Sleep(ctx, d); err != nil {
		return 0, err
	}
	x1, o1, t1, err := g.xids(ctx)
	if err != nil {
		return 0, fmt.Errorf("backfill %s: read the transaction counter: %w", g.tbl, err)
	}
	return appRate(x0, x1, o1-o0, t0, t1), nil
}

// probe takes a new baseline with the workers held.
func (g *governor) probe(ctx context.Context) error {
	d := yieldProbe
	if g.perDB {
		// The database's counts come as each application session
		// publishes its statistics, at most once a second: a window of
		// two holds at least one from every busy session.
		d = 2 * yieldProbe
	}
	base, err := g.measure(ctx, d, true)
	if err != nil {
		return err
	}
	g.setBaseline(base)
	return nil
}

func (g *governor) setBaseline(base float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.baseline = base
	if base < yieldMinRate {
		g.duty = 1
	}
}

// loop adjusts the duty cycle each yieldPeriod until ctx ends. While the
// baseline says the application writes, it probes again each yieldReprobe;
// while it says it does not, the rate seen with the backfill running is
// enough to notice that it started to (the backfill can only lower it),
// and only then is a baseline taken. A failed reading is skipped: pacing is
// advice, and the workers' own errors end the backfill.
func (g *governor) loop(ctx context.Context) {
	x0, o0, t0, err := g.xids(ctx)
	lastProbe := time.Now()
	for period := yieldGlance; ctx.Err() == nil; period = yieldPeriod {
		if pg.Sleep(ctx, period) != nil {
			return
		}
		g.mu.Lock()
		idle := g.baseline < yieldMinRate
		g.mu.Unlock()
		x1, o1, t1, err1 := g.xids(ctx)
		var rate float64
		if err == nil && err1 == nil {
			rate = appRate(x0, x1, o1-o0, t0, t1)
		}
		// A few stray transactions in a short window (the engine's own,
		// published late) are no application starting to write.
		seen := err == nil && err1 == nil && x1-x0-(o1-o0) >= yieldMinTxns
		if (idle && seen && rate >= yieldMinRate) || (!idle && time.Since(lastProbe) >= yieldReprobe) {
			g.logProbe(rate)
			if g.probe(ctx) != nil {
				return
			}
			g.mu.Lock()
			base := g.baseline
			g.mu.Unlock()
			if idle && base >= yieldMinRate {
				g.logStart(base)
			}
			lastProbe = time.Now()
			x0, o0, t0, err = g.xids(ctx)
			continue
		}
		if err == nil && err1 == nil && !idle {
			g.mu.Lock()
			g.duty = nextDuty(g.duty, rate, g.baseline, g.target)
			duty, base := g.duty, g.baseline
			g.mu.Unlock()
			g.log(duty, rate, base)
		}
		x0, t0, o0, err = x1, t1, o1, err1
	}
}

// pause is a worker's pause between batches: it has the batch's
// transactions counted, waits out a probe, and rests for the part of the
// cycle the duty leaves. worked is how long the worker ran since its last
// pause.
func (g *governor) pause(ctx context.Context, conn *pgx.Conn, worked time.Duration) error {
	if g.perDB {
		// Published now, the batch is in the database's count by the
		// time the tracer's count of it is subtracted; left to the
		// server's own rhythm it would come up to a second later, or,
		// from a worker held by a probe, ten.
		g.flushMu.RLock()
		_, err := conn.Exec(ctx, "SELECT pg_stat_force_next_flush()")
		if err == nil {
			g.txns.markFlushed(conn)
		}
		g.flushMu.RUnlock()
		if err != nil {
			return fmt.Errorf("backfill %s: publish the batch's statistics: %w", g.tbl, err)
		}
	} else {
		g.batches.Add(1)
	}
	g.mu.Lock()
	hold, duty := g.hold, g.duty
	g.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if duty >= 1 {
		return nil
	}
	return pg.Sleep(ctx, time.Duration(float64(worked)*(1-duty)/duty))
}

// Duty is the share of time the workers spend in batches now, 1 when the
// governor does not slow them.
func (g *governor) Duty() float64 {
	if g == nil {
		return 1
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.duty
}

// pauser is the Options.Pause of the worker on conn for the governor, nil
// without one. Each worker has its own: the time it worked is since its own
// last pause.
func (g *governor) pauser(conn *pgx.Conn) func(context.Context) error {
	if g == nil {
		return nil
	}
	last := time.Now()
	return func(ctx context.Context) error {
		err := g.pause(ctx, conn, time.Since(last))
		last = time.Now()
		return err
	}
}

// pauses runs the non-nil pauses in turn, or is nil when all are.
func pauses(fns ...func(context.Context) error) func(context.Context) error {
	var set []func(context.Context) error
	for _, f := range fns {
		if f != nil {
			set = append(set, f)
		}
	}
	switch len(set) {
	case 0:
		return nil
	case 1:
		return set[0]
	}
	return func(ctx context.Context) error {
		for _, f := range set {
			if err := f(ctx); err != nil {
				return err
			}
		}
		return nil
	}
}
