package scratchdb

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, prefix := range []string{"online_test_", "online_diff_", "online_rehearse_"} {
		name := Name(prefix, now)
		if len(name) > 63 {
			t.Fatalf("%s: longer than PostgreSQL's 63 bytes", name)
		}
		o, ok := Parse(prefix, name)
		if !ok || o.Host != HostTag() || o.PID != os.Getpid() || !o.Created.Equal(now) {
			t.Fatalf("Parse(%s) = %+v, %v", name, o, ok)
		}
		if _, ok := Parse("online_other_", name); ok {
			t.Errorf("Parse took %s for a name of another prefix", name)
		}
	}
	for _, bad := range []string{"online_test_0a1b2c3d4e5f", "postgres", "online_test_zz_1_2", "online_test_abcd_x_1_ff"} {
		if _, ok := Parse("online_test_", bad); ok {
			t.Errorf("Parse(%s) took it for a tagged name", bad)
		}
	}
}

// TestStale: a name of this host whose process is gone is stale at once;
// one whose process runs only past StaleAfter; a name that says nothing by
// the age the server gives.
func TestStale(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("no true command: %v", err)
	}
	dead := cmd.Process.Pid
	now := time.Now()
	const p = "online_diff_"
	mk := func(pid int, at time.Time) string {
		return p + HostTag() + "_" + itoa(pid) + "_" + itoa(int(at.Unix())) + "_deaddeaddead"
	}
	cases := []struct {
		name string
		age  time.Duration
		want bool
	}{
		{mk(dead, now), -1, true},
		{mk(os.Getpid(), now), -1, false},
		{mk(os.Getpid(), now.Add(-2*StaleAfter)), -1, true},
		{p + "0123456789ab", -1, false},
		{p + "0123456789ab", time.Minute, false},
		{p + "0123456789ab", 2 * StaleAfter, true},
	}
	for _, c := range cases {
		if got := Stale(p, c.name, c.age, now); got != c.want {
			t.Errorf("Stale(%s, age %s) = %t, want %t", c.name, c.age, got, c.want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
