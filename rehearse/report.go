package rehearse

import (
	"fmt"
	"strings"
	"time"
)

// String renders the report for a person.
func (rep *Report) String() string {
	var b strings.Builder
	verdict := "WOULD SUCCEED"
	if !rep.Success {
		verdict = "WOULD FAIL"
	}
	fmt.Fprintf(&b, "rehearsal: %s\n", verdict)
	fmt.Fprintf(&b, "copy: %s on %s, made in %s; scale to live sizes x%.1f\n", rep.Sample, rep.Target, rep.Copy.Round(time.Millisecond), rep.Scale)
	for _, t := range rep.Tables {
		live := fmt.Sprintf("~%.0f", t.LiveRows)
		if t.LiveRows < 0 {
			live = "unknown (never analysed)"
		}
		fmt.Fprintf(&b, "  %-30s %d rows copied of %s live", t.Table, t.Copied, live)
		if t.Dropped > 0 {
			fmt.Fprintf(&b, " (%d sampled rows dropped: what they reference was not sampled)", t.Dropped)
		}
		b.WriteString("\n")
	}
	for _, reh := range rep.Runs {
		fmt.Fprintf(&b, "\nrehearsal ending with %s", reh.Ending)
		if reh.Skipped != "" {
			fmt.Fprintf(&b, ": skipped (%s)\n", reh.Skipped)
			continue
		}
		fmt.Fprintf(&b, ": longest wait of a probe read or write %s", reh.LongestWait.Round(time.Millisecond))
		if reh.LongestWaitOn != "" {
			fmt.Fprintf(&b, " (on %s)", reh.LongestWaitOn)
		}
		fmt.Fprintf(&b, ", %d probes\n", reh.Probes)
		for _, m := range reh.Migrations {
			status := "ok"
			if !m.OK {
				status = "FAILED"
			}
			fmt.Fprintf(&b, "  %s (%s): %s\n", m.Name, m.File, status)
			for _, p := range m.Phases {
				fmt.Fprintf(&b, "    %-9s %10s   at live size ~%s", p.Name, p.Took.Round(time.Millisecond), p.Scaled.Round(time.Millisecond))
				if p.Err != "" {
					fmt.Fprintf(&b, "   error: %s", firstLine(p.Err))
				}
				b.WriteString("\n")
			}
			if m.BackfillRows > 0 {
				fmt.Fprintf(&b, "    backfill  %d rows in %s, %.0f rows/s\n", m.BackfillRows, m.BackfillTime.Round(time.Millisecond), m.BackfillRate)
			}
			var ok, skipped, failed int
			for _, w := range m.Writes {
				switch w.Result {
				case "ok":
					ok++
				case "skipped":
					skipped++
				default:
					failed++
				}
			}
			if len(m.Writes) > 0 {
				fmt.Fprintf(&b, "    writes through both versions: %d ok, %d skipped (the copied row did not fit), %d failed\n", ok, skipped, failed)
			}
			for _, l := range m.Locks {
				fmt.Fprintf(&b, "    lock      %-22s %s\n", l.Mode, l.Relation)
			}
		}
		for _, g := range reh.Growth {
			if g.After != g.Before {
				fmt.Fprintf(&b, "  growth %-30s %s -> %s\n", g.Table, sizeText(g.Before), sizeText(g.After))
			}
		}
	}
	if len(rep.Failures) > 0 {
		b.WriteString("\nerrors:\n")
		for _, f := range rep.Failures {
			where := f.File
			if f.Op > 0 {
				where += fmt.Sprintf(": operation %d (%s)", f.Op, f.Kind)
			}
			if f.Field != "" {
				where += fmt.Sprintf(": field %q", f.Field)
			}
			fmt.Fprintf(&b, "  [%s, %s] %s: %s\n", f.Rehearsal, f.Phase, where, indent(f.Message))
		}
	}
	return b.String()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n    ") }

func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
