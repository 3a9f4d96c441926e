package phases

import (
	"time"

	"github.com/onlinepg/online/backfill"
)

// The engine's defaults, in one place: Open applies them to a zero Config,
// and the CLI's flags, the bench and the demo show and pass the same values,
// so what `online --help` says is what the library does.
const (
	// DefaultLockTimeout bounds each DDL statement's wait for a lock.
	// Below deadlock_timeout (1s by default), so our side gives up first.
	DefaultLockTimeout = 500 * time.Millisecond
	// DefaultLockRetryDeadline bounds the retries of one statement, and of one
	// backfill batch.
	DefaultLockRetryDeadline = 2 * time.Minute
	// DefaultLockWait is how long a command waits for the schema's lock
	// while another session holds it.
	DefaultLockWait = 5 * time.Second
	// DefaultBackfillBatchTime is the target duration of one backfill
	// batch. The backfill package owns it: it runs without phases too.
	DefaultBackfillBatchTime = backfill.DefaultBatchTime
	// DefaultMaxReplicaLag is the CLI's standby replay lag above which the
	// backfill pauses. The library's zero value turns the check off.
	DefaultMaxReplicaLag = 5 * time.Second
	// DefaultBackfillYield is the CLI's share of their write rate the
	// other sessions keep while the backfill runs. The library's zero
	// value turns the governor off.
	DefaultBackfillYield = 0.8
)
