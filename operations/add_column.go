package operations

import (
	"fmt"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqlcheck"
	"github.com/onlinepg/online/schema"
)

// AddColumn adds a column to a table. Up, a SQL expression over the row's
// old-version columns, fills rows that already exist (a backfill) and rows
// the old version writes meanwhile. A stored generated column added to a
// table that exists before the migration is kept by a trigger and a check
// instead (see generated.go): PostgreSQL would rewrite the table.
type AddColumn struct {
	Table  string `yaml:"table"`
	Column Column `yaml:"column"`
	Up     string `yaml:"up"`
	// From fills the column from another table and keeps it equal to it
	// while both versions run (online's extension; see move.go).
	From *From `yaml:"from"`
}

var _ Operation = (*AddColumn)(nil)

func (op *AddColumn) Compile(c *Compiler) error {
	t, err := c.Table("table", op.Table)
	if err != nil {
		return err
	}
	col := &op.Column
	if err := col.validate("column"); err != nil {
		return err
	}
	if t.Column(col.Name) != nil {
		return errField("column.name", "table %q already has a column %q", t.Name, col.Name)
	}
	if op.From != nil {
		if op.Up != "" {
			return errField("from", "give either up (from the row itself) or from (from another table), not both")
		}
		return c.addColumnFrom(t, col, op.From)
	}
	if col.PK {
		return errField("column.pk", "adding a primary key column to an existing table is not supported; add the column, then create_constraint type primary_key")
	}
	if col.Generated != nil && col.Generated.Identity != nil && !t.Created {
		return errField("column.generated.identity", "adding an identity column rewrites the whole table under an exclusive lock; add a bigint column with a sequence default instead")
	}
	// As in pgroll: a column is NOT NULL unless it says nullable: true, and
	// on a table with rows such a column needs values. With up it is added
	// nullable, filled by the backfill, proven NOT NULL by a validated check
	// and set NOT NULL at complete without a scan (see addColumnUp).
	if !col.nullable() && col.Default == nil && op.Up == "" && col.Generated == nil && !implicitDefault(col.Type) && !t.Created {
		return errField("up", "column %q is NOT NULL (a column without \"nullable: true\" is NOT NULL, as in pgroll) and has no default: give \"up\", an SQL expression that fills the rows that already exist, or a \"default\", or \"nullable: true\"", col.Name)
	}
	phys, hidden := c.NewColumnName(t, col.Name, false)
	table := c.Qualified(t.Physical)
	mc := modelColumn(col, phys)
	t.Columns = append(t.Columns, mc)
	// A table this migration creates is empty: there the real generated
	// column costs no rewrite.
	online := op.Up == "" && col.Generated != nil && col.Generated.Expression != "" && !t.Created

	if op.Up != "" && !t.Created {
		// A table this migration creates has no rows for up to fill: the
		// column is added as declared (as pgroll does).
		//
		// Filled by a backfill and kept up to date by triggers: the column
		// starts nullable without default and becomes what it was declared
		// as at complete.
		if err := c.addColumnUp(t, mc, col, op.Up); err != nil {
			return err
		}
	} else if online {
		if err := c.addGeneratedOnline(t, mc, col, hidden); err != nil {
			return err
		}
	} else {
		def, err := c.definition("column", col, phys, false)
		if err != nil {
			return err
		}
		sql := []string{fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s", table, def)}
		if col.Comment != nil {
			sql = append(sql, commentSQL("COLUMN", table+"."+pg.Ident(phys), col.Comment))
		}
		c.Expand(Step{
			Do:   fmt.Sprintf("add column %s.%s", t.Name, col.Name),
			SQL:  sql,
			Undo: []string{fmt.Sprintf("ALTER TABLE %s DROP COLUMN IF EXISTS %s", table, pg.Ident(phys))},
			Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
		})
	}
	// up may have moved the column to a hidden name.
	if err := c.columnConstraints(t, col, mc.Physical); err != nil {
		return err
	}
	if hidden && op.Up == "" && !online {
		c.Contract(Step{
			Do:   fmt.Sprintf("rename column %s.%s into place", t.Name, col.Name),
			SQL:  []string{fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", c.Qualified(c.TableNow(t)), pg.Ident(c.ColumnNow(t, phys)), pg.Ident(col.Name))},
			Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
		})
		c.SetColumnNow(t, phys, col.Name)
	}
	return nil
}

// implicitDefault reports whether type gives the column a default of its
// own: a serial's sequence fills every row, so no up is needed (pgroll
// makes the same exception).
func implicitDefault(typ string) bool {
	switch strings.ToLower(strings.TrimSpace(typ)) {
	case "smallserial", "serial", "bigserial", "serial2", "serial4", "serial8":
		return true
	}
	return false
}

func (op *AddColumn) table() string { return op.Table }

func (op *AddColumn) sqlFields() []sqlField {
	return append(append(columnSQL("column", &op.Column), sqlField{"up", op.Up, sqlcheck.Expr}), moveSQL("from", op.From)...)
}

func (op *AddColumn) upDown() map[string]string { return map[string]string{"up": op.Up} }

func (op *AddColumn) exprFields() []exprField {
	fs := []exprField{{field: "up", value: op.Up, old: true}}
	return append(fs, columnExprs("column", &op.Column)...)
}

func (op *AddColumn) invert(*schema.Schema) (map[string]any, string) {
	return op1("drop_column", map[string]any{"table": op.Table, "column": op.Column.Name}), ""
}

// namedObjects: the column's collation (ext) is looked up before any
// change (catalogchecks.go).
func (op *AddColumn) namedObjects() []namedObject {
	if op.Column.Collation == "" {
		return nil
	}
	return []namedObject{{field: "column.collation", kind: "collation", name: op.Column.Collation}}
}

func (op *AddColumn) moveChecks(base CatalogCheck, old *schema.Schema) []CatalogCheck {
	if op.From == nil {
		return nil
	}
	return moveChecks(base, old, op.From, op.Table, op.Column.Name)
}
