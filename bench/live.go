package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/onlinepg/online/backfill"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgserver"
	"github.com/onlinepg/online/internal/scratchdb"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

// ErrFailed is wrapped by the error of Live when an application saw a
// failed transaction during the online migration, or a check failed. The
// blocking ALTER of the comparison is expected to hurt and never fails the
// run.
var ErrFailed = errors.New("bench failed")

// dbPrefix starts the name of every scratch database, so that one left by a
// killed process is recognisable.
const dbPrefix = "online_bench_"

// cleanupTimeout bounds the clean-up (stopping the workloads, dropping the
// databases, stopping a throwaway server) once ctx is cancelled.
const cleanupTimeout = time.Minute

// progressEvery is how often the running account reports the backfill.
const progressEvery = 5 * time.Second

// run is the state of one Live, so that one clean-up undoes whatever was set
// up, whichever step failed.
type run struct {
	cfg       Config
	out       io.Writer
	log       zerolog.Logger
	drv       driver
	serverURL string
	throwaway *pgserver.Server
	dbs       []string // scratch databases still to drop
	loads     []load   // workloads still running
	engine    *phases.Engine
	watch     *lockWatch
	rep       *Report

	// Backfill progress, as the engine reports it.
	mu           sync.Mutex
	bfFirst      time.Time
	bfLast       time.Time
	bfRows       map[string]int64
	lastProgress time.Time

	// running is when the load started last was seen running (its
	// clients' first statements): the start of its first timed phase.
	running time.Time
}

// Live runs the proof described in the package documentation. It returns
// the report (also when it stopped midway, with what was measured) and an
// error wrapping ErrFailed when an application saw a failure or a check
// failed, or what stopped it. The scratch databases and any throwaway
// server are gone when it returns.
func Live(ctx context.Context, cfg Config) (rep *Report, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, out: cfg.Out, log: cfg.Log, bfRows: map[string]int64{}}
	if r.out == nil {
		r.out = io.Discard
	}
	r.rep = &Report{
		Scale: cfg.Scale, Accounts: int64(cfg.Scale) * perBranch, Clients: cfg.Clients,
		PhaseDuration: Millis(cfg.Duration), CPUs: runtime.NumCPU(), LoadBefore: loadAverage(),
		LockTimeout: Millis(cfg.LockTimeout), BackfillBatchTime: Millis(cfg.BackfillBatchTime),
		BackfillRate: cfg.BackfillRate, BackfillYield: cfg.BackfillYield, Operations: migrationSummary, MigrationYAML: migrationYAML,
	}
	began := time.Now()
	defer func() {
		cerr := r.cleanup(ctx)
		r.rep.Timings.Total = Millis(time.Since(began))
		r.rep.LoadAfter = loadAverage()
		if ctx.Err() != nil {
			err = fmt.Errorf("bench interrupted (%w); the workloads were stopped and the scratch databases dropped", ctx.Err())
		}
		err = errors.Join(err, cerr)
	}()
	if err := r.run(ctx); err != nil {
		return r.rep, err
	}
	r.rep.verdict()
	if !r.rep.Passed {
		return r.rep, fmt.Errorf("%w: %d failed transactions, %d failed checks", ErrFailed, r.rep.Failed, r.rep.failedChecks())
	}
	return r.rep, nil
}

func (r *run) milestone(name string) {
	if r.cfg.hook != nil {
		r.cfg.hook(name)
	}
}

func (r *run) printf(format string, args ...any) { fmt.Fprintf(r.out, format, args...) }

