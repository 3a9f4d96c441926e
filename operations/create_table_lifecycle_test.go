package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestCreateTableLifecycle: create_table's cases of the lifecycle (lifecycletest.Run).
func TestCreateTableLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "create_table",
			YAML: `
operations:
  - create_table:
      name: posts
      comment: user posts
      columns:
        - { name: id, type: bigserial, pk: true }
        - { name: user_id, type: bigint, nullable: true, references: { name: posts_user_fk, table: users, column: id, on_delete: CASCADE } }
        - { name: title, type: text, nullable: false, check: { name: posts_title_len, constraint: "length(title) > 0" } }
        - { name: slug, type: text, nullable: true, unique: true }
        - { name: created, type: timestamptz, default: "now()" }
`,
			During: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.Exec(nw, "INSERT INTO posts (user_id, title) VALUES (1, 'hello')")
				e.ExpectRows(nw, []string{"true"}, "SELECT count(*) >= 1 FROM posts WHERE title = 'hello' AND created IS NOT NULL")
				e.ExpectErr(nw, "posts_title_len", "INSERT INTO posts (user_id, title) VALUES (1, '')")
				e.ExpectErr(nw, "posts_user_fk", "INSERT INTO posts (user_id, title) VALUES (999999, 'x')")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"user posts"}, "SELECT obj_description('public.posts'::regclass, 'pg_class')")
			},
		},
	})
}
