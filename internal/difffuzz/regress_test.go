package difffuzz_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/onlinepg/online/internal/pgtest"
)

// TestComposedRegressions holds online to the same three oracles on the
// compositions that failed before (the examples of issue 20, and what the
// fuzzer found), written out by hand: each with the plain statements that
// make the same change, and writes through both versions.
func TestComposedRegressions(t *testing.T) {
	pgroll := pgrollPath(t)
	url := pgtest.NewDB(t)
	items := []string{
		`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price int)`,
		`CREATE TABLE owners (id int PRIMARY KEY)`,
		`INSERT INTO owners VALUES (1), (2)`,
		`INSERT INTO items VALUES (1, 'a', 10), (2, 'b', NULL)`,
	}
	cases := []struct {
		name                 string
		base                 []string
		yaml                 string
		plain                []string
		oldWrites, newWrites []string
		tables               []string
		minServer            int // server_version_num the case needs
	}{
		{
			name: "rename_table then add, unique, drop on the new name",
			base: items,
			yaml: `
  - rename_table: {from: items, to: products}
  - add_column: {table: products, column: {name: sku, type: text, nullable: true}}
  - create_constraint: {table: products, type: unique, name: products_name_uq, columns: [name], up: {name: name}, down: {name: name}}
  - drop_column: {table: products, column: price}`,
			plain: []string{
				`ALTER TABLE items RENAME TO products`, `ALTER TABLE products ADD COLUMN sku text`,
				`ALTER TABLE products ADD CONSTRAINT products_name_uq UNIQUE (name)`, `ALTER TABLE products DROP COLUMN price`,
			},
			oldWrites: []string{`INSERT INTO items VALUES (3, 'c', 30)`, `UPDATE items SET name = 'a2' WHERE id = 1`},
			newWrites: []string{`INSERT INTO products (id, name, sku) VALUES (4, 'd', 'x')`, `UPDATE products SET name = 'b2' WHERE id = 2`},
			tables:    []string{"products", "owners"},
		},
		{
			name: "rename_table, rename_column, then a type change and a foreign key on the renamed column",
			base: items,
			yaml: `
  - rename_table: {from: items, to: products}
  - rename_column: {table: products, from: name, to: item_name}
  - alter_column: {table: products, column: item_name, type: varchar(100), up: item_name, down: item_name}
  - rename_column: {table: products, from: price, to: owner_id}
  - create_constraint: {table: products, type: foreign_key, name: products_owner_fk, columns: [owner_id], references: {table: owners, columns: [id]}, up: {owner_id: "CASE WHEN owner_id IN (1, 2) THEN owner_id END"}, down: {owner_id: owner_id}}`,
			plain: []string{
				`ALTER TABLE items RENAME TO products`, `ALTER TABLE products RENAME COLUMN name TO item_name`,
				`ALTER TABLE products ALTER COLUMN item_name TYPE varchar(100)`, `ALTER TABLE products RENAME COLUMN price TO owner_id`,
				`UPDATE products SET owner_id = CASE WHEN owner_id IN (1, 2) THEN owner_id END`,
				`ALTER TABLE products ADD CONSTRAINT products_owner_fk FOREIGN KEY (owner_id) REFERENCES owners (id)`,
			},
			oldWrites: []string{`INSERT INTO items VALUES (3, 'c', 2)`},
			newWrites: []string{`INSERT INTO products (id, item_name, owner_id) VALUES (4, 'd', 1)`, `UPDATE products SET item_name = 'a2' WHERE id = 1`},
			tables:    []string{"products"},
		},
		{
			name: "rename_table, rename_column, set NOT NULL",
			base: items,
			yaml: `
  - rename_table: {from: items, to: products}
  - rename_column: {table: products, from: price, to: cost}
  - alter_column: {table: products, column: cost, nullable: false, up: "coalesce(cost, 0)", down: cost}`,
			plain: []string{
				`ALTER TABLE items RENAME TO products`, `ALTER TABLE products RENAME COLUMN price TO cost`,
				`UPDATE products SET cost = coalesce(cost, 0)`, `ALTER TABLE products ALTER COLUMN cost SET NOT NULL`,
			},
			oldWrites: []string{`INSERT INTO items VALUES (3, 'c', NULL)`},
			newWrites: []string{`INSERT INTO products (id, name, cost) VALUES (4, 'd', 5)`},
			tables:    []string{"products"},
		},
		{
			name:   "add_column then drop_column of it",
			base:   items,
			yaml:   "\n  - add_column: {table: items, column: {name: sku, type: text, nullable: true}}\n  - drop_column: {table: items, column: sku}",
			tables: []string{"items"},
		},
		{
			name: "create_table, drop_table, create_table of one name",
			base: items,
			yaml: `
  - create_table: {name: t1, columns: [{name: id, type: int, pk: true}]}
  - drop_table: {name: t1}
  - create_table: {name: t1, columns: [{name: id, type: bigint, pk: true}, {name: v, type: text, nullable: true}]}`,
			plain:     []string{`CREATE TABLE t1 (id bigint PRIMARY KEY, v text)`},
			newWrites: []string{`INSERT INTO t1 VALUES (1, 'x')`},
			tables:    []string{"t1"},
		},
		{
			name: "create_table, then alter_column, create_constraint and add_column with up on it",
			base: items,
			yaml: `
  - create_table: {name: t1, columns: [{name: id, type: int, pk: true}, {name: v, type: text, nullable: true}]}
  - alter_column: {table: t1, column: v, type: varchar(20), up: v, down: v}
  - create_constraint: {table: t1, type: check, name: t1_v_chk, columns: [v], check: "length(v) > 0", up: {v: v}, down: {v: v}}
  - add_column: {table: t1, column: {name: w, type: int, nullable: true}, up: "1"}`,
			plain:     []string{`CREATE TABLE t1 (id int PRIMARY KEY, v varchar(20), w int, CONSTRAINT t1_v_chk CHECK (length(v) > 0))`},
			newWrites: []string{`INSERT INTO t1 VALUES (1, 'x', 2)`},
			tables:    []string{"t1"},
		},
		{
			name: "a type change that the default and the check no longer fit",
			base: []string{
				`CREATE TABLE t (id int PRIMARY KEY, c text DEFAULT '0', d text CHECK (length(d) > 3))`,
				`INSERT INTO t VALUES (1, '5', 'abcd'), (2, '7', 'abcde')`,
			},
			yaml: `
  - alter_column: {table: t, column: c, type: integer, up: "c::integer", down: "c::text"}
  - alter_column: {table: t, column: d, type: integer, up: "length(d)", down: "repeat('x', d)"}`,
			plain: []string{
				`ALTER TABLE t ALTER COLUMN c DROP DEFAULT`, `ALTER TABLE t ALTER COLUMN c TYPE integer USING c::integer`,
				`ALTER TABLE t DROP CONSTRAINT t_d_check`, `ALTER TABLE t ALTER COLUMN d TYPE integer USING length(d)`,
			},
			oldWrites: []string{`INSERT INTO t VALUES (3, '9', 'abcdef')`},
			newWrites: []string{`INSERT INTO t VALUES (4, 11, 7)`},
			tables:    []string{"t"},
		},
		{
			name: "a unique constraint, then a rewrite of its column",
			base: []string{`CREATE TABLE t (id int PRIMARY KEY, c int)`, `INSERT INTO t VALUES (1, 1), (2, 2)`},
			yaml: `
  - create_constraint: {table: t, type: unique, name: t_c_uq, columns: [c], up: {c: c}, down: {c: c}}
  - alter_column: {table: t, column: c, type: bigint, up: c, down: c}
  - alter_column: {table: t, column: c, unique: {name: t_c_uq2}, up: c, down: c}`,
			plain: []string{
				`ALTER TABLE t ADD CONSTRAINT t_c_uq UNIQUE (c)`, `ALTER TABLE t ALTER COLUMN c TYPE bigint`,
				`ALTER TABLE t ADD CONSTRAINT t_c_uq2 UNIQUE (c)`,
			},
			oldWrites: []string{`INSERT INTO t VALUES (3, 3)`},
			newWrites: []string{`INSERT INTO t VALUES (4, 4)`},
			tables:    []string{"t"},
		},
		{
			name: "a unique constraint built in place, then a rewrite of its column",
			base: []string{`CREATE TABLE t (id int PRIMARY KEY, c int, d int)`, `INSERT INTO t VALUES (1, 1, 1), (2, 2, 2)`},
			yaml: `
  - create_constraint: {table: t, type: unique, name: t_c_uq, columns: [c]}
  - alter_column: {table: t, column: c, type: bigint, up: c, down: c}
  - alter_column: {table: t, column: d, unique: {name: t_d_uq}}
  - alter_column: {table: t, column: d, type: bigint, up: d, down: d}`,
			plain: []string{
				`ALTER TABLE t ADD CONSTRAINT t_c_uq UNIQUE (c)`, `ALTER TABLE t ALTER COLUMN c TYPE bigint`,
				`ALTER TABLE t ADD CONSTRAINT t_d_uq UNIQUE (d)`, `ALTER TABLE t ALTER COLUMN d TYPE bigint`,
			},
			oldWrites: []string{`INSERT INTO t VALUES (3, 3, 3)`},
			newWrites: []string{`INSERT INTO t VALUES (4, 4, 4)`},
			tables:    []string{"t"},
		},
		{
			name: "a rewrite, then a rename of the constraints it rebuilds",
			base: []string{
				`CREATE TABLE t (id int PRIMARY KEY, c int CONSTRAINT t_c_chk CHECK (c > 0) CONSTRAINT t_c_key UNIQUE)`,
				`INSERT INTO t VALUES (1, 1), (2, 2)`,
			},
			yaml: `
  - alter_column: {table: t, column: c, type: bigint, up: c, down: c}
  - rename_constraint: {table: t, from: t_c_chk, to: t_c_positive}
  - rename_constraint: {table: t, from: t_c_key, to: t_c_unique}`,
			plain: []string{
				`ALTER TABLE t ALTER COLUMN c TYPE bigint`, `ALTER TABLE t RENAME CONSTRAINT t_c_chk TO t_c_positive`,
				`ALTER TABLE t RENAME CONSTRAINT t_c_key TO t_c_unique`,
			},
			oldWrites: []string{`INSERT INTO t VALUES (3, 3)`},
			newWrites: []string{`INSERT INTO t VALUES (4, 4)`},
			tables:    []string{"t"},
		},
		{
			name: "a check built by the migration, then a rewrite of its column, then a check dropped with its column",
			base: []string{`CREATE TABLE t (id int PRIMARY KEY, c int, d int)`, `INSERT INTO t VALUES (1, 1, 1), (2, 2, 2)`},
			yaml: `
  - create_constraint: {table: t, type: check, name: t_c_pos, columns: [c], check: "c > 0"}
  - alter_column: {table: t, column: c, type: bigint, up: c, down: c}
  - alter_column: {table: t, column: d, check: {name: t_d_pos, constraint: "d > 0"}, up: d, down: d}
  - drop_column: {table: t, column: d}`,
			plain: []string{
				`ALTER TABLE t ADD CONSTRAINT t_c_pos CHECK (c > 0)`, `ALTER TABLE t ALTER COLUMN c TYPE bigint`, `ALTER TABLE t DROP COLUMN d`,
			},
			oldWrites: []string{`INSERT INTO t VALUES (3, 3, 3)`},
			newWrites: []string{`INSERT INTO t VALUES (4, 4)`},
			tables:    []string{"t"},
		},
		{
			name: "a rewrite keeps an exclusion constraint and a deferrable unique constraint",
			base: []string{
				`CREATE TABLE t (id int PRIMARY KEY, a text, v int, CONSTRAINT t_a_ex EXCLUDE USING hash (a WITH =), CONSTRAINT t_v_key UNIQUE (v) DEFERRABLE INITIALLY DEFERRED)`,
				`INSERT INTO t VALUES (1, 'x', 1), (2, 'y', 2)`,
			},
			yaml: `
  - alter_column: {table: t, column: a, type: varchar(50), up: a, down: a}
  - alter_column: {table: t, column: v, type: bigint, up: v, down: v}`,
			plain: []string{`ALTER TABLE t ALTER COLUMN a TYPE varchar(50)`, `ALTER TABLE t ALTER COLUMN v TYPE bigint`},
			// Swapping two values works only while the check is deferred:
			// through the new version during the migration too.
			oldWrites: []string{`INSERT INTO t VALUES (3, 'z', 3)`},
			newWrites: []string{`BEGIN; UPDATE t SET v = 2 WHERE id = 1; UPDATE t SET v = 1 WHERE id = 2; COMMIT`},
			tables:    []string{"t"},
		},
		{
			name: "an index on a partitioned table, then a type change of its column",
			base: []string{
				`CREATE TABLE pt (id int, amount int, PRIMARY KEY (id)) PARTITION BY RANGE (id)`,
				`CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (100)`,
				`INSERT INTO pt VALUES (1, 1), (2, 2)`,
			},
			yaml: `
  - create_index: {table: pt, name: pt_amount_idx, columns: [{column: amount}]}
  - alter_column: {table: pt, column: amount, type: bigint, up: amount, down: amount}`,
			plain:     []string{`ALTER TABLE pt ALTER COLUMN amount TYPE bigint`, `CREATE INDEX pt_amount_idx ON pt (amount)`, `ALTER INDEX pt1_amount_idx RENAME TO pt1_pt_amount_idx_2`},
			oldWrites: []string{`INSERT INTO pt VALUES (3, 3)`},
			newWrites: []string{`INSERT INTO pt VALUES (4, 4)`},
			tables:    []string{"pt"},
		},
		{
			name: "a drop_index after a rewrite of its column",
			base: []string{`CREATE TABLE t (id int PRIMARY KEY, c int)`, `CREATE INDEX t_c_idx ON t (c)`, `INSERT INTO t VALUES (1, 1), (2, NULL)`},
			yaml: `
  - alter_column: {table: t, column: c, nullable: false, up: "coalesce(c, 0)", down: c}
  - drop_index: {name: t_c_idx}`,
			plain:  []string{`UPDATE t SET c = 0 WHERE c IS NULL`, `ALTER TABLE t ALTER COLUMN c SET NOT NULL`, `DROP INDEX t_c_idx`},
			tables: []string{"t"},
		},
		{
			name: "a rewrite, then a drop_column of the same column",
			base: []string{`CREATE TABLE t (id int PRIMARY KEY, c int NOT NULL, d int)`, `INSERT INTO t VALUES (1, 1, 1), (2, 2, NULL)`},
			yaml: `
  - create_constraint: {table: t, type: unique, name: t_c_uq, columns: [c], up: {c: c}, down: {c: c}}
  - drop_column: {table: t, column: c, down: "id + 100"}`,
			plain:     []string{`ALTER TABLE t DROP COLUMN c`},
			oldWrites: []string{`INSERT INTO t VALUES (3, 3, 3)`},
			newWrites: []string{`INSERT INTO t (id, d) VALUES (4, 4)`},
			tables:    []string{"t"},
		},
		{
			name: "a NULL through the new version into a column made nullable",
			base: []string{`CREATE TABLE t (id int PRIMARY KEY, c int NOT NULL)`, `INSERT INTO t VALUES (1, 1)`},
			yaml: `
  - alter_column: {table: t, column: c, nullable: true, up: c, down: "coalesce(c, 0)"}`,
			plain:     []string{`ALTER TABLE t ALTER COLUMN c DROP NOT NULL`},
			oldWrites: []string{`INSERT INTO t VALUES (2, 2)`},
			newWrites: []string{`INSERT INTO t VALUES (3, NULL)`},
			tables:    []string{"t"},
		},
		{
			name: "a foreign key whose ON DELETE SET NULL names some of its columns",
			base: []string{
				`CREATE TABLE teams (id int, org int, PRIMARY KEY (id, org))`, `INSERT INTO teams VALUES (1, 1), (2, 1)`,
				`CREATE TABLE m (id int PRIMARY KEY, team_id int, org int NOT NULL)`, `INSERT INTO m VALUES (1, 1, 1)`,
			},
			yaml: `
  - create_constraint: {table: m, type: foreign_key, name: m_team_fk, columns: [team_id, org], references: {table: teams, columns: [id, org], on_delete: SET NULL, on_delete_set_columns: [team_id]}, up: {team_id: team_id, org: org}, down: {team_id: team_id, org: org}}`,
			plain:     []string{`ALTER TABLE m ADD CONSTRAINT m_team_fk FOREIGN KEY (team_id, org) REFERENCES teams (id, org) ON DELETE SET NULL (team_id)`},
			oldWrites: []string{`INSERT INTO m VALUES (2, 2, 1)`},
			newWrites: []string{`INSERT INTO m VALUES (3, 1, 1)`, `DELETE FROM teams WHERE id = 2`},
			tables:    []string{"m", "teams"},
			minServer: 150000,
		},
	}
	admin := pgtest.Connect(t, url)
	var server int
	if err := admin.QueryRow(context.Background(), "SELECT current_setting('server_version_num')::int").Scan(&server); err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if server < tc.minServer {
				t.Skipf("needs PostgreSQL %d or later; the server is %d", tc.minServer/10000, server/10000)
			}
			s := spec{Seed: uint64(900001 + i), kinds: tc.name, Base: tc.base, Plain: tc.plain,
				file: []byte("operations:" + tc.yaml + "\n"), yaml: true, oldWrites: tc.oldWrites, newWrites: tc.newWrites, tables: tc.tables}
			if o := runCase(t, url, s, pgroll); o == failed {
				t.Logf("case %q failed", tc.name)
			} else {
				t.Log(fmt.Sprint("outcome: ", []string{"the schema of pgroll and of PostgreSQL", "pgroll fails", "PostgreSQL's; pgroll builds another"}[o]))
			}
		})
	}
}
