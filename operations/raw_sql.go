package operations

import "fmt"

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