func (r *run) run(ctx context.Context) error {
	cfg, rep := r.cfg, r.rep
	r.printf("online bench live: TPC-B traffic through an online migration of pgbench's tables\n")
	if err := r.pickDriver(ctx); err != nil {
		return err
	}
	if err := r.findServer(ctx); err != nil {
		return err
	}
	r.printf("machine   %d CPUs, load average %.2f (the machine may be shared: figures are noisy)\n", rep.CPUs, rep.LoadBefore)

	db, dbURL, err := r.createDatabase(ctx)
	if err != nil {
		return err
	}
	rep.Database = db
	setup := time.Now()
	if err := r.drv.initialize(ctx, dbURL, cfg.Scale); err != nil {
		return err
	}
	rep.Timings.Setup = Millis(time.Since(setup))
	r.printf("setup     pgbench's tables at scale %d (%d accounts) in %s\n", cfg.Scale, rep.Accounts, round(rep.Timings.Setup.D()))

	m, err := operations.Parse("pgbench_v2.yaml", []byte(migrationYAML))
	if err != nil {
		return fmt.Errorf("the bench's own migration does not parse: %w", err)
	}
	rep.Migration = m.Name
	r.engine, err = phases.Open(ctx, phases.Config{
		URL: dbURL, Schema: schemaName,
		LockTimeout: cfg.LockTimeout, LockRetryDeadline: cfg.LockRetryDeadline,
		BackfillBatchTime: cfg.BackfillBatchTime, BackfillRate: cfg.BackfillRate,
		BackfillWorkers: cfg.BackfillWorkers, BackfillYield: yieldOrOff(cfg.BackfillYield),
		Log: cfg.Log, OnProgress: r.progress,
	})
	if err != nil {
		return err
	}
	// The old application uses the version that is current now: before
	// any migration, the tables themselves.
	if rep.OldVersion, err = r.engine.Latest(ctx); err != nil {
		return err
	}
	r.watch = startLockWatch(ctx, dbURL, r.log)
	spec := loadSpec{dbURL: dbURL, dbName: db, clients: cfg.Clients, scale: cfg.Scale}
	oldSpec, newSpec := spec, spec
	oldSpec.app, oldSpec.version = "old", rep.OldVersion

	old, err := r.startLoad(ctx, oldSpec)
	if err != nil {
		return err
	}
	oldRunning := r.running
	r.printf("old app   %d clients, search_path=%s: %s before the migration\n", cfg.Clients, rep.OldVersion, cfg.Duration)
	if err := pg.Sleep(ctx, cfg.Duration); err != nil {
		return err
	}

	r.printf("start     migration %s under traffic:\n", m.Name)
	for _, op := range migrationSummary {
		r.printf("            %s\n", op)
	}
	tStart := time.Now()
	res, err := r.engine.Start(ctx, m)
	tStarted := time.Now()
	if err != nil {
		return fmt.Errorf("start the migration: %w", err)
	}
	rep.NewVersion = res.VersionSchema
	rep.BackfillWorkers = res.BackfillWorkers
	r.milestone("started")
	rep.Timings.Start = Millis(tStarted.Sub(tStart))
	r.mu.Lock()
	bfFirst, bfLast := r.bfFirst, r.bfLast
	rep.BackfillRows = r.bfRows
	r.mu.Unlock()
	if bfFirst.IsZero() {
		// No batch reported: count it all as expand.
		bfFirst, bfLast = tStarted, tStarted
	}
	rep.Timings.Expand = Millis(bfFirst.Sub(tStart))
	rep.Timings.Backfill = Millis(bfLast.Sub(bfFirst))
	rep.Timings.Finish = Millis(tStarted.Sub(bfLast))
	r.printf("          done in %s (expand %s, backfill %s, finish and publish %s): version %s is published\n",
		round(rep.Timings.Start.D()), round(rep.Timings.Expand.D()), round(rep.Timings.Backfill.D()), round(rep.Timings.Finish.D()), rep.NewVersion)

	newSpec.app, newSpec.version = "new", rep.NewVersion
	nw, err := r.startLoad(ctx, newSpec)
	if err != nil {
		return err
	}
	r.printf("new app   %d clients, search_path=%s: both versions for %s\n", cfg.Clients, rep.NewVersion, cfg.Duration)
	if err := pg.Sleep(ctx, cfg.Duration); err != nil {
		return err
	}
	agree, err := r.checkVersions(ctx, dbURL, rep.OldVersion, rep.NewVersion)
	rep.Checks = append(rep.Checks, agree...)
	if err != nil {
		return err
	}
	oldStream, err := r.stopLoad(ctx, old)
	if err != nil {
		return err
	}
	r.printf("old app   stopped (old code retired before complete): %d transactions, %d failed\n", oldStream.Committed, failures(oldStream))

	r.printf("complete  with the new app running ...\n")
	tComplete := time.Now()
	if _, err := r.engine.Complete(ctx); err != nil {
		return fmt.Errorf("complete the migration: %w", err)
	}
	tCompleted := time.Now()
	rep.Timings.Complete = Millis(tCompleted.Sub(tComplete))
	r.printf("          done in %s\n", round(rep.Timings.Complete.D()))
	r.printf("new app   alone after complete for %s\n", cfg.Duration)
	if err := pg.Sleep(ctx, cfg.Duration); err != nil {
		return err
	}
	newStream, err := r.stopLoad(ctx, nw)
	if err != nil {
		return err
	}
	r.printf("new app   stopped: %d transactions, %d failed\n", newStream.Committed, failures(newStream))
	rep.LockWaits = r.watch.stop()
	r.watch = nil

	r.summarize(oldStream, newStream, marks{
		running: oldRunning, start: tStart, backfill: bfFirst, backfilled: bfLast, started: tStarted, complete: tComplete, completed: tCompleted,
	})

	checks, err := r.checkAfter(ctx, dbURL, []*stream{oldStream, newStream})
	rep.Checks = append(rep.Checks, checks...)
	if err != nil {
		return err
	}
	r.printf("checks    %d of %d passed\n", len(rep.Checks)-rep.failedChecks(), len(rep.Checks))

	// The migrated database is done with; dropping it now frees the
	// machine for the comparison.
	if err := r.engine.Close(ctx); err != nil {
		r.log.Debug().Err(err).Msg("close the engine")
	}
	r.engine = nil
	if err := r.dropDatabase(ctx, db); err != nil {
		return err
	}
	if cfg.NoComparison {
		return nil
	}
	return r.compare(ctx, spec)
}

