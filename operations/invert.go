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

// invertOne returns the inverse of op, or the reason it has none. seen is
// the model op was compiled against, nil when unknown.
func invertOne(op Operation, seen *schema.Schema) (map[string]any, string) {
	switch o := op.(type) {
	case *CreateTable:
		return op1("drop_table", map[string]any{"name": o.Name}), ""
	case *AddColumn:
		return op1("drop_column", map[string]any{"table": o.Table, "column": o.Column.Name}), ""
	case *RenameColumn:
		return op1("rename_column", map[string]any{"table": o.Table, "from": o.To, "to": o.From}), ""
	case *RenameTable:
		return op1("rename_table", map[string]any{"from": o.To, "to": o.From}), ""
	case *RenameConstraint:
		return op1("rename_constraint", map[string]any{"table": o.Table, "from": o.To, "to": o.From}), ""
	case *CreateIndex:
		return op1("drop_index", map[string]any{"name": o.Name}), ""
	case *CreateEnum:
		return op1("drop_enum", map[string]any{"name": o.Name}), ""
	case *RawSQL:
		if o.OnComplete {
			return nil, "an onComplete sql operation has no down"
		}
		if o.Down == "" {
			return nil, "sql without down: online cannot know what it changed"
		}
		return op1("sql", map[string]any{"up": o.Down, "down": o.Up}), ""
	case *AlterColumn:
		return invertAlter(o, seen)
	case *SetReplicaIdentity:
		if seen == nil || seen.Table(o.Table) == nil {
			return nil, "the replica identity before the migration is not recorded (it was not applied by online migrate)"
		}
		t := seen.Table(o.Table)
		id := map[string]any{"type": map[string]string{"d": "default", "n": "nothing", "f": "full", "i": "index"}[t.ReplicaIdentity]}
		if t.ReplicaIdentity == "i" {
			for _, ix := range t.Indexes {
				if ix.ReplicaIdentity {
					id["index"] = ix.Name
				}
			}
		}
		return op1("set_replica_identity", map[string]any{"table": o.Table, "identity": id}), ""
	case *DropColumn:
		return nil, "drops a column: its data is gone"
	case *DropTable:
		return nil, "drops a table: its data is gone"
	case *DropIndex:
		return nil, "drops an index: its definition is not in the migration; recreate it with create_index"
	case *DropConstraint, *DropMultiColumnConstraint:
		return nil, "drops a constraint: its definition is not in the migration; add it back with create_constraint"
	case *DropEnum:
		return nil, "drops an enum type: its values are not in the migration; recreate it with create_enum"
	case *AddEnumValue:
		return nil, "PostgreSQL cannot remove a value from an enum type"
	case *CreateConstraint:
		return nil, "revert does not drop constraints yet; drop it with drop_constraint in a new migration"
	case *UpdateRows:
		if len(o.Down) == 0 {
			return nil, "update_rows without down: the values it replaced are gone"
		}
		// The inverse sets down over the rows down_where selects, and
		// gives the original back as its own down.
		body := map[string]any{"table": o.Table, "set": o.Down, "down": o.Set}
		if o.DownWhere != "" {
			body["where"] = o.DownWhere
		}
		switch {
		case o.Where != "":
			body["down_where"] = o.Where
		case o.DownWhere != "":
			body["down_where"] = "true"
		}
		return op1("update_rows", body), ""
	}
	return nil, "revert does not know this operation"
}

func invertAlter(o *AlterColumn, seen *schema.Schema) (map[string]any, string) {
	if o.Unique != nil || o.Check != nil || o.References != nil {
		return nil, "adds a constraint (unique, check or references); revert does not drop constraints yet"
	}
	name := o.Column
	if o.Name != "" {
		name = o.Name
	}
	body := map[string]any{"table": o.Table, "column": name}
	if o.Name != "" && o.Name != o.Column {
		body["name"] = o.Column
	}
	var col *schema.Column
	if seen != nil {
		if t := seen.Table(o.Table); t != nil {
			col = t.Column(o.Column)
		}
	}
	needCol := o.Type != "" || o.Default.Kind != 0 || o.Comment.Kind != 0 || o.Nullable != nil
	if needCol && col == nil {
		return nil, fmt.Sprintf("the definition of column %s.%s before the migration is not recorded (it was not applied by online migrate)", o.Table, o.Column)
	}
	if o.Type != "" || o.Up != "" {
		if o.Down == "" || o.Up == "" {
			return nil, "rewrites the column without both up and down: the old values cannot be computed back"
		}
		body["up"], body["down"] = o.Down, o.Up
		if o.Type != "" {
			body["type"] = col.Type
		}
	}
	if o.Nullable != nil && *o.Nullable != col.Nullable {
		if !col.Nullable {
			// Back to NOT NULL: rows written with NULL since need a value,
			// which only a down expression gives.
			if o.Down == "" {
				return nil, "makes the column nullable; making it NOT NULL again needs down to fill the NULLs written since"
			}
			body["up"], body["down"] = o.Down, o.Up
			if o.Up == "" {
				body["down"] = name
			}
		}
		body["nullable"] = col.Nullable
	}
	if o.Default.Kind != 0 {
		if col.Default != nil {
			body["default"] = *col.Default
		} else {
			body["default"] = nil
		}
	}
	if o.Comment.Kind != 0 {
		if col.Comment != nil {
			body["comment"] = *col.Comment
		} else {
			body["comment"] = nil
		}
	}
	return op1("alter_column", body), ""
}
