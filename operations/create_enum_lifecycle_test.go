package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestCreateEnumLifecycle: create_enum's cases of the lifecycle (lifecycletest.Run).
func TestCreateEnumLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "create_enum",
			YAML: `
operations:
  - create_enum: { name: mood, values: [sad, ok, "it's fine"] }
  - add_column: { table: users, column: { nullable: true, name: mood, type: mood, default: "'ok'" } }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.ExpectRows(e.DB, []string{"{sad,ok,\"it's fine\"}"}, "SELECT enum_range(NULL::public.mood)::text")
				e.ExpectRows(nw, []string{"ok"}, "SELECT mood FROM users WHERE id = 1")
				e.ExpectRows(nw, []string{"it's fine"}, "UPDATE users SET mood = 'it''s fine' WHERE id = 2 RETURNING mood")
				e.ExpectErr(nw, "invalid input value for enum", "UPDATE users SET mood = 'angry' WHERE id = 2")
				e.ExpectRows(old, []string{"u2@x.io"}, "SELECT email FROM users WHERE id = 2")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"mood"}, "SELECT udt_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'mood'")
			},
		},
	})
}
