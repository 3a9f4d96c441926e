package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/scratchdb"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

const (
	tableName   = "accounts"
	oldEmailCol = "email"
	newEmailCol = "email_address"
	// dbPrefix starts the name of every scratch database, so that one left
	// behind by a killed process is recognisable as the demo's.
	dbPrefix = "online_demo_"
	// cleanupTimeout bounds the whole clean-up (rollback, drop, server stop)
	// when ctx is already cancelled.
	cleanupTimeout = 60 * time.Second
)

// migrationYAML is the migration the demo runs, in the same format as a
// user's migration file, so that it goes through the same parser.
const migrationYAML = `name: demo_rename_email
operations:
  - rename_column:
      table: accounts
      from: email
      to: email_address
`

// Config says where the demo runs and how much traffic it makes.
type Config struct {
	// Engine configures the migration engine. Its URL names the server;
	// the database in it is only used to create (and drop) a scratch one.
	Engine phases.Config
	// Rows is how many rows the demo table starts with.
	Rows int
	// Duration is how long each phase of traffic runs: the old app alone,
	// both apps side by side, and the new app after complete.
	Duration time.Duration
	// Clients is the number of connections of each simulated app.
	Clients int
	// Keep leaves the scratch database in place for a look afterwards.
	Keep bool
	// BinDir is where to look for PostgreSQL's server programs when no
	// server is reachable; "" searches PATH and the usual directories.
	BinDir string
	// Out receives the report; nil discards it.
	Out io.Writer

	// hook, when set, is called as the demo passes its milestones, so that
	// tests can interrupt it at a known point rather than after a guessed
	// delay.
	hook func(milestone string)
}

// MaxClients bounds Config.Clients: both apps together must stay well
// under a default server's max_connections of 100.
const MaxClients = 32

// Validate checks the settings a person chose, before anything is touched.
func (c Config) Validate() error {
	switch {
	case c.Rows < 1:
		return fmt.Errorf("--rows must be at least 1, got %d", c.Rows)
	case c.Duration <= 0:
		return fmt.Errorf("--duration must be positive, got %s", c.Duration)
	case c.Clients < 1 || c.Clients > MaxClients:
		return fmt.Errorf("--clients must be between 1 and %d, got %d", MaxClients, c.Clients)
	}
	return nil
}

// ErrFailed is wrapped by the error of Run when the applications saw errors
// or a check of the data failed: the migration was not invisible to them.
var ErrFailed = errors.New("demo failed")

// Report is what the demo measured.
type Report struct {
	Server     string // the server used, password redacted
	Throwaway  bool   // the server was started for the demo
	Database   string // the scratch database
	Migration  string
	OldVersion string // search_path of the old app
	NewVersion string // search_path of the new app
	Setup      time.Duration
	Start      time.Duration // Engine.Start
	Complete   time.Duration // Engine.Complete
	Total      time.Duration
	Old, New   Stats
	// Failed lists checks of the data that failed (empty when all passed).
	Failed []string
}

// Errors counts everything that went wrong: app errors and failed checks.
func (r *Report) Errors() int64 {
	return r.Old.Errors + r.New.Errors + int64(len(r.Failed))
}

// run holds what Run has set up, so that one clean-up can undo it in the
// right order whatever step failed.
type run struct {
	cfg       Config
	out       io.Writer
	srv       *server
	dbCreated bool
	dbURL     string
	engine    *phases.Engine
	old, new  *app
	started   bool // Start was called: there may be something to roll back
	completed bool
	rendered  bool // the results table is out; the verdict line follows
	rep       *Report
}

