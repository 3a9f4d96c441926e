package bench

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
)

// The four tables of pgbench's TPC-B-like schema, all in schema public.
const (
	schemaName  = "public"
	accounts    = "pgbench_accounts"
	tellers     = "pgbench_tellers"
	branches    = "pgbench_branches"
	history     = "pgbench_history"
	perBranch   = 100000 // accounts per unit of scale, as pgbench has it
	tellersPer  = 10     // tellers per unit of scale
	maxDeltaAbs = 5000   // pgbench: \set delta random(-5000, 5000)
)

// driver runs one kind of workload: pgbench, or its equivalent in Go.
type driver interface {
	// name is "pgbench" or "go".
	name() string
	// describe says what runs, for the report.
	describe() string
	// initialize creates and fills the four tables in the database at dbURL.
	initialize(ctx context.Context, dbURL string, scale int) error
	// start launches spec.clients clients; they run until stop.
	start(ctx context.Context, spec loadSpec) (load, error)
}

// loadSpec is one application: its clients and the version they use.
type loadSpec struct {
	app     string // "old" or "new"
	dbURL   string
	dbName  string
	version string // search_path
	clients int
	scale   int
}

// appName is the application_name of a workload's sessions, by which a
// pgbench workload is stopped.
func (s loadSpec) appName() string { return "online-bench-" + s.app }

// load is a running workload.
type load interface {
	// stop ends the workload and returns what it did.
	stop(ctx context.Context) (*stream, error)
}

// connect opens a session the way an application's pool would set one up:
// search_path in the startup packet, so that no statement can run under
// another version.
func connect(ctx context.Context, dbURL, searchPath, app string) (*pgx.Conn, error) {
	o := pg.Options{ApplicationName: app}
	if searchPath != "" {
		o.SearchPath = pg.Ident(searchPath)
	}
	return pg.Connect(ctx, dbURL, o)
}

// execAll runs statements in order on conn.
func execAll(ctx context.Context, conn *pgx.Conn, what string, stmts ...string) error {
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", what, pg.WithSQL(err, s))
		}
	}
	return nil
}
