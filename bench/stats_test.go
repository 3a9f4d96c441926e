package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func ok(endMS, latMS int) sample {
	return sample{End: at(endMS), Latency: time.Duration(latMS) * time.Millisecond}
}

func fail(endMS int) sample { return sample{End: at(endMS), Failed: true} }

func TestPhase(t *testing.T) {
	s := &stream{App: "old", Version: "public", Launched: at(0), Stopping: at(2000),
		Samples: []sample{
			ok(150, 50), // ready at 100: the time before is connecting
			ok(200, 10), ok(300, 20), fail(350),
			ok(1000, 30), // a 700ms stall from 300 to 1000, across the boundary at 500
			ok(1100, 40), ok(1200, 100),
		}}
	s.finish()
	if s.Committed != 6 {
		t.Fatalf("Committed = %d, want 6", s.Committed)
	}
	if got := s.ready(); !got.Equal(at(100)) {
		t.Fatalf("ready = %v, want 100ms", got.Sub(t0))
	}

	first, okFirst := s.phase(window{"first", at(0), at(500)})
	if !okFirst {
		t.Fatal("no first phase")
	}
	if first.Elapsed.D() != 400*time.Millisecond {
		t.Errorf("first: elapsed %s, want 400ms (from ready)", first.Elapsed.D())
	}
	if first.Transactions != 3 || first.Failed != 1 {
		t.Errorf("first: %d transactions, %d failed; want 3 and 1", first.Transactions, first.Failed)
	}
	if first.TPS != 7.5 {
		t.Errorf("first: tps %v, want 7.5", first.TPS)
	}
	if first.AvgLatency.D() != 80*time.Millisecond/3 || first.MaxLatency.D() != 50*time.Millisecond || first.P99Latency.D() != 50*time.Millisecond {
		t.Errorf("first: avg %s, p99 %s, max %s", first.AvgLatency.D(), first.P99Latency.D(), first.MaxLatency.D())
	}
	if first.LongestStall.D() != 700*time.Millisecond {
		t.Errorf("first: stall %s, want the whole 700ms gap that starts in it", first.LongestStall.D())
	}

	second, _ := s.phase(window{"second", at(500), at(5000)})
	if second.Elapsed.D() != 1500*time.Millisecond {
		t.Errorf("second: elapsed %s, want 1.5s (to Stopping)", second.Elapsed.D())
	}
	if second.Transactions != 3 || second.Failed != 0 {
		t.Errorf("second: %d transactions, %d failed; want 3 and 0", second.Transactions, second.Failed)
	}
	// The gap from the last transaction (1200) to the stop (2000) is a
	// stall too: the application finished nothing for 800ms.
	if second.LongestStall.D() != 800*time.Millisecond {
		t.Errorf("second: stall %s, want 800ms", second.LongestStall.D())
	}

	if _, okLater := s.phase(window{"later", at(3000), at(4000)}); okLater {
		t.Error("a phase after the stop was computed")
	}
	if got := s.phases([]window{{"a", at(0), at(500)}, {"b", at(2500), at(3000)}}); len(got) != 1 || got[0].Name != "a" {
		t.Errorf("phases = %+v, want only a", got)
	}
}

func TestPhaseNoTransactions(t *testing.T) {
	s := &stream{App: "new", Launched: at(0), Stopping: at(1000), Samples: []sample{fail(400)}}
	s.finish()
	p, ok := s.phase(window{"w", at(0), at(1000)})
	if !ok {
		t.Fatal("no phase")
	}
	if p.Transactions != 0 || p.Failed != 1 || p.TPS != 0 || p.LongestStall.D() != time.Second {
		t.Errorf("phase = %+v; want 0 transactions, 1 failed, a 1s stall", p)
	}
}

func TestPercentile(t *testing.T) {
	var v []time.Duration
	for i := 1; i <= 200; i++ {
		v = append(v, time.Duration(i))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.99, 198}, {0.5, 100}, {1, 200}, {0, 1}} {
		if got := percentile(v, c.q); got != c.want {
			t.Errorf("percentile(%v) = %d, want %d", c.q, got, c.want)
		}
	}
	if percentile(nil, 0.99) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}

