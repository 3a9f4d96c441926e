package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/workflow"
)

// TestTeamModel is a model-based test of the directory workflow (issue
// 22): random sequences of what a team does, each step checked against a
// small model of what the folder and the database should say. The steps:
// add, edit or delete a pending file; migrate (the default window,
// --complete, --one-by-one); complete; rollback; revert; revert --to;
// start FILE; pull; a lost applied file restored as migrate says; baseline
// (a database adopted at the start, refused later); a hand-made ALTER; and
// an `online` process (the binary, built once) killed with SIGKILL at a
// random moment of migrate, migrate --complete, complete or rollback.
//
// Throughout, an application writes through each version that is live (a
// writer per version, from the moment the version is published until a
// step that retires it is about to run, as a deploy would): its errors
// must be 0. After every step: status DIR gives each file the state the
// model does, and the migration in progress; the newest version has the
// columns of the files in effect; a hand-made change is reported as drift.
// When migrate refuses, what it says to do is done (half the time) and
// migrate then works. At the end, from whatever state, following only
// what migrate prints reaches "all applied".
//
// It runs sequences for ONLINE_TEAM_DURATION (default 35s, after the
// binary's build) of at most ONLINE_TEAM_STEPS steps (default 25). A
// failure prints the seed: ONLINE_TEAM_SEED=n replays that sequence alone
// (a kill lands at a moment the seed does not fix, so a replay may take
// another branch after one).
func TestTeamModel(t *testing.T) {
	t.Parallel()
	budget := teamEnvDuration("ONLINE_TEAM_DURATION", 35*time.Second)
	steps := teamEnvInt("ONLINE_TEAM_STEPS", 25)
	bin := buildOnline(t)
	// The budget is the sequences' own: a loaded machine can take most
	// of a minute to build the binary.
	deadline := time.Now().Add(budget)
	if s := os.Getenv("ONLINE_TEAM_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ONLINE_TEAM_SEED: %v", err)
		}
		t.Run(fmt.Sprint(n), func(t *testing.T) { runTeamModel(t, bin, n, steps, time.Time{}) })
		return
	}
	for i := 0; i == 0 || time.Now().Before(deadline); i++ {
		seed := uint64(time.Now().UnixNano())
		if !t.Run(fmt.Sprint(seed), func(t *testing.T) { runTeamModel(t, bin, seed, steps, deadline) }) {
			return
		}
	}
}

func teamEnvInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

func teamEnvDuration(key string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// buildOnline builds the online binary into a temporary directory: the
// process a step kills.
func buildOnline(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "online")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "github.com/onlinepg/online/cmd/online")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build online: %v\n%s", err, out)
	}
	return bin
}

// teamModel is what the folder and the database should say.
type teamModel struct {
	files []modelFile // the folder, in name order
	next  int         // the number of the next file
	// applied lists the migrations in effect, each its files; baseline
	// marks the files a baseline recorded (never run by online).
	applied  [][]string
	baseline map[string]bool
	// inProgress is the files of the migration in progress, unpublished
	// while its start has not reached publish (a killed process); reverting
	// is set instead while a revert is in progress, to the group it undoes
	// (or, for the revert of a revert, brings back).
	inProgress  []string
	unpublished bool
	reverting   []string
	// revertApplies is set when the revert in progress brings its group
	// back (the revert of a revert) rather than undoing it.
	revertApplies bool
	// last is the last completed migration: a group of files, or the
	// revert of one (lastRevert).
	last       []string
	lastRevert bool
	// ran is set while online has a migration here, completed or in
	// progress (baseline refuses then); completed once one completed.
	ran, completed bool
	// everApplied files may not be edited or deleted: revert of a revert
	// and migrate bring back what was applied.
	everApplied map[string]bool
}

type modelFile struct {
	name, col, typ string
}

func (m *teamModel) clone() *teamModel {
	c := *m
	c.files = slices.Clone(m.files)
	c.applied = nil
	for _, g := range m.applied {
		c.applied = append(c.applied, slices.Clone(g))
	}
	c.inProgress, c.reverting, c.last = slices.Clone(m.inProgress), slices.Clone(m.reverting), slices.Clone(m.last)
	c.baseline, c.everApplied = map[string]bool{}, map[string]bool{}
	for k, v := range m.baseline {
		c.baseline[k] = v
	}
	for k, v := range m.everApplied {
		c.everApplied[k] = v
	}
	return &c
}

