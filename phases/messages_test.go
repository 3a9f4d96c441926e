package phases_test

import (
	"context"
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/lifecycletest"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
)

// Every failure message that claims a result is held to the catalog,
// state and data digest (lifecycletest.Digest) taken before the command
// and after it: "nothing was changed" and "everything start did was
// undone" only when the digest is the same; otherwise the message must
// say what stayed changed.
func TestFailureMessagesAreTrue(t *testing.T) {
	t.Parallel()
	const enum = `CREATE TYPE mood AS ENUM ('sad', 'ok')`
	const dupEmail = `INSERT INTO users (email) VALUES ('u1@x.io')`
	const reversibleData = "version_schema: m\noperations:\n  - update_rows: { table: users, set: { score: \"score + 1\" }, down: { score: \"score - 1\" } }\n"
	failTx := func(c *phases.Config) {
		c.FailAt = func(what string, _ int, _ string) error {
			if what == "rollback" {
				return lifecycletest.ErrInjected
			}
			return nil
		}
	}
	cases := []struct {
		name  string
		setup []string
		// started is the migration in progress before the command; ""
		// for a command that is itself a start.
		started string
		start   string // the file a start command runs
		cfg     func(*phases.Config)
		// says are parts the message must have beyond the true claim.
		says []string
	}{
		{
			name:    "rollback fails in its transaction after a data down ran",
			started: reversibleData,
			cfg:     failTx,
			says:    []string{"set the rows of users back with the down of operation 1", "dropped version schema public_m"},
		},
		{
			name:    "rollback refused: its down fails on a row",
			started: "version_schema: m\noperations:\n  - update_rows: { table: users, set: { score: \"score + 1\" }, down: { score: \"1 / (score - 1)\" } }\n",
		},
		{
			name:    "rollback fails: a sql down fails",
			started: "version_schema: m\noperations:\n  - sql: { up: \"CREATE TABLE extra (id int)\", down: \"DROP TABLE no_such_table\" }\n",
		},
		{
			name:  "start fails after adding an enum value",
			setup: []string{enum, dupEmail},
			start: "version_schema: m\noperations:\n  - add_enum_value: { enum: mood, value: happy }\n  - create_index: { table: users, name: users_email_uniq, columns: [email], unique: true }\n",
			says:  []string{"left in place", "mood"},
		},
		{
			name:  "start fails with nothing irreversible",
			setup: []string{dupEmail},
			start: "version_schema: m\noperations:\n  - add_column: { table: users, column: { nullable: true, name: extra, type: text } }\n  - create_index: { table: users, name: users_email_uniq, columns: [email], unique: true }\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, append([]string{usersTable, usersRows}, tc.setup...)...)
			if tc.started != "" {
				e.start("m", tc.started)
			} else if err := e.engine().Init(context.Background()); err != nil {
				t.Fatal(err)
			}
			before := e.digest()
			var cfg []func(*phases.Config)
			if tc.cfg != nil {
				cfg = append(cfg, tc.cfg)
			}
			eng := e.engine(cfg...)
			var err error
			if tc.start != "" {
				_, err = eng.Start(context.Background(), parse(t, "m", tc.start))
			} else {
				_, err = eng.Rollback(context.Background())
			}
			if err == nil {
				t.Fatal("the command succeeded; the case needs it to fail")
			}
			msg := pg.Explain(err)
			same := e.digest() == before
			claims := strings.Contains(msg, "nothing was changed") || strings.Contains(msg, "everything start did was undone")
			if claims != same {
				t.Fatalf("the message claims nothing changed: %v, the digest is the same: %v; message:\n%s", claims, same, msg)
			}
			for _, w := range tc.says {
				if !strings.Contains(msg, w) {
					t.Fatalf("the message does not say %q:\n%s", w, msg)
				}
			}
		})
	}
}