func TestParseTxLog(t *testing.T) {
	log := "0 1 5321 0 1700000000 123456\n" +
		"1 1 failed 0 1700000000 223456\n" +
		"1 2 deadlock 0 1700000001 5\n" +
		"0 2 skipped 0 1700000001 6\n" +
		"0 3 812 0 1700000001 7 0\n" +
		"1 3 99"
	got, err := parseTxLog([]byte(log))
	if err != nil {
		t.Fatal(err)
	}
	want := []sample{
		{End: time.Unix(1700000000, 123456000), Latency: 5321 * time.Microsecond},
		{End: time.Unix(1700000000, 223456000), Failed: true},
		{End: time.Unix(1700000001, 5000), Failed: true},
		{End: time.Unix(1700000001, 7000), Latency: 812 * time.Microsecond},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d samples, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].End.Equal(want[i].End) || got[i].Latency != want[i].Latency || got[i].Failed != want[i].Failed {
			t.Errorf("sample %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"0 1 5 0\n0 2 5 0 1 2\n", "0 1 x 0 1 2\n", "0 1 5 0 y 2\n"} {
		if _, err := parseTxLog([]byte(bad)); err == nil {
			t.Errorf("parseTxLog(%q) succeeded", bad)
		}
	}
}

func TestConnArg(t *testing.T) {
	arg, env := connArg("postgres://app:s3cret@db:5432/x?sslmode=disable")
	if strings.Contains(arg, "s3cret") || arg != "postgres://app@db:5432/x?sslmode=disable" {
		t.Errorf("arg = %q", arg)
	}
	if len(env) != 1 || env[0] != "PGPASSWORD=s3cret" {
		t.Errorf("env = %q", env)
	}
	for _, in := range []string{"postgres://app@db/x", "host=db dbname=x", ""} {
		if arg, env := connArg(in); arg != in || env != nil {
			t.Errorf("connArg(%q) = %q, %q", in, arg, env)
		}
	}
}

func TestPgOptions(t *testing.T) {
	if got := pgOptions("public_v2"); got != `-c search_path="public_v2"` {
		t.Errorf("got %s", got)
	}
	if got := pgOptions(`odd name\x`); got != `-c search_path="odd\ name\\x"` {
		t.Errorf("got %s", got)
	}
}

func TestMillisJSON(t *testing.T) {
	b, err := json.Marshal(struct {
		D Millis `json:"d"`
	}{Millis(1234567 * time.Nanosecond)})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"d":1.235}` {
		t.Errorf("got %s", b)
	}
	var back struct {
		D Millis `json:"d"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.D.D() != 1235*time.Microsecond {
		t.Errorf("round trip: %s", back.D.D())
	}
}

func TestValidate(t *testing.T) {
	good := Config{Scale: 1, Clients: 4, Duration: time.Second}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"scale":      func(c *Config) { c.Scale = 0 },
		"big scale":  func(c *Config) { c.Scale = MaxScale + 1 },
		"clients":    func(c *Config) { c.Clients = MaxClients + 1 },
		"duration":   func(c *Config) { c.Duration = 0 },
		"rate":       func(c *Config) { c.BackfillRate = -1 },
		"batch time": func(c *Config) { c.BackfillBatchTime = -time.Second },
		"workload":   func(c *Config) { c.Workload = "sysbench" },
	} {
		c := good
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRatioText(t *testing.T) {
	for v, want := range map[float64]string{0.5: "0.50", 0.7996: "0.79", 0.8: "0.80", 0.804: "0.80", 1.2: "1.20"} {
		if got := ratioText(v); got != want {
			t.Errorf("ratioText(%v) = %s, want %s", v, got, want)
		}
	}
}

func TestWriteText(t *testing.T) {
	rep := &Report{
		Migration: "pgbench_v2", Workload: "pgbench", Scale: 1, Accounts: 100000, Clients: 2,
		Phases: []Phase{
			{Name: "before migration", App: "old", Version: "public", Elapsed: Millis(time.Second), Transactions: 1000, TPS: 1000,
				AvgLatency: Millis(2 * time.Millisecond), P99Latency: Millis(9 * time.Millisecond), MaxLatency: Millis(150 * time.Millisecond), LongestStall: Millis(151 * time.Millisecond)},
			{Name: "start: backfill", App: "old", Version: "public", Elapsed: Millis(time.Second), Transactions: 500, TPS: 500},
		},
		BackfillThroughput: 0.5,
		LockWaits: []LockWait{{Blocker: "online", Lock: "transactionid (ShareLock)", Statement: strings.Repeat("x", 200),
			Longest: Millis(300 * time.Millisecond), Samples: 2}},
		Checks: []Check{{Name: "sums", OK: true, Detail: "equal"}},
		Comparison: &Comparison{Statement: "ALTER TABLE x", AlterElapsed: Millis(2 * time.Second),
			Phases: []Phase{{Name: "blocking ALTER", App: "old", LongestStall: Millis(1900 * time.Millisecond)}}},
	}
	rep.verdict()
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"before migration old public",
		"1s  1000       0  1000     2.0     9.0     150       151",
		"0.50 of before (target >= 0.85: BELOW the target",
		"took 2s and stalled the application for 1.9s",
		"300 ms  seen    2 times  behind online, waiting for transactionid (ShareLock)\n                 it was running: xxx",
		"ok    sums: equal",
		"bench passed: 0 failed transactions, 1 checks passed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, strings.Repeat("x", maxBlockerText+1)) {
		t.Error("a long blocker statement is not cut")
	}
	// Every row of the phase table has its columns at the same place.
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  phase ") || strings.HasPrefix(l, "  before ") || strings.HasPrefix(l, "  start: ") {
			rows = append(rows, l)
		}
	}
	if len(rows) < 3 || len(rows[0]) != len(rows[1]) || len(rows[1]) != len(rows[2]) {
		t.Errorf("phase table rows not aligned:\n%s", strings.Join(rows, "\n"))
	}

	rep.Failed = 2
	rep.verdict()
	b.Reset()
	_ = rep.WriteText(&b)
	if !strings.Contains(b.String(), "bench FAILED: 2 failed transactions") {
		t.Errorf("no failed verdict:\n%s", b.String())
	}
}