func (m *teamModel) file(name string) *modelFile {
	for i := range m.files {
		if m.files[i].name == name {
			return &m.files[i]
		}
	}
	return nil
}

func (m *teamModel) content(f modelFile) string {
	if f.col == "" {
		return "operations:\n  - create_table: { name: t, columns: [{ name: id, type: bigserial, pk: true }] }\n"
	}
	return fmt.Sprintf("operations:\n  - add_column: { table: t, column: { name: %s, type: %s, nullable: true } }\n", f.col, f.typ)
}

// write makes dir hold the folder.
func (m *teamModel) write(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if m.file(strings.TrimSuffix(e.Name(), ".yaml")) == nil {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range m.files {
		if err := os.WriteFile(filepath.Join(dir, f.name+".yaml"), []byte(m.content(f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
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
// effect, with those in progress once published; during a revert, without
// the group it undoes (or with the group it brings back).
func (m *teamModel) columns() map[string]string {
	out := map[string]string{"id": "bigint"}
	in := func(name string) bool {
		if slices.Contains(m.reverting, name) {
			return m.revertApplies
		}
		return m.isApplied(name) || slices.Contains(m.inProgress, name) && !m.unpublished
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
	m.last, m.lastRevert, m.ran, m.completed = groupDone, false, true, true
	for _, f := range groupDone {
		m.everApplied[f] = true
	}
}

// finishRevert is the model of a revert's complete: the group undone goes
// back to pending, or the group a revert of a revert brings back is in
// effect again.
func (m *teamModel) finishRevert() {
	g := m.reverting
	m.reverting, m.completed = nil, true
	if m.revertApplies {
		m.applied = append(m.applied, g)
		m.last, m.lastRevert = g, false
		return
	}
	m.applied = slices.DeleteFunc(m.applied, func(a []string) bool { return slices.Equal(a, g) })
	m.last, m.lastRevert = g, true
}

// afterComplete is the model of a complete that succeeded.
func (m *teamModel) afterComplete() {
	switch {
	case m.reverting != nil:
		m.finishRevert()
	case len(m.inProgress) > 0:
		m.complete(m.inProgress)
		m.inProgress = nil
	}
}

// afterMigrate is the model of a migrate that succeeded: how says which
// ("", "complete", "one-by-one").
func (m *teamModel) afterMigrate(how string) {
	pend := m.pending()
	m.unpublished = false
	switch how {
	case "complete":
		if len(m.inProgress) > 0 {
			m.complete(m.inProgress)
			m.inProgress = nil
		}
		for _, p := range pend {
			m.complete([]string{p})
		}
	case "one-by-one":
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
	default:
		if len(pend) > 0 {
			m.inProgress = pend
		}
	}
	if len(m.inProgress) > 0 {
		m.ran = true
	}
}

// appWriters are the application: one writer per live version, each on a
// connection of its own, inserting rows through the version's view.
type appWriters struct {
	url  string
	errs atomic.Int64
	mu   sync.Mutex
	msgs []string
	live map[string]*appWriter
	rows int64 // written by the writers halted
}

type appWriter struct {
	stop chan struct{}
	done chan struct{}
	rows atomic.Int64
}

func (ws *appWriters) start(t *testing.T, version string) {
	t.Helper()
	conn, err := pgtest.ConnectOptions(context.Background(), ws.url, pg.Options{SearchPath: version, ApplicationName: "online-test-app"})
	if err != nil {
		t.Fatalf("connect an application to %s: %v", version, err)
	}
	w := &appWriter{stop: make(chan struct{}), done: make(chan struct{})}
	ws.live[version] = w
	go func() {
		defer close(w.done)
		defer conn.Close(context.Background())
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := conn.Exec(ctx, "INSERT INTO t DEFAULT VALUES")
			cancel()
			if err != nil {
				ws.errs.Add(1)
				ws.mu.Lock()
				if len(ws.msgs) < 5 {
					ws.msgs = append(ws.msgs, version+": "+err.Error())
				}
				ws.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
				continue
			}
			w.rows.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
}

func (ws *appWriters) halt(version string) {
	if w := ws.live[version]; w != nil {
		close(w.stop)
		<-w.done
		ws.rows += w.rows.Load()
		delete(ws.live, version)
	}
}

// retire stops the writers of every version but keep, before a step that
// may retire them: the application has moved on, as the README's
// workflow asks before complete.
func (ws *appWriters) retire(keep ...string) {
	for v := range ws.live {
		if !slices.Contains(keep, v) {
			ws.halt(v)
		}
	}
}

func (ws *appWriters) errorText() string {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return strings.Join(ws.msgs, "; ")
}

// liveVersions are the versions the README says applications may use:
// the newest, and while a migration is in progress and published, the
// one before it (the migrated schema itself when none was published).
func liveVersions(st *workflow.DirStatus) []string {
	out := []string{st.Latest}
	if ip := st.InProgress; ip != nil && (ip.Phase == "active" || ip.Phase == "completing") {
		old := ip.Parent
		if old == "" {
			old = st.Schema
		}
		if old != st.Latest {
			out = append(out, old)
		}
	}
	return out
}

type teamRun struct {
	t    *testing.T
	ctx  context.Context
	rng  *rand.Rand
	env  *env
	eng  *workflow.Engine
	m    *teamModel
	dir  string
	bin  string
	seed uint64
	log  []string
	ws   *appWriters
}

func (r *teamRun) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("seed %d (replay: ONLINE_TEAM_SEED=%d go test ./workflow -run 'TestTeamModel' -count=1), after:\n  %s\n%s",
		r.seed, r.seed, strings.Join(r.log, "\n  "), fmt.Sprintf(format, args...))
}

func (r *teamRun) noErr(err error, what string) {
	r.t.Helper()
	if err != nil {
		r.fail("%s: %s", what, pg.Explain(err))
	}
}

func (r *teamRun) expectErr(err error, ok func(error) bool, what string) {
	r.t.Helper()
	if err == nil || !ok(err) {
		r.fail("%s: got %v", what, err)
	}
}

func (r *teamRun) load() *workflow.Dir {
	r.t.Helper()
	r.m.write(r.t, r.dir)
	d, err := workflow.LoadPath(r.dir)
	r.noErr(err, "load the folder")
	return d
}

func (r *teamRun) status() *workflow.DirStatus {
	r.t.Helper()
	st, err := r.eng.DirStatus(r.ctx, r.load())
	r.noErr(err, "status")
	return st
}

// inProgressVersion is the version of the migration in progress, "" when none.
func (r *teamRun) inProgressVersion() string {
	st := r.status()
	if st.InProgress == nil {
		return ""
	}
	return st.InProgress.VersionSchema
}

// complete runs complete as a team does: the old version's application
// gone first.
func (r *teamRun) complete() error {
	if v := r.inProgressVersion(); v != "" {
		r.ws.retire(v)
	}
	_, err := r.eng.Complete(r.ctx)
	return err
}

func (r *teamRun) migrate(how string) error {
	d := r.load()
	if how != "" {
		r.ws.retire()
	}
	_, err := r.eng.Migrate(r.ctx, d, workflow.MigrateOptions{Complete: how == "complete", OneByOne: how == "one-by-one"})
	return err
}

// follow does what a refusal of migrate says to do, the first command it
// names, and reports it; "" when it names none.
func (r *teamRun) follow(err error) string {
	r.t.Helper()
	msg := err.Error()
	var advice []string
	for _, a := range []string{"online complete", "online rollback", "online pull"} {
		if i := strings.Index(msg, a); i >= 0 {
			advice = append(advice, fmt.Sprintf("%06d%s", i, a))
		}
	}
	if len(advice) == 0 {
		return ""
	}
	slices.Sort(advice)
	a := advice[0][6:]
	switch a {
	case "online complete":
		r.noErr(r.complete(), "complete, as migrate said")
		r.m.afterComplete()
	case "online rollback":
		r.ws.halt(r.inProgressVersion())
		_, err := r.eng.Rollback(r.ctx)
		r.noErr(err, "rollback, as migrate said")
		r.m.inProgress, r.m.reverting, r.m.unpublished, r.m.ran = nil, nil, false, r.m.completed
	case "online pull":
		files, err := r.eng.Pull(r.ctx)
		r.noErr(err, "pull, as migrate said")
		_, err = workflow.WritePulled(r.dir, files, false)
		r.noErr(err, "write the pulled files")
	}
	return a
}

func runTeamModel(t *testing.T, bin string, seed uint64, steps int, deadline time.Time) {
	env := newEnv(t)
	r := &teamRun{t: t, ctx: context.Background(), rng: rand.New(rand.NewPCG(seed, 22)), env: env, eng: env.engine(), bin: bin, seed: seed,
		dir: t.TempDir(), m: &teamModel{everApplied: map[string]bool{}, baseline: map[string]bool{}}}
	r.ws = &appWriters{url: env.url, live: map[string]*appWriter{}}
	defer r.ws.retire()
	m := r.m
	m.files = append(m.files, modelFile{name: "001_t"})
	m.next = 2
	if r.rng.IntN(3) == 0 {
		// A database another tool built: the table is there, and a
		// baseline records the folder's first file as applied.
		r.log = append(r.log, "CREATE TABLE t by hand; baseline --up-to 001_t")
		env.exec(env.db, "CREATE TABLE t (id bigserial PRIMARY KEY)")
		_, err := r.eng.Baseline(r.ctx, r.load(), "001_t")
		r.noErr(err, "baseline")
		m.applied, m.baseline["001_t"], m.last = [][]string{{"001_t"}}, true, []string{"001_t"}
		m.everApplied["001_t"] = true
	}
	r.check()
	for step := 0; step < steps && (deadline.IsZero() || time.Now().Before(deadline)); step++ {
		r.step()
		r.check()
	}
	r.converge()
	t.Logf("seed %d: %d steps, %d rows written by the application, 0 errors: %s", seed, len(r.log), r.ws.rows, strings.Join(r.log, "; "))
}

// step runs one random action and updates the model.
func (r *teamRun) step() {
	m, rng := r.m, r.rng
	types := []string{"text", "int", "bigint"}
	var foreign *workflow.ForeignInProgressError
	var refused *workflow.RefusedError
	var ip *phases.InProgressError
	switch rng.IntN(17) {
	case 0, 1: // a new file
		f := modelFile{name: fmt.Sprintf("%03d_c%d", m.next, m.next), col: fmt.Sprintf("c%d", m.next), typ: types[rng.IntN(3)]}
		m.next++
		m.files = append(m.files, f)
		r.log = append(r.log, "add "+f.name+" ("+f.typ+")")
	case 2: // edit or delete a file never applied
		var cands []string
		for _, p := range m.pending() {
			if !m.everApplied[p] && m.file(p).col != "" {
				cands = append(cands, p)
			}
		}
		if len(cands) == 0 {
			return
		}
		name := cands[rng.IntN(len(cands))]
		if rng.IntN(2) == 0 {
			f := m.file(name)
			f.typ = types[(slices.Index(types, f.typ)+1)%3]
			r.log = append(r.log, "edit "+name+" ("+f.typ+")")
		} else {
			m.files = slices.DeleteFunc(m.files, func(f modelFile) bool { return f.name == name })
			r.log = append(r.log, "delete "+name)
		}
	case 3, 4, 5: // migrate DIR, the default: the version in use stays live
		r.log = append(r.log, "migrate")
		err := r.migrate("")
		pend := m.pending()
		switch {
		case m.reverting != nil:
			r.expectErr(err, func(err error) bool { return errors.As(err, &foreign) }, "migrate during a revert")
		case len(m.inProgress) > 0 && len(pend) > 0:
			r.expectErr(err, func(err error) bool { return errors.As(err, &refused) }, "migrate with a migration in progress and files pending")
			m.unpublished = false // resumed before the refusal
		default:
			r.noErr(err, "migrate")
			m.afterMigrate("")
			return
		}
		if rng.IntN(2) == 0 {
			// What it says to do works, and migrate then proceeds.
			a := r.follow(err)
			if a == "" {
				r.fail("migrate refused without naming what to do: %v", err)
			}
			r.log = append(r.log, "  as it says: "+a+"; migrate")
			err = r.migrate("")
			if m.reverting != nil || len(m.inProgress) > 0 && len(m.pending()) > 0 {
				r.fail("after %s, as migrate said, the model still has a migration in progress: %v", a, err)
			}
			r.noErr(err, "migrate, after doing what it said")
			m.afterMigrate("")
		}
	case 6: // migrate DIR --complete
		r.log = append(r.log, "migrate --complete")
		err := r.migrate("complete")
		if m.reverting != nil {
			r.expectErr(err, func(err error) bool { return errors.As(err, &foreign) }, "migrate --complete during a revert")
			return
		}
		r.noErr(err, "migrate --complete")
		m.afterMigrate("complete")
	case 7: // migrate DIR --one-by-one
		r.log = append(r.log, "migrate --one-by-one")
		err := r.migrate("one-by-one")
		if m.reverting != nil {
			r.expectErr(err, func(err error) bool { return errors.As(err, &foreign) }, "migrate --one-by-one during a revert")
			return
		}
		r.noErr(err, "migrate --one-by-one")
		m.afterMigrate("one-by-one")
	case 8: // complete
		r.log = append(r.log, "complete")
		err := r.complete()
		switch {
		case m.unpublished:
			r.expectErr(err, func(err error) bool { return errors.Is(err, phases.ErrBackfillUnfinished) }, "complete before its start finished")
		case m.reverting != nil || len(m.inProgress) > 0:
			r.noErr(err, "complete")
			m.afterComplete()
		default:
			r.expectErr(err, func(err error) bool { return errors.Is(err, phases.ErrNoMigration) }, "complete with nothing in progress")
		}
	case 9: // rollback
		r.log = append(r.log, "rollback")
		// The new version's application goes; the old one's stays.
		r.ws.halt(r.inProgressVersion())
		_, err := r.eng.Rollback(r.ctx)
		if m.reverting == nil && len(m.inProgress) == 0 {
			r.expectErr(err, func(err error) bool { return errors.Is(err, phases.ErrNoMigration) }, "rollback with nothing in progress")
			return
		}
		r.noErr(err, "rollback")
		m.inProgress, m.reverting, m.unpublished, m.ran = nil, nil, false, m.completed
	case 10: // revert
		r.log = append(r.log, "revert")
		_, err := r.eng.Revert(r.ctx)
		var ie *operations.IrreversibleError
		switch {
		case m.reverting != nil || len(m.inProgress) > 0:
			r.expectErr(err, func(err error) bool { return errors.As(err, &ip) }, "revert with a migration in progress")
		case m.last == nil || !m.lastRevert && m.baseline[m.last[0]]:
			r.expectErr(err, func(err error) bool { return errors.Is(err, workflow.ErrNothingToRevert) }, "revert with nothing online completed")
		case errors.As(err, &ie):
			r.log[len(r.log)-1] += " (refused: irreversible)"
		default:
			r.noErr(err, "revert")
			m.reverting, m.revertApplies, m.ran = m.last, m.lastRevert, true
		}
	case 11: // revert --to 001_t: one revert at a time, never re-applying
		r.log = append(r.log, "revert --to 001_t")
		_, _, err := r.eng.RevertTo(r.ctx, "001_t")
		var de *workflow.DirError
		first := slices.IndexFunc(m.applied, func(g []string) bool { return slices.Contains(g, "001_t") })
		switch {
		case m.reverting != nil || len(m.inProgress) > 0:
			r.expectErr(err, func(err error) bool { return errors.As(err, &ip) }, "revert --to with a migration in progress")
		case first < 0:
			r.expectErr(err, func(err error) bool { return errors.As(err, &de) }, "revert --to a migration not in effect")
		case first == len(m.applied)-1:
			r.expectErr(err, func(err error) bool { return errors.Is(err, workflow.ErrNothingToRevert) }, "revert --to the last migration in effect")
		default:
			r.noErr(err, "revert --to")
			m.reverting, m.revertApplies, m.ran = m.applied[len(m.applied)-1], false, true
		}
	case 12: // start FILE, the first pending file of the folder
		pend := m.pending()
		if len(pend) == 0 {
			return
		}
		r.log = append(r.log, "start "+pend[0]+".yaml")
		r.load()
		mig, err := operations.ParseFile(filepath.Join(r.dir, pend[0]+".yaml"))
		r.noErr(err, "parse")
		_, err = r.eng.Start(r.ctx, mig)
		if m.reverting != nil || len(m.inProgress) > 0 {
			r.expectErr(err, func(err error) bool { return errors.As(err, &ip) }, "start with a migration in progress")
			return
		}
		r.noErr(err, "start FILE")
		m.inProgress, m.ran = pend[:1], true
	case 13: // pull into a new clone: the applied files, as the folder has them
		r.log = append(r.log, "pull")
		pulled, err := r.eng.Pull(r.ctx)
		r.noErr(err, "pull")
		clone := r.t.TempDir()
		res, err := workflow.WritePulled(clone, pulled, false)
		r.noErr(err, "write the pulled files")
		var got, want []string
		for _, p := range res.Written {
			got = append(got, filepath.Base(p))
			mig, err := operations.ParseFile(p)
			r.noErr(err, "parse a pulled file")
			f := m.file(strings.TrimSuffix(filepath.Base(p), ".yaml"))
			if f == nil {
				r.fail("pulled %s, which the folder does not have", p)
			}
			want, _ := operations.Parse(f.name+".yaml", []byte(m.content(*f)))
			if a, b := mustSum(r, mig), mustSum(r, want); a != b {
				r.fail("pulled %s: its checksum %s is not the folder's %s", p, a, b)
			}
		}
		for _, f := range m.files {
			if m.state(f.name) != workflow.FilePending {
				want = append(want, f.name+".yaml")
			}
		}
		slices.Sort(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			r.fail("pull wrote %v, want the applied and in-progress files %v", got, want)
		}
	case 14: // an applied file lost from the folder: migrate says to pull it, and pull restores it
		var cands []string
		for _, f := range m.files {
			if m.isApplied(f.name) && !m.baseline[f.name] {
				cands = append(cands, f.name)
			}
		}
		if len(cands) == 0 {
			return
		}
		name := cands[rng.IntN(len(cands))]
		r.log = append(r.log, "lose "+name+".yaml; migrate; as it says: pull")
		r.load()
		if err := os.Remove(filepath.Join(r.dir, name+".yaml")); err != nil {
			r.t.Fatal(err)
		}
		d, err := workflow.LoadPath(r.dir)
		if err != nil && len(m.files) > 1 {
			r.noErr(err, "load the folder")
		}
		var drift *workflow.DriftError
		if d != nil {
			_, err = r.eng.Migrate(r.ctx, d, workflow.MigrateOptions{})
			r.expectErr(err, func(err error) bool { return errors.As(err, &drift) }, "migrate with an applied file missing")
			if a := r.follow(err); a != "online pull" {
				r.fail("migrate with %s missing says %q, not to pull it: %v", name, a, err)
			}
		} else {
			files, err := r.eng.Pull(r.ctx)
			r.noErr(err, "pull")
			_, err = workflow.WritePulled(r.dir, files, false)
			r.noErr(err, "write the pulled files")
		}
		if _, err := os.Stat(filepath.Join(r.dir, name+".yaml")); err != nil {
			r.fail("pull did not restore %s: %v", name, err)
		}
	case 15: // baseline: refused once online ran migrations here
		if !m.ran {
			return
		}
		r.log = append(r.log, "baseline (refused)")
		_, err := r.eng.Baseline(r.ctx, nil, "")
		r.expectErr(err, func(err error) bool { return strings.Contains(err.Error(), "already has migrations online ran") }, "baseline after migrations")
	case 16: // a hand-made ALTER, reported as drift, then undone
		if m.reverting != nil || len(m.inProgress) > 0 || !m.ran || r.env.rows(r.env.db, "SELECT to_regclass('public.t') IS NULL")[0] == "true" {
			r.kill()
			return
		}
		r.log = append(r.log, "ALTER TABLE t ADD COLUMN by_hand (then drop it)")
		r.env.exec(r.env.db, "ALTER TABLE t ADD COLUMN by_hand int")
		st := r.status()
		if st.SchemaDrift == nil || len(st.SchemaDrift.Drift) != 1 || st.SchemaDrift.Drift[0].Object != "column t.by_hand" {
			r.fail("drift after a hand-made ALTER: %+v", st.SchemaDrift)
		}
		if _, err := r.eng.ValidateDir(r.ctx, r.load()); err == nil || !strings.Contains(err.Error(), "by_hand") {
			r.fail("validate does not report the hand-made ALTER: %v", err)
		}
		r.env.exec(r.env.db, "ALTER TABLE t DROP COLUMN by_hand")
	}
	if rng.IntN(6) == 0 {
		r.kill()
	}
}

// kill runs an online process on the folder and kills it (SIGKILL) at a
// random moment, then reads what it left: one of the states the model
// allows for that command, stopped anywhere.
func (r *teamRun) kill() {
	m := r.m
	if m.reverting != nil {
		return
	}
	cmds := [][]string{{"migrate", r.dir}, {"migrate", r.dir, "--complete"}, {"complete"}, {"rollback"}}
	labels := []string{"migrate", "migrate --complete", "complete", "rollback"}
	k := r.rng.IntN(len(cmds))
	args := cmds[k]
	delay := time.Duration(r.rng.IntN(800)) * time.Millisecond
	r.log = append(r.log, fmt.Sprintf("online %s, SIGKILL after %s", labels[k], delay))
	r.load()
	// The candidates: the model as it is, and as each point the command
	// may have stopped at leaves it.
	cands := []*teamModel{m.clone()}
	switch {
	case args[0] == "migrate" && len(args) == 3:
		r.ws.retire()
		c := m.clone()
		groups := [][]string{}
		if len(c.inProgress) > 0 {
			groups = append(groups, c.inProgress)
			c.inProgress = nil
		}
		for _, p := range c.pending() {
			groups = append(groups, []string{p})
		}
		c.unpublished = false
		for _, g := range groups {
			cur := c.clone()
			cur.inProgress = g
			cands = append(cands, cur) // stopped in its start or before its complete
			c.complete(g)
			cands = append(cands, c.clone())
		}
	case args[0] == "migrate":
		c := m.clone()
		c.afterMigrate("")
		cands = append(cands, c)
	case args[0] == "complete":
		if v := r.inProgressVersion(); v != "" {
			r.ws.retire(v)
		}
		if !m.unpublished {
			c := m.clone()
			c.afterComplete()
			cands = append(cands, c)
		}
	case args[0] == "rollback":
		r.ws.halt(r.inProgressVersion())
		c := m.clone()
		c.inProgress, c.unpublished, c.ran = nil, false, c.completed
		cands = append(cands, c)
	}
	// The sessions of this test's own engine, before the child opens its.
	var ours []int32
	for _, p := range r.env.rows(r.env.db, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'online%'") {
		n, _ := strconv.Atoi(p)
		ours = append(ours, int32(n))
	}
	cmd := exec.Command(r.bin, append(args, "--database-url", r.env.url, "--log-format", "json")...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		r.log[len(r.log)-1] += fmt.Sprintf(" (it ended first: %v)", err)
	case <-time.After(delay):
		_ = cmd.Process.Kill()
		<-exited
	}
	// The server goes on with what the killed process had sent (a
	// COMMIT on its way lands after the process is gone): what it left is
	// read once its sessions have ended.
	for i := 0; ; i++ {
		if n := r.env.rows(r.env.db, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND NOT pid = ANY($1::int[])
			AND (application_name = 'online' OR application_name LIKE 'online %')`, ours)[0]; n == "0" {
			break
		}
		if i == 300 {
			r.fail("the killed process's sessions are still there after 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := r.status()
	for _, c := range cands {
		if r.matches(c, st) {
			if len(c.inProgress) > 0 && st.InProgress != nil {
				c.unpublished = st.InProgress.Phase != "active"
				c.ran = true
			}
			*m = *c
			return
		}
	}
	var got []string
	for _, f := range st.Files {
		got = append(got, f.Name+"="+f.State)
	}
	r.fail("after the kill, status says %v (in progress: %+v), which no point of that command leaves\noutput: %s", got, st.InProgress, out)
}

// matches reports whether status says what model c does about the files.
func (r *teamRun) matches(c *teamModel, st *workflow.DirStatus) bool {
	if len(st.Files) != len(c.files) {
		return false
	}
	for i, f := range st.Files {
		if f.Name != c.files[i].name || f.State != c.state(f.Name) {
			return false
		}
	}
	return (st.InProgress != nil) == (len(c.inProgress) > 0 || c.reverting != nil)
}

// check compares the database with the model after a step, and moves the
// application's writers to the versions now live.
func (r *teamRun) check() {
	r.t.Helper()
	if n := r.ws.errs.Load(); n > 0 {
		r.fail("the application got %d error(s) writing through a live version: %s", n, r.ws.errorText())
	}
	m := r.m
	st := r.status()
	if !r.matches(m, st) {
		var got, want []string
		for _, f := range st.Files {
			got = append(got, f.Name+"="+f.State)
		}
		for _, f := range m.files {
			want = append(want, f.name+"="+m.state(f.name))
		}
		r.fail("status says %v (in progress: %v), the model %v (in progress: %v, reverting: %v)", got, st.InProgress != nil, want, m.inProgress, m.reverting)
	}
	if ip := st.InProgress; ip != nil && len(m.inProgress) > 0 && (ip.Phase != "active") != m.unpublished {
		r.fail("the migration in progress is %s, the model says published=%v", ip.Phase, !m.unpublished)
	}
	if st.SchemaDrift != nil && len(st.SchemaDrift.Drift) > 0 {
		r.fail("drift with no change by hand: %+v", st.SchemaDrift.Drift)
	}
	// The newest version shows the columns of the files in effect.
	if st.Latest != st.Schema {
		got := map[string]string{}
		for _, row := range r.env.rows(r.env.db, "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 't'", st.Latest) {
			name, typ, _ := strings.Cut(row, "|")
			got[name] = typ
		}
		if want := m.columns(); fmt.Sprint(got) != fmt.Sprint(want) {
			r.fail("version %s has columns %v, the model says %v", st.Latest, got, want)
		}
	}
	// The application follows: a writer on each live version that has
	// the table; none on a version no longer live.
	live := liveVersions(st)
	for v := range r.ws.live {
		if !slices.Contains(live, v) {
			r.ws.halt(v)
		}
	}
	for _, v := range live {
		if v != st.Latest && !m.isApplied("001_t") {
			// The old version of the migration that creates the table
			// has no table: its application does not write to it (the
			// table the start made in the schema is the new version's).
			continue
		}
		if r.ws.live[v] == nil && r.env.rows(r.env.db, "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{v, "t"}.Sanitize())[0] == "true" {
			r.ws.start(r.t, v)
		}
	}
	// Let them write a little under the state just reached.
	time.Sleep(20 * time.Millisecond)
}

// converge takes any state to "all applied" following only what migrate
// prints: its refusals name the command to run, its success says to
// complete when the old code is gone.
func (r *teamRun) converge() {
	for i := 0; ; i++ {
		if i == 12 {
			r.fail("following what migrate says does not reach all applied")
		}
		r.log = append(r.log, "(end) migrate")
		err := r.migrate("")
		if err != nil {
			a := r.follow(err)
			if a == "" {
				r.fail("migrate refused without naming what to do: %v", err)
			}
			r.log = append(r.log, "(end) as it says: "+a)
			r.check()
			continue
		}
		r.m.afterMigrate("")
		r.check()
		if len(r.m.inProgress) == 0 && r.m.reverting == nil {
			break
		}
		r.log = append(r.log, "(end) complete, as migrate says once the old code is gone")
		r.noErr(r.complete(), "complete")
		r.m.afterComplete()
		r.check()
	}
	if p := r.m.pending(); len(p) > 0 {
		r.fail("files left pending: %v", p)
	}
	st := r.status()
	for _, f := range st.Files {
		if f.State != workflow.FileApplied {
			r.fail("at the end, %s is %s", f.Name, f.State)
		}
	}
	r.ws.retire()
	if n := r.ws.errs.Load(); n > 0 {
		r.fail("the application got %d error(s): %s", n, r.ws.errorText())
	}
}

func mustSum(r *teamRun, m *operations.Migration) string {
	r.t.Helper()
	sum, err := workflow.Checksum(m.Document)
	r.noErr(err, "checksum")
	return sum
}
