package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onlinepg/online/operations"
)

// FuzzConvert feeds SQL to convert: whatever PostgreSQL's parser accepts must
// either convert into files online's parser reads or fail with an error,
// never panic. Seeds: every case and every statement of lint's corpus, and
// statements of kinds the cases do not cover.
func FuzzConvert(f *testing.F) {
	for _, tc := range convCases {
		f.Add(tc.sql)
	}
	files, _ := filepath.Glob("../lint/testdata/corpus/*.sql")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		for _, st := range strings.Split(string(data), ";") {
			f.Add(st + ";")
		}
	}
	for _, s := range []string{
		"CREATE TYPE t AS (a int); CREATE TABLE x OF t (a WITH OPTIONS NOT NULL);",
		"CREATE TABLE p (a int) PARTITION BY RANGE (a); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (1) TO (2);",
		"ALTER TABLE ONLY s.t ADD COLUMN a int[] DEFAULT '{}' CHECK (cardinality(a) < 3);",
		"COMMENT ON INDEX i IS 'x'; COMMENT ON COLUMN s.t.c IS NULL;",
		"DROP TABLE a, b; DROP INDEX i, j; DROP TYPE x;",
		"CREATE INDEX ON t USING gin (to_tsvector('english', body) tsvector_ops) WITH (fastupdate = off);",
		"ALTER TABLE t ALTER COLUMN a TYPE text COLLATE \"C\";",
		"ALTER TABLE t ADD CONSTRAINT x FOREIGN KEY (a, b) REFERENCES u (c, d) ON DELETE SET NULL (a) MATCH FULL DEFERRABLE INITIALLY DEFERRED NOT VALID;",
		"ALTER TABLE t REPLICA IDENTITY USING INDEX t_pkey;",
		"CREATE TABLE t (a int GENERATED ALWAYS AS IDENTITY (START 10), b int UNIQUE NULLS NOT DISTINCT, LIKE u);",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		outs, err := File("fuzz.sql", []byte(sql))
		if err != nil {
			return
		}
		for _, o := range outs {
			if _, err := operations.Parse(o.Name+".yaml", o.YAML); err != nil {
				t.Fatalf("converted file does not parse: %v\n%s", err, o.YAML)
			}
		}
	})
}
