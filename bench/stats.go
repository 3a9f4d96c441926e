package bench

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// sample is one transaction of a workload, or one client abort (a failure
// with no latency).
type sample struct {
	End     time.Time
	Latency time.Duration
	Failed  bool
}

// stream is what one workload did from its launch until it was asked to
// stop.
type stream struct {
	App     string // "old" or "new"
	Version string // its search_path
	// Launched is when its clients were started; Stopping when it was asked
	// to stop. Transactions that finish after Stopping (those in flight) are
	// counted in Committed but in no phase: the application was leaving.
	Launched, Stopping time.Time
	Samples            []sample // sorted by End
	// Committed counts every successful transaction, also those after
	// Stopping; the history table must hold at least as many rows.
	Committed int64
	// InFlight bounds the transactions that may have committed without being
	// counted: those cut off by the stop. pgbench's are terminated mid-way,
	// and one whose COMMIT got through but whose answer did not is in the
	// history and not in the log.
	InFlight int64
	// Errors holds the first few distinct failure messages.
	Errors []string
}

// maxErrorSamples is how many distinct failure messages a stream keeps.
const maxErrorSamples = 3

func (s *stream) addError(msg string) {
	if len(s.Errors) >= maxErrorSamples || slices.Contains(s.Errors, msg) {
		return
	}
	s.Errors = append(s.Errors, msg)
}

// finish sorts the samples and counts the successful ones.
func (s *stream) finish() {
	slices.SortFunc(s.Samples, func(a, b sample) int { return a.End.Compare(b.End) })
	s.Committed = 0
	for _, x := range s.Samples {
		if !x.Failed {
			s.Committed++
		}
	}
}

// ready is when the workload was first at work: the start of its first
// successful transaction, so that connecting (pgbench also reads the scale
// first) is not counted as time without transactions.
func (s *stream) ready() time.Time {
	for _, x := range s.Samples {
		if !x.Failed {
			if t := x.End.Add(-x.Latency); t.After(s.Launched) {
				return t
			}
			return s.Launched
		}
	}
	return s.Launched
}

// window is a phase of the run: [From, To).
type window struct {
	Name     string
	From, To time.Time
}

// Phase is what one application saw during one phase of the run.
type Phase struct {
	Name    string `json:"phase"`
	App     string `json:"app"`
	Version string `json:"search_path"`
	// Elapsed is the part of the phase in which the application ran.
	Elapsed      Millis  `json:"elapsed_ms"`
	Transactions int64   `json:"transactions"`
	Failed       int64   `json:"failed"`
	TPS          float64 `json:"tps"`
	AvgLatency   Millis  `json:"avg_latency_ms"`
	P99Latency   Millis  `json:"p99_latency_ms"`
	MaxLatency   Millis  `json:"max_latency_ms"`
	// LongestStall is the longest stretch without a finished transaction
	// that overlaps the phase, measured whole: a stall that began in the
	// phase before shows in both.
	LongestStall Millis `json:"longest_stall_ms"`
}

// phase computes the figures of s over w. ok is false when s did not run
// during w at all.
func (s *stream) phase(w window) (p Phase, ok bool) {
	lo, hi := w.From, w.To
	if r := s.ready(); r.After(lo) {
		lo = r
	}
	if !s.Stopping.IsZero() && s.Stopping.Before(hi) {
		hi = s.Stopping
	}
	if !hi.After(lo) {
		return Phase{}, false
	}
	p = Phase{Name: w.Name, App: s.App, Version: s.Version, Elapsed: Millis(hi.Sub(lo))}
	var lat []time.Duration
	var sum time.Duration
	for _, x := range s.Samples {
		if x.End.Before(lo) || !x.End.Before(hi) {
			continue
		}
		if x.Failed {
			p.Failed++
			continue
		}
		lat = append(lat, x.Latency)
		sum += x.Latency
	}
	p.Transactions = int64(len(lat))
	p.TPS = float64(p.Transactions) / hi.Sub(lo).Seconds()
	if n := len(lat); n > 0 {
		slices.Sort(lat)
		p.AvgLatency = Millis(sum / time.Duration(n))
		p.P99Latency = Millis(percentile(lat, 0.99))
		p.MaxLatency = Millis(lat[n-1])
	}
	p.LongestStall = Millis(s.longestGap(lo, hi))
	return p, true
}

// longestGap is the longest time between two consecutive successful
// completions (from ready to the first, and from the last to Stopping
// included) among the gaps that overlap [lo, hi).
func (s *stream) longestGap(lo, hi time.Time) time.Duration {
	prev := s.ready()
	var longest time.Duration
	consider := func(from, to time.Time) {
		if from.Before(hi) && to.After(lo) {
			longest = max(longest, to.Sub(from))
		}
	}
	for _, x := range s.Samples {
		if x.Failed || x.End.Before(prev) {
			continue
		}
		consider(prev, x.End)
		prev = x.End
	}
	end := s.Stopping
	if end.IsZero() || end.Before(prev) {
		return longest
	}
	consider(prev, end)
	return longest
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// phases computes s's figures for each window it ran in.
func (s *stream) phases(ws []window) []Phase {
	var out []Phase
	for _, w := range ws {
		if p, ok := s.phase(w); ok {
			out = append(out, p)
		}
	}
	return out
}

// Millis is a duration that JSON shows as milliseconds, the unit of the
// report's table.
type Millis time.Duration

// D is m as a time.Duration.
func (m Millis) D() time.Duration { return time.Duration(m) }

// MarshalJSON writes milliseconds with microsecond precision.
func (m Millis) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, math.Round(float64(m)/1e3)/1e3, 'f', -1, 64), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (m *Millis) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*m = Millis(math.Round(f * 1e6))
	return nil
}