// Run runs the demo. It returns the report (also when the demo failed
// midway, with what was measured) and an error wrapping ErrFailed when the
// applications saw errors, one wrapping ctx.Err() when ctx was cancelled, or what
// stopped it. The scratch database and any throwaway server are removed
// before it returns, unless Config.Keep.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Engine.Schema == "" {
		cfg.Engine.Schema = "public"
	}
	r := &run{cfg: cfg, out: cfg.Out, rep: &Report{}}
	if r.out == nil {
		r.out = io.Discard
	}
	began := time.Now()
	defer func() {
		cerr := r.cleanup(ctx)
		r.rep.Total = time.Since(began)
		r.verdict(cerr)
		if ctx.Err() != nil {
			// Whatever step was cut short failed only because of the
			// interruption; saying so is the useful part.
			err = fmt.Errorf("demo interrupted (%w); traffic stopped and the clean-up above ran", ctx.Err())
		}
		err = errors.Join(err, cerr)
	}()
	return r.rep, r.run(ctx)
}

func (r *run) run(ctx context.Context) error {
	out, cfg, rep := r.out, r.cfg, r.rep
	log := cfg.Engine.Log
	fmt.Fprintln(out, "online demo: rename a column of a live table, with an old and a new application running")

	srv, err := findServer(ctx, cfg.Engine.URL, cfg.BinDir, out, log)
	if err != nil {
		return err
	}
	r.srv = srv
	rep.Server, rep.Throwaway = describe(srv.url), srv.throwaway != nil
	if err := r.createDatabase(ctx); err != nil {
		return err
	}

	setupBegan := time.Now()
	showcaseID, err := r.setup(ctx)
	if err != nil {
		return err
	}
	rep.Setup = time.Since(setupBegan)
	fmt.Fprintf(out, "setup     table %s (id, %s, name, balance) with %d rows in %s\n",
		qualified(cfg.Engine.Schema), oldEmailCol, cfg.Rows, round(rep.Setup))

	m, err := operations.Parse("demo.yaml", []byte(migrationYAML))
	if err != nil {
		return fmt.Errorf("the demo's own migration does not parse: %w", err)
	}
	rep.Migration = m.Name
	ecfg := cfg.Engine
	ecfg.URL = r.dbURL
	if r.engine, err = phases.Open(ctx, ecfg); err != nil {
		return err
	}
	// The old application uses whatever version is current now: before any
	// migration, the tables themselves.
	if rep.OldVersion, err = r.engine.Latest(ctx); err != nil {
		return err
	}

	r.old, err = startApp(ctx, r.spec("old", rep.OldVersion, oldEmailCol), log)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "old app   %d clients, search_path=%s, column %s: running alone for %s\n",
		cfg.Clients, rep.OldVersion, oldEmailCol, cfg.Duration)
	if err := pg.Sleep(ctx, cfg.Duration); err != nil {
		return err
	}

	fmt.Fprintf(out, "start     migration %s: rename_column %s.%s -> %s, under live traffic ...\n",
		m.Name, tableName, oldEmailCol, newEmailCol)
	r.started = true
	res, err := r.engine.Start(ctx, m)
	if err != nil {
		return fmt.Errorf("start the migration: %w", err)
	}
	rep.Start = res.Elapsed
	r.milestone("started")
	// The new application asks for the newest version, as a deploy script
	// would with `online latest`.
	if rep.NewVersion, err = r.engine.Latest(ctx); err != nil {
		return err
	}
	if rep.NewVersion != res.VersionSchema {
		return fmt.Errorf("after start, the latest version is %s, not the new version schema %s", rep.NewVersion, res.VersionSchema)
	}
	fmt.Fprintf(out, "          done in %s: version schema %s is published next to the old one\n", round(rep.Start), rep.NewVersion)

	r.new, err = startApp(ctx, r.spec("new", rep.NewVersion, newEmailCol), log)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "new app   %d clients, search_path=%s, column %s: both apps running for %s\n",
		cfg.Clients, rep.NewVersion, newEmailCol, cfg.Duration)
	if err := r.showcase(ctx, showcaseID); err != nil {
		return err
	}
	if err := pg.Sleep(ctx, cfg.Duration); err != nil {
		return err
	}

	rep.Old = r.old.halt()
	fmt.Fprintf(out, "old app   stopped (the old code is retired before complete): %d queries, %d errors\n", rep.Old.Queries, rep.Old.Errors)

	fmt.Fprintf(out, "complete  with the new app running ...\n")
	cres, err := r.engine.Complete(ctx)
	if err != nil {
		return fmt.Errorf("complete the migration: %w", err)
	}
	r.completed = true
	r.milestone("completed")
	rep.Complete = cres.Elapsed
	fmt.Fprintf(out, "          done in %s: the table's column is now %s; the new app reads through its views, unaffected\n",
		round(rep.Complete), newEmailCol)
	fmt.Fprintf(out, "new app   running alone after complete for %s\n", cfg.Duration)
	if err := pg.Sleep(ctx, cfg.Duration); err != nil {
		return err
	}
	rep.New = r.new.halt()

	if err := r.check(ctx, showcaseID); err != nil {
		return err
	}
	r.render()
	if n := rep.Errors(); n > 0 {
		return fmt.Errorf("%w: %d errors", ErrFailed, n)
	}
	return nil
}

