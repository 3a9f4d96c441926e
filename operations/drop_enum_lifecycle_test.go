package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestDropEnumLifecycle runs drop_enum's cases of the lifecycle every operation is
// held to (internal/lifecycletest): start, both versions read and written,
// complete and rollback failing at each statement without a change,
// rollback, start again, complete, with data and catalog asserted.
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
