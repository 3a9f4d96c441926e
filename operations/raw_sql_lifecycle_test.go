package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestRawSQLLifecycle: sql's cases of the lifecycle (lifecycletest.Run).
func TestRawSQLLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "sql",
			YAML: `
operations:
  - sql:
      up: CREATE TABLE audit (id bigserial PRIMARY KEY, what text)
      down: DROP TABLE audit
`,
			During: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.Exec(nw, "INSERT INTO audit (what) VALUES ('x')")
				e.ExpectRows(nw, []string{"u1@x.io"}, "SELECT email FROM users WHERE id = 1")
			},
		},
	})
}
