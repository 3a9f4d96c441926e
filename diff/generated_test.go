package diff_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onlinepg/online/internal/difffuzz"
	"github.com/onlinepg/online/internal/pgtest"
)

// TestDiffGeneratedPairs holds diff to its rule on generated pairs of
// schemas: a random schema with rows (the differential fuzzer's
// generator, with a second schema beside it: difffuzz.Wide) is the live
// one, and the same schema with a random set of changes applied in plain
// SQL is the desired file: changes of tables, columns, constraints and
// indexes, and of another schema's tables, sequences, views, policies,
// collations and a table moved between schemas. Every migration diff
// writes is run for real; the run must agree with what diff said, and a
// migration that leaves the schema different without saying so fails
// (runPass). It runs seeds 1, 2, ... for ONLINE_DIFF_GEN_TIME (default
// 45s); ONLINE_DIFF_GEN_FIRST moves the first seed.
func TestDiffGeneratedPairs(t *testing.T) {
	budget := 45 * time.Second
	if v := os.Getenv("ONLINE_DIFF_GEN_TIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("ONLINE_DIFF_GEN_TIME: %v", err)
		}
		budget = d
	}
	first := uint64(1)
	if v := os.Getenv("ONLINE_DIFF_GEN_FIRST"); v != "" {
		if _, err := fmt.Sscan(v, &first); err != nil {
			t.Fatalf("ONLINE_DIFF_GEN_FIRST: %v", err)
		}
	}
	var mu sync.Mutex
	counts := map[string]int{}
	url, desiredURL := pgtest.NewDB(t), pgtest.NewDB(t)
	began := time.Now()
	n := 0
	for seed := first; time.Since(began) < budget; seed++ {
		// The desired file is the base with the changes (and the UPDATEs
		// some of them need, such as a fill before SET NOT NULL); Wide
		// adds another schema and the kinds only sql operations carry.
		base, changes, kinds := difffuzz.Wide(seed)
		p := pair{name: fmt.Sprintf("seed %d (%s)", seed, kinds), old: strings.Join(base, ";\n") + ";",
			new: strings.Join(append(append([]string{}, base...), changes...), ";\n") + ";"}
		n++
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			emptyDB(t, url)
			emptyDB(t, desiredURL)
			first, reached := runPairAny(t, p, url, desiredURL)
			mu.Lock()
			counts[first]++
			counts[fmt.Sprintf("reached %d", reached)]++
			mu.Unlock()
		})
	}
	t.Logf("generated pairs: %d in %s; first migration: exact %d, said not expressed %d, failed and said %d, refused by the rows (start undone) %d, silently wrong %d, verification unfaithful %d; desired schema reached after 1 migration %d, 2 %d, 3 %d, never %d",
		n, time.Since(began).Round(time.Second), counts["exact"], counts["said"], counts["fail"], counts["data"], counts["silent"], counts["unfaithful"],
		counts["reached 1"], counts["reached 2"], counts["reached 3"], counts["reached 0"])
	if n == 0 {
		t.Fatal("no pair ran")
	}
}
