package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestAddEnumValueLifecycle: add_enum_value's cases of the lifecycle (lifecycletest.Run).
func TestAddEnumValueLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			// A value added to an enum created by the same migration goes
			// with it on rollback, so the schema comes back exactly.
			Name: "create_enum_add_enum_value",
			YAML: `
operations:
  - create_enum: { name: status, values: [new, done] }
  - add_enum_value: { enum: status, value: doing, after: new }
  - add_enum_value: { enum: status, value: archived }
  - add_column: { table: users, column: { name: status, type: status, nullable: false, default: "'doing'" } }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.ExpectRows(e.DB, []string{"{new,doing,done,archived}"}, "SELECT enum_range(NULL::public.status)::text")
				e.ExpectRows(nw, []string{"doing"}, "SELECT status FROM users WHERE id = 1")
				e.ExpectRows(nw, []string{"true"}, "SELECT 'doing'::public.status < 'done'::public.status")
			},
		},
	})
}
