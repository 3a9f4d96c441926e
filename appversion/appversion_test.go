package appversion_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/onlinepg/online/appversion"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

// The application's copy of the schema naming must never drift from the
// engine's: a build would look for a schema online never makes.
func TestSchemaNameMatchesEngine(t *testing.T) {
	names := []string{"02_rename_email", "v2", "Upper Case", `quo"te`, "é" + strings.Repeat("x", 70), strings.Repeat("ü", 40)}
	for _, n := range names {
		for _, s := range []string{"public", "app"} {
			got := appversion.Version{Name: n, Schema: s}.SchemaName()
			if want := operations.VersionSchemaName(s, n); got != want {
				t.Errorf("SchemaName(%q, %q) = %q, engine says %q", s, n, got, want)
			}
		}
	}
	if got := appversion.FromFile("migrations/02_rename_email.yaml").SchemaName(); got != "public_02_rename_email" {
		t.Errorf("FromFile: %q", got)
	}
	if got := (appversion.Version{}).SchemaName(); got != "public" {
		t.Errorf("empty version: %q, want the schema itself", got)
	}
}

func TestPgBouncerDatabaseRefusesWhatItCannotWrite(t *testing.T) {
	v := appversion.Version{Name: "o'brien"}
	if _, err := v.PgBouncerDatabase("app", "host=x"); err == nil {
		t.Fatal("a name with a single quote was accepted")
	}
	line, err := appversion.Version{Name: `v"2`}.PgBouncerDatabase("app_v2", "host=x dbname=app")
	if err != nil || line != `app_v2 = host=x dbname=app connect_query='SET search_path TO "public_v""2"'` {
		t.Fatalf("line %q, err %v", line, err)
	}
}

// startRename publishes a version with an awkward name over a users table.
func startRename(t *testing.T, url, name string) {
	t.Helper()
	ctx := context.Background()
	e, err := phases.Open(ctx, phases.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	m, err := operations.Parse(name+".yaml", []byte("operations:\n  - rename_column: { table: users, from: email, to: email_address }\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start(ctx, m); err != nil {
		t.Fatal(pg.Explain(err))
	}
}

// TestDirectConnections: pgx, pgxpool and database/sql all see the version's
// shape of the table from their first statement, for a name that needs
// quoting; Check passes and InUse names the schema.
func TestDirectConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL)", "INSERT INTO users (email) VALUES ('a@x')")
	v := appversion.Version{Name: "Two Words"}
	startRename(t, url, v.Name)

	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	v.ConfigureConn(cfg)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := v.Check(ctx, conn); err != nil {
		t.Fatalf("check: %v", err)
	}
	var email string
	if err := conn.QueryRow(ctx, "SELECT email_address FROM users").Scan(&email); err != nil || email != "a@x" {
		t.Fatalf("pgx: %q %v", email, err)
	}
	if s, err := appversion.InUse(ctx, conn); err != nil || s != "public_Two Words" {
		t.Fatalf("InUse: %q %v", s, err)
	}

	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MaxConns = 3
	v.ConfigurePool(pcfg)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// Every connection of the pool, not only the first, has the version.
	var held []*pgxpool.Conn
	for range 3 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if s, err := appversion.InUse(ctx, c); err != nil || s != "public_Two Words" {
			t.Fatalf("pool connection: %q %v", s, err)
		}
	}
	for _, c := range held {
		c.Release()
	}

	sdb := sql.OpenDB(v.Connector(cfg))
	defer sdb.Close()
	sdb.SetMaxOpenConns(2)
	if err := sdb.QueryRowContext(ctx, "SELECT email_address FROM users").Scan(&email); err != nil || email != "a@x" {
		t.Fatalf("database/sql: %q %v", email, err)
	}
	// BeginSQL works without a pooler too.
	tx, err := (appversion.Version{}).BeginSQL(ctx, sdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRowContext(ctx, "SELECT email FROM users").Scan(&email); err != nil || email != "a@x" {
		t.Fatalf("BeginSQL on the old version: %q %v", email, err)
	}
	_ = tx.Rollback()
}

// TestCheckNamesTheMigration: a build whose version is not published yet
// fails at start with the command to run; one whose version a later
// complete retired is told it is too old.
func TestCheckNamesTheMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL)")

	v1 := appversion.Version{Name: "01_rename"}
	err := v1.Check(ctx, db)
	var me *appversion.MissingError
	if !errors.As(err, &me) || !errors.Is(err, appversion.ErrMissing) || !strings.Contains(err.Error(), "online start 01_rename.yaml") || me.Schema != "public_01_rename" {
		t.Fatalf("before start: %v", err)
	}
	startRename(t, url, "01_rename")
	if err := v1.Check(ctx, db); err != nil {
		t.Fatalf("after start: %v", err)
	}
	e, err := phases.Open(ctx, phases.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	if _, err := e.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := operations.Parse("02_back.yaml", []byte("operations:\n  - rename_column: { table: users, from: email_address, to: email }\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start(ctx, m); err != nil {
		t.Fatal(pg.Explain(err))
	}
	if _, err := e.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	err = v1.Check(ctx, db)
	if !errors.Is(err, appversion.ErrMissing) || !strings.Contains(err.Error(), "retired") {
		t.Fatalf("after a later complete: %v", err)
	}
	if err := (appversion.Version{Name: "02_back"}).Check(ctx, db); err != nil {
		t.Fatalf("the latest version: %v", err)
	}
}