// marks are the instants that cut the run into phases.
type marks struct {
	running, start, backfill, backfilled, started, complete, completed time.Time
}

// summarize cuts what the two applications did into the phases of the
// report, one row per phase and application.
func (r *run) summarize(old, nw *stream, m marks) {
	rep := r.rep
	windows := []window{
		{"before migration", later(old.Launched, m.running), m.start},
		{"start", m.start, m.started},
		{"start: expand", m.start, m.backfill},
		{"start: backfill", m.backfill, m.backfilled},
		{"start: finish+publish", m.backfilled, m.started},
		{"both versions", m.started, m.complete},
		{"complete", m.complete, m.completed},
		{"after complete", m.completed, nw.Stopping},
	}
	for _, w := range windows {
		for _, s := range []*stream{old, nw} {
			if p, ok := s.phase(w); ok {
				rep.Phases = append(rep.Phases, p)
			}
		}
	}
	before, _ := old.phase(windows[0])
	during, _ := old.phase(windows[3])
	if before.TPS > 0 {
		rep.BackfillThroughput = during.TPS / before.TPS
	}
	for _, s := range []*stream{old, nw} {
		rep.Failed += failures(s)
		for _, e := range s.Errors {
			rep.Errors = append(rep.Errors, s.App+" app: "+e)
		}
	}
}

