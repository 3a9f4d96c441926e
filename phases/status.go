package phases

import (
	"context"
	"fmt"
	"time"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/state"
)

// Status is what `online status` shows.
type Status struct {
	Schema string `json:"schema"`
	// Latest is the schema of the newest published version: what an
	// application's search_path should name. The migrated schema itself
	// when no migration was ever published.
	Latest     string            `json:"latest"`
	InProgress *MigrationStatus  `json:"in_progress,omitempty"`
	History    []MigrationStatus `json:"history"`
	// Running is true while an online process holds the schema's lock.
	Running bool `json:"running"`
	// Waits are online's sessions in this database that wait for a lock
	// now (a running start's DDL, a backfill's batch), each with the
	// sessions that hold it: read live, while an online process runs.
	Waits []pg.LockWait `json:"waits,omitempty"`
	// Next is the command that carries on from here, for people.
	Next string `json:"next"`
}

// MigrationStatus describes one migration.
type MigrationStatus struct {
	Name          string           `json:"name"`
	VersionSchema string           `json:"version_schema"`
	Parent        string           `json:"parent,omitempty"`
	Phase         string           `json:"phase"`
	StartedAt     time.Time        `json:"started_at"`
	UpdatedAt     time.Time        `json:"updated_at"`
	CompletedAt   *time.Time       `json:"completed_at,omitempty"`
	Backfills     []state.Backfill `json:"backfills,omitempty"`
}

// Status reads the state schema. It changes nothing, not even creating the
// state schema.
func (e *Engine) Status(ctx context.Context) (*Status, error) {
	st := &Status{Schema: e.cfg.Schema, Latest: e.cfg.Schema, History: []MigrationStatus{}}
	hist, err := e.store.History(ctx, e.conn, e.cfg.Schema)
	if err != nil {
		return nil, err
	}
	for _, r := range hist {
		ms := MigrationStatus{Name: r.Name, VersionSchema: r.VersionSchema, Parent: r.Parent, Phase: string(r.Phase), StartedAt: r.StartedAt, UpdatedAt: r.UpdatedAt, CompletedAt: r.CompletedAt}
		if r.Phase != state.Complete {
			cps, err := e.store.Backfills(ctx, e.conn, r.Schema, r.Name)
			if err != nil {
				return nil, err
			}
			for i := 0; i < len(cps)+16 && len(ms.Backfills) < len(cps); i++ {
				if cp, ok := cps[i]; ok {
					ms.Backfills = append(ms.Backfills, cp)
				}
			}
			m := ms
			st.InProgress = &m
		}
		st.History = append(st.History, ms)
	}
	if st.Running, err = e.store.Held(ctx, e.conn, e.cfg.Schema); err != nil {
		return nil, err
	}
	if st.InProgress != nil {
		backfillStates(st.InProgress, st.Running)
		for i := range st.History {
			if st.History[i].Name == st.InProgress.Name {
				st.History[i].Backfills = st.InProgress.Backfills
			}
		}
	}
	if st.Running {
		if st.Waits, err = pg.LockWaits(ctx, e.conn, "online"); err != nil {
			return nil, err
		}
	}
	latest, err := e.Latest(ctx)
	if err != nil {
		return nil, err
	}
	st.Latest = latest
	st.Next = next(st)
	return st, nil
}

// Backfill states in Status.
const (
	BackfillDone    = "done"
	BackfillRunning = "running" // an online process is walking it now
	BackfillStopped = "stopped" // begun, and no process is walking it
	BackfillWaiting = "waiting" // not begun, or after the one running
)

// backfillStates sets the State of each backfill of m. Tasks run one after
// the other, so while a process holds the schema's lock in the backfill
// phase only the first unfinished one is running. Without that lock nothing
// is, whatever the checkpoints say: the process that wrote them is gone.
func backfillStates(m *MigrationStatus, held bool) {
	running := held && state.Phase(m.Phase) == state.Backfilling
	for i := range m.Backfills {
		b := &m.Backfills[i]
		switch {
		case b.Done:
			b.State = BackfillDone
		case running:
			b.State = BackfillRunning
			running = false
		case b.RowsDone > 0 && !held:
			b.State = BackfillStopped
		default:
			b.State = BackfillWaiting
		}
		if b.State != BackfillRunning {
			// The rate a checkpoint recorded was that of a run that is
			// not going on now.
			b.Rate = 0
		}
	}
}

// next names what to run after status: the command that carries a
// migration on from its phase.
func next(st *Status) string {
	m := st.InProgress
	switch {
	case st.Running && len(st.Waits) > 0:
		// A start waiting for its first lock has no migration
		// recorded yet: what it waits for is the news.
		w := st.Waits[0]
		return fmt.Sprintf("wait: an online process is working on this migration now, and pid %d waits for a lock that pid %d holds; "+
			"it retries until --lock-retry-deadline, or end the holder, at your choice, with SELECT pg_terminate_backend(%d)",
			w.PID, w.Blockers[0].PID, w.Blockers[0].PID)
	case m == nil:
		return "online start FILE, to start the next migration"
	case st.Running:
		return "wait: an online process is working on this migration now"
	}
	switch state.Phase(m.Phase) {
	case state.Active:
		return "deploy the code of version " + m.VersionSchema + ", then online complete (or online rollback)"
	case state.Completing:
		return "online complete, to finish completing " + m.Name
	case state.RollingBack:
		return "online rollback, to finish rolling back " + m.Name
	default:
		return "online start " + m.Name + ".yaml (or online backfill), to resume " + m.Name + "; or online rollback"
	}
}

// Latest returns the schema of the newest published version.
func (e *Engine) Latest(ctx context.Context) (string, error) {
	rec, err := e.store.InProgress(ctx, e.conn, e.cfg.Schema)
	if err != nil {
		return "", err
	}
	if rec != nil && (rec.Phase == state.Active || rec.Phase == state.Completing) {
		return rec.VersionSchema, nil
	}
	p, err := e.parent(ctx)
	if err != nil {
		return "", err
	}
	if p != "" {
		return p, nil
	}
	return e.cfg.Schema, nil
}
