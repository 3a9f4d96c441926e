package backfill

import (
	"context"
	"fmt"
	"testing"

	"github.com/onlinepg/online/internal/pgtest"
)

// TestSplit splits a small table exactly and a large one from a sample,
// both with sparse keys: the ranges follow each other, cover every key once,
// and hold about equal shares of the rows whatever the gaps between ids.
func TestSplit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		rows int64
		tol  float64 // allowed distance of a range's share from 1/n
	}{
		{"exact", 40_000, 0.01},
		{"sampled", 300_000, 0.08},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn := pgtest.Connect(t, pgtest.NewDB(t))
			// 90% of the rows dense, the last 10% a million ids apart: a
			// split by id value would give one range nearly everything.
			pgtest.Exec(t, conn, "CREATE TABLE s (id bigint PRIMARY KEY, v text)",
				fmt.Sprintf("INSERT INTO s SELECT CASE WHEN g <= %d THEN g ELSE g::bigint * 1000000 END, 'x' FROM generate_series(1, %d) g", tc.rows*9/10, tc.rows),
				"ANALYZE s")
			const n = 4
			ranges, total, err := Split(context.Background(), conn, Task{Schema: "public", Table: "s", Key: bigintKey(), Set: []Assignment{{Column: "v", Expr: "'y'"}}}, n)
			if err != nil {
				t.Fatal(err)
			}
			if len(ranges) != n || total < tc.rows*9/10 || total > tc.rows*11/10 {
				t.Fatalf("%d ranges, total %d; want %d ranges near %d rows", len(ranges), total, n, tc.rows)
			}
			if ranges[0].Lo != nil || ranges[n-1].Hi != nil {
				t.Fatalf("the first range must start at the beginning and the last end at the end: %+v", ranges)
			}
			var sum int64
			for i, r := range ranges {
				if i > 0 && fmt.Sprint(r.Lo) != fmt.Sprint(ranges[i-1].Hi) {
					t.Fatalf("range %d starts at %v, the one before ends at %v", i, r.Lo, ranges[i-1].Hi)
				}
				q, args := "SELECT count(*) FROM s WHERE true", []any{}
				if r.Lo != nil {
					args = append(args, r.Lo[0])
					q += fmt.Sprintf(" AND id > $%d::bigint", len(args))
				}
				if r.Hi != nil {
					args = append(args, r.Hi[0])
					q += fmt.Sprintf(" AND id <= $%d::bigint", len(args))
				}
				c := count(t, conn, q, args...)
				sum += c
				if share := float64(c) / float64(tc.rows); share < 1.0/n-tc.tol || share > 1.0/n+tc.tol {
					t.Errorf("range %d (%v, %v] holds %d rows, %.3f of the table", i, r.Lo, r.Hi, c, share)
				}
			}
			if sum != tc.rows {
				t.Fatalf("the ranges hold %d rows, the table %d", sum, tc.rows)
			}
		})
	}
}
