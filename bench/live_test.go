//go:build live

package bench

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestLiveFull is `online bench live` at a size between the tiny run of the
// normal tests and the command's default: run it with
//
//	go test -tags live -run TestLiveFull -v ./bench
//
// ONLINE_BENCH_SCALE, ONLINE_BENCH_CLIENTS and ONLINE_BENCH_DURATION
// override the size. Like the tiny run it asserts no failed transaction
// and the checks, not timings: the figures are in the log.
func TestLiveFull(t *testing.T) {
	var out bytes.Buffer
	cfg := tinyConfig(t, WorkloadAuto, &out)
	cfg.Scale = envInt(t, "ONLINE_BENCH_SCALE", 3)
	cfg.Clients = envInt(t, "ONLINE_BENCH_CLIENTS", DefaultClients)
	cfg.Duration = 5 * time.Second
	if v := os.Getenv("ONLINE_BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("ONLINE_BENCH_DURATION: %v", err)
		}
		cfg.Duration = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := Live(ctx, cfg)
	checkReport(t, rep, err, out.String())
	if rep != nil && rep.Comparison == nil {
		t.Error("no comparison")
	}
}

func envInt(t *testing.T, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return n
}
