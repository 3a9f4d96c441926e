package diff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/scratchdb"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/schema"
)

// Snapshot is one side of a diff: the managed schema as the differ reads
// it, the objects it expresses as sql operations, and the catalog of every
// user schema of the database, against which a migration is verified.
type Snapshot struct {
	Schema  *schema.Schema
	Objects *Objects
	Catalog Catalog
	// Schemas are the user schemas of the database.
	Schemas []string
	// Others holds each user schema other than the managed one.
	Others map[string]*Side
}

// LoadDesired runs the DDL text in a new scratch database of the server
// that serverURL names, reads it back (the managed schema and the catalog
// of every schema the file made), and drops the database again, also when
// ctx is cancelled or the SQL fails.
func LoadDesired(ctx context.Context, serverURL, file, sql, managed string) (*Snapshot, error) {
	return loadDesired(ctx, serverURL, scratchName(), file, sql, managed)
}

func loadDesired(ctx context.Context, serverURL, db, file, sql, managed string) (*Snapshot, error) {
	var want *Snapshot
	err := withScratchDB(ctx, serverURL, db, func(u string) error {
		if err := runSQL(ctx, u, file, sql); err != nil {
			return err
		}
		// Read on a session of its own: the file may have set search_path
		// (pg_dump's output empties it), which changes how format_type
		// and pg_get_expr name types and tables.
		var err error
		want, err = ReadDesiredURL(ctx, u, managed)
		return err
	})
	return want, err
}

// ReadDesiredURL reads the desired schema from a database (--to-url), with
// the pg_dump of each schema other than the managed one: created from it
// when the live database lacks it.
func ReadDesiredURL(ctx context.Context, connURL, managed string) (*Snapshot, error) {
	want, err := ReadSnapshot(ctx, connURL, managed, "online")
	if err != nil {
		return nil, err
	}
	for _, s := range want.Schemas {
		if s == managed {
			continue
		}
		if want.Objects.SchemaDDL[s], err = dumpSchemas(ctx, connURL, []string{s}, false); err != nil {
			return nil, err
		}
	}
	return want, nil
}

