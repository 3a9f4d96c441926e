package bench

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/onlinepg/online/phases"
)

// Report is what Live measured. Durations are Millis: milliseconds in JSON.
type Report struct {
	Server        string `json:"server"` // without password
	ServerVersion string `json:"server_version"`
	Throwaway     bool   `json:"throwaway_server,omitempty"`
	// CPUs and the load averages say how busy the machine was: on a shared
	// one the figures are noisy.
	CPUs       int     `json:"cpus"`
	LoadBefore float64 `json:"load_average_before,omitempty"`
	LoadAfter  float64 `json:"load_average_after,omitempty"`

	Workload       string `json:"workload"` // "pgbench" or "go"
	WorkloadDetail string `json:"workload_detail"`
	Scale          int    `json:"scale"`
	Accounts       int64  `json:"accounts"`
	Clients        int    `json:"clients_per_app"`
	PhaseDuration  Millis `json:"phase_duration_ms"`
	Database       string `json:"database"`

	Migration     string   `json:"migration"`
	Operations    []string `json:"operations"`
	MigrationYAML string   `json:"migration_yaml"`
	OldVersion    string   `json:"old_version"`
	NewVersion    string   `json:"new_version"`
	// The engine's settings; zero means its default.
	LockTimeout       Millis  `json:"lock_timeout_ms"`
	BackfillBatchTime Millis  `json:"backfill_batch_time_ms"`
	BackfillRate      float64 `json:"backfill_rate"`
	// BackfillWorkers is the most workers the engine ran at once on one
	// table (what it chose, or what --backfill-workers asked for).
	BackfillWorkers int     `json:"backfill_workers"`
	BackfillYield   float64 `json:"backfill_yield"`

	Timings Timings `json:"timings"`
	// BackfillRows is the rows each table's backfill walked.
	BackfillRows map[string]int64 `json:"backfill_rows"`
	// Phases has a row per phase and application.
	Phases []Phase `json:"phases"`
	// BackfillThroughput is the old application's throughput during the
	// backfill over its throughput before the migration.
	BackfillThroughput float64 `json:"backfill_throughput_ratio"`
	// Failed counts the applications' failed transactions (client aborts
	// included) while the migration ran; Errors samples their messages.
	Failed int64    `json:"failed_transactions"`
	Errors []string `json:"errors,omitempty"`
	// LockWaits are the longest lock waits of application sessions seen,
	// by blocker (sampled; empty before PostgreSQL 14).
	LockWaits []LockWait `json:"lock_waits"`
	Checks    []Check    `json:"checks"`

	Comparison *Comparison `json:"comparison,omitempty"`
	Passed     bool        `json:"passed"`
}

// Timings are the durations of the run's steps.
type Timings struct {
	Setup    Millis `json:"setup_ms"`
	Start    Millis `json:"start_ms"`    // Engine.Start: the three below
	Expand   Millis `json:"expand_ms"`   // until the first backfill batch
	Backfill Millis `json:"backfill_ms"` // first to last backfill batch
	Finish   Millis `json:"finish_ms"`   // constraints, publish
	Complete Millis `json:"complete_ms"`
	Total    Millis `json:"total_ms"`
}

// Comparison is the same workload on a fresh copy of the data, with no
// migration and then through the blocking ALTER TABLE.
type Comparison struct {
	Database     string     `json:"database"`
	Statement    string     `json:"statement"`
	AlterElapsed Millis     `json:"alter_ms"`
	Phases       []Phase    `json:"phases"`
	Failed       int64      `json:"failed_transactions"`
	Errors       []string   `json:"errors,omitempty"`
	LockWaits    []LockWait `json:"lock_waits"`
	Checks       []Check    `json:"checks"`
}

func (r *Report) failedChecks() int {
	n := 0
	for _, c := range r.Checks {
		if !c.OK {
			n++
		}
	}
	return n
}

func (r *Report) verdict() {
	r.Passed = r.Failed == 0 && r.failedChecks() == 0 && len(r.Checks) > 0
}

// phase returns the row of one phase and application.
func (r *Report) phase(name, app string) (Phase, bool) {
	for _, p := range r.Phases {
		if p.Name == name && p.App == app {
			return p, true
		}
	}
	return Phase{}, false
}

