package difffuzz

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/onlinepg/online/internal/pg"
)

// Wide is the pair of seed for online diff's property test: Generate's
// base schema and changes, and beside them a second schema (s1, a table
// with rows, a sequence, a view) with changes of the kinds no migration
// file operation carries, that diff must express as sql operations or
// name: columns, types, collations and indexes of another schema's table,
// a new table there, a sequence's options, a changed view, a policy, a
// table moved to a new schema, a collated column added to a table of the
// managed schema. Generate's own draws are left as they were, so the
// differential fuzzer (which needs the file form) is unchanged.
func Wide(seed uint64) (base, changes []string, kinds string) {
	m := Generate(seed)
	// A stream of its own: the same seed draws Generate's changes as
	// before.
	r := rand.New(rand.NewPCG(seed^0x5bd1e995, seed))
	base = append(append([]string{}, m.Base...),
		"CREATE SCHEMA s1",
		"CREATE TABLE s1.items (id int PRIMARY KEY, sku text NOT NULL, qty int, label text)",
		"INSERT INTO s1.items VALUES (1, 'a', 1, 'x'), (2, 'b', 2, 'y'), (3, 'c', 3, NULL)",
		"CREATE SEQUENCE s1.tickets MAXVALUE 100000",
		"CREATE VIEW s1.v AS SELECT id, sku FROM s1.items")
	changes = m.Plain()
	k := []string{m.Kinds()}
	draw := func(p float64, kind string, stmts ...string) bool {
		if r.Float64() >= p {
			return false
		}
		changes = append(changes, stmts...)
		k = append(k, kind)
		return true
	}
	// Ordered so that each applies to what the ones before left: a type
	// change before the view and the policy that would pin the column.
	draw(0.3, "s1 add column", "ALTER TABLE s1.items ADD COLUMN note text")
	draw(0.3, "s1 type", "ALTER TABLE s1.items ALTER COLUMN qty TYPE bigint")
	draw(0.3, "s1 collation", `ALTER TABLE s1.items ALTER COLUMN label TYPE text COLLATE "C"`)
	draw(0.3, "s1 index", "CREATE INDEX items_qty ON s1.items (qty DESC)")
	if !draw(0.15, "sequence dropped", "DROP SEQUENCE s1.tickets") {
		draw(0.3, "sequence options", fmt.Sprintf("ALTER SEQUENCE s1.tickets INCREMENT BY %d MAXVALUE %d CYCLE", 2+r.IntN(5), 1000+r.IntN(1000)))
	}
	draw(0.3, "view changed", "CREATE OR REPLACE VIEW s1.v AS SELECT id, sku, qty FROM s1.items WHERE qty > 0")
	draw(0.2, "s1 new table", "CREATE TABLE s1.tags (id serial PRIMARY KEY, item_id int REFERENCES s1.items (id), name text COLLATE \"POSIX\")")
	draw(0.2, "policy", "ALTER TABLE s1.items ENABLE ROW LEVEL SECURITY", "CREATE POLICY positive ON s1.items USING (qty > 0)")
	if names := m.New.TableNames(); len(names) > 0 {
		t := names[r.IntN(len(names))]
		draw(0.2, "collated column", fmt.Sprintf(`ALTER TABLE %s ADD COLUMN extra_c text COLLATE "C"`, pg.Ident(t)))
	}
	draw(0.15, "table moved", "CREATE SCHEMA s2", "ALTER TABLE s1.items SET SCHEMA s2")
	return base, changes, strings.Trim(strings.Join(k, "; "), "; ")
}