// compare runs the same workload on a fresh copy of the data, first with no
// migration, then through the blocking ALTER TABLE that online replaces.
func (r *run) compare(ctx context.Context, spec loadSpec) error {
	cfg := r.cfg
	c := &Comparison{}
	r.rep.Comparison = c
	r.printf("compare   the same workload on a fresh copy of the data: no migration, then the blocking ALTER TABLE\n")
	db, dbURL, err := r.createDatabase(ctx)
	if err != nil {
		return err
	}
	c.Database = db
	if err := r.drv.initialize(ctx, dbURL, cfg.Scale); err != nil {
		return err
	}
	spec.dbURL, spec.dbName, spec.app, spec.version = dbURL, db, "old", schemaName
	r.watch = startLockWatch(ctx, dbURL, r.log)
	l, err := r.startLoad(ctx, spec)
	if err != nil {
		return err
	}
	running := r.running
	r.printf("old app   %d clients, search_path=%s: %s with no migration\n", cfg.Clients, schemaName, cfg.Duration)
	if err := pg.Sleep(ctx, cfg.Duration); err != nil {
		return err
	}
	conn, err := pg.Connect(ctx, dbURL, pg.Options{ApplicationName: "online-bench-alter"})
	if err != nil {
		return err
	}
	defer pg.Close(ctx, conn)
	c.Statement = fmt.Sprintf(blockingAlter, tbl(schemaName, accounts))
	r.printf("          %s (no lock_timeout, as a plain migration runs it) ...\n", c.Statement)
	tAlter := time.Now()
	if _, err := conn.Exec(ctx, c.Statement); err != nil {
		return fmt.Errorf("blocking alter: %w", pg.WithSQL(err, c.Statement))
	}
	tAltered := time.Now()
	c.AlterElapsed = Millis(tAltered.Sub(tAlter))
	r.printf("          done in %s; the workload goes on for %s\n", round(c.AlterElapsed.D()), cfg.Duration)
	if err := pg.Sleep(ctx, cfg.Duration); err != nil {
		return err
	}
	s, err := r.stopLoad(ctx, l)
	if err != nil {
		return err
	}
	c.LockWaits = r.watch.stop()
	r.watch = nil
	for _, w := range []window{
		{"no migration", later(s.Launched, running), tAlter},
		{"blocking ALTER", tAlter, tAltered},
		{"after ALTER", tAltered, s.Stopping},
	} {
		if p, ok := s.phase(w); ok {
			c.Phases = append(c.Phases, p)
		}
	}
	c.Failed = failures(s)
	c.Errors = s.Errors
	checks, err := balanceChecks(ctx, conn, schemaName, []*stream{s})
	c.Checks = append(c.Checks, checks...)
	if err != nil {
		return err
	}
	tc, err := typeCheck(ctx, conn, schemaName)
	if err != nil {
		return err
	}
	c.Checks = append(c.Checks, tc)
	pg.Close(ctx, conn)
	return r.dropDatabase(ctx, db)
}

func (r *run) checkVersions(ctx context.Context, dbURL, oldV, newV string) ([]Check, error) {
	conn, err := pg.Connect(ctx, dbURL, pg.Options{ApplicationName: "online-bench-check"})
	if err != nil {
		return nil, err
	}
	defer pg.Close(ctx, conn)
	return versionsAgree(ctx, conn, oldV, newV)
}

func (r *run) checkAfter(ctx context.Context, dbURL string, streams []*stream) ([]Check, error) {
	conn, err := pg.Connect(ctx, dbURL, pg.Options{ApplicationName: "online-bench-check"})
	if err != nil {
		return nil, err
	}
	defer pg.Close(ctx, conn)
	out, err := balanceChecks(ctx, conn, schemaName, streams)
	if err != nil {
		return out, err
	}
	more, err := migrationChecks(ctx, conn, schemaName, r.rep.NewVersion)
	return append(out, more...), err
}

// progress receives the engine's backfill progress: it marks the backfill
// window of the report, and now and then tells the person waiting.
func (r *run) progress(p backfill.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.bfFirst.IsZero() {
		r.bfFirst = now
		r.lastProgress = now
		r.milestone("backfilling")
	}
	r.bfLast = now
	r.bfRows[shortTable(p.Table)] = p.RowsDone
	if now.Sub(r.lastProgress) >= progressEvery || (p.Done && p.RowsDone > 0 && now.Sub(r.bfFirst) >= progressEvery) {
		r.lastProgress = now
		r.printf("          backfill %s: %d of about %d rows, %.0f rows/s\n", shortTable(p.Table), p.RowsDone, p.RowsTotal, p.Rate)
	}
}

