package operations

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqlcheck"
	"github.com/onlinepg/online/internal/sqllex"
	"github.com/onlinepg/online/schema"
)

// CreateIndex builds an index CONCURRENTLY, so writes go on while it builds.
type CreateIndex struct {
	Table             string       `yaml:"table"`
	Name              string       `yaml:"name"`
	Columns           IndexColumns `yaml:"columns"`
	Method            string       `yaml:"method"`
	Unique            bool         `yaml:"unique"`
	Predicate         string       `yaml:"predicate"`
	StorageParameters string       `yaml:"storage_parameters"`
	Include           []string     `yaml:"include"`
	NullsNotDistinct  bool         `yaml:"nulls_not_distinct"`
}

// IndexColumn is one key of an index: a column name, or with Expression an
// SQL expression, with its options. In a list, pgroll's current form names
// the column with "column"; the map form names it by its key.
type IndexColumn struct {
	Name       string   `yaml:"-"`
	Column     string   `yaml:"column"`
	Expression string   `yaml:"expression"`
	Collate    string   `yaml:"collate"`
	Sort       string   `yaml:"sort"`
	Nulls      string   `yaml:"nulls"`
	Opclass    *Opclass `yaml:"opclass"`
}

// Opclass names an operator class and its parameters.
type Opclass struct {
	Name   string        `yaml:"name"`
	Params OpclassParams `yaml:"params"`
}

// OpclassParams are an operator class's parameters as "name=value" items:
// pgroll writes them as a list of such strings; the older map form
// (name: value) is accepted too and kept in name order.
type OpclassParams []string

var opclassParamsType = reflect.TypeOf(OpclassParams{})

// UnmarshalYAML accepts both forms (checked before by checkOpclassParams).
func (p *OpclassParams) UnmarshalYAML(n *yaml.Node) error {
	n = resolve(n)
	switch n.Kind {
	case yaml.SequenceNode:
		for _, item := range n.Content {
			*p = append(*p, resolve(item).Value)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			*p = append(*p, resolve(n.Content[i]).Value+"="+resolve(n.Content[i+1]).Value)
		}
		sort.Strings(*p)
	}
	return nil
}

// checkOpclassParams reports a wrong shape of opclass.params with its path.
func checkOpclassParams(n *yaml.Node, path string) error {
	switch n.Kind {
	case yaml.SequenceNode:
		if err := checkNode(n, reflect.TypeOf([]string{}), path); err != nil {
			return err
		}
		for i, item := range n.Content {
			if !strings.Contains(resolve(item).Value, "=") {
				return &fieldErr{field: fmt.Sprintf("%s[%d]", path, i), err: fmt.Errorf("must be \"name=value\", got %q", resolve(item).Value)}
			}
		}
		return nil
	case yaml.MappingNode:
		return checkNode(n, reflect.TypeOf(map[string]string{}), path)
	}
	return &fieldErr{field: path, err: fmt.Errorf("must be a list of \"name=value\" strings, got %s", nodeKind(n))}
}

// IndexColumns is the "columns" field: a list of column names or of index
// fields (pgroll's current form, {column, sort, nulls, collate, opclass}),
// or a map from name to options (pgroll's older form, kept in file order).
type IndexColumns []IndexColumn

// UnmarshalYAML accepts every form of the field (checked before by
// checkIndexColumns).
func (ic *IndexColumns) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.SequenceNode:
		for i, item := range n.Content {
			switch item.Kind {
			case yaml.ScalarNode:
				*ic = append(*ic, IndexColumn{Name: item.Value})
			case yaml.MappingNode:
				var col IndexColumn
				if err := strictDecode(item, &col, fmt.Sprintf("columns[%d]", i)); err != nil {
					return err
				}
				// Name is the one place the compiler reads a column from.
				col.Name, col.Column = col.Column, ""
				*ic = append(*ic, col)
			default:
				return fmt.Errorf("columns[%d]: must be a column name or a map with \"column\" or \"expression\"", i)
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			col := IndexColumn{}
			if v := n.Content[i+1]; !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
				if err := strictDecode(v, &col, "columns."+n.Content[i].Value); err != nil {
					return err
				}
			}
			col.Name = n.Content[i].Value
			*ic = append(*ic, col)
		}
	default:
		return fmt.Errorf("columns: must be a list of column names or index fields, or a map of column name to options")
	}
	return nil
}

func typeOf(v any) reflect.Type { return reflect.TypeOf(v).Elem() }

func strictDecode(n *yaml.Node, out any, field string) error {
	if err := checkNode(n, typeOf(out), field); err != nil {
		return err
	}
	return n.Decode(out)
}

var _ Operation = (*CreateIndex)(nil)

