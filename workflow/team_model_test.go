package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/workflow"
)

// TestTeamModel is a model-based test of the directory workflow (issue
// 22): random sequences of what a team does (add, edit or delete a pending
// file; migrate with and without --complete; complete; rollback; revert;
// revert --to; start FILE; a hand-made ALTER), each checked against a small model of
// what the folder and the database should say. After every step: status
// DIR gives each file the state the model does; the newest version has the
// columns of the files in effect; an application pinned to each live
// version writes; a hand-made change is reported as drift. At the end,
// migrate --complete takes any state to "all applied".
//
// It runs ONLINE_TEAM_RUNS sequences (default 3) of ONLINE_TEAM_STEPS
// steps (default 30). A failure prints the seed: ONLINE_TEAM_SEED=n
// replays that sequence alone.
func TestTeamModel(t *testing.T) {
	t.Parallel()
	runs, steps := teamEnvInt("ONLINE_TEAM_RUNS", 3), teamEnvInt("ONLINE_TEAM_STEPS", 30)
	seeds := make([]uint64, runs)
	for i := range seeds {
		seeds[i] = uint64(time.Now().UnixNano()) + uint64(i)
	}
	if s := os.Getenv("ONLINE_TEAM_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ONLINE_TEAM_SEED: %v", err)
		}
		seeds = []uint64{n}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			runTeamModel(t, seed, steps)
		})
	}
}

func teamEnvInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// teamModel is what the folder and the database should say.
type teamModel struct {
	files   []modelFile // the folder, in name order
	next    int         // the number of the next file
	applied [][]string  // the migrations in effect, each its files
	// inProgress is the files of the migration in progress; reverting is
	// set instead while a revert is in progress, to the group it undoes
	// (or, for the revert of a revert, brings back).
	inProgress []string
	reverting  []string
	// revertApplies is set when the revert in progress brings its group
	// back (the revert of a revert) rather than undoing it.
	revertApplies bool
	// last is the last completed migration: a group of files, or the
	// revert of one (lastRevert).
	last       []string
	lastRevert bool
	// everApplied files may not be edited or deleted: revert of a revert
	// and migrate bring back what was applied.
	everApplied map[string]bool
}

type modelFile struct {
	name, col, typ string
}

func (m *teamModel) file(name string) *modelFile {
	for i := range m.files {
		if m.files[i].name == name {
			return &m.files[i]
		}
	}
	return nil
}

func (m *teamModel) fs() fstest.MapFS {
	out := fstest.MapFS{}
	for _, f := range m.files {
		var body string
		if f.col == "" {
			body = "operations:\n  - create_table: { name: t, columns: [{ name: id, type: bigserial, pk: true }] }\n"
		} else {
			body = fmt.Sprintf("operations:\n  - add_column: { table: t, column: { name: %s, type: %s, nullable: true } }\n", f.col, f.typ)
		}
		out[f.name+".yaml"] = &fstest.MapFile{Data: []byte(body)}
	}
	return out
}

func (m *teamModel) isApplied(name string) bool {
	for _, g := range m.applied {
		if slices.Contains(g, name) {
			return true
		}
	}
	return false
}

func (m *teamModel) pending() []string {
	var out []string
	for _, f := range m.files {
		if !m.isApplied(f.name) && !slices.Contains(m.inProgress, f.name) {
			out = append(out, f.name)
		}
	}
	return out
}

func (m *teamModel) state(name string) string {
	switch {
	case m.isApplied(name):
		return workflow.FileApplied
	case slices.Contains(m.inProgress, name):
		return workflow.FileInProgress
	}
	return workflow.FilePending
}

// columns are the columns the newest version shows: those of the files in
// effect, with those in progress; during a revert, without the group it
// undoes (or with the group it brings back).
func (m *teamModel) columns() map[string]string {
	out := map[string]string{"id": "bigint"}
	in := func(name string) bool {
		if slices.Contains(m.reverting, name) {
			return m.revertApplies
		}
		return m.isApplied(name) || slices.Contains(m.inProgress, name)
	}
	if !in("001_t") {
		return map[string]string{} // reverted: no table
	}
	for _, f := range m.files {
		if f.col != "" && in(f.name) {
			out[f.col] = map[string]string{"text": "text", "int": "integer", "bigint": "bigint"}[f.typ]
		}
	}
	return out
}

