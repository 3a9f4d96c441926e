package main

import (
	"strings"
	"testing"
	"time"

	"github.com/onlinepg/online/backfill"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/state"
)

// TestBackfillFlagsRefused: negative worker counts, lags and rates, and a
// yield outside [0, 1), are bad
// flags (exit 2) and change nothing: no state schema appears.
func TestBackfillFlagsRefused(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL)")
	file := writeFile(t, t.TempDir(), "01_lower.yaml", "operations:\n  - alter_column: { table: users, column: email, up: lower(email), down: email }\n")
	for _, c := range []struct{ flag, says string }{
		{"--backfill-workers=-1", "--backfill-workers must be 0"},
		{"--max-replica-lag=-1s", "--max-replica-lag must be 0"},
		{"--backfill-rate=-5", "--backfill-rate must be 0"},
		{"--backfill-yield=-0.1", "--backfill-yield must be 0"},
		{"--backfill-yield=1", "--backfill-yield must be 0"},
	} {
		r := runCLI(t, "start", file, c.flag, "--database-url", url)
		if r.code != 2 || !strings.Contains(r.stderr, c.says) {
			t.Fatalf("start %s: exit %d, stderr %s", c.flag, r.code, r.stderr)
		}
	}
	pgtest.Exec(t, db, "DO $$ BEGIN IF to_regnamespace('online') IS NOT NULL THEN RAISE 'state schema created'; END IF; END $$")
}

// TestStatusTableStates renders states, ranges, a yielding backfill, a
// standby pause and the total line of several backfills.
func TestStatusTableStates(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	st := &phases.Status{Schema: "public", Latest: "public", Running: true, Next: "wait",
		InProgress: &phases.MigrationStatus{Name: "02_lower", Phase: "backfilling", VersionSchema: "public_02_lower", StartedAt: now,
			Backfills: []state.Backfill{
				{Table: "users", RowsDone: 3000, RowsTotal: 3000, Done: true, State: phases.BackfillDone, UpdatedAt: now},
				{Table: "orders", RowsDone: 1000, RowsTotal: 5000, Rate: 200, Parts: 3, ReplicaLag: 6 * time.Second, Duty: 0.35, State: phases.BackfillRunning, UpdatedAt: now},
			}}}
	var b strings.Builder
	printStatus(&b, st, now)
	out := squeeze(b.String())
	for _, want := range []string{
		"users 3000 3000 100.0% - - done 10:00:00\n",
		"orders 1000 5000 20.0% 200 rows/s ~20s running (3 ranges), yielding to the application: 35% duty, paused: standby 6s behind 10:00:00\n",
		"total 4000 8000 50.0% 200 rows/s ~20s\n",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
}

// TestRenderBarYielding: the bar says when the backfill slows down for the
// application, and says nothing of it otherwise or once done.
func TestRenderBarYielding(t *testing.T) {
	base := backfill.Progress{Table: "users", RowsDone: 500, RowsTotal: 1000, Rate: 100}
	for _, c := range []struct {
		duty float64
		done bool
		want string
	}{
		{0.4, false, "(yielding to the application: 40% duty)"},
		{0, false, ""},
		{1, false, ""},
		{0.4, true, ""},
	} {
		pr := base
		pr.Duty, pr.Done = c.duty, c.done
		got := renderBar(pr)
		if c.want != "" && !strings.HasSuffix(got, c.want) {
			t.Errorf("duty %g done %v: %q does not end in %q", c.duty, c.done, got, c.want)
		}
		if c.want == "" && strings.Contains(got, "yielding") {
			t.Errorf("duty %g done %v: %q says yielding", c.duty, c.done, got)
		}
	}
}

// TestBackfillFlagsOff: the flags' 0 stays off in the library's terms
// (phases.Off), where a zero Config field means the default.
func TestBackfillFlagsOff(t *testing.T) {
	if got := orOff(0.0); got != phases.Off {
		t.Errorf("--backfill-yield 0 → %g, want phases.Off", got)
	}
	if got := orOff(time.Duration(0)); got != phases.Off {
		t.Errorf("--max-replica-lag 0 → %s, want phases.Off", got)
	}
	if got := orOff(0.8); got != 0.8 {
		t.Errorf("--backfill-yield 0.8 → %g", got)
	}
	if got := orOff(5 * time.Second); got != 5*time.Second {
		t.Errorf("--max-replica-lag 5s → %s", got)
	}
}
