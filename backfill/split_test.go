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

// TestEstimateIgnoresDeadRows: after an UPDATE of every row (what an earlier
// backfill leaves until a vacuum), the table has about twice its pages; the
// row estimate must still be the rows there are, not the row versions.
func TestEstimateIgnoresDeadRows(t *testing.T) {
	t.Parallel()
	const rows = 100_000
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	// The insert's counts are published before ANALYZE sets the live
	// count, as an application's long since are; published after, they
	// would be added to it. pg_stat_force_next_flush is PostgreSQL 15's;
	// 14 sends its counts to the statistics collector, given a moment.
	flush := "SELECT pg_stat_force_next_flush()"
	var server int
	if err := conn.QueryRow(context.Background(), "SELECT current_setting('server_version_num')::int").Scan(&server); err != nil {
		t.Fatal(err)
	}
	if server < 150000 {
		flush = "SELECT pg_sleep(1)"
	}
	pgtest.Exec(t, conn, "CREATE TABLE s (id bigint PRIMARY KEY, v text) WITH (autovacuum_enabled = off, fillfactor = 100)",
		fmt.Sprintf("INSERT INTO s SELECT g, 'x' FROM generate_series(1, %d) g", rows),
		flush,
		"ANALYZE s",
		"UPDATE s SET v = 'y'",
		flush)
	var pages int64
	if err := conn.QueryRow(context.Background(), "SELECT pg_relation_size('s') / current_setting('block_size')::int8 / relpages FROM pg_class WHERE relname = 's'").Scan(&pages); err != nil || pages < 2 {
		t.Fatalf("the update did not double the table (%d× its analyzed pages, %v): the test proves nothing", pages, err)
	}
	_, total, err := Split(context.Background(), conn, Task{Schema: "public", Table: "s", Key: bigintKey(), Set: []Assignment{{Column: "v", Expr: "'z'"}}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if total < rows*9/10 || total > rows*11/10 {
		t.Fatalf("estimate %d rows, want about %d (the dead rows counted)", total, rows)
	}
}

func TestRowEstimate(t *testing.T) {
	cases := []struct {
		name                              string
		reltuples                         float64
		relpages, pages, live, dead, want int64
	}{
		{"analyzed, unchanged", 1000, 10, 10, 1000, 0, 1000},
		{"every row updated since: twice the pages, half dead", 1000, 10, 20, 1000, 1000, 1000},
		{"analyzed after the update: reltuples live only", 1000, 20, 20, 1000, 1000, 1000},
		{"grown since, the live count behind: the pages", 1000, 10, 20, 1000, 0, 2000},
		{"statistics reset since: the pages", 1000, 10, 20, 100, 0, 2000},
		{"no statistics: the pages", 1000, 10, 20, 0, 0, 2000},
		{"never analyzed: count", -1, 0, 20, 500, 0, -1},
		{"empty when analyzed, grown since: count", 0, 0, 20, 500, 0, -1},
		{"empty when analyzed, empty now", 0, 0, 0, 0, 0, 0},
	}
	for _, c := range cases {
		if got := rowEstimate(c.reltuples, c.relpages, c.pages, c.live, c.dead); got != c.want {
			t.Errorf("%s: rowEstimate = %d, want %d", c.name, got, c.want)
		}
	}
}
