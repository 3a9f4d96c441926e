package phases

import (
	"testing"
	"time"
)

func TestNextDuty(t *testing.T) {
	cases := []struct {
		name                         string
		duty, rate, baseline, target float64
		want                         float64
	}{
		{"no application: full speed", 0.3, 0, 2, 0.8, 1},
		{"below the target: cut by a quarter", 1, 70, 100, 0.8, 0.75},
		{"cut again", 0.75, 70, 100, 0.8, 0.5625},
		{"never below the floor", yieldMinDuty, 10, 100, 0.8, yieldMinDuty},
		{"at the target: give back", 0.5, 80, 100, 0.8, 0.55},
		{"above: give back up to 1", 0.98, 120, 100, 0.8, 1},
	}
	for _, c := range cases {
		if got := nextDuty(c.duty, c.rate, c.baseline, c.target); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("%s: nextDuty(%g, %g, %g, %g) = %g, want %g", c.name, c.duty, c.rate, c.baseline, c.target, got, c.want)
		}
	}
}

func TestAppRate(t *testing.T) {
	t0 := time.Unix(100, 0)
	cases := []struct {
		x0, x1, ours int64
		d            time.Duration
		want         float64
	}{
		{1000, 1500, 100, 2 * time.Second, 200}, // the backfill's own IDs are left out
		{1000, 1000, 0, time.Second, 0},
		{1000, 1010, 40, time.Second, 0}, // never negative
		{1000, 2000, 0, 0, 0},            // no time, no rate
	}
	for _, c := range cases {
		if got := appRate(c.x0, c.x1, c.ours, t0, t0.Add(c.d)); got != c.want {
			t.Errorf("appRate(%d, %d, %d, %s) = %g, want %g", c.x0, c.x1, c.ours, c.d, got, c.want)
		}
	}
}
