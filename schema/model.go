package schema

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Schema is one version of a schema's tables.
type Schema struct {
	Name   string
	Tables map[string]*Table // by visible name
	// Indexes lists every index name of the schema (names are per schema in
	// PostgreSQL) with the visible name of its table.
	Indexes map[string]string
	// Enums maps enum type names of the schema to their labels.
	Enums map[string][]string
	// EnumUses lists, per enum, the catalog objects that depend on it or
	// on its array type, as read: DROP TYPE fails while any is left.
	EnumUses map[string][]TypeUse
	// Types holds every type name of the schema when it was read (the row
	// types of tables included, array types left out) with its typtype;
	// CREATE TYPE fails on any of them.
	Types map[string]string
	// Relations holds every relation name of the schema (tables, indexes,
	// sequences, views...): names share one namespace in PostgreSQL.
	Relations map[string]bool
	// ServerVersion is server_version_num, e.g. 150004.
	ServerVersion int
	// PathNames holds the names of functions, operators, types, collations
	// and text search configurations that live outside pg_catalog, in any
	// schema of the database. An expression that uses none of them (nor a
	// relation) means the same under every search_path, because pg_catalog
	// is searched first; see ReadPathNames. Shared, never changed.
	PathNames map[string]bool
}

// Table is a table as one version sees it.
type Table struct {
	Name        string // visible name
	Physical    string // physical table name
	OID         uint32 // 0 for a table created by this migration
	Partitioned bool
	Columns     []*Column
	PrimaryKey  []string // visible column names
	Indexes     map[string]*Index
	Constraints map[string]*Constraint
	Comment     *string
	// Created is true for a table the migration in compilation creates.
	Created bool
	// ReplicaIdentity is the relreplident letter: d, n, f or i.
	ReplicaIdentity string
	// PartitionKey holds the physical columns of a partitioned table's
	// partition key; PartitionKeyExpr is true when the key also has an
	// expression. Partitions are its partitions, each with its own when it
	// is partitioned too. Read from the catalog; a compile never changes
	// them, so Clone shares them.
	PartitionKey     []string
	PartitionKeyExpr bool
	Partitions       []*Partition
	// ForeignReferrers lists, per physical column, the foreign keys of
	// tables in other schemas that reference it ("name of table s.t").
	// online migrates one schema and cannot rebuild those. Read-only.
	ForeignReferrers map[string][]string
}

// Partition is one partition of a partitioned table (or of a partitioned
// partition). Online builds a partitioned table's indexes partition by
// partition, so it needs them all, down to the leaves.
type Partition struct {
	Schema string
	Name   string
	// Kind is the relkind: "r" a table, "p" partitioned itself, "f" a
	// foreign table.
	Kind string
	// Key and KeyExpr are the partition key of a partitioned partition,
	// as for Table.
	Key        []string
	KeyExpr    bool
	Partitions []*Partition
}

// Column is a column as one version sees it.
type Column struct {
	Name      string // visible name
	Physical  string // physical column name
	Type      string // format_type text
	Nullable  bool
	Default   *string
	Identity  string // "", "a" (ALWAYS) or "d" (BY DEFAULT)
	Generated bool   // a stored generated column
	// GeneratedExpr is a generated column's expression, as PostgreSQL prints it.
	GeneratedExpr string
	Comment       *string
	// Collation is the column's collation when it is not its type's
	// default (the collation's name, unquoted), else "".
	Collation string
	Unique    bool // covered by a single-column unique index or constraint
	// Maintained is set on a column that a trigger of online's keeps
	// computed (a stored generated column added to a table that had rows,
	// see operations/generated.go), and on each column that trigger reads.
	// Never changed once set, so clones share it.
	Maintained *Maintained
}

// Maintained describes the trigger that computes a column.
type Maintained struct {
	Trigger  string // trigger name
	Function string // its function, quoted and schema-qualified
	Computed bool   // this column is the one computed; false for an input
}

// Index is an index of a table.
type Index struct {
	Name       string
	Columns    []string // physical column names; empty for an expression index
	Unique     bool
	Primary    bool
	Valid      bool
	Definition string
	// Constraint is the unique or primary key constraint that owns the index.
	Constraint string
	// ReplicaIdentity is true for the index that REPLICA IDENTITY USING
	// INDEX names (indisreplident).
	ReplicaIdentity bool
	// Deferrable is true for the index of a deferrable constraint, which
	// cannot serve as a replica identity.
	Deferrable bool
	// Physical is the index's name in the database when it differs from
	// Name: a rename_constraint of the migration in compilation renamed
	// its constraint, and with it the index, at complete.
	Physical string
}

// PhysicalName is the index's name in the database until complete.
func (ix *Index) PhysicalName() string {
	if ix.Physical != "" {
		return ix.Physical
	}
	return ix.Name
}

