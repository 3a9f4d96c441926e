package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/onlinepg/online/backfill"
)

// progress shows backfill progress: a bar redrawn in place on a terminal,
// otherwise a log line at most every few seconds.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	bar     bool
	log     zerolog.Logger
	last    time.Time
	drawn   bool
	every   time.Duration
	current string
}

func newProgress(w io.Writer, bar bool, log zerolog.Logger) *progress {
	return &progress{w: w, bar: bar, log: log, every: 5 * time.Second}
}

func (p *progress) update(pr backfill.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.bar {
		if !pr.Done && now.Sub(p.last) < 100*time.Millisecond {
			return
		}
		p.last = now
		fmt.Fprintf(p.w, "\r\033[K%s", renderBar(pr))
		p.drawn = true
		if pr.Done {
			fmt.Fprintln(p.w)
			p.drawn = false
		}
		return
	}
	if !pr.Done && now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	ev := p.log.Info().Str("event", "backfill_progress").Str("table", pr.Table).Int64("rows_done", pr.RowsDone).
		Int64("rows_total", pr.RowsTotal).Float64("rows_per_sec", float64(int64(pr.Rate))).Int("batch_size", pr.BatchSize)
	if pr.ETA > 0 {
		ev = ev.Dur("eta", pr.ETA.Round(time.Second))
	}
	if pr.BatchTime > 0 {
		// Below --backfill-batch-time while application writes wait
		// for the backfill's row locks.
		ev = ev.Dur("batch_time", pr.BatchTime)
	}
	if pr.Duty > 0 && pr.Duty < 1 {
		// The share of time the backfill runs while it yields to the
		// application's writes (--backfill-yield).
		ev = ev.Float64("duty", pr.Duty)
	}
	ev.Bool("done", pr.Done).Msg("backfill progress")
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func renderBar(pr backfill.Progress) string {
	const width = 30
	frac := 0.0
	if pr.RowsTotal > 0 {
		frac = float64(pr.RowsDone) / float64(pr.RowsTotal)
	}
	if pr.Done {
		frac = 1
	}
	frac = min(frac, 1)
	filled := int(frac * width)
	eta := "--"
	if pr.ETA > 0 && !pr.Done {
		eta = pr.ETA.Round(time.Second).String()
	}
	line := fmt.Sprintf("backfill %s [%s%s] %5.1f%% %d/%d rows %.0f rows/s ETA %s",
		pr.Table, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), frac*100, pr.RowsDone, pr.RowsTotal, pr.Rate, eta)
	if pr.Duty > 0 && pr.Duty < 1 && !pr.Done {
		line += fmt.Sprintf(" (yielding to the application: %.0f%% duty)", pr.Duty*100)
	}
	return line
}