// ReadSnapshot reads a database: schema managed, its objects, and the
// catalog of its user schemas (stateSchema left out).
func ReadSnapshot(ctx context.Context, connURL, managed, stateSchema string) (*Snapshot, error) {
	conn, err := pg.Connect(ctx, connURL, pg.Options{ApplicationName: "online-diff", LockTimeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer pg.Close(ctx, conn)
	s, err := read(ctx, conn, managed)
	if err != nil {
		return nil, err
	}
	schemas, err := UserSchemas(ctx, conn, managed, stateSchema)
	if err != nil {
		return nil, err
	}
	cat, err := ReadCatalog(ctx, conn, schemas)
	if err != nil {
		return nil, err
	}
	objs, err := readObjects(ctx, conn, managed)
	if err != nil {
		return nil, err
	}
	others := map[string]*Side{}
	for _, n := range schemas {
		if n == managed {
			continue
		}
		side := &Side{}
		if side.Schema, err = read(ctx, conn, n); err != nil {
			return nil, err
		}
		if side.Objects, err = readObjects(ctx, conn, n); err != nil {
			return nil, err
		}
		others[n] = side
	}
	return &Snapshot{Schema: s, Objects: objs, Catalog: cat, Schemas: schemas, Others: others}, nil
}

// withScratch creates an empty database on the server, calls f with its
// URL and drops it again, after a cancel too.
func withScratch(ctx context.Context, serverURL string, f func(url string) error) error {
	return withScratchDB(ctx, serverURL, scratchName(), f)
}

func scratchName() string { return scratchdb.Name(ScratchPrefix, time.Now()) }

func withScratchDB(ctx context.Context, serverURL, db string, f func(url string) error) (err error) {
	admin, err := pg.Connect(ctx, serverURL, pg.Options{ApplicationName: "online-diff"})
	if err != nil {
		return err
	}
	defer pg.Close(ctx, admin)
	// Scratch databases an earlier diff could not drop (it was killed) go
	// first. A failure to list or drop them is no reason to fail this diff.
	_, _ = scratchdb.DropStale(ctx, admin, ScratchPrefix)
	// template0: the scratch database must not inherit what an
	// administrator put into template1.
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pg.Ident(db)+" TEMPLATE template0"); err != nil {
		return fmt.Errorf("create scratch database %s: %w", db, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, derr := admin.Exec(cctx, "DROP DATABASE IF EXISTS "+pg.Ident(db)+" WITH (FORCE)"); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop scratch database %s: %w", db, derr))
		}
	}()
	u, err := pg.WithDatabase(serverURL, db)
	if err != nil {
		return err
	}
	return f(u)
}

// Verification is what running a migration on a copy of the live schema
// gave.
type Verification struct {
	// Differences lists every object that, after start and complete, is
	// not as the desired schema has it (empty: the migration reaches it).
	Differences []string
	// Failed is set when the migration did not run on the copy: start or
	// complete refused it. Differences then compare the copy as it was
	// left.
	Failed error
}

// Verify checks a migration the way a user would find out: it copies the
// live database's user schemas (pg_dump --schema-only) into a scratch
// database, runs the migration there through start and complete, and
// compares the catalog it leaves with the desired one. stateSchema is
// online's state schema of the live database, left out of the copy and of
// the comparison. liveURL is the
// database the migration is for; the scratch database lives on the same
// server and is dropped at the end. A migration of no operations is checked
// against the live catalog directly.
func Verify(ctx context.Context, liveURL, managed, stateSchema string, migration []byte, nOps int, want *Snapshot) (*Verification, error) {
	live, err := pg.Connect(ctx, liveURL, pg.Options{ApplicationName: "online-diff", LockTimeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer pg.Close(ctx, live)
	liveSchemas, err := UserSchemas(ctx, live, managed, stateSchema)
	if err != nil {
		return nil, err
	}
	schemas := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(want.Schemas), liveSchemas...))))
	if nOps == 0 {
		got, err := ReadCatalog(ctx, live, schemas)
		if err != nil {
			return nil, err
		}
		return &Verification{Differences: got.Differences(want.Catalog)}, nil
	}
	rows, err := live.Query(ctx, "SELECT quote_ident(extname) FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1")
	if err != nil {
		return nil, fmt.Errorf("list the live database's extensions: %w", err)
	}
	exts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the live database's extensions: %w", err)
	}
	// The copy holds online's version schemas too: their views depend on
	// the tables, and a migration must run with them in place.
	rows, err = live.Query(ctx, `
SELECT n.nspname FROM pg_namespace n
WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema' AND n.nspname <> $1
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
ORDER BY 1`, stateSchema)
	if err != nil {
		return nil, fmt.Errorf("list the live database's schemas: %w", err)
	}
	copied, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the live database's schemas: %w", err)
	}
	dump, err := dumpSchemas(ctx, liveURL, copied, false)
	if err != nil {
		return nil, err
	}
	// online's state too, rows and all: the engine on the copy must know
	// the version schemas it finds there, as it does on the live one.
	var hasState bool
	if err := live.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", stateSchema).Scan(&hasState); err != nil {
		return nil, fmt.Errorf("look for online's state schema: %w", err)
	}
	if hasState {
		st, err := dumpSchemas(ctx, liveURL, []string{stateSchema}, true)
		if err != nil {
			return nil, err
		}
		dump += "\n" + st
	}
	v := &Verification{}
	err = withScratch(ctx, liveURL, func(u string) error {
		var ddl strings.Builder
		for _, e := range exts {
			ddl.WriteString("CREATE EXTENSION IF NOT EXISTS " + e + ";\n")
		}
		ddl.WriteString(dump)
		if err := runSQL(ctx, u, "pg_dump of the live schemas", ddl.String()); err != nil {
			return fmt.Errorf("copy the live schemas into a scratch database: %w", err)
		}
		v.Failed = apply(ctx, u, managed, stateSchema, migration)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		conn, err := pg.Connect(ctx, u, pg.Options{ApplicationName: "online-diff"})
		if err != nil {
			return err
		}
		defer pg.Close(ctx, conn)
		got, err := ReadCatalog(ctx, conn, schemas)
		if err != nil {
			return err
		}
		v.Differences = got.Differences(want.Catalog)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// apply runs the migration through the engine: start, then complete.
func apply(ctx context.Context, u, managed, stateSchema string, migration []byte) error {
	dir, err := os.MkdirTemp("", "online-diff-verify")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "verify.yaml")
	if err := os.WriteFile(file, migration, 0o600); err != nil {
		return err
	}
	m, err := operations.ParseFile(file)
	if err != nil {
		return fmt.Errorf("the generated migration does not parse: %w", err)
	}
	e, err := phases.Open(ctx, phases.Config{URL: u, Schema: managed, StateSchema: stateSchema, LockRetryDeadline: 20 * time.Second})
	if err != nil {
		return err
	}
	defer func() { _ = e.Close(context.WithoutCancel(ctx)) }()
	if _, err := e.Start(ctx, m); err != nil {
		return fmt.Errorf("start: %s", pg.Explain(err))
	}
	if _, err := e.Complete(ctx); err != nil {
		return fmt.Errorf("complete: %s", pg.Explain(err))
	}
	return nil
}

// dumpSchemas is pg_dump --schema-only of the schemas (with rows, their
// rows too), without the meta-commands (\restrict) that
// only psql understands.
func dumpSchemas(ctx context.Context, connURL string, schemas []string, rows bool) (string, error) {
	if len(schemas) == 0 {
		return "", nil
	}
	args := []string{"--schema-only", "--no-owner", "--no-privileges"}
	if rows {
		// Rows as INSERT statements: COPY ... FROM stdin needs psql.
		args = []string{"--no-owner", "--no-privileges", "--inserts"}
	}
	for _, s := range schemas {
		// Inside double quotes, a pattern's wildcards are literal.
		args = append(args, "--schema", `"`+strings.ReplaceAll(s, `"`, `""`)+`"`)
	}
	if connURL != "" {
		args = append(args, "--dbname", connURL)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "pg_dump", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("verify the migration: pg_dump is not on PATH (it copies the live schema into a scratch database); install the PostgreSQL client tools or pass --no-verify")
		}
		return "", fmt.Errorf("verify the migration: pg_dump of the live schemas: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, `\`) {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n"), nil
}

// RowSensitive lists the operations of the migration whose success depends
// on the rows (a NOT NULL over NULLs, a cast a value refuses, a unique key
// over values that repeat, a check or foreign key a row breaks). Verify
// runs on a copy of the schema without its rows: it cannot see these
// fail, start can (and undoes itself); the caller says so.
func (r *Result) RowSensitive() []string {
	var out []string
	for i, o := range r.Ops {
		f := fields(o.Body)
		why := ""
		switch o.Kind {
		case "alter_column":
			switch {
			case f["type"] != "":
				why = "a cast each value must pass"
			case f["nullable"] == "false":
				why = "NOT NULL over the values present"
			}
		case "create_constraint":
			why = f["type"] + " over the rows present"
		case "create_index":
			if f["unique"] == "true" {
				why = "a unique index over the values present"
			}
		case "sql":
			up := strings.ToUpper(f["up"])
			if strings.Contains(up, "SET NOT NULL") || strings.Contains(up, "ADD CONSTRAINT") || strings.Contains(up, " TYPE ") || strings.Contains(up, "UNIQUE") {
				why = "DDL the rows may refuse"
			}
		}
		if why != "" {
			out = append(out, fmt.Sprintf("operation %d (%s): %s", i+1, o.Kind, why))
		}
	}
	return out
}