// WriteText renders the report as tables for a person.
func (r *Report) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("\nresults: online migration %s under %s\n", r.Migration, r.Workload)
	p("  scale %d (%d accounts), %d clients per app, %s per timed phase; PostgreSQL %s on %s",
		r.Scale, r.Accounts, r.Clients, round(r.PhaseDuration.D()), r.ServerVersion, r.Server)
	if r.Throwaway {
		p(" (throwaway, fsync off)")
	}
	p("\n  machine: %d CPUs, load average %.2f before and %.2f after (shared machine: figures are noisy)\n", r.CPUs, r.LoadBefore, r.LoadAfter)
	p("  engine: lock_timeout %s, backfill batch time %s, backfill rate %s, backfill workers %d, backfill yield %g\n",
		orDefault(r.LockTimeout, phases.DefaultLockTimeout.String()), orDefault(r.BackfillBatchTime, phases.DefaultBackfillBatchTime.String()), rateText(r.BackfillRate), r.BackfillWorkers, r.BackfillYield)
	p("%s", phaseTable(r.Phases))
	if before, ok := r.phase("before migration", "old"); ok && before.TPS > 0 {
		if _, ok := r.phase("start: backfill", "old"); ok {
			verdict := "meets the target"
			if r.BackfillThroughput < ThroughputTarget {
				verdict = "BELOW the target: raise --backfill-yield, or lower --backfill-workers or --backfill-rate"
			}
			p("  throughput during the backfill: %s of before (target >= %.2f: %s)\n", ratioText(r.BackfillThroughput), ThroughputTarget, verdict)
		}
		if during, ok := r.phase("start: backfill", "old"); ok {
			verdict := "meets the target"
			if during.LongestStall.D() > StallTarget {
				verdict = "OVER the target"
			}
			p("  longest stall during the backfill: %s (target <= %s: %s)\n", round(during.LongestStall.D()), StallTarget, verdict)
		}
	}
	t := r.Timings
	p("  timings: setup %s, start %s (expand %s, backfill %s, finish + publish %s), complete %s\n",
		round(t.Setup.D()), round(t.Start.D()), round(t.Expand.D()), round(t.Backfill.D()), round(t.Finish.D()), round(t.Complete.D()))
	if len(r.BackfillRows) > 0 {
		var parts []string
		for _, tbl := range slices.Sorted(maps.Keys(r.BackfillRows)) {
			parts = append(parts, fmt.Sprintf("%s %d", tbl, r.BackfillRows[tbl]))
		}
		p("  backfilled rows: %s\n", strings.Join(parts, ", "))
	}
	for _, e := range r.Errors {
		p("  error: %s\n", e)
	}
	p("%s", lockWaitText(r.LockWaits))

	if c := r.Comparison; c != nil {
		p("\ncomparison: the same workload on a fresh copy of the data (%s)\n", c.Database)
		p("%s", phaseTable(c.Phases))
		p("  %s took %s and stalled the application for %s; %d failed transactions\n",
			c.Statement, round(c.AlterElapsed.D()), round(longestStall(c.Phases, "blocking ALTER").D()), c.Failed)
		if online := longestStall(r.Phases, ""); online > 0 {
			p("  online's longest stall over the whole migration: %s\n", round(online.D()))
		}
		for _, e := range c.Errors {
			p("  error: %s\n", e)
		}
		p("%s", lockWaitText(c.LockWaits))
	}

	p("\nchecks\n")
	for _, c := range r.Checks {
		p("  %s  %s: %s\n", okText(c.OK), c.Name, c.Detail)
	}
	if c := r.Comparison; c != nil {
		for _, x := range c.Checks {
			p("  %s  comparison %s: %s\n", okText(x.OK), x.Name, x.Detail)
		}
	}
	if r.Passed {
		p("\nbench passed: 0 failed transactions, %d checks passed\n", len(r.Checks))
	} else {
		p("\nbench FAILED: %d failed transactions, %d failed checks\n", r.Failed, r.failedChecks())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ratioText shows a throughput ratio with two decimals; one below the
// target is cut, not rounded, so that it never reads as the target.
func ratioText(v float64) string {
	if v >= ThroughputTarget {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.2f", math.Floor(v*100)/100)
}

func longestStall(ps []Phase, name string) Millis {
	var m Millis
	for _, p := range ps {
		if name == "" || p.Name == name {
			m = max(m, p.LongestStall)
		}
	}
	return m
}

func okText(ok bool) string {
	if ok {
		return "ok  "
	}
	return "FAIL"
}

func orDefault(m Millis, def string) string {
	if m == 0 {
		return def + " (default)"
	}
	return round(m.D())
}

func rateText(rate float64) string {
	if rate == 0 {
		return "unlimited (default)"
	}
	return fmt.Sprintf("%.0f rows/s", rate)
}

// phaseTable lays out phases with text columns aligned left and numbers
// right.
func phaseTable(ps []Phase) string {
	header := []string{"phase", "app", "search_path", "time", "txns", "failed", "tps", "avg ms", "p99 ms", "max ms", "stall ms"}
	rows := [][]string{header}
	for _, p := range ps {
		rows = append(rows, []string{
			p.Name, p.App, p.Version, round(p.Elapsed.D()),
			fmt.Sprint(p.Transactions), fmt.Sprint(p.Failed), fmt.Sprintf("%.0f", p.TPS),
			ms(p.AvgLatency), ms(p.P99Latency), ms(p.MaxLatency), ms(p.LongestStall),
		})
	}
	const textCols = 3
	width := make([]int, len(header))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		b.WriteString(" ")
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-len(c))
			if i < textCols {
				b.WriteString(" " + c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func ms(m Millis) string {
	v := float64(m) / 1e6
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// maxLockWaitLines bounds the lock waits the text shows; JSON has them all.
const maxLockWaitLines = 6

// maxBlockerText keeps a blocker's statement to about a line.
const maxBlockerText = 110

func lockWaitText(ws []LockWait) string {
	if len(ws) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  longest lock waits of application sessions (sampled every %s):\n", lockWatchEvery)
	for i, w := range ws {
		if i == maxLockWaitLines {
			fmt.Fprintf(&b, "    ... %d more\n", len(ws)-i)
			break
		}
		fmt.Fprintf(&b, "    %8s ms  seen %4d times  behind %s, waiting for %s\n", ms(w.Longest), w.Samples, w.Blocker, w.Lock)
		if st := w.Statement; st != "" {
			if len(st) > maxBlockerText {
				st = st[:maxBlockerText] + "..."
			}
			fmt.Fprintf(&b, "                 it was running: %s\n", st)
		}
	}
	return b.String()
}
