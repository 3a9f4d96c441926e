package phases

import (
	"testing"

	"github.com/onlinepg/online/backfill"
	"github.com/onlinepg/online/state"
)

// TestAggregateCorrectsEstimates: once ranges finish, their actual rows
// against their estimates correct the estimates of the ranges still going,
// in the progress and in each range's checkpoint (what status shows).
func TestAggregateCorrectsEstimates(t *testing.T) {
	parts := []state.Backfill{{Part: 0, RowsTotal: 1000}, {Part: 1, RowsTotal: 1000}, {Part: 2, RowsTotal: 1000}, {Part: 3, RowsTotal: 1000}}
	var last backfill.Progress
	a := newAggregate("t", parts, func(p backfill.Progress) { last = p })

	a.update(1, backfill.Progress{RowsDone: 200, RowsTotal: 1000})
	if last.RowsTotal != 4000 {
		t.Fatalf("before any range finished: total %d, want the estimates' 4000", last.RowsTotal)
	}
	// The first range held half its estimate: so will the others.
	a.update(0, backfill.Progress{RowsDone: 500, RowsTotal: 500, Done: true})
	if last.RowsTotal != 2000 || last.RowsDone != 700 {
		t.Fatalf("after range 0 finished with 500 of about 1000 rows: %d of %d, want 700 of 2000", last.RowsDone, last.RowsTotal)
	}
	if got := a.partTotal(2, backfill.Checkpoint{RowsDone: 100, RowsTotal: 1000}); got != 500 {
		t.Fatalf("range 2's checkpoint total %d, want 500", got)
	}
	// Never below what a range did already.
	if got := a.partTotal(1, backfill.Checkpoint{RowsDone: 800, RowsTotal: 1000}); got != 800 {
		t.Fatalf("range 1's checkpoint total %d, want its 800 rows done", got)
	}
	a.update(1, backfill.Progress{RowsDone: 600, RowsTotal: 600, Done: true})
	a.update(2, backfill.Progress{RowsDone: 550, RowsTotal: 550, Done: true})
	a.update(3, backfill.Progress{RowsDone: 450, RowsTotal: 450, Done: true})
	if !last.Done || last.RowsTotal != 2100 || last.RowsDone != 2100 {
		t.Fatalf("all done: %+v, want 2100 of 2100", last)
	}
}
