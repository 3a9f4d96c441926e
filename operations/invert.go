package operations

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/onlinepg/online/schema"
)

// Reversal says whether `online revert` can undo one operation of a
// migration, and how.
type Reversal struct {
	Op   int    `json:"op"` // 1-based position in the migration
	Kind string `json:"kind"`
	// Inverse is the operation that undoes it, in the file format; nil
	// when it cannot be undone without losing data, and Reason says why.
	Inverse map[string]any `json:"inverse,omitempty"`
	Reason  string         `json:"reason,omitempty"`
}

// Invertible reports whether every operation has an inverse.
func Invertible(rs []Reversal) bool {
	for _, r := range rs {
		if r.Inverse == nil {
			return false
		}
	}
	return true
}

// Invert works out, for each operation of m, the operation that undoes it.
// before is the schema model before m (nil when unknown): an operation
// that changes a column's type, default or comment needs it to know what
// to change them back to. The model each operation saw is rebuilt by
// compiling the operations before it, so a rename earlier in the
// migration is followed. Invert never touches a database.
func Invert(m *Migration, before *schema.Schema) []Reversal {
	out := make([]Reversal, len(m.Operations))
	for i, op := range m.Operations {
		var seen *schema.Schema
		if before != nil {
			seen = before
			if i > 0 {
				prefix := &Migration{Name: m.Name, VersionSchema: m.VersionSchema, File: m.File, Operations: m.Operations[:i]}
				if _, next, err := Compile(prefix, before, Options{Schema: before.Name, StateSchema: "online"}); err == nil {
					seen = next
				} else {
					seen = nil
				}
			}
		}
		inv, reason := invertOne(op, seen)
		out[i] = Reversal{Op: i + 1, Kind: kindOf(op), Inverse: inv, Reason: reason}
	}
	return out
}

// InverseDocument is the migration document that undoes m: the inverses of
// its operations in reverse order. It fails, naming every operation that
// has no inverse, when any has none.
func InverseDocument(m *Migration, before *schema.Schema, name string) ([]byte, []Reversal, error) {
	rs := Invert(m, before)
	if !Invertible(rs) {
		return nil, rs, &IrreversibleError{Migration: m.Name, Reversals: rs}
	}
	ops := make([]map[string]any, 0, len(rs))
	for _, r := range slices.Backward(rs) {
		ops = append(ops, r.Inverse)
	}
	doc, err := json.Marshal(map[string]any{"name": name, "operations": ops})
	if err != nil {
		return nil, rs, fmt.Errorf("encode the inverse of %s: %w", m.Name, err)
	}
	return doc, rs, nil
}

// IrreversibleError is returned when a migration has an operation that
// cannot be undone without losing data.
type IrreversibleError struct {
	Migration string
	Reversals []Reversal
}

func (e *IrreversibleError) Error() string {
	msg := fmt.Sprintf("migration %q cannot be reverted:", e.Migration)
	for _, r := range e.Reversals {
		if r.Inverse == nil {
			msg += fmt.Sprintf("\n  operation %d (%s): %s", r.Op, r.Kind, r.Reason)
		}
	}
	return msg + "\nwrite the way back as a new migration (online create) instead"
}

func op1(kind string, body map[string]any) map[string]any { return map[string]any{kind: body} }

// inverter is an operation `online revert` knows about: invert returns
// its inverse in the file format, or the reason it has none. seen is the
// model the operation was compiled against, nil when unknown.
type inverter interface {
	invert(seen *schema.Schema) (inverse map[string]any, reason string)
}

// invertOne returns the inverse of op, or the reason it has none. seen is
// the model op was compiled against, nil when unknown.
func invertOne(op Operation, seen *schema.Schema) (map[string]any, string) {
	if inv, ok := op.(inverter); ok {
		return inv.invert(seen)
	}
	return nil, "revert does not know this operation"
}