// TypeUse is a catalog object that depends on a type.
type TypeUse struct {
	// Schema and Relation name the relation the object belongs to (a
	// column, its default, a constraint or an index of it, or a view);
	// both are empty for an object of no relation (a domain, a function).
	// A partition stands for its root table.
	Schema, Relation string
	// Table is true when Relation is a table of the schema read.
	Table      bool
	Column     string // the column, for a column or its default
	Constraint string
	Index      string
	Object     string // pg_describe_object, for messages
}

// Constraint is a table constraint.
type Constraint struct {
	Name       string
	Type       string   // c, f, p, u, x
	Columns    []string // physical column names
	Definition string
	Validated  bool
	// RefTable is the referenced table of a foreign key, schema-qualified as
	// PostgreSQL prints it.
	RefTable string
	// RefSchema, RefTableName and RefColumns name a foreign key's target,
	// unquoted, for comparisons.
	RefSchema, RefTableName string
	RefColumns              []string
}

// Table returns the table of this version with the visible name, or nil.
func (s *Schema) Table(name string) *Table { return s.Tables[name] }

// TableNames returns the visible table names, sorted.
func (s *Schema) TableNames() []string {
	return slices.Sorted(maps.Keys(s.Tables))
}

// Column returns the column with the visible name, or nil.
func (t *Table) Column(name string) *Column {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// ColumnByPhysical returns the column served by a physical column, or nil.
func (t *Table) ColumnByPhysical(name string) *Column {
	for _, c := range t.Columns {
		if c.Physical == name {
			return c
		}
	}
	return nil
}

// ColumnNames returns the visible column names in order.
func (t *Table) ColumnNames() []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

// RemoveColumn hides a column from this version.
func (t *Table) RemoveColumn(name string) {
	t.Columns = slices.DeleteFunc(t.Columns, func(c *Column) bool { return c.Name == name })
}

// KeyColumns returns the visible names of the columns that identify a row: the
// primary key, else the first unique index over not-null columns.
func (t *Table) KeyColumns() []string {
	if len(t.PrimaryKey) > 0 {
		return t.PrimaryKey
	}
	for _, n := range slices.Sorted(maps.Keys(t.Indexes)) {
		ix := t.Indexes[n]
		if !ix.Unique || !ix.Valid || len(ix.Columns) == 0 || strings.Contains(ix.Definition, " WHERE ") {
			continue
		}
		ok := true
		var vis []string
		for _, p := range ix.Columns {
			c := t.ColumnByPhysical(p)
			if c == nil || c.Nullable {
				ok = false
				break
			}
			vis = append(vis, c.Name)
		}
		if ok {
			return vis
		}
	}
	return nil
}

// PhysicalColumnTaken reports whether the physical table already has (or the
// migration has planned) a column of that name, visible or not.
func (t *Table) PhysicalColumnTaken(name string, planned map[string]bool) bool {
	if planned[name] {
		return true
	}
	return t.ColumnByPhysical(name) != nil
}

// Clone returns a deep copy, so a compile can change it freely.
func (s *Schema) Clone() *Schema {
	out := &Schema{Name: s.Name, Tables: map[string]*Table{}, Indexes: map[string]string{}, Enums: map[string][]string{},
		EnumUses: map[string][]TypeUse{}, Types: map[string]string{}, ServerVersion: s.ServerVersion,
		PathNames: s.PathNames}
	for k, t := range s.Tables {
		out.Tables[k] = t.Clone()
	}
	for k, v := range s.Indexes {
		out.Indexes[k] = v
	}
	out.Relations = map[string]bool{}
	for k, v := range s.Relations {
		out.Relations[k] = v
	}
	for k, v := range s.Enums {
		out.Enums[k] = slices.Clone(v)
	}
	for k, v := range s.EnumUses {
		out.EnumUses[k] = slices.Clone(v)
	}
	for k, v := range s.Types {
		out.Types[k] = v
	}
	return out
}

// Clone returns a deep copy of the table.
func (t *Table) Clone() *Table {
	c := *t
	c.Columns = make([]*Column, len(t.Columns))
	for i, col := range t.Columns {
		cc := *col
		c.Columns[i] = &cc
	}
	c.PrimaryKey = slices.Clone(t.PrimaryKey)
	c.Indexes = map[string]*Index{}
	for k, ix := range t.Indexes {
		ic := *ix
		ic.Columns = slices.Clone(ix.Columns)
		c.Indexes[k] = &ic
	}
	c.Constraints = map[string]*Constraint{}
	for k, con := range t.Constraints {
		cc := *con
		cc.Columns = slices.Clone(con.Columns)
		c.Constraints[k] = &cc
	}
	return &c
}

// NotFoundError says a table, column, index or constraint is missing from a
// version.
type NotFoundError struct {
	Kind, Name, Table string
}

func (e *NotFoundError) Error() string {
	if e.Table != "" {
		return fmt.Sprintf("%s %q does not exist in table %q", e.Kind, e.Name, e.Table)
	}
	return fmt.Sprintf("%s %q does not exist", e.Kind, e.Name)
}