func (r *run) milestone(name string) {
	if r.cfg.hook != nil {
		r.cfg.hook(name)
	}
}

func (r *run) spec(name, version, emailCol string) appSpec {
	return appSpec{
		name:       name,
		url:        r.dbURL,
		searchPath: version,
		emailCol:   emailCol,
		clients:    r.cfg.Clients,
		maxID:      int64(r.cfg.Rows),
	}
}

// createDatabase creates the scratch database on the server. The demo
// never works in an existing database: it must not disturb anyone's data,
// and dropping its own database is the one clean-up that cannot miss
// anything.
func (r *run) createDatabase(ctx context.Context) error {
	admin, err := pg.Connect(ctx, r.srv.url, pg.Options{ApplicationName: "online-demo"})
	if err != nil {
		return err
	}
	defer pg.Close(ctx, admin)
	version, err := pg.ServerVersion(ctx, admin)
	if err != nil {
		return err
	}
	// Scratch databases of demos that were killed go first; a failure to
	// drop them is no reason to stop this one.
	_, _ = scratchdb.DropStale(ctx, admin, dbPrefix)
	name := scratchdb.Name(dbPrefix, time.Now())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pg.Ident(name)); err != nil {
		return fmt.Errorf("create the scratch database %s (the demo needs a role that may create databases; it never writes to existing ones): %w", name, err)
	}
	r.dbCreated = true
	r.rep.Database = name
	if r.dbURL, err = pg.WithDatabase(r.srv.url, name); err != nil {
		return err
	}
	kind := "already running"
	if r.rep.Throwaway {
		kind = "throwaway"
	}
	fmt.Fprintf(r.out, "server    %s (PostgreSQL %s, %s)\n", r.rep.Server, version, kind)
	fate := "dropped at the end"
	switch {
	case r.cfg.Keep && r.rep.Throwaway:
		fate = "--keep has no effect: the throwaway server is removed at the end"
	case r.cfg.Keep:
		fate = "kept at the end (--keep)"
	}
	fmt.Fprintf(r.out, "database  %s (created for the demo, %s)\n", name, fate)
	return nil
}

// setup creates and fills the demo table, and adds one more row for the
// showcase, whose id is above those the apps update at random.
func (r *run) setup(ctx context.Context) (showcaseID int64, err error) {
	conn, err := pg.Connect(ctx, r.dbURL, pg.Options{ApplicationName: "online-demo"})
	if err != nil {
		return 0, err
	}
	defer pg.Close(ctx, conn)
	schema := r.cfg.Engine.Schema
	tbl := pg.Ident(schema, tableName)
	stmts := []string{
		"CREATE SCHEMA IF NOT EXISTS " + pg.Ident(schema),
		fmt.Sprintf(`CREATE TABLE %s (
	id bigserial PRIMARY KEY,
	%s text NOT NULL,
	name text,
	balance int NOT NULL DEFAULT 0
)`, tbl, pg.Ident(oldEmailCol)),
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return 0, fmt.Errorf("set up the demo table: %w", pg.WithSQL(err, s))
		}
	}
	load := fmt.Sprintf(`INSERT INTO %s (%s, name, balance)
SELECT 'user' || g || '@example.com', 'User ' || g, g %% 1000
FROM generate_series(1, $1::int) AS g`, tbl, pg.Ident(oldEmailCol))
	if _, err := conn.Exec(ctx, load, r.cfg.Rows); err != nil {
		return 0, fmt.Errorf("load %d rows: %w", r.cfg.Rows, pg.WithSQL(err, load))
	}
	// Fresh statistics, so that the apps' reads by id use the primary key
	// from the first query on.
	if _, err := conn.Exec(ctx, "ANALYZE "+tbl); err != nil {
		return 0, fmt.Errorf("analyze: %w", err)
	}
	add := fmt.Sprintf("INSERT INTO %s (%s, name, balance) VALUES ($1, $2, $3) RETURNING id", tbl, pg.Ident(oldEmailCol))
	if err := conn.QueryRow(ctx, add, "showcase@example.com", "Showcase", 100).Scan(&showcaseID); err != nil {
		return 0, fmt.Errorf("add the showcase row: %w", pg.WithSQL(err, add))
	}
	return showcaseID, nil
}

