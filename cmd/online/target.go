package main

import (
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
)

// writingCommands change the database they connect to. They take no
// default database: a forgotten DATABASE_URL must not migrate whatever
// database answers on localhost.
var writingCommands = map[string]bool{
	"init": true, "start": true, "complete": true, "rollback": true, "backfill": true,
	"migrate": true, "revert": true, "baseline": true, "pull --drift": true,
}

// checkTarget refuses a writing command whose database was not named (by
// --database-url, DATABASE_URL or a PG* variable), and says on stderr
// which database a writing command is about to change, and why that one.
func (g *globals) checkTarget(url string) error {
	if !writingCommands[g.command] {
		return nil
	}
	from := "--database-url"
	switch {
	case g.cfgFlags.urlFrom != "":
		from = g.cfgFlags.urlFrom
	case g.databaseURL != "" && g.databaseURL == os.Getenv("DATABASE_URL"):
		from = "DATABASE_URL"
	case g.databaseURL != "":
	case url == "":
		from = "the PG* variables"
	default:
		return usageError{fmt.Errorf("online %s changes a database, and none was named: give --database-url, DATABASE_URL, the PG* variables (PGHOST, PGDATABASE, ...) or database_url in online.yaml; the default %s is only for commands that read", g.command, pg.DefaultURL)}
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return usageError{fmt.Errorf("the connection string (from %s) does not parse: %w", from, err)}
	}
	fmt.Fprintf(g.stderr, "online: %s: database %q on %s:%d as %s (from %s)\n", g.command, cfg.Database, cfg.Host, cfg.Port, cfg.User, from)
	return nil
}
