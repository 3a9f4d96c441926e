package phases

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/state"
)

// setAside makes room for a migration to run again under the name of an
// earlier record. A record is kept per migration name; when a completed
// revert undid that migration, its record is renamed ("003_nick~1"), the
// revert's record renamed along with it, so that the history keeps both
// runs and the file can be applied again. Any other record of that name
// means the migration is in effect: an error says so.
func (e *Engine) setAside(ctx context.Context, done *state.Record) error {
	h, err := e.readHistory(ctx)
	if err != nil {
		return err
	}
	if done.Phase != state.Complete || done.Kind != state.KindMigration || h.effective[done.Name] != nil || !reverted(h, done.Name) {
		return fmt.Errorf("migration %q was already applied on %s and is in effect; to run it again, revert it first (online revert), or give the new file a name of its own", done.Name, done.UpdatedAt.Format(time.RFC3339))
	}
	for n := 1; ; n++ {
		name := fmt.Sprintf("%s~%d", done.Name, n)
		if r, err := e.store.Get(ctx, e.conn, e.cfg.Schema, name); err != nil {
			return err
		} else if r != nil {
			continue
		}
		e.log.Info().Str(keyMigration, done.Name).Str("set_aside_as", name).Msg("the earlier, reverted run of this migration is kept in the history under another name")
		return pgxTx(ctx, e, func(q state.Querier) error { return e.store.Rename(ctx, q, e.cfg.Schema, done.Name, name) })
	}
}

// reverted reports whether a completed revert in h undid the migration name.
func reverted(h *history, name string) bool {
	for _, r := range h.records {
		if r.Kind == state.KindRevert && r.Phase == state.Complete && r.Reverts == name {
			return true
		}
	}
	return false
}

// fileOf is the file `online start FILE` ran, as the history keeps a
// directory's files: so that a migration started from a file of the
// folder is that file for migrate DIR, status DIR and pull. A migration
// parsed from no file (a label, a stored document) records none.
func fileOf(m *operations.Migration) []state.File {
	base := filepath.Base(m.File)
	if m.File == "" || !isMigrationFile(base) {
		return nil
	}
	sum, err := Checksum(m.Document)
	if err != nil {
		return nil
	}
	return []state.File{{Name: base, Checksum: sum, Document: m.Document}}
}