func (m *teamModel) complete(groupDone []string) {
	m.applied = append(m.applied, groupDone)
	m.last, m.lastRevert = groupDone, false
	for _, f := range groupDone {
		m.everApplied[f] = true
	}
}

func runTeamModel(t *testing.T, seed uint64, steps int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 22))
	env := newEnv(t)
	eng := env.engine()
	m := &teamModel{everApplied: map[string]bool{}}
	m.files = append(m.files, modelFile{name: "001_t"})
	m.next = 2
	var log []string
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d (replay: ONLINE_TEAM_SEED=%d go test ./phases -run 'TestTeamModel' -count=1), after:\n  %s\n%s",
			seed, seed, strings.Join(log, "\n  "), fmt.Sprintf(format, args...))
	}
	expectErr := func(err error, ok func(error) bool, what string) {
		t.Helper()
		if err == nil || !ok(err) {
			fail("%s: got %v", what, err)
		}
	}
	noErr := func(err error, what string) {
		t.Helper()
		if err != nil {
			fail("%s: %s", what, pg.Explain(err))
		}
	}
	types := []string{"text", "int", "bigint"}
	for step := 0; step < steps; step++ {
		d, err := workflow.LoadDir(m.fs())
		noErr(err, "load the folder")
		action := rng.IntN(14)
		switch action {
		case 0, 1: // a new file
			f := modelFile{name: fmt.Sprintf("%03d_c%d", m.next, m.next), col: fmt.Sprintf("c%d", m.next), typ: types[rng.IntN(3)]}
			m.next++
			m.files = append(m.files, f)
			log = append(log, "add "+f.name+" ("+f.typ+")")
		case 2: // edit or delete a file never applied
			var cands []string
			for _, p := range m.pending() {
				if !m.everApplied[p] && m.file(p).col != "" {
					cands = append(cands, p)
				}
			}
			if len(cands) == 0 {
				continue
			}
			name := cands[rng.IntN(len(cands))]
			if rng.IntN(2) == 0 {
				f := m.file(name)
				f.typ = types[(slices.Index(types, f.typ)+1)%3]
				log = append(log, "edit "+name+" ("+f.typ+")")
			} else {
				m.files = slices.DeleteFunc(m.files, func(f modelFile) bool { return f.name == name })
				log = append(log, "delete "+name)
			}
		case 3, 4: // migrate DIR, the default
			log = append(log, "migrate")
			_, err := eng.Migrate(ctx, d, workflow.MigrateOptions{})
			pend := m.pending()
			var refused *workflow.RefusedError
			var foreign *workflow.ForeignInProgressError
			switch {
			case m.reverting != nil:
				expectErr(err, func(err error) bool { return errors.As(err, &foreign) }, "migrate during a revert")
			case len(m.inProgress) > 0 && len(pend) > 0:
				expectErr(err, func(err error) bool { return errors.As(err, &refused) }, "migrate with a migration in progress and files pending")
			default:
				noErr(err, "migrate")
				if len(pend) > 0 {
					m.inProgress = pend
				}
			}
		case 5: // migrate DIR --complete
			log = append(log, "migrate --complete")
			_, err := eng.Migrate(ctx, d, workflow.MigrateOptions{Complete: true})
			var foreign *workflow.ForeignInProgressError
			if m.reverting != nil {
				expectErr(err, func(err error) bool { return errors.As(err, &foreign) }, "migrate --complete during a revert")
				break
			}
			noErr(err, "migrate --complete")
			if len(m.inProgress) > 0 {
				m.complete(m.inProgress)
				m.inProgress = nil
			}
			for _, p := range m.pending() {
				m.complete([]string{p})
			}
		case 6: // complete
			log = append(log, "complete")
			_, err := eng.Complete(ctx)
			switch {
			case m.reverting != nil:
				noErr(err, "complete the revert")
				m.finishRevert()
			case len(m.inProgress) > 0:
				noErr(err, "complete")
				m.complete(m.inProgress)
				m.inProgress = nil
			default:
				expectErr(err, func(err error) bool { return errors.Is(err, phases.ErrNoMigration) }, "complete with nothing in progress")
			}
		case 7: // rollback
			log = append(log, "rollback")
			_, err := eng.Rollback(ctx)
			if m.reverting == nil && len(m.inProgress) == 0 {
				expectErr(err, func(err error) bool { return errors.Is(err, phases.ErrNoMigration) }, "rollback with nothing in progress")
				break
			}
			noErr(err, "rollback")
			m.inProgress, m.reverting = nil, nil
		case 8: // revert
			log = append(log, "revert")
			_, err := eng.Revert(ctx)
			var ie *operations.IrreversibleError
			var ip *phases.InProgressError
			switch {
			case m.reverting != nil || len(m.inProgress) > 0:
				expectErr(err, func(err error) bool { return errors.As(err, &ip) }, "revert with a migration in progress")
			case m.last == nil:
				expectErr(err, func(err error) bool { return errors.Is(err, workflow.ErrNothingToRevert) }, "revert with nothing completed")
			case errors.As(err, &ie):
				// Allowed: the model leaves the database as it was.
				log[len(log)-1] += " (refused: irreversible)"
			default:
				noErr(err, "revert")
				m.reverting, m.revertApplies = m.last, m.lastRevert
			}
		case 12: // migrate DIR --one-by-one
			log = append(log, "migrate --one-by-one")
			_, err := eng.Migrate(ctx, d, workflow.MigrateOptions{OneByOne: true})
			var foreign *workflow.ForeignInProgressError
			if m.reverting != nil {
				expectErr(err, func(err error) bool { return errors.As(err, &foreign) }, "migrate --one-by-one during a revert")
				break
			}
			noErr(err, "migrate --one-by-one")
			pend := m.pending()
			if len(m.inProgress) > 0 && len(pend) > 0 {
				m.complete(m.inProgress)
				m.inProgress = nil
			}
			for i, p := range pend {
				if i == len(pend)-1 {
					m.inProgress = []string{p}
					break
				}
				m.complete([]string{p})
			}
		case 13: // pull into a new clone: the applied files, as the folder has them
			log = append(log, "pull")
			pulled, err := eng.Pull(ctx)
			noErr(err, "pull")
			folder := m.fs()
			var got, want []string
			for _, f := range pulled {
				got = append(got, f.File)
				sum, err := workflow.Checksum(mustParse(t, f.File, f.Content).Document)
				noErr(err, "checksum")
				if sum != f.Checksum {
					fail("pulled %s: its content's checksum %s is not the recorded %s", f.File, sum, f.Checksum)
				}
				if _, ok := folder[f.File]; !ok {
					fail("pulled %s, which the folder does not have", f.File)
				}
			}
			for _, f := range m.files {
				if st := m.state(f.name); st != workflow.FilePending {
					want = append(want, f.name+".yaml")
				}
			}
			slices.Sort(got)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				fail("pull wrote %v, want the applied and in-progress files %v", got, want)
			}
		case 11: // revert --to 001_t: one revert at a time, never re-applying
			log = append(log, "revert --to 001_t")
			_, _, err := eng.RevertTo(ctx, "001_t")
			var ip *phases.InProgressError
			var de *workflow.DirError
			first := slices.IndexFunc(m.applied, func(g []string) bool { return slices.Contains(g, "001_t") })
			switch {
			case m.reverting != nil || len(m.inProgress) > 0:
				expectErr(err, func(err error) bool { return errors.As(err, &ip) }, "revert --to with a migration in progress")
			case first < 0:
				expectErr(err, func(err error) bool { return errors.As(err, &de) }, "revert --to a migration not in effect")
			case first == len(m.applied)-1:
				expectErr(err, func(err error) bool { return errors.Is(err, workflow.ErrNothingToRevert) }, "revert --to the last migration in effect")
			default:
				noErr(err, "revert --to")
				m.reverting, m.revertApplies = m.applied[len(m.applied)-1], false
			}
		case 9: // start FILE, the first pending file
			pend := m.pending()
			if len(pend) == 0 {
				continue
			}
			log = append(log, "start "+pend[0]+".yaml")
			mig, err := operations.Parse(pend[0]+".yaml", m.fs()[pend[0]+".yaml"].Data)
			noErr(err, "parse")
			_, err = eng.Start(ctx, mig)
			var ip *phases.InProgressError
			if m.reverting != nil || len(m.inProgress) > 0 {
				expectErr(err, func(err error) bool { return errors.As(err, &ip) }, "start with a migration in progress")
				break
			}
			noErr(err, "start FILE")
			m.inProgress = pend[:1]
		case 10: // a hand-made ALTER, reported as drift, then undone
			if m.reverting != nil || len(m.inProgress) > 0 || m.last == nil || env.rows(env.db, "SELECT to_regclass('public.t') IS NULL")[0] == "true" {
				continue
			}
			log = append(log, "ALTER TABLE t ADD COLUMN by_hand (then drop it)")
			env.exec(env.db, "ALTER TABLE t ADD COLUMN by_hand int")
			st, err := eng.DirStatus(ctx, d)
			noErr(err, "status")
			if st.SchemaDrift == nil || len(st.SchemaDrift.Drift) != 1 || st.SchemaDrift.Drift[0].Object != "column t.by_hand" {
				fail("drift after a hand-made ALTER: %+v", st.SchemaDrift)
			}
			env.exec(env.db, "ALTER TABLE t DROP COLUMN by_hand")
		}
		checkTeamModel(t, eng, env, m, fail)
	}
	// From any state, the printed way on reaches "all applied".
	d, err := workflow.LoadDir(m.fs())
	noErr(err, "load the folder")
	if m.reverting != nil {
		log = append(log, "complete (the revert)")
		_, err := eng.Complete(ctx)
		noErr(err, "complete the revert")
		m.finishRevert()
	}
	log = append(log, "migrate --complete (to the end)")
	_, err = eng.Migrate(ctx, d, workflow.MigrateOptions{Complete: true})
	noErr(err, "migrate --complete at the end")
	if len(m.inProgress) > 0 {
		m.complete(m.inProgress)
		m.inProgress = nil
	}
	for _, p := range m.pending() {
		m.complete([]string{p})
	}
	checkTeamModel(t, eng, env, m, fail)
	if len(m.pending()) != 0 {
		fail("files left pending: %v", m.pending())
	}
	t.Logf("seed %d: %d steps: %s", seed, len(log), strings.Join(log, "; "))
}

