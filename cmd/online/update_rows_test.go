package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/phases"
)

// TestCLIUpdateRows: plan says a data migration without down is
// irreversible; a bad field exits 2 naming it with nothing changed; a start
// that fails after batches committed exits 1 and says it was not undone.
func TestCLIUpdateRows(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE items (id bigserial PRIMARY KEY, qty int NOT NULL, note text)",
		"INSERT INTO items (qty, note) SELECT g % 10, 'n' || g FROM generate_series(1, 20000) g")
	dir := t.TempDir()
	upper := writeFile(t, dir, "01_upper.yaml", "operations:\n  - update_rows: { table: items, set: { note: \"upper(note)\" } }\n")
	bad := writeFile(t, dir, "02_bad.yaml", "operations:\n  - update_rows: { table: items, set: { note: \"upper(note); DROP TABLE items\" } }\n")
	unknown := writeFile(t, dir, "03_unknown.yaml", "operations:\n  - update_rows: { table: items, set: { note: \"upper(notes)\" } }\n")
	failing := writeFile(t, dir, "04_failing.yaml", "operations:\n  - update_rows: { table: items, set: { qty: \"qty + 0 * (1 / (id - 15000))\" } }\n")

	r := runCLI(t, "plan", upper, "--database-url", url)
	if r.code != 0 || !strings.Contains(r.stdout, "-- IRREVERSIBLE: operation 1 (update_rows on \"public\".\"items\") has no down") ||
		!strings.Contains(r.stdout, `UPDATE "public"."items" SET "note" = (upper(note));`) {
		t.Fatalf("plan: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, f := range []struct{ file, field string }{{bad, `field "set.note"`}, {unknown, `field "set.note"`}} {
		r = runCLI(t, "start", f.file, "--database-url", url)
		if r.code != 2 || !strings.Contains(r.stderr, "operation 1 (update_rows)") || !strings.Contains(r.stderr, f.field) || !strings.Contains(r.stderr, "nothing was changed") {
			t.Fatalf("start %s: exit %d, want 2 naming %s\n%s", f.file, r.code, f.field, r.stderr)
		}
	}
	if got := pgtest.QueryStrings(t, db, "SELECT count(*) FROM items WHERE note <> 'n' || id"); got[0] != "0" {
		t.Fatalf("refused files changed %s rows", got[0])
	}

	r = runCLI(t, "start", failing, "--database-url", url, "--backfill-batch-time", "5ms")
	if r.code != 1 || !strings.Contains(r.stderr, "start was not undone") || !strings.Contains(r.stderr, "online rollback --force") {
		t.Fatalf("failing start: exit %d\n%s", r.code, r.stderr)
	}
}

// TestReportIrreversible: a rollback refused for an irreversible data
// migration exits 4, like the other refusals that change nothing.
func TestReportIrreversible(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := &phases.IrreversibleError{Migration: "01_upper", Ops: []int{1}, Tables: []string{"items"}, RowsDone: 10}
	if code := report(context.Background(), &globals{stderr: &stderr}, err); code != exitPending {
		t.Fatalf("exit %d, want %d", code, exitPending)
	}
	if !strings.Contains(stderr.String(), "rollback --force") {
		t.Fatalf("stderr: %s", stderr.String())
	}
}
