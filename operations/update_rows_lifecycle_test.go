package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestUpdateRowsLifecycle: update_rows' case of the lifecycle
// (lifecycletest.Run). Its rollback computes the rows back before the
// rollback transaction (UndoesDataFirst).
func TestUpdateRowsLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "update_rows",
			YAML: `
operations:
  - update_rows:
      table: users
      set: { score: "length(email)", legacy: "upper(legacy)" }
      where: "id <= 40"
      down: { score: "0", legacy: "lower(legacy)" }
      down_where: "id <= 40"
`,
			UndoesDataFirst: true,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				// Both versions read the same rows: the data changed, not
				// the shape.
				for _, c := range []*pgx.Conn{old, nw} {
					e.ExpectRows(c, []string{"40"}, "SELECT count(*) FROM users WHERE id <= 40 AND score = length(email) AND legacy = upper('l' || id)")
					e.ExpectRows(c, []string{"0|l45"}, "SELECT score, legacy FROM users WHERE id = 45")
				}
				// A write through either version is a write of the one table.
				e.Exec(old, "UPDATE users SET score = 99 WHERE id = 50")
				e.ExpectRows(nw, []string{"99"}, "SELECT score FROM users WHERE id = 50")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(nw, []string{"40"}, "SELECT count(*) FROM users WHERE id <= 40 AND score = length(email) AND legacy = upper('l' || id)")
				e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'users'::regclass AND NOT tgisinternal")
			},
		},
	})
}
