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
	recs, err := e.store.History(ctx, e.conn, e.cfg.Schema)
	if err != nil {
		return err
	}
	effective, _ := state.InEffect(recs)
	if done.Phase != state.Complete || done.Kind != state.KindMigration || effective[done.Name] != nil || !state.Reverted(recs, done.Name) {
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
		return e.InTx(ctx, func(q state.Querier) error { return e.store.Rename(ctx, q, e.cfg.Schema, done.Name, name) })
	}
}

// fileOf is the file `online start FILE` ran, as the history keeps a
// directory's files: so that a migration started from a file of the
// folder is that file for migrate DIR, status DIR and pull. A migration
// parsed from no file (a label, a stored document) records none.
func fileOf(m *operations.Migration) []state.File {
	base := filepath.Base(m.File)
	if m.File == "" || !state.IsMigrationFile(base) {
		return nil
	}
	sum, err := state.Checksum(m.Document)
	if err != nil {
		return nil
	}
	return []state.File{{Name: base, Checksum: sum, Document: m.Document}}
}