func (r *run) pickDriver(ctx context.Context) error {
	switch r.cfg.Workload {
	case WorkloadGo:
		r.drv = goDriver{}
	default:
		d, err := findPgbench(ctx, r.cfg.Pgbench)
		if err != nil {
			if r.cfg.Workload == WorkloadPgbench {
				return fmt.Errorf("--workload pgbench: %w", err)
			}
			r.printf("workload  pgbench not found (%v): running the equivalent Go workload\n", err)
			r.drv = goDriver{}
			break
		}
		d.tmpDir = r.cfg.TempDir
		r.drv = d
	}
	r.rep.Workload = r.drv.name()
	r.rep.WorkloadDetail = r.drv.describe()
	r.printf("workload  %s\n", r.rep.WorkloadDetail)
	return nil
}

// findServer uses the server at the configured URL, or starts a throwaway
// one when none answers and PostgreSQL's server programs are installed.
func (r *run) findServer(ctx context.Context) error {
	url := pg.ResolveURL(r.cfg.URL)
	reason := pgserver.Ping(ctx, url)
	if reason != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		bins, err := pgserver.FindBinaries("")
		if err != nil {
			return fmt.Errorf("no PostgreSQL server answers at %s (%v), and none can be started here (%v): point --database-url at a server where you may create databases",
				pg.Redact(url), reason, err)
		}
		r.printf("no server answers at %s: starting a throwaway PostgreSQL %d (fsync off: figures are not a real server's)\n", pg.Redact(url), bins.Version)
		s, err := pgserver.Start(ctx, bins, r.log)
		if err != nil {
			return fmt.Errorf("start a throwaway server: %w", err)
		}
		r.throwaway = s
		url = s.URL
		r.rep.Throwaway = true
	}
	r.serverURL = url
	admin, err := pg.Connect(ctx, url, pg.Options{ApplicationName: "online-bench"})
	if err != nil {
		return err
	}
	defer pg.Close(ctx, admin)
	version, err := pg.ServerVersion(ctx, admin)
	if err != nil {
		return err
	}
	r.rep.ServerVersion = version
	cfg, err := pg.ParseConfig(url, pg.Options{})
	if err != nil {
		return err
	}
	r.rep.Server = pg.Describe(url, cfg)
	r.printf("server    %s (PostgreSQL %s)\n", r.rep.Server, version)
	return nil
}

// createDatabase creates a scratch database. The bench never works in an
// existing database: it must not disturb anyone's data, and dropping its
// own database is the one clean-up that cannot miss anything.
func (r *run) createDatabase(ctx context.Context) (name, dbURL string, err error) {
	admin, err := pg.Connect(ctx, r.serverURL, pg.Options{ApplicationName: "online-bench"})
	if err != nil {
		return "", "", err
	}
	defer pg.Close(ctx, admin)
	// Scratch databases of benches that were killed go first; a failure
	// to drop them is no reason to stop this one.
	if dropped, err := scratchdb.DropStale(ctx, admin, dbPrefix); err == nil && len(dropped) > 0 {
		r.printf("dropped   %s (left by a bench that was killed)\n", strings.Join(dropped, ", "))
	}
	name = scratchdb.Name(dbPrefix, time.Now())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pg.Ident(name)); err != nil {
		return "", "", fmt.Errorf("create the scratch database %s (the bench needs a role that may create databases): %w", name, err)
	}
	r.dbs = append(r.dbs, name)
	dbURL, err = pg.WithDatabase(r.serverURL, name)
	if err != nil {
		return "", "", err
	}
	r.printf("database  %s (scratch, dropped at the end)\n", name)
	return name, dbURL, nil
}

func (r *run) dropDatabase(ctx context.Context, name string) error {
	admin, err := pg.Connect(ctx, r.serverURL, pg.Options{ApplicationName: "online-bench"})
	if err != nil {
		return fmt.Errorf("drop the scratch database %s (drop it by hand): %w", name, err)
	}
	defer pg.Close(ctx, admin)
	// FORCE ends any session left in it.
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pg.Ident(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop the scratch database %s (drop it by hand): %w", name, err)
	}
	for i, n := range r.dbs {
		if n == name {
			r.dbs = append(r.dbs[:i], r.dbs[i+1:]...)
			break
		}
	}
	return nil
}

