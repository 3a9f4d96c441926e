package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

type appRun struct {
	code           int
	stdout, stderr string
}

func runApp(args ...string) appRun {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return appRun{code, out.String(), errb.String()}
}

// TestAppThroughRename runs the example application the way a deploy does,
// directly and through pgbouncer in transaction mode: deployed before its
// migration it stops at once naming the command to run; started after
// `start`, it keeps writing and reading through `complete` without one
// failed transaction.
func TestAppThroughRename(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	b := pgtest.StartPgBouncer(t, pgtest.PgBouncerOptions{})
	viaPooler := b.URL(pgtest.DBName(t, url))
	e, err := phases.Open(ctx, phases.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	migrate := func(file string, complete bool) {
		t.Helper()
		m, err := operations.ParseFile("../" + file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Start(ctx, m); err != nil {
			t.Fatalf("start %s: %s", file, pg.Explain(err))
		}
		if complete {
			if _, err := e.Complete(ctx); err != nil {
				t.Fatalf("complete %s: %s", file, pg.Explain(err))
			}
		}
	}
	migrate("01_create_tables.yaml", true)

	for _, args := range [][]string{{"-database-url", url}, {"-pooler", "-database-url", viaPooler}} {
		r := runApp(append(args, "-duration", "1s")...)
		if r.code != 1 || !strings.Contains(r.stderr, "online start 02_rename_email.yaml") {
			t.Fatalf("%v before start: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	migrate("02_rename_email.yaml", false)
	done := make(chan appRun, 2)
	for _, args := range [][]string{{"-database-url", url}, {"-pooler", "-database-url", viaPooler}} {
		go func() { done <- runApp(append(args, "-duration", "2s")...) }()
	}
	time.Sleep(700 * time.Millisecond)
	if _, err := e.Complete(ctx); err != nil {
		t.Fatalf("complete: %s", pg.Explain(err))
	}
	for range 2 {
		r := <-done
		if r.code != 0 || !strings.Contains(r.stdout, "serving version public_02_rename_email (connections resolve names in public_02_rename_email") {
			t.Fatalf("app through complete: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if strings.HasPrefix(r.stdout, "0 orders") || strings.Contains(r.stdout, "\n0 orders") {
			t.Fatalf("the app wrote nothing:\n%s", r.stdout)
		}
		t.Log(strings.TrimSpace(r.stdout))
	}
}