func (op *CreateIndex) Compile(c *Compiler) error {
	t, err := c.Table("table", op.Table)
	if err != nil {
		return err
	}
	if err := Required("name", op.Name); err != nil {
		return err
	}
	// A failed concurrent build leaves an invalid index of the name; the
	// drop makes the step safe to run again after a crash.
	pre := []string{"DROP INDEX CONCURRENTLY IF EXISTS " + c.Qualified(op.Name)}
	if existing, taken := c.Old.Indexes[op.Name]; taken && !t.Partitioned && existing == t.Name && c.Old.Tables[t.Name] != nil && c.Old.Tables[t.Name].Indexes[op.Name] != nil && !c.Old.Tables[t.Name].Indexes[op.Name].Valid {
		// An invalid index of this name is what a failed concurrent build
		// leaves; it is dropped and built again. (Online never leaves an
		// invalid index on a partitioned table: its parent index is
		// created and completed in one transaction.)
		delete(c.Schema.Indexes, op.Name)
		if c.names[op.Name] {
			return errField("name", "the name %q is already used in this migration", op.Name)
		}
		c.names[op.Name] = true
	} else if err := c.ReserveName("name", op.Name); err != nil {
		return err
	}
	if len(op.Columns) == 0 {
		return errField("columns", "is required")
	}
	if t.Partitioned {
		if err := c.checkPartitions("table", t); err != nil {
			return err
		}
	}
	method := strings.ToLower(op.Method)
	switch method {
	case "", "btree", "hash", "gist", "spgist", "gin", "brin":
	default:
		return errField("method", "must be one of btree, hash, gist, spgist, gin, brin; got %q", op.Method)
	}
	phys := map[string]string{}
	for _, col := range t.Columns {
		phys[col.Name] = col.Physical
	}
	var keys, keyCols []string
	// uses collects every physical column the index reads (keys, included
	// columns, expressions, predicate): one the migration rewrites exists
	// only from expand's last step and is filled by the backfill.
	var uses []string
	for _, e := range append(op.expressions(), op.Predicate) {
		for _, name := range sqllex.ReferencedColumns(e, slices.Collect(maps.Keys(phys))) {
			uses = append(uses, phys[name])
		}
	}
	for i, col := range op.Columns {
		field := fmt.Sprintf("columns[%d]", i)
		var k string
		if col.Expression != "" {
			k = "(" + sqllex.RenameIdentifiers(col.Expression, phys) + ")"
		} else {
			mc, err := c.Column(field, t, col.Name)
			if err != nil {
				return err
			}
			k = pg.Ident(mc.Physical)
			keyCols = append(keyCols, mc.Physical)
		}
		if col.Collate != "" {
			k += " COLLATE " + pg.Ident(col.Collate)
		}
		if o := col.Opclass; o != nil {
			if o.Name == "" {
				return errField(field+".opclass.name", "is required")
			}
			k += " " + pg.Ident(o.Name)
			if len(o.Params) > 0 {
				ps, err := opclassParamsSQL(field+".opclass.params", o.Params)
				if err != nil {
					return err
				}
				k += " (" + ps + ")"
			}
		}
		switch s := strings.ToUpper(col.Sort); s {
		case "":
		case "ASC", "DESC":
			k += " " + s
		default:
			return errField(field+".sort", "must be ASC or DESC, got %q", col.Sort)
		}
		switch nl := strings.ToUpper(col.Nulls); nl {
		case "":
		case "FIRST", "LAST":
			k += " NULLS " + nl
		default:
			return errField(field+".nulls", "must be FIRST or LAST, got %q", col.Nulls)
		}
		keys = append(keys, k)
	}
	// tail is what follows the table: the same for a plain table and for
	// each partition of a partitioned one.
	var b strings.Builder
	if method != "" {
		b.WriteString(" USING " + method)
	}
	b.WriteString(" (" + strings.Join(keys, ", ") + ")")
	if len(op.Include) > 0 {
		var inc []string
		for i, name := range op.Include {
			mc, err := c.Column(fmt.Sprintf("include[%d]", i), t, name)
			if err != nil {
				return err
			}
			inc = append(inc, mc.Physical)
		}
		uses = append(uses, inc...)
		b.WriteString(" INCLUDE (" + pg.Idents(inc) + ")")
	}
	if op.NullsNotDistinct {
		if !op.Unique {
			return errField("nulls_not_distinct", "applies to unique indexes only")
		}
		b.WriteString(" NULLS NOT DISTINCT")
	}
	if op.StorageParameters != "" {
		b.WriteString(" WITH (" + op.StorageParameters + ")")
	}
	if op.Predicate != "" {
		b.WriteString(" WHERE " + sqllex.RenameIdentifiers(op.Predicate, phys))
	}
	tail := b.String()
	create := "CREATE INDEX"
	if op.Unique {
		create = "CREATE UNIQUE INDEX"
	}
	if op.Unique && t.Partitioned {
		if err := c.uniqueAllowed("columns", t, false, keyCols); err != nil {
			return err
		}
	}
	def := fmt.Sprintf("%s CONCURRENTLY %s ON %s%s", create, pg.Ident(op.Name), c.Qualified(t.Physical), tail)
	// An index over a column this migration rewrites is built after the
	// backfill: the column does not exist before expand's last step, and
	// maintaining an index during the backfill would slow it down.
	rewritten := false
	for _, p := range append(keyCols, uses...) {
		rewritten = rewritten || c.IsHidden(t.Physical, p)
	}
	add := c.Expand
	if rewritten {
		add = c.Finish
	}
	if t.Partitioned {
		pi := c.newPartitionedIndex(t, op.Name, op.Unique, tail)
		pi.buildLeaves(c, add)
		pi.attach(c, op.Name, add)
		def = fmt.Sprintf("%s %s ON ONLY %s%s", create, pg.Ident(op.Name), c.Qualified(t.Physical), tail)
	} else {
		add(Step{
			Do:        fmt.Sprintf("build index %s on %s", op.Name, t.Name),
			SQL:       append(pre, def),
			Undo:      c.dropIndexInTx(c.Opts.Schema, op.Name),
			UndoAfter: c.dropIndexAfter(c.Opts.Schema, op.Name),
			Lock:      "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
			NoTx:      true,
		})
	}
	if len(keyCols) != len(op.Columns) {
		keyCols = nil
	}
	if method == "" {
		// The model's definition names the method, as pg_get_indexdef
		// does: a later rewrite of a column of this index in the same
		// migration rebuilds it from the part after USING.
		def = strings.Replace(def, c.Qualified(t.Physical)+" (", c.Qualified(t.Physical)+" USING btree (", 1)
	}
	t.Indexes[op.Name] = &schema.Index{Name: op.Name, Columns: keyCols, Unique: op.Unique, Valid: true, Definition: def}
	c.Schema.Indexes[op.Name] = t.Name
	return nil
}

