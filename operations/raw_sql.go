package operations

import (
	"fmt"
	"github.com/onlinepg/online/internal/sqlcheck"
	"github.com/onlinepg/online/schema"
)

// RawSQL runs SQL the migration's author wrote: Up at start (or at complete
// with OnComplete), Down on rollback. online cannot know what it changes, so
// a migration of raw SQL holds nothing else, and the new version's views are
// read from the catalog after it runs.
type RawSQL struct {
	Up         string `yaml:"up"`
	Down       string `yaml:"down"`
	OnComplete bool   `yaml:"onComplete"`
}

var _ Operation = (*RawSQL)(nil)

func (op *RawSQL) Compile(c *Compiler) error {
	if err := Required("up", op.Up); err != nil {
		return err
	}
	if op.OnComplete {
		if op.Down != "" {
			return errField("down", "an onComplete operation runs at complete, after which there is no rollback; remove down")
		}
		c.Contract(Step{Do: "run the migration's SQL (onComplete)", SQL: []string{op.Up}, Lock: "as the SQL takes"})
		return nil
	}
	s := Step{Do: "run the migration's SQL", SQL: []string{op.Up}, Lock: "as the SQL takes"}
	if op.Down != "" {
		s.Undo = []string{op.Down}
	} else {
		s.Irreversible = fmt.Sprintf("the SQL of operation %d has no down: rollback cannot undo it and leaves what it did in place", c.op)
	}
	c.Expand(s)
	return nil
}

// sqlFields: raw SQL is the author's by design; it must still stay inside
// the transaction online runs it in.
func (op *RawSQL) sqlFields() []sqlField {
	return []sqlField{{"up", op.Up, sqlcheck.Script}, {"down", op.Down, sqlcheck.Script}}
}

func (op *RawSQL) invert(*schema.Schema) (map[string]any, string) {
	if op.OnComplete {
		return nil, "an onComplete sql operation has no down"
	}
	if op.Down == "" {
		return nil, "sql without down: online cannot know what it changed"
	}
	return op1("sql", map[string]any{"up": op.Down, "down": op.Up}), ""
}
