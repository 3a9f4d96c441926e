package operations_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// replicaIdentity reads relreplident and the replica identity index of a table.
func replicaIdentity(e *env, table string) string {
	e.T.Helper()
	return strings.Join(e.Rows(e.DB, `
SELECT c.relreplident::text || coalesce(':' || (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                                                 WHERE i.indrelid = c.oid AND i.indisreplident), '')
FROM pg_class c WHERE c.oid = $1::regclass`, "public."+table), "")
}

// TestSetReplicaIdentityLifecycle: set_replica_identity's cases of the lifecycle (lifecycletest.Run).
func TestSetReplicaIdentityLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "set_replica_identity_index",
			Setup: []string{
				"CREATE UNIQUE INDEX users_email_key ON users (email)",
				"ALTER TABLE users REPLICA IDENTITY FULL",
			},
			YAML: `operations: [ { set_replica_identity: { table: users, identity: { type: index, index: users_email_key } } } ]`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				// Set at start, for both versions: the table has one identity.
				if got := replicaIdentity(e, "users"); got != "i:users_email_key" {
					e.T.Fatalf("replica identity %q, want i:users_email_key", got)
				}
				e.Exec(nw, "UPDATE users SET name = 'via-new' WHERE id = 1")
				e.ExpectRows(old, []string{"via-new"}, "SELECT name FROM users WHERE id = 1")
				e.Exec(old, "DELETE FROM users WHERE id = 50")
				e.ExpectRows(nw, []string{"0"}, "SELECT count(*) FROM users WHERE id = 50")
			},
			After: func(e *env, nw *pgx.Conn) {
				if got := replicaIdentity(e, "users"); got != "i:users_email_key" {
					e.T.Fatalf("after complete: replica identity %q", got)
				}
			},
		},
		{
			// The rollback of runLifecycle compares pg_dump, which prints
			// REPLICA IDENTITY USING INDEX: the previous index is restored.
			Name: "set_replica_identity_full_from_index",
			Setup: []string{
				"CREATE UNIQUE INDEX users_email_key ON users (email)",
				"ALTER TABLE users REPLICA IDENTITY USING INDEX users_email_key",
			},
			YAML: `
operations:
  - set_replica_identity: { table: users, identity: { type: nothing } }
  - set_replica_identity: { table: users, identity: { type: full } }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				if got := replicaIdentity(e, "users"); got != "f" {
					e.T.Fatalf("replica identity %q, want f", got)
				}
				e.Exec(old, "UPDATE users SET name = 'via-old' WHERE id = 2")
				e.ExpectRows(nw, []string{"via-old"}, "SELECT name FROM users WHERE id = 2")
			},
			After: func(e *env, nw *pgx.Conn) {
				if got := replicaIdentity(e, "users"); got != "f" {
					e.T.Fatalf("after complete: replica identity %q", got)
				}
			},
		},
	})
}