// opclassParamsSQL renders an operator class's parameters: each name as an
// identifier, each value as the file gives it (an SQL constant).
func opclassParamsSQL(field string, params OpclassParams) (string, error) {
	ps := make([]string, len(params))
	for i, p := range params {
		name, value, ok := strings.Cut(p, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || value == "" {
			return "", errField(fmt.Sprintf("%s[%d]", field, i), "must be \"name=value\", got %q", p)
		}
		ps[i] = pg.Ident(name) + " = " + value
	}
	return strings.Join(ps, ", "), nil
}

// expressions are the index's expression columns.
func (op *CreateIndex) expressions() []string {
	var out []string
	for _, col := range op.Columns {
		if col.Expression != "" {
			out = append(out, col.Expression)
		}
	}
	return out
}

func (op *CreateIndex) table() string { return op.Table }

func (op *CreateIndex) sqlFields() []sqlField {
	fs := []sqlField{
		{"predicate", op.Predicate, sqlcheck.Predicate},
		{"storage_parameters", op.StorageParameters, sqlcheck.StorageParameters},
	}
	for i, col := range op.Columns {
		field := fmt.Sprintf("columns[%d]", i)
		fs = append(fs, sqlField{field + ".expression", col.Expression, sqlcheck.Expr})
		if col.Opclass != nil {
			// Each item is "name=value": the name is quoted as an
			// identifier, the value embedded as written.
			for j, item := range col.Opclass.Params {
				if _, value, ok := strings.Cut(item, "="); ok {
					fs = append(fs, sqlField{fmt.Sprintf("%s.opclass.params[%d]", field, j), strings.TrimSpace(value), sqlcheck.OpclassParam})
				}
			}
		}
	}
	return fs
}

func (op *CreateIndex) exprFields() []exprField {
	fs := []exprField{{field: "predicate", value: op.Predicate, boolean: true}}
	for i, col := range op.Columns {
		fs = append(fs, exprField{field: fmt.Sprintf("columns[%d].expression", i), value: col.Expression})
	}
	return fs
}

func (op *CreateIndex) invert(*schema.Schema) (map[string]any, string) {
	return op1("drop_index", map[string]any{"name": op.Name}), ""
}

// namedObjects lists the collations and operator classes the index names
// (see namedObjectChecks); its method is one of the built-in ones.
func (op *CreateIndex) namedObjects() []namedObject {
	method := strings.ToLower(op.Method)
	if method == "" {
		method = "btree"
	}
	var out []namedObject
	for i, col := range op.Columns {
		field := fmt.Sprintf("columns[%d]", i)
		if col.Collate != "" {
			out = append(out, namedObject{field: field + ".collate", kind: "collation", name: col.Collate})
		}
		if col.Opclass != nil && col.Opclass.Name != "" {
			out = append(out, namedObject{field: field + ".opclass.name", kind: "operator class", name: col.Opclass.Name, method: method})
		}
	}
	return out
}