// cleanup undoes what run set up, newest first: stop the apps, roll back a
// migration left in progress, close the engine, drop the scratch database,
// stop a throwaway server. It runs after Ctrl-C too, on a context of its
// own.
func (r *run) cleanup(parent context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cleanupTimeout)
	defer cancel()
	if parent.Err() != nil {
		fmt.Fprintf(r.out, "interrupted: stopping the apps and cleaning up ...\n")
	}
	var errs []error
	// Halted apps still report what they did, for a demo that failed
	// midway; halting twice is harmless.
	if r.new != nil {
		r.rep.New = r.new.halt()
	}
	if r.old != nil {
		r.rep.Old = r.old.halt()
	}
	if r.started && !r.completed {
		if err := r.rollback(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if r.engine != nil {
		_ = r.engine.Close(ctx)
	}
	if r.dbCreated {
		switch {
		case r.srv.throwaway != nil:
			// The whole server goes; dropping its database first is time lost.
		case r.cfg.Keep:
			fmt.Fprintf(r.out, "kept database %s: %s\n", r.rep.Database, describe(r.dbURL))
		default:
			if err := r.dropDatabase(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := r.srv.close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("remove the throwaway server: %w", err))
	}
	return errors.Join(errs...)
}

// rollback undoes a migration that was started but not completed (Ctrl-C,
// or a failure), so that a kept database, or one that cannot be dropped, is
// left as it was before start.
func (r *run) rollback(ctx context.Context) error {
	e := r.engine
	if e == nil || e.Conn().IsClosed() {
		// A cancel may have cost the engine its connection.
		cfg := r.cfg.Engine
		cfg.URL = r.dbURL
		var err error
		if e, err = phases.Open(ctx, cfg); err != nil {
			return fmt.Errorf("roll back the demo migration: %w", err)
		}
		defer func() { _ = e.Close(ctx) }()
	}
	res, err := e.Rollback(ctx)
	if errors.Is(err, phases.ErrNoMigration) {
		// Start undid itself, or never got as far as recording anything.
		return nil
	}
	if err != nil {
		return fmt.Errorf("roll back the demo migration: %w", err)
	}
	fmt.Fprintf(r.out, "rollback  migration %s rolled back in %s\n", res.Migration, round(res.Elapsed))
	return nil
}

func (r *run) dropDatabase(ctx context.Context) error {
	admin, err := pg.Connect(ctx, r.srv.url, pg.Options{ApplicationName: "online-demo"})
	if err != nil {
		return fmt.Errorf("drop the scratch database %s (drop it by hand): %w", r.rep.Database, err)
	}
	defer pg.Close(ctx, admin)
	// FORCE ends any session still in it: a client of ours that did not
	// close in time must not leave the database behind.
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pg.Ident(r.rep.Database)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop the scratch database %s (drop it by hand): %w", r.rep.Database, err)
	}
	r.dbCreated = false
	fmt.Fprintf(r.out, "cleanup   database %s dropped\n", r.rep.Database)
	return nil
}

func qualified(schema string) string {
	return schema + "." + tableName
}

// round shortens a duration for the report.
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
