package diff

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// createsPublic finds a CREATE SCHEMA public without IF NOT EXISTS.
var createsPublic = regexp.MustCompile(`(?im)^\s*CREATE\s+SCHEMA\s+("public"|public)\s*;`)

// ScratchPrefix starts the name of every database LoadSQL creates, so that
// one left by a killed process can be recognised.
const ScratchPrefix = "online_diff_"

// SQLError is desired SQL that PostgreSQL refused: bad input, nothing on
// the live database was touched.
type SQLError struct {
	File string
	SQL  string
	Err  error
}

func (e *SQLError) Error() string {
	return fmt.Sprintf("%s: load the desired schema: %v", e.File, e.Err)
}
func (e *SQLError) Unwrap() error { return e.Err }

// LoadSQL runs the DDL text in a new scratch database of the server that
// serverURL names, reads schema name there, and drops the database again,
// also when ctx is cancelled or the SQL fails.
func LoadSQL(ctx context.Context, serverURL, file, sql, name string) (*schema.Schema, error) {
	d, err := LoadDesired(ctx, serverURL, file, sql, name)
	if err != nil {
		return nil, err
	}
	return d.Schema, nil
}

func loadSQL(ctx context.Context, serverURL, db, file, sql, name string) (*schema.Schema, error) {
	d, err := loadDesired(ctx, serverURL, db, file, sql, name)
	if err != nil {
		return nil, err
	}
	return d.Schema, nil
}

func runSQL(ctx context.Context, u, file, sql string) error {
	conn, err := pg.Connect(ctx, u, pg.Options{ApplicationName: "online-diff"})
	if err != nil {
		return err
	}
	defer pg.Close(ctx, conn)
	if createsPublic.MatchString(sql) {
		// pg_dump writes CREATE SCHEMA public; the scratch database has
		// it already, empty.
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS public"); err != nil {
			return fmt.Errorf("drop the scratch database's empty public schema: %w", err)
		}
	}
	// Without arguments, Exec sends the text as one simple query, so a
	// whole file of statements runs, in one implicit transaction.
	if _, err := conn.Exec(ctx, sql); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &SQLError{File: file, SQL: sql, Err: pg.WithSQL(err, sql)}
	}
	return nil
}

// ReadURL reads schema name of the database connURL names, in a read-only
// transaction.
func ReadURL(ctx context.Context, connURL, name string) (*schema.Schema, error) {
	conn, err := pg.Connect(ctx, connURL, pg.Options{ApplicationName: "online-diff", LockTimeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer pg.Close(ctx, conn)
	return read(ctx, conn, name)
}

func read(ctx context.Context, conn *pgx.Conn, name string) (*schema.Schema, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin read of schema %s: %w", name, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	s, err := schema.Read(ctx, tx, name)
	if err != nil {
		return nil, err
	}
	for _, t := range s.Tables {
		for _, c := range t.Columns {
			if len(c.Physical) > 8 && c.Physical[:8] == "_online_" {
				return nil, fmt.Errorf("read schema %s: table %s has online's hidden column %s: a migration is in progress; complete or roll it back first", name, t.Name, c.Physical)
			}
		}
	}
	return s, nil
}
