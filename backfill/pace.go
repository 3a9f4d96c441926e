package backfill

import (
	"math"
	"time"
)

// nextSize scales the batch size n toward the one that would have taken
// target, given that n took took. One step changes it by at most 2x up and 4x
// down: growth is cautious because a bigger batch holds its row locks longer,
// shrinking is quick because a slow batch means the server is busy.
func nextSize(n int, took, target time.Duration, lo, hi int) int {
	if took <= 0 {
		took = time.Millisecond
	}
	f := float64(target) / float64(took)
	f = math.Max(0.25, math.Min(2, f))
	// Ignore jitter of ±10% so the size settles instead of wobbling.
	if f > 0.9 && f < 1.1 {
		f = 1
	}
	return clamp(int(float64(n)*f), lo, hi)
}

// nextTarget is the batch duration to aim at after a batch that waiters
// sessions queued behind: each of them waited for up to a whole batch, so a
// batch with waiters halves the target (down to an eighth of base), and a
// batch without lets it grow back by a quarter toward base. Shorter batches
// cost the backfill some speed in commits, only while the application is
// actually held up by it. waiters < 0 (unknown) keeps the target.
func nextTarget(cur, base time.Duration, waiters int) time.Duration {
	switch {
	case waiters > 0:
		return max(base/8, cur/2)
	case waiters == 0 && cur < base:
		return min(base, cur+cur/4)
	}
	return cur
}

func clamp(n, lo, hi int) int {
	if n < lo {
		n = lo
	}
	if n > hi {
		n = hi
	}
	return n
}

// window keeps the last few batches for the rate and ETA of Progress. Each
// sample's wall time runs from the end of the previous batch, so pauses
// (rate limit, back-off) count: the ETA is what the caller will really wait.
type window struct {
	rows [8]int64
	wall [8]time.Duration
	i, n int
}

func (w *window) add(rows int64, wall time.Duration) {
	w.rows[w.i], w.wall[w.i] = rows, wall
	w.i = (w.i + 1) % len(w.rows)
	if w.n < len(w.rows) {
		w.n++
	}
}

// rate is rows per second over the window, 0 before the first sample.
func (w *window) rate() float64 {
	var rows int64
	var wall time.Duration
	for i := 0; i < w.n; i++ {
		rows += w.rows[i]
		wall += w.wall[i]
	}
	if wall <= 0 {
		return 0
	}
	return float64(rows) / wall.Seconds()
}

// rateWith is rate with one more sample that is not kept: the rate a batch
// about to commit will have made.
func (w *window) rateWith(rows int64, wall time.Duration) float64 {
	c := *w
	c.add(rows, wall)
	return c.rate()
}

// eta is the time left for the rows still to do at rate; 0 when unknown.
func eta(total, done int64, rate float64) time.Duration {
	if rate <= 0 || total <= done {
		return 0
	}
	return time.Duration(float64(total-done) / rate * float64(time.Second))
}
