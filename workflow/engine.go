package workflow

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/state"
)

// Engine runs a team's workflow over a phases.Engine, whose connection,
// lock and lifecycle (Start, Complete, Rollback, Status) it uses and
// exposes as its own.
type Engine struct {
	*phases.Engine
	conn  *pgx.Conn
	store state.Store
	cfg   phases.Config
	log   zerolog.Logger
}

// New makes the workflow engine over eng. It adds no connection: closing
// eng closes both.
func New(eng *phases.Engine) *Engine {
	cfg := eng.Config()
	return &Engine{Engine: eng, conn: eng.Conn(), store: state.Store{Schema: cfg.StateSchema}, cfg: cfg, log: cfg.Log}
}

// Open opens a phases.Engine with cfg and the workflow engine over it.
func Open(ctx context.Context, cfg phases.Config) (*Engine, error) {
	eng, err := phases.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return New(eng), nil
}

func (e *Engine) schemaExists(ctx context.Context, name string) (bool, error) {
	var ok bool
	err := e.conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up schema %s: %w", name, err)
	}
	return ok, nil
}

// Log field keys of this package.
const keyMigration = "migration"

func osUser() string { return phases.OSUser() }
