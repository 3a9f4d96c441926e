package appversion_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/appversion"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

func poolerConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	appversion.ForTransactionPooler(cfg)
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connect through pgbouncer: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestStartupSearchPathThroughPooler measures what the README says of
// pgbouncer in transaction mode: a search_path or options startup
// parameter is refused, and with ignore_startup_parameters silently
// dropped, while SET LOCAL per transaction works.
func TestStartupSearchPathThroughPooler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL)", "INSERT INTO users (email) VALUES ('a@x')")
	v := appversion.Version{Name: "01_rename"}
	startRename(t, url, v.Name)
	name := pgtest.DBName(t, url)

	strict := pgtest.StartPgBouncer(t, pgtest.PgBouncerOptions{})
	for _, param := range []string{"search_path", "options"} {
		cfg, err := pgx.ParseConfig(strict.URL(name))
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams[param] = map[string]string{"search_path": v.SearchPath(), "options": "-csearch_path=" + v.SchemaName()}[param]
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			c.Close(ctx)
			t.Fatalf("pgbouncer accepted the startup parameter %s", param)
		}
		if !strings.Contains(err.Error(), "unsupported startup parameter") {
			t.Fatalf("%s: %v", param, err)
		}
	}

	lax := pgtest.StartPgBouncer(t, pgtest.PgBouncerOptions{IgnoreStartupParameters: "search_path, options"})
	cfg, err := pgx.ParseConfig(lax.URL(name))
	if err != nil {
		t.Fatal(err)
	}
	appversion.ForTransactionPooler(cfg)
	v.ConfigureConn(cfg)
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if s, err := appversion.InUse(ctx, c); err != nil || s != "public" {
		t.Fatalf("ignored startup search_path: in use %q (%v), want the default public", s, err)
	}
	err = v.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		s, err := appversion.InUse(ctx, tx)
		if err == nil && s != v.SchemaName() {
			err = fmt.Errorf("in use %q", s)
		}
		return err
	})
	if err != nil {
		t.Fatalf("SET LOCAL through the pooler: %v", err)
	}
	// SET LOCAL ends with its transaction: the server connection goes back
	// to the pool as it came.
	if s, err := appversion.InUse(ctx, c); err != nil || s != "public" {
		t.Fatalf("after the transaction: in use %q (%v)", s, err)
	}
}

