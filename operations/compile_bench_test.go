package operations

import (
	"fmt"
	"strings"
	"testing"

	"github.com/onlinepg/online/schema"
)

// The compile of a file grows close to linearly with its operations:
// `online plan` of a file of n operations. Two shapes: n create_table, and
// n/2 create_table each followed by an add_column on its table. Run with
//
//	go test ./operations -run '^$' -bench BenchmarkCompileScale -benchtime 3x
//
// and compare ns/op per operation across n (the ns/op/op figure).
func BenchmarkCompileScale(b *testing.B) {
	for _, shape := range []string{"create_table", "create_table+add_column", "add_column on existing tables", "alter_column on existing tables"} {
		for _, n := range []int{100, 1000, 10000} {
			b.Run(fmt.Sprintf("%s/ops=%d", shape, n), func(b *testing.B) {
				doc := scaleDoc(shape, n)
				empty := &schema.Schema{Name: "public", Tables: map[string]*schema.Table{}, Indexes: map[string]string{},
					Enums: map[string][]string{}, EnumUses: map[string][]schema.TypeUse{}, Types: map[string]string{}, Relations: map[string]bool{},
					ServerVersion: 150000}
				if strings.Contains(shape, "existing") {
					// n tables as schema.Read would model them.
					for i := 0; i < n; i++ {
						name := fmt.Sprintf("t%d", i)
						empty.Tables[name] = &schema.Table{Name: name, Physical: name, OID: uint32(16384 + i), PrimaryKey: []string{"id"},
							Columns: []*schema.Column{
								{Name: "id", Physical: "id", Type: "bigint", Unique: true},
								{Name: "v", Physical: "v", Type: "text", Nullable: true},
							},
							Indexes:     map[string]*schema.Index{name + "_pkey": {Name: name + "_pkey", Columns: []string{"id"}, Unique: true, Primary: true, Valid: true, Constraint: name + "_pkey"}},
							Constraints: map[string]*schema.Constraint{}, ReplicaIdentity: "d"}
						empty.Indexes[name+"_pkey"] = name
						empty.Types[name] = "c"
						empty.Relations[name] = true
						empty.Relations[name+"_pkey"] = true
					}
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					m, err := Parse("scale.yaml", []byte(doc))
					if err != nil {
						b.Fatal(err)
					}
					if _, _, err := Compile(m, empty, Options{Schema: "public", StateSchema: "online"}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/op/op")
			})
		}
	}
}

// scaleDoc is a migration file of n operations of the given shape.
func scaleDoc(shape string, n int) string {
	var b strings.Builder
	b.WriteString("operations:\n")
	for i := 0; i < n; i++ {
		switch {
		case shape == "add_column on existing tables":
			fmt.Fprintf(&b, "  - add_column: { table: t%d, column: { name: extra, type: int, nullable: true } }\n", i)
		case shape == "alter_column on existing tables":
			fmt.Fprintf(&b, "  - alter_column: { table: t%d, column: v, type: varchar(100), up: \"v\", down: \"v\" }\n", i)
		case shape == "create_table" || i%2 == 0:
			fmt.Fprintf(&b, "  - create_table: { name: t%d, columns: [ { name: id, type: bigint, pk: true }, { name: v, type: text, nullable: true } ] }\n", i)
		default:
			fmt.Fprintf(&b, "  - add_column: { table: t%d, column: { name: extra, type: int, nullable: true } }\n", i-1)
		}
	}
	return b.String()
}
