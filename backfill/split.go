package backfill

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
)

// Range is one part of a walk split by Split: the keys above Lo (nil: from
// the start) up to and including Hi (nil: to the end). Walk it with Run,
// Options.Resume{LastKey: Lo} and Options.Until Hi.
type Range struct {
	Lo, Hi []string
	// Rows is the estimated number of keys in the range.
	Rows int64
}

const (
	// exactSplitRows: up to this many rows, Split reads its bounds along
	// the key's index with OFFSET, exactly; above it, from a sample.
	exactSplitRows = 200_000
	// sampleKeys is about how many keys the sample of a large table holds:
	// enough pages (a SYSTEM sample takes whole pages) for ranges within a few percent of even, few enough to sort in a moment.
	sampleKeys = 100_000
)

// Split divides the keys of t into at most n ranges of about equal row
// counts, from the key's actual distribution (sparse, composite and text
// keys alike), and returns them in key order with the table's row estimate.
// A small or empty table gets fewer ranges, at least one. Rows inserted
// after Split fall into the range their key belongs to, the last one for keys
// above every bound.
//
// Up to 200,000 rows the bounds are exact: the k-th key along the index,
// read with OFFSET. Above, they are the quantiles of a TABLESAMPLE SYSTEM
// sample of about 100,000 keys, which reads only the sampled pages.
func Split(ctx context.Context, conn *pgx.Conn, t Task, n int) ([]Range, int64, error) {
	if err := Validate(t); err != nil {
		return nil, 0, err
	}
	o, _ := Options{}.withDefaults()
	r := &runner{conn: conn, t: t, o: o, log: o.Logger, q: buildQueries(t)}
	r.settings()
	if err := r.prepare(ctx); err != nil {
		return nil, 0, fmt.Errorf("split %s: %w", t.name(), err)
	}
	if r.max == nil {
		return []Range{{}}, 0, nil
	}
	total := r.total
	if n <= 1 || total < int64(n) {
		return []Range{{Rows: total}}, total, nil
	}
	var bounds [][]string
	var err error
	if total <= exactSplitRows {
		bounds, err = r.exactBounds(ctx, total, n)
	} else {
		bounds, err = r.sampleBounds(ctx, total, n)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("split %s: %w", t.name(), err)
	}
	// Equal bounds (many rows of one key prefix cannot happen with a
	// unique key, but a sample can repeat itself) would make empty ranges.
	bounds = slices.CompactFunc(bounds, slices.Equal[[]string])
	ranges := make([]Range, 0, len(bounds)+1)
	var lo []string
	for _, b := range bounds {
		ranges = append(ranges, Range{Lo: lo, Hi: b})
		lo = b
	}
	ranges = append(ranges, Range{Lo: lo})
	for i := range ranges {
		ranges[i].Rows = total / int64(len(ranges))
	}
	return ranges, total, nil
}

// exactBounds reads the keys at total*i/n along the index.
func (r *runner) exactBounds(ctx context.Context, total int64, n int) ([][]string, error) {
	tx, err := r.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer r.rollback(tx)
	var out [][]string
	for i := 1; i < n; i++ {
		key := make([]string, len(r.t.Key))
		// The bound query without a lower bound, up to the largest key.
		args := append(keyArgs(r.max), total*int64(i)/int64(n))
		err := tx.QueryRow(ctx, r.q.bound[0], args...).Scan(scanDest(key)...)
		if errors.Is(err, pgx.ErrNoRows) {
			break // fewer rows than estimated
		}
		if err != nil {
			return nil, pg.WithSQL(err, r.q.bound[0])
		}
		out = append(out, key)
	}
	return out, tx.Commit(ctx)
}

// sampleBounds takes the n-quantiles of a sample of the keys, sorted by the
// key's columns themselves (not their text).
func (r *runner) sampleBounds(ctx context.Context, total int64, n int) ([][]string, error) {
	pct := min(100, 100*float64(sampleKeys)/float64(total))
	q := "SELECT " + keyText(r.t.Key, walkAlias) + " FROM " + r.t.name() + " AS " + pg.Ident(walkAlias) +
		" TABLESAMPLE SYSTEM ($1) ORDER BY " + keyOrder(r.t.Key, walkAlias, "")
	tx, err := r.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer r.rollback(tx)
	rows, err := tx.Query(ctx, q, pct)
	if err != nil {
		return nil, pg.WithSQL(err, q)
	}
	var sample [][]string
	for rows.Next() {
		key := make([]string, len(r.t.Key))
		if err := rows.Scan(scanDest(key)...); err != nil {
			rows.Close()
			return nil, err
		}
		sample = append(sample, key)
	}
	if err := rows.Err(); err != nil {
		return nil, pg.WithSQL(err, q)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	if len(sample) < n {
		// The sample missed (a table much smaller than its estimate):
		// read the bounds exactly instead.
		return r.exactBounds(ctx, min(total, exactSplitRows), n)
	}
	out := make([][]string, 0, n-1)
	for i := 1; i < n; i++ {
		out = append(out, sample[len(sample)*i/n])
	}
	return out, nil
}
