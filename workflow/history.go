package workflow

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/onlinepg/online/state"
)

// History events.
const (
	EventStarted    = state.EventStarted
	EventCompleted  = state.EventCompleted
	EventRolledBack = state.EventRolledBack
	EventBaseline   = state.EventBaseline
)

// HistoryEvent is one line of `online history`.
type HistoryEvent struct {
	At time.Time `json:"at"`
	// Event is started, completed, rolled_back or baseline.
	Event string `json:"event"`
	// Migration is the migration's name (a window's is its last file's).
	Migration string `json:"migration"`
	// Kind is migration, revert or baseline.
	Kind string `json:"kind"`
	// Reverts names the migration a revert undoes.
	Reverts string `json:"reverts,omitempty"`
	// Files are the files of the directory the migration applied.
	Files []string `json:"files,omitempty"`
	// VersionSchema is the version the migration published.
	VersionSchema string `json:"version_schema,omitempty"`
	// AppliedBy is the database role that ran it, OSUser the operating
	// system user of the process.
	AppliedBy string `json:"applied_by,omitempty"`
	OSUser    string `json:"os_user,omitempty"`
	// Duration is the working time of start and complete together, on
	// the completed event.
	Duration time.Duration `json:"duration_ns,omitempty"`
	// RowsBackfilled is the rows its backfill rewrote, on the completed
	// event.
	RowsBackfilled int64 `json:"rows_backfilled,omitempty"`
	// Undone is set on the events of a run that a revert later undid.
	Undone bool `json:"undone,omitempty"`
}

// History lists every event of the schema's migrations, oldest first:
// each start and complete, each rollback, baselines and reverts. It
// changes nothing.
func (e *Engine) History(ctx context.Context) ([]HistoryEvent, error) {
	h, err := e.readHistory(ctx)
	if err != nil {
		return nil, err
	}
	out := []HistoryEvent{}
	for _, r := range h.records {
		// A run set aside for a later one ("003_nick~1") is shown under
		// its migration's name.
		name, _, _ := strings.Cut(r.Name, "~")
		reverts, _, _ := strings.Cut(r.Reverts, "~")
		ev := HistoryEvent{Migration: name, Kind: r.Kind, Reverts: reverts, VersionSchema: r.VersionSchema, AppliedBy: r.AppliedBy, OSUser: r.OSUser,
			Undone: r.Kind != state.KindRevert && r.Phase == state.Complete && h.effective[r.Name] == nil}
		for _, f := range r.Files {
			ev.Files = append(ev.Files, f.Name)
		}
		if r.Kind == state.KindBaseline {
			ev.At, ev.Event = r.StartedAt, EventBaseline
			out = append(out, ev)
			continue
		}
		ev.At, ev.Event = r.StartedAt, EventStarted
		out = append(out, ev)
		if r.CompletedAt != nil {
			done := ev
			done.At, done.Event, done.Duration = *r.CompletedAt, EventCompleted, r.Duration
			cps, err := e.store.Backfills(ctx, e.conn, r.Schema, r.Name)
			if err != nil {
				return nil, err
			}
			for _, cp := range cps {
				done.RowsBackfilled += cp.RowsDone
			}
			out = append(out, done)
		}
	}
	evs, err := e.store.Events(ctx, e.conn, e.cfg.Schema)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		out = append(out, HistoryEvent{At: ev.At, Event: ev.Event, Migration: ev.Migration, Kind: ev.Kind, Files: ev.Files, AppliedBy: ev.AppliedBy, OSUser: ev.OSUser})
	}
	slices.SortStableFunc(out, func(a, b HistoryEvent) int { return a.At.Compare(b.At) })
	return out, nil
}