// TestBothVersionsThroughPooler: applications of both versions write
// through pgbouncer in transaction mode, each way (SET LOCAL per
// transaction, and one database alias per version with connect_query),
// while the engine, connected directly, starts and completes a rename. No
// transaction fails and every row holds what its last writer wrote.
func TestBothVersionsThroughPooler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL)",
		"INSERT INTO users (email) SELECT 'seed' || g FROM generate_series(1, 100) g")
	name := pgtest.DBName(t, url)
	oldV, newV := appversion.Version{}, appversion.Version{Name: "01_rename"}
	direct, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	server := fmt.Sprintf("host=%s port=%d dbname=%s", direct.Host, direct.Port, name)
	var aliases []string
	for alias, v := range map[string]appversion.Version{"app_old": oldV, "app_new": newV} {
		line, err := v.PgBouncerDatabase(alias, server)
		if err != nil {
			t.Fatal(err)
		}
		aliases = append(aliases, line)
	}
	b := pgtest.StartPgBouncer(t, pgtest.PgBouncerOptions{Databases: aliases})

	type writer struct {
		group  string
		column string
		conn   *pgx.Conn
		begin  func(ctx context.Context, fn func(pgx.Tx) error) error
	}
	var writers []*writer
	for range 3 {
		c := poolerConn(t, b.URL(name))
		writers = append(writers, &writer{group: "old SET LOCAL", column: "email", conn: c, begin: func(ctx context.Context, fn func(pgx.Tx) error) error { return oldV.BeginFunc(ctx, c, fn) }})
		c2 := poolerConn(t, b.URL(name))
		writers = append(writers, &writer{group: "new SET LOCAL", column: "email_address", conn: c2, begin: func(ctx context.Context, fn func(pgx.Tx) error) error { return newV.BeginFunc(ctx, c2, fn) }})
		c3 := poolerConn(t, b.URL("app_old"))
		writers = append(writers, &writer{group: "old alias", column: "email", conn: c3, begin: func(ctx context.Context, fn func(pgx.Tx) error) error { return pgx.BeginFunc(ctx, c3, fn) }})
		c4 := poolerConn(t, b.URL("app_new"))
		writers = append(writers, &writer{group: "new alias", column: "email_address", conn: c4, begin: func(ctx context.Context, fn func(pgx.Tx) error) error { return pgx.BeginFunc(ctx, c4, fn) }})
	}

	var (
		mu       sync.Mutex
		want     = map[int64]string{}
		failures []string
		counts   = map[string]int{}
	)
	published := make(chan struct{})
	stopOld, stopNew := make(chan struct{}), make(chan struct{})
	var oldWG, newWG sync.WaitGroup
	var seq atomic.Int64
	for _, w := range writers {
		isNew := strings.HasPrefix(w.group, "new")
		stop, wg := stopOld, &oldWG
		if isNew {
			stop, wg = stopNew, &newWG
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if isNew {
				<-published // the version exists once start has published it
			}
			var last int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				val := fmt.Sprintf("%s-%d", strings.ReplaceAll(w.group, " ", "-"), seq.Add(1))
				var id int64
				err := w.begin(ctx, func(tx pgx.Tx) error {
					if err := tx.QueryRow(ctx, "INSERT INTO users ("+pg.Ident(w.column)+") VALUES ($1) RETURNING id", val).Scan(&id); err != nil {
						return err
					}
					if last != 0 {
						_, err := tx.Exec(ctx, "UPDATE users SET "+pg.Ident(w.column)+" = $1 || '-upd' WHERE id = $2", val, last)
						return err
					}
					return nil
				})
				mu.Lock()
				if err != nil {
					failures = append(failures, w.group+": "+err.Error())
				} else {
					want[id] = val
					if last != 0 {
						want[last] = val + "-upd"
					}
					counts[w.group]++
					last = id
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	snapshot := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range counts {
			out[k] = v
		}
		return out
	}

	time.Sleep(300 * time.Millisecond)
	e, err := phases.Open(ctx, phases.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	m, err := operations.Parse("01_rename.yaml", []byte("operations:\n  - rename_column: { table: users, from: email, to: email_address }\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start(ctx, m); err != nil {
		t.Fatal(pg.Explain(err))
	}
	if err := newV.Check(ctx, db); err != nil {
		t.Fatal(err)
	}
	close(published)
	time.Sleep(400 * time.Millisecond)
	// The deploy is over: old code stops before complete, as it must.
	close(stopOld)
	oldWG.Wait()
	atComplete := snapshot()
	if _, err := e.Complete(ctx); err != nil {
		close(stopNew)
		newWG.Wait()
		t.Fatal(pg.Explain(err))
	}
	time.Sleep(300 * time.Millisecond)
	close(stopNew)
	newWG.Wait()
	end := snapshot()

	if len(failures) > 0 {
		t.Fatalf("%d failed transactions, first: %s", len(failures), failures[0])
	}
	for _, g := range []string{"old SET LOCAL", "old alias", "new SET LOCAL", "new alias"} {
		if end[g] == 0 {
			t.Errorf("%s: no transaction", g)
		}
		if strings.HasPrefix(g, "new") && end[g] == atComplete[g] {
			t.Errorf("%s: no transaction after complete", g)
		}
	}
	rows, err := db.Query(ctx, "SELECT id, email_address FROM public.users")
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]string{}
	for rows.Next() {
		var id int64
		var s string
		if err := rows.Scan(&id, &s); err != nil {
			t.Fatal(err)
		}
		got[id] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 100+len(want) {
		t.Fatalf("%d rows, want %d", len(got), 100+len(want))
	}
	for id, w := range want {
		if got[id] != w {
			t.Fatalf("row %d: %q, want %q", id, got[id], w)
		}
	}
	t.Logf("transactions by group: %v (at complete: %v); %d rows checked", end, atComplete, len(want))
}
