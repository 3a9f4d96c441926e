package pgtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onlinepg/online/internal/scratchdb"
)

// The child modes run in a copy of this test binary, whose first NewDB sizes
// its own budget and cleans up as a new run does.
const childEnv = "ONLINE_PGTEST_CHILD"

func TestRoom(t *testing.T) {
	cases := []struct {
		name                      string
		maxConns, reserved, inUse int
		want                      int
	}{
		{"an idle server of 100", 100, 3, 1, 96},
		{"a server of 100 with 90 in use", 100, 3, 90, 7},
		{"over-full (superusers in the reserved ones)", 100, 3, 101, -4},
	}
	for _, c := range cases {
		if got := room(c.maxConns, c.reserved, c.inUse); got != c.want {
			t.Errorf("%s: room(%d, %d, %d) = %d, want %d", c.name, c.maxConns, c.reserved, c.inUse, got, c.want)
		}
	}
}

// deadPID is the id of a process that ran and ended.
func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("no true command: %v", err)
	}
	return cmd.Process.Pid
}

// runChild runs this binary's TestChild in mode, with extra environment.
func runChild(t *testing.T, mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v", "-test.parallel=4")
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode), env...)
	return cmd
}

func dbExists(t *testing.T, name string) bool {
	t.Helper()
	admin := Connect(t, ServerURL())
	var n int
	if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestStaleDatabasesDropped: the first NewDB of a binary drops the test
// databases of processes of this host that are gone, and leaves those of
// live processes, and recent ones whose maker it cannot tell.
func TestStaleDatabasesDropped(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		return
	}
	t.Parallel()
	now := time.Now().Unix()
	dead := fmt.Sprintf("%s%s_%d_%d_%s", dbPrefix, scratchdb.HostTag(), deadPID(t), now, "deaddeaddead")
	alive := fmt.Sprintf("%s%s_%d_%d_%s", dbPrefix, scratchdb.HostTag(), os.Getpid(), now, "a1a1a1a1a1a1")
	untagged := dbPrefix + "0123456789ab"
	admin := Connect(t, ServerURL())
	for _, n := range []string{dead, alive, untagged} {
		Exec(t, admin, "DROP DATABASE IF EXISTS "+n, "CREATE DATABASE "+n)
		t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+n) })
	}
	if out, err := runChild(t, "one").CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if dbExists(t, dead) {
		t.Errorf("%s (its process is gone) is still there", dead)
	}
	if !dbExists(t, alive) {
		t.Errorf("%s (its process runs) was dropped", alive)
	}
	if !dbExists(t, untagged) {
		t.Errorf("%s (made a moment ago, by whom unknown) was dropped", untagged)
	}
}

// TestInterruptDropsDatabase: a binary stopped by Ctrl-C leaves no database.
func TestInterruptDropsDatabase(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		return
	}
	t.Parallel()
	cmd := runChild(t, "hang")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var name string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "DB "); ok {
			name = n
			break
		}
	}
	if name == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("the child made no database")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = bufio.NewReader(out).WriteTo(nopWriter{}) }()
	_ = cmd.Wait()
	if dbExists(t, name) {
		_, _ = Connect(t, ServerURL()).Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		t.Fatalf("%s is still there after the interrupt", name)
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestBudgetWaits: on a server without room for a test (here one that
// seems to have 2 connections), NewDB waits instead of failing, saying so,
// and goes ahead after its patience.
func TestBudgetWaits(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		return
	}
	t.Parallel()
	out, err := runChild(t, "one", "ONLINE_TEST_MAX_CONNECTIONS=2", "ONLINE_TEST_PATIENCE=1s").CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, want := range []string{"waiting for room on the server", "going ahead"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the child did not say %q:\n%s", want, out)
		}
	}
}

// TestBudgetNoDeadlock: tests that hold a database while their parallel
// subtests wait for go test's one -parallel place, and tests in that place
// waiting for room: a budget of database slots deadlocked on this (each
// waiter went ahead only after its patience, one every 10s). Room on the
// server is what idle tests really hold: here, plenty.
func TestBudgetNoDeadlock(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		return
	}
	t.Parallel()
	cmd := runChild(t, "deadlock", "ONLINE_TEST_PATIENCE=1m")
	cmd.Args = append(cmd.Args, "-test.parallel=1", "-test.timeout=50s")
	began := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "going ahead") {
		t.Fatalf("a test waited out its patience:\n%s", out)
	}
	t.Logf("6 tests with subtests in %s", time.Since(began).Round(time.Millisecond))
}

// TestChild is the child of the tests above.
func TestChild(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
		t.Skip("only runs as a child of this package's tests")
	case "one":
		NewDB(t)
	case "deadlock":
		for i := range 6 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				NewDB(t)
				for j := range 2 {
					t.Run(fmt.Sprint(j), func(t *testing.T) {
						t.Parallel()
						time.Sleep(10 * time.Millisecond)
					})
				}
			})
		}
	case "hang":
		u := NewDB(t)
		conn := Connect(t, u)
		var name string
		if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		fmt.Println("DB " + name)
		time.Sleep(time.Minute)
		t.Fatal("not interrupted")
	}
}
