package operations

import (
	"strings"
	"testing"

	"github.com/onlinepg/online/schema"
)

func TestDropIndexCompilePlans(t *testing.T) {
	t.Parallel()
	testCompilePlans(t, []compilePlanCase{
		{"drop_index", "- drop_index: {name: users_nickname_idx}", nil, func(t *testing.T, p *Plan, ns *schema.Schema) {
			eq(t, "expand steps", len(p.Expand), 0)
			// Inside the contract's transaction the index is renamed out of
			// the way; the tombstone is dropped concurrently after the commit.
			inTx, after := DropIndexLater("public", "users_nickname_idx", "m")
			wantSQL(t, "contract", p.Contract, `ALTER INDEX IF EXISTS "public"."users_nickname_idx" RENAME TO "_online_drop_`)
			eq(t, "in the transaction", p.Contract[0].SQL[0], inTx)
			eq(t, "in a transaction", p.Contract[0].NoTx, false)
			eq(t, "after the commit", strings.Join(p.Contract[0].After, ";"), after)
			if !strings.HasPrefix(after, `DROP INDEX CONCURRENTLY IF EXISTS "public"."_online_drop_`) {
				t.Errorf("after the commit: %s", after)
			}
			_, still := ns.Indexes["users_nickname_idx"]
			eq(t, "model", still, false)
		}},
	})
}

func TestDropIndexCompileErrors(t *testing.T) {
	t.Parallel()
	testCompileErrors(t, []compileErrCase{
		// Data the new version would break.
		{name: "drop an index of a constraint", ops: "- drop_index: {name: users_email_key}", op: 1, kind: "drop_index", field: "name", msg: []string{`constraint "users_email_key"`}},
		// Data the new version would break.
		{name: "drop a missing index", ops: "- drop_index: {name: nope}", op: 1, kind: "drop_index", field: "name", msg: []string{`index "nope" does not exist`}},
		// Data the new version would break.
		{name: "drop an index twice", ops: "- drop_index: {name: users_nickname_idx}\n- drop_index: {name: users_nickname_idx}", op: 2, kind: "drop_index", field: "name"},
	})
}
