package operations

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// SetReplicaIdentity sets what a table's UPDATE and DELETE records carry for
// logical replication. It changes nothing the application sees, so it runs
// at start (with the finish steps), and rollback restores the identity the
// table had before.
type SetReplicaIdentity struct {
	Table    string          `yaml:"table"`
	Identity ReplicaIdentity `yaml:"identity"`
}

// ReplicaIdentity is set_replica_identity's identity field.
type ReplicaIdentity struct {
	Type  string `yaml:"type"`
	Index string `yaml:"index"`
}

var _ Operation = (*SetReplicaIdentity)(nil)

// replicaIdentityLetters maps the file's types to pg_class.relreplident.
var replicaIdentityLetters = map[string]string{"default": "d", "nothing": "n", "full": "f", "index": "i"}

func (op *SetReplicaIdentity) Compile(c *Compiler) error {
	t, err := c.Table("table", op.Table)
	if err != nil {
		return err
	}
	kind := strings.ToLower(op.Identity.Type)
	if kind == "" {
		return errField("identity.type", "is required (one of nothing, default, index, full)")
	}
	letter, ok := replicaIdentityLetters[kind]
	if !ok {
		return errField("identity.type", "must be one of nothing, default, index, full; got %q", op.Identity.Type)
	}
	var ix *schema.Index
	if kind == "index" {
		if ix, err = c.replicaIdentityIndex(t, op.Identity.Index); err != nil {
			return err
		}
	} else if op.Identity.Index != "" {
		return errField("identity.index", "applies to type index only (type is %q)", kind)
	}

	// The statement runs at start, before any rename of this migration,
	// so it names the table and the index as they are in the database.
	table := c.Qualified(t.Physical)
	prev, prevIx := replicaIdentityOf(t)
	step := Step{
		Do:   fmt.Sprintf("set the replica identity of %s to %s", t.Name, kind),
		SQL:  []string{fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY %s", table, replicaIdentityClause(kind, ix))},
		Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
	}
	if ix != nil {
		step.Do += " " + ix.Name
	}
	if t.Partitioned {
		// What the file asks for, and what pgroll does; but logical
		// replication logs each partition's rows by the partition's own
		// identity, which PostgreSQL does not pass down: say so.
		step.Do += " (the partitioned table only: each partition keeps its own replica identity)"
	}
	// IF EXISTS: the undo must not fail when the table is already gone
	// (an earlier attempt's rollback may have dropped a created table).
	prevKind := map[string]string{"d": "default", "n": "nothing", "f": "full", "i": "index"}[prev]
	if prevKind == "" {
		prevKind = "default"
	}
	if prevKind == "index" && prevIx == nil {
		// relreplident 'i' whose index was dropped: PostgreSQL behaves as
		// for NOTHING, and that is what the table is given back.
		prevKind = "nothing"
	}
	step.Undo = []string{fmt.Sprintf("ALTER TABLE IF EXISTS %s REPLICA IDENTITY %s", table, replicaIdentityClause(prevKind, prevIx))}

	// With the finish steps, after the backfill: an index this migration
	// builds exists only by then, and two set_replica_identity on one
	// table must run in their order whichever of them names such an index.
	c.Finish(step)

	t.ReplicaIdentity = letter
	for _, other := range t.Indexes {
		other.ReplicaIdentity = false
	}
	if ix != nil {
		ix.ReplicaIdentity = true
	}
	return nil
}

func replicaIdentityClause(kind string, ix *schema.Index) string {
	switch kind {
	case "index":
		return "USING INDEX " + pg.Ident(ix.PhysicalName())
	case "nothing":
		return "NOTHING"
	case "full":
		return "FULL"
	}
	return "DEFAULT"
}

// replicaIdentityOf returns the replica identity of t in the model: its
// relreplident letter and, for 'i', the index (nil if it is gone).
func replicaIdentityOf(t *schema.Table) (string, *schema.Index) {
	if t.ReplicaIdentity != "i" {
		return t.ReplicaIdentity, nil
	}
	for _, n := range slices.Sorted(maps.Keys(t.Indexes)) {
		if t.Indexes[n].ReplicaIdentity {
			return "i", t.Indexes[n]
		}
	}
	return "i", nil
}

// replicaIdentityIndex checks what PostgreSQL requires of a replica
// identity index, against the columns as they are in the database when the
// statement runs: NOT NULL that this migration adds only takes effect at
// complete, so it does not count.
func (c *Compiler) replicaIdentityIndex(t *schema.Table, name string) (*schema.Index, error) {
	const field = "identity.index"
	if name == "" {
		return nil, errField(field, "is required for type index")
	}
	ix := t.Indexes[name]
	if ix == nil {
		if owner, ok := c.Schema.Indexes[name]; ok && owner != "" && owner != t.Name {
			return nil, errField(field, "index %q is an index of table %q, not of %q", name, owner, t.Name)
		}
		return nil, wrapField(field, &schema.NotFoundError{Kind: "index", Name: name, Table: t.Name})
	}
	switch {
	case !ix.Unique:
		return nil, errField(field, "index %q is not unique; a replica identity index must be", name)
	case !ix.Valid:
		return nil, errField(field, "index %q is not valid (a failed concurrent build?); rebuild it first", name)
	case ix.Deferrable:
		return nil, errField(field, "index %q belongs to a deferrable constraint; a replica identity index must be checked immediately", name)
	case len(ix.Columns) == 0:
		return nil, errField(field, "index %q has expression keys; a replica identity index must be on plain columns", name)
	case containsWhere(ix.Definition):
		return nil, errField(field, "index %q is partial; a replica identity index must cover every row", name)
	}
	ot := c.oldTable(t)
	for _, p := range ix.Columns {
		for _, r := range c.rewrites {
			if r.table == t && !r.added && r.oldPhys == p {
				return nil, errField(field, "index %q is on column %q, which this migration rewrites: the index goes with the old column at complete; set the replica identity in a later migration", name, r.col.Name)
			}
		}
		col := t.ColumnByPhysical(p)
		if col == nil {
			return nil, errField(field, "index %q is on column %q, which the new version no longer has", name, p)
		}
		if c.IsHidden(t.Physical, p) {
			return nil, errField(field, "index %q is on column %q, which this migration rewrites; set the replica identity in a later migration", name, col.Name)
		}
		// The new version must keep the column NOT NULL (PostgreSQL refuses
		// DROP NOT NULL on a replica identity column), and it must be NOT
		// NULL in the database now: the model may already say NOT NULL
		// that this migration only sets at complete.
		nullable := col.Nullable
		if ot != nil {
			oc := ot.ColumnByPhysical(p)
			if oc == nil {
				return nil, errField(field, "index %q is on column %q, which this migration adds; set the replica identity in a later migration", name, col.Name)
			}
			nullable = nullable || oc.Nullable
		}
		if nullable {
			return nil, errField(field, "index %q is on column %q, which is nullable; a replica identity index must be on NOT NULL columns", name, col.Name)
		}
	}
	return ix, nil
}

// containsWhere reports whether an index definition has a predicate.
func containsWhere(def string) bool { return strings.Contains(def, " WHERE ") }

// invert sets the replica identity the table had in seen.
func (op *SetReplicaIdentity) invert(seen *schema.Schema) (map[string]any, string) {
	if seen == nil || seen.Table(op.Table) == nil {
		return nil, "the replica identity before the migration is not recorded (it was not applied by online migrate)"
	}
	t := seen.Table(op.Table)
	id := map[string]any{"type": map[string]string{"d": "default", "n": "nothing", "f": "full", "i": "index"}[t.ReplicaIdentity]}
	if t.ReplicaIdentity == "i" {
		for _, ix := range t.Indexes {
			if ix.ReplicaIdentity {
				id["index"] = ix.Name
			}
		}
	}
	return op1("set_replica_identity", map[string]any{"table": op.Table, "identity": id}), ""
}