// finishRevert is the model of a revert's complete: the group undone goes
// back to pending, or the group a revert of a revert brings back is in
// effect again.
func (m *teamModel) finishRevert() {
	g := m.reverting
	m.reverting = nil
	if m.revertApplies {
		m.applied = append(m.applied, g)
		m.last, m.lastRevert = g, false
		return
	}
	m.applied = slices.DeleteFunc(m.applied, func(a []string) bool { return slices.Equal(a, g) })
	m.last, m.lastRevert = g, true
}

func checkTeamModel(t *testing.T, eng *workflow.Engine, env *env, m *teamModel, fail func(string, ...any)) {
	t.Helper()
	ctx := context.Background()
	d, err := workflow.LoadDir(m.fs())
	if err != nil {
		fail("load the folder: %v", err)
	}
	st, err := eng.DirStatus(ctx, d)
	if err != nil {
		fail("status: %s", pg.Explain(err))
	}
	if len(st.Files) != len(m.files) {
		fail("status lists %d files, the folder has %d: %+v", len(st.Files), len(m.files), st.Files)
	}
	for i, f := range st.Files {
		if want := m.state(m.files[i].name); f.Name != m.files[i].name || f.State != want {
			fail("status: file %s is %s, the model says %s is %s", f.Name, f.State, m.files[i].name, want)
		}
	}
	if st.SchemaDrift != nil && len(st.SchemaDrift.Drift) > 0 {
		fail("drift with no change by hand: %+v", st.SchemaDrift.Drift)
	}
	// The newest version shows the columns of the files in effect.
	latest := st.Latest
	if latest == "public" {
		return
	}
	got := map[string]string{}
	for _, row := range env.rows(env.db, "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 't'", latest) {
		name, typ, _ := strings.Cut(row, "|")
		got[name] = typ
	}
	if want := m.columns(); fmt.Sprint(got) != fmt.Sprint(want) {
		fail("version %s has columns %v, the model says %v", latest, got, want)
	}
	if len(got) == 0 {
		return
	}
	// An application pinned to each live version writes.
	live := []string{latest}
	if st.InProgress != nil && st.InProgress.Parent != "" {
		live = append(live, st.InProgress.Parent)
	}
	for _, v := range live {
		if env.rows(env.db, "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{v, "t"}.Sanitize())[0] != "true" {
			continue // a version from before the table (its creation reverted)
		}
		// As an application behind a transaction pooler would: SET LOCAL.
		err := pgx.BeginFunc(ctx, env.db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", pgx.Identifier{v}.Sanitize()); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO t DEFAULT VALUES")
			return err
		})
		if err != nil {
			fail("an application on live version %s cannot write: %v", v, err)
		}
	}
}
