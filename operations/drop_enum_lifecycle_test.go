package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestDropEnumLifecycle: drop_enum's cases of the lifecycle (lifecycletest.Run).
func TestDropEnumLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name:  "drop_enum",
			Setup: []string{"CREATE TYPE legacy_mood AS ENUM ('a', 'b')"},
			YAML:  `operations: [ { drop_enum: { name: legacy_mood } } ]`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				// Until complete, the old version may still use it.
				e.ExpectRows(e.DB, []string{"{a,b}"}, "SELECT enum_range(NULL::public.legacy_mood)::text")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"NULL"}, "SELECT to_regtype('public.legacy_mood')::text")
			},
		},
	})
}
