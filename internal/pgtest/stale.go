package pgtest

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/scratchdb"
)

// Test databases are scratch databases of prefix dbPrefix (see scratchdb):
// a database its binary could not drop (the binary was killed, or
// panicked, or timed out) is dropped by the next binary that starts.
const dbPrefix = "online_test_"

// newDBName names a test database made now by this process.
func newDBName(now time.Time) string { return scratchdb.Name(dbPrefix, now) }

// dropStale drops the test databases earlier runs left behind.
func dropStale(ctx context.Context, admin *pgx.Conn) ([]string, error) {
	return scratchdb.DropStale(ctx, admin, dbPrefix)
}

// live are the test databases of this binary not dropped yet, for the
// interrupt handler.
var live struct {
	sync.Mutex
	names map[string]bool
	once  sync.Once
}

func addLive(name string) {
	live.Lock()
	defer live.Unlock()
	if live.names == nil {
		live.names = map[string]bool{}
	}
	live.names[name] = true
}

func removeLive(name string) {
	live.Lock()
	defer live.Unlock()
	delete(live.names, name)
}

// watchInterrupt makes an interrupt (Ctrl-C, or a SIGTERM from a CI runner)
// drop this binary's test databases before the binary dies of the signal:
// no cleanup of the testing package runs then.
func watchInterrupt() {
	live.once.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		go func() {
			sig := <-ch
			live.Lock()
			names := make([]string, 0, len(live.names))
			for n := range live.names {
				names = append(names, n)
			}
			live.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if admin, err := pg.Connect(ctx, ServerURL(), pg.Options{ApplicationName: "online-test"}); err == nil {
				for _, n := range names {
					_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pg.Ident(n)+" WITH (FORCE)")
				}
				admin.Close(ctx)
			}
			cancel()
			// Die of the signal as the binary would have without us.
			signal.Reset(sig)
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				_ = p.Signal(sig)
			}
			time.Sleep(time.Second)
			os.Exit(2)
		}()
	})
}