func (r *run) startLoad(ctx context.Context, spec loadSpec) (load, error) {
	launched := time.Now()
	l, err := r.drv.start(ctx, spec)
	if err != nil {
		return nil, err
	}
	r.loads = append(r.loads, l)
	r.running = r.waitRunning(ctx, spec, launched)
	return l, nil
}

// loadStartPatience bounds how long waitRunning waits.
const loadStartPatience = time.Minute

// waitRunning waits until the clients of a load just started have sent
// their first TPC-B statement, so that the timed phase that follows counts
// from there: on a loaded machine pgbench can take more than a phase's
// second to connect and count the branches, and the phase would have no
// transaction of it, and one that counts the start-up in would lower its
// rate. It returns when they were seen, or launched when it gave up (after
// loadStartPatience, or failing to look): the report then shows what ran.
func (r *run) waitRunning(ctx context.Context, spec loadSpec, launched time.Time) time.Time {
	conn, err := pg.Connect(ctx, spec.dbURL, pg.Options{ApplicationName: "online-bench-watch"})
	if err != nil {
		return launched
	}
	defer pg.Close(ctx, conn)
	deadline := time.Now().Add(loadStartPatience)
	for time.Now().Before(deadline) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()
			  AND backend_start >= $1 AND query LIKE '%pgbench_accounts%'`, launched.Add(-time.Second)).Scan(&n)
		if err != nil {
			return launched
		}
		if n >= spec.clients {
			return time.Now()
		}
		if pg.Sleep(ctx, 20*time.Millisecond) != nil {
			return launched
		}
	}
	return launched
}

func (r *run) stopLoad(ctx context.Context, l load) (*stream, error) {
	for i, x := range r.loads {
		if x == l {
			r.loads = append(r.loads[:i], r.loads[i+1:]...)
			break
		}
	}
	return l.stop(ctx)
}

// cleanup stops what is still running and drops what is still there, on a
// context of its own so that it runs after Ctrl-C too.
func (r *run) cleanup(parent context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cleanupTimeout)
	defer cancel()
	var errs []error
	for len(r.loads) > 0 {
		if _, err := r.stopLoad(ctx, r.loads[0]); err != nil && parent.Err() == nil {
			r.log.Debug().Err(err).Msg("stop a workload")
		}
	}
	r.watch.stop()
	r.watch = nil
	if r.engine != nil {
		_ = r.engine.Close(ctx)
		r.engine = nil
	}
	// A migration left in progress needs no rollback: its database goes.
	for len(r.dbs) > 0 {
		name := r.dbs[0]
		if err := r.dropDatabase(ctx, name); err != nil {
			errs = append(errs, err)
			r.dbs = r.dbs[1:]
		}
	}
	if r.throwaway != nil {
		if err := r.throwaway.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
		r.throwaway = nil
	}
	return errors.Join(errs...)
}

// shortTable is the name of a table of the schema, as the report names it,
// from the quoted, qualified form the engine reports.
func shortTable(qualified string) string {
	if rest, ok := strings.CutPrefix(qualified, pg.Ident(schemaName)+"."); ok {
		if name, err := strconv.Unquote(rest); err == nil && pg.Ident(name) == rest {
			return name
		}
	}
	return qualified
}

func failures(s *stream) int64 {
	var n int64
	for _, x := range s.Samples {
		if x.Failed && !x.End.After(s.Stopping) {
			n++
		}
	}
	return n
}

// loadAverage is the one-minute load average (Linux), 0 when unknown: it
// says how much else the machine was doing.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// round shortens a duration for the running account.
func round(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(10 * time.Microsecond).String()
	}
}

// yieldOrOff is --backfill-yield for phases.Config, whose zero is the
// default: 0 on the command line is off.
func yieldOrOff(y float64) float64 {
	if y <= 0 {
		return phases.Off
	}
	return y
}

// later is the later of two instants.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
