package workflow_test

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/workflow"
)

// TestWorkflowRevertTypeAndRename: the revert of a migration that changed a
// column's type and then renamed it undoes both (its inverse renames first,
// then converts the renamed column back, each expression read under the
// names of its own operation); rows written through either version keep
// their values.
func TestWorkflowRevertTypeAndRename(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t, "CREATE TABLE t (id int PRIMARY KEY, name int NOT NULL)", "INSERT INTO t VALUES (1, 10), (2, 20)")
	eng := env.engine()
	dir := fstest.MapFS{"01_type_rename.yaml": {Data: []byte(`operations:
  - alter_column: { table: t, column: name, type: bigint, up: "name", down: "name" }
  - rename_column: { table: t, from: name, to: label }
`)}}
	if _, err := eng.Migrate(ctx, loadDir(t, dir), workflow.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("migrate: %s", pg.Explain(err))
	}
	env.expectRows(env.db, []string{"label|bigint"}, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.t'::regclass AND attname IN ('name', 'label')")
	res, err := eng.Revert(ctx)
	if err != nil {
		t.Fatalf("revert: %s", pg.Explain(err))
	}
	env.exec(env.version(res.VersionSchema), "INSERT INTO t (id, name) VALUES (3, 30)")
	env.exec(env.version("public_01_type_rename"), "INSERT INTO t (id, label) VALUES (4, 40)")
	env.complete()
	env.expectRows(env.db, []string{"name|integer"}, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.t'::regclass AND attname IN ('name', 'label')")
	env.expectRows(env.db, []string{"1|10", "2|20", "3|30", "4|40"}, "SELECT id, name FROM t ORDER BY id")
}
