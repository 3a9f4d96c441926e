package phases_test

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/onlinepg/online/appversion"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
)

// The cases of a team's months of migrations (issue 22): whatever the team
// does, the folder stays the source of truth and migrate DIR can go on.

func teamFiles() fstest.MapFS {
	return fstest.MapFS{
		"001_users.yaml": {Data: []byte(`operations:
  - create_table:
      name: users
      columns:
        - { name: id, type: bigserial, pk: true }
        - { name: email, type: text, nullable: false }
`)},
		"002_lower.yaml": {Data: []byte("operations:\n  - add_column: { table: users, column: { name: score, type: int, nullable: true } }\n")},
		"003_nick.yaml":  {Data: []byte("operations:\n  - add_column: { table: users, column: { name: nick, type: text, nullable: true } }\n")},
	}
}

// TestTeamRevertThenMigrate: after migrate --complete, revert, complete,
// the reverted file is pending and migrate DIR applies it again (case 1);
// while and after the revert, the live version is the one the files say,
// the version of the file before it (case 3).
func TestTeamRevertThenMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	eng := env.engine()
	d := loadDir(t, teamFiles())
	if _, err := eng.Migrate(ctx, d, phases.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("migrate: %s", pg.Explain(err))
	}
	env.exec(env.db, "INSERT INTO users (email, nick) VALUES ('a@x', 'a')")
	res, err := eng.Revert(ctx)
	if err != nil {
		t.Fatalf("revert: %s", pg.Explain(err))
	}
	// The version of the reverted shape is the one of the file it goes
	// back to: an application built for 002_lower is served.
	if res.VersionSchema != "public_002_lower" {
		t.Fatalf("revert publishes %q, want public_002_lower", res.VersionSchema)
	}
	env.expectRows(env.version("public_002_lower"), []string{"a@x"}, "SELECT email FROM users")
	env.complete()
	if latest, err := eng.Latest(ctx); err != nil || latest != "public_002_lower" {
		t.Fatalf("latest after the revert: %q, %v; want public_002_lower", latest, err)
	}
	expectStates(t, eng, d, map[string]string{"001_users": "applied", "002_lower": "applied", "003_nick": "pending"})
	if err := (appversion.Version{Name: "002_lower"}).Check(ctx, env.db); err != nil {
		t.Fatalf("an application built for 002_lower after the revert of 003: %v", err)
	}
	// One built for 003 is told the truth: its migration was reverted.
	if err := (appversion.Version{Name: "003_nick"}).Check(ctx, env.db); err == nil || !strings.Contains(err.Error(), "reverted") || !strings.Contains(err.Error(), "online migrate") {
		t.Fatalf("an application built for 003_nick after its revert: %v", err)
	}

	// migrate agrees with status: 003 is applied again.
	mres, err := eng.Migrate(ctx, d, phases.MigrateOptions{Complete: true})
	if err != nil {
		t.Fatalf("migrate after the revert: %s", pg.Explain(err))
	}
	if strings.Join(mres.Applied, ",") != "003_nick.yaml" || mres.Latest != "public_003_nick" {
		t.Fatalf("migrate after the revert: %+v", mres)
	}
	expectStates(t, eng, d, map[string]string{"001_users": "applied", "002_lower": "applied", "003_nick": "applied"})
	env.expectRows(env.version("public_003_nick"), []string{"a@x|NULL"}, "SELECT email, nick FROM users")

	// And again: revert, migrate; the history keeps every event.
	if _, err := eng.Revert(ctx); err != nil {
		t.Fatalf("second revert: %s", pg.Explain(err))
	}
	env.complete()
	if _, err := eng.Migrate(ctx, d, phases.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("second migrate after a revert: %s", pg.Explain(err))
	}
	expectStates(t, eng, d, map[string]string{"001_users": "applied", "002_lower": "applied", "003_nick": "applied"})
	env.expectRows(env.db, []string{"3|2|2"}, "SELECT count(*) FILTER (WHERE files->0->>'name' = '003_nick.yaml'), count(*) FILTER (WHERE kind = 'revert'), count(DISTINCT reverts) FROM online.migrations")
}
