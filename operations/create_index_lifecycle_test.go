package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestCreateIndexLifecycle: create_index's cases of the lifecycle (lifecycletest.Run).
func TestCreateIndexLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "create_index",
			YAML: `
operations:
  - create_index: { table: users, name: users_email_uniq, columns: [email], unique: true }
  - create_index:
      table: users
      name: users_name_partial
      columns: { name: { sort: DESC, nulls: LAST } }
      predicate: "score > 0"
      include: [email]
`,
			During: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.ExpectErr(old, "users_email_uniq", "INSERT INTO users (email) VALUES ('u3@x.io')")
				e.ExpectRows(e.DB, []string{"2"}, "SELECT count(*) FROM pg_indexes WHERE indexname IN ('users_email_uniq', 'users_name_partial')")
			},
		},
	})
}
