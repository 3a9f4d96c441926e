package operations

import (
	"fmt"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// refuseMaintained refuses a change to a column that the trigger of a
// generated column added to a table with rows computes or reads (see
// generated.go). The trigger's function names those columns, and its UPDATE
// OF list makes them depend on it: a rename would make every write that
// fires it fail, and a drop or a rewrite would fail at complete.
func refuseMaintained(field string, t *schema.Table, col *schema.Column, change string) error {
	m := col.Maintained
	if m == nil {
		return nil
	}
	role := "read by the trigger " + m.Trigger + ", which computes a generated column"
	if m.Computed {
		role = "computed by the trigger " + m.Trigger
	}
	return errField(field, "column %q of table %q is %s (a generated column online added to a table that had rows); %s it is not supported: "+
		"drop the generated column first, or add it again with the new definition", col.Name, t.Name, role, change)
}

// dropMaintained returns the statements that remove the trigger computing
// col and its function, to run before the column is dropped at complete.
func (c *Compiler) dropMaintained(t *schema.Table, col *schema.Column) []string {
	m := col.Maintained
	return []string{
		fmt.Sprintf("DROP TRIGGER IF EXISTS %s ON %s", pg.Ident(m.Trigger), c.Qualified(c.TableNow(t))),
		fmt.Sprintf("DROP FUNCTION IF EXISTS %s()", m.Function),
	}
}
