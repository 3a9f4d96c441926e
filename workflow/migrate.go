package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/state"
)

// File states of a migrations directory against the history.
const (
	FileApplied    = "applied"
	FileInProgress = "in_progress"
	FilePending    = "pending"
	FileModified   = "modified" // applied, but its content changed since
	FileMissing    = "missing"  // applied, but no longer in the directory
)

// FileStatus is one file of a directory, or one applied file it lacks.
type FileStatus struct {
	Name  string `json:"name"`
	File  string `json:"file,omitempty"`
	State string `json:"state"`
	// Migration is the migration that applied it (a window applies several
	// files as one migration).
	Migration string        `json:"migration,omitempty"`
	Phase     string        `json:"phase,omitempty"`
	Checksum  string        `json:"checksum,omitempty"`
	Applied   string        `json:"applied_checksum,omitempty"`
	AppliedAt *time.Time    `json:"applied_at,omitempty"`
	AppliedBy string        `json:"applied_by,omitempty"`
	OSUser    string        `json:"os_user,omitempty"`
	Duration  time.Duration `json:"duration_ns,omitempty"`
	RowsDone  int64         `json:"rows_backfilled,omitempty"`
	Baseline  bool          `json:"baseline,omitempty"`
}

// DirStatus is `online status DIR`: the files with their states beside
// what Status reports.
type DirStatus struct {
	*phases.Status
	Files    []FileStatus `json:"files"`
	Warnings []string     `json:"warnings,omitempty"`
	// SchemaDrift lists the changes made to the schema outside online
	// since the last migration completed.
	SchemaDrift *DriftCheck `json:"schema_drift"`
}

// DriftError is returned by Migrate when an applied file was changed or
// removed: what the directory says no longer matches what ran.
type DriftError struct{ Files []FileStatus }

func (e *DriftError) Error() string {
	var parts []string
	for _, f := range e.Files {
		switch {
		case f.State == FileModified && f.Phase != string(state.Complete):
			parts = append(parts, fmt.Sprintf("%s is in progress (migration %s) but its content changed since it started: restore it, or roll the migration back (online rollback) and run migrate again", f.File, f.Migration))
		case f.State == FileModified:
			parts = append(parts, fmt.Sprintf("%s was applied (migration %s) but its content changed since (checksum %.12s, applied %.12s): restore it (online pull --force writes the applied version) and put the change in a new file (online create)", f.File, f.Migration, f.Checksum, f.Applied))
		case f.State == FileMissing:
			parts = append(parts, fmt.Sprintf("%s was applied (migration %s) but is not in the directory: restore it (online pull)", f.Name, f.Migration))
		}
	}
	return "the migrations directory does not match the history: " + strings.Join(parts, "; ")
}

// history is the state of the files of a directory against the records.
type history struct {
	records []state.Record
	// applied maps a file name (with extension) or, for records of
	// `online start FILE` that name no file, a migration name, to the record
	// in effect for it: reverted migrations are left out.
	byFile map[string]*state.Record
	byName map[string]*state.Record
	// inProgress is the migration in progress, if any.
	inProgress *state.Record
	// effective maps the name of each completed migration in effect (not
	// reverted) to its record.
	effective map[string]*state.Record
}

func (e *Engine) readHistory(ctx context.Context) (*history, error) {
	recs, err := e.store.History(ctx, e.conn, e.cfg.Schema)
	if err != nil {
		return nil, err
	}
	h := &history{records: recs, byFile: map[string]*state.Record{}, byName: map[string]*state.Record{}}
	effective := map[string]*state.Record{}
	for i := range recs {
		r := &recs[i]
		if r.Phase != state.Complete {
			h.inProgress = r
			continue
		}
		effective[r.Name] = r
		// A completed revert undoes the migration it names; undoing a
		// revert brings that migration back.
		if r.Kind == state.KindRevert {
			undone := effective[r.Reverts]
			delete(effective, r.Reverts)
			delete(effective, r.Name)
			if undone != nil && undone.Kind == state.KindRevert {
				for j := range recs {
					if recs[j].Name == undone.Reverts {
						effective[undone.Reverts] = &recs[j]
					}
				}
			}
		}
	}
	h.effective = effective
	for _, r := range effective {
		h.index(r)
	}
	if h.inProgress != nil && h.inProgress.Kind != state.KindRevert {
		h.index(h.inProgress)
	}
	return h, nil
}

func (h *history) index(r *state.Record) {
	for _, f := range r.Files {
		h.byFile[f.Name] = r
	}
	if r.Kind != state.KindBaseline {
		h.byName[r.Name] = r
	}
}

// recordOf returns the record that applied f, and the checksum it applied.
// A file is found by its file name first, then by its migration's name:
// a migration started by `online start FILE` (which an older online
// recorded without its file) or from a copy of the file kept elsewhere is
// the folder's file of the same name. byName tells which way it was found.
func (h *history) recordOf(f DirFile) (r *state.Record, sum string, byName bool) {
	if r := h.byFile[f.File]; r != nil {
		for _, rf := range r.Files {
			if rf.Name == f.File {
				return r, rf.Checksum, false
			}
		}
	}
	if r := h.byName[f.Migration.Name]; r != nil {
		switch {
		case len(r.Files) == 0:
			sum, _ = Checksum(r.Document)
		case h.byFile[r.Files[len(r.Files)-1].Name] != r:
			return nil, "", false
		default:
			// A window is named after its last file.
			sum = r.Files[len(r.Files)-1].Checksum
		}
		return r, sum, true
	}
	return nil, "", false
}

// fileStates compares a directory with the history.
func (e *Engine) fileStates(ctx context.Context, d *Dir, h *history) ([]FileStatus, error) {
	var out []FileStatus
	used := map[*state.Record]bool{}
	// Records whose file is in the folder under another file name: that
	// file of theirs is not missing.
	renamed := map[*state.Record]string{}
	rows := map[string]int64{}
	for _, f := range d.Files {
		fs := FileStatus{Name: f.Name, File: f.File, Checksum: f.Checksum, State: FilePending}
		if r, sum, byName := h.recordOf(f); r != nil {
			used[r] = true
			if byName && len(r.Files) > 0 {
				renamed[r] = r.Files[len(r.Files)-1].Name
			}
			fs.Migration, fs.Phase, fs.Applied = r.Name, string(r.Phase), sum
			fs.AppliedBy, fs.OSUser, fs.Duration, fs.Baseline = r.AppliedBy, r.OSUser, r.Duration, r.Kind == state.KindBaseline
			if r.CompletedAt != nil {
				t := *r.CompletedAt
				fs.AppliedAt = &t
			}
			n, ok := rows[r.Name]
			if !ok && r.Kind != state.KindBaseline {
				cps, err := e.store.Backfills(ctx, e.conn, r.Schema, r.Name)
				if err != nil {
					return nil, err
				}
				for _, cp := range cps {
					n += cp.RowsDone
				}
				rows[r.Name] = n
			}
			fs.RowsDone = n
			switch {
			case sum != f.Checksum:
				// In progress too: what complete would finish is the
				// stored plan, not what the file now says.
				fs.State = FileModified
			case r.Phase != state.Complete:
				fs.State = FileInProgress
			default:
				fs.State = FileApplied
			}
		}
		out = append(out, fs)
	}
	inDir := map[string]bool{}
	for _, f := range d.Files {
		inDir[f.File] = true
	}
	for _, r := range h.records {
		if r.Phase != state.Complete {
			continue
		}
		rec := h.byName[r.Name]
		if rec == nil || len(rec.Files) > 0 {
			for _, f := range r.Files {
				if h.byFile[f.Name] != nil && h.byFile[f.Name].Name == r.Name && !inDir[f.Name] && renamed[h.byFile[f.Name]] != f.Name {
					out = append(out, FileStatus{Name: strings.TrimSuffix(f.Name, extOf(f.Name)), File: f.Name, State: FileMissing, Migration: r.Name, Phase: string(r.Phase), Applied: f.Checksum})
				}
			}
			continue
		}
		if !used[rec] && rec.Kind != state.KindRevert {
			out = append(out, FileStatus{Name: r.Name, State: FileMissing, Migration: r.Name, Phase: string(r.Phase)})
		}
	}
	return out, nil
}

func extOf(name string) string {
	for _, ext := range migrationExts {
		if strings.HasSuffix(strings.ToLower(name), ext) {
			return name[len(name)-len(ext):]
		}
	}
	return ""
}

// DirStatus reports each file of d with its state. It changes nothing.
func (e *Engine) DirStatus(ctx context.Context, d *Dir) (*DirStatus, error) {
	st, err := e.Status(ctx)
	if err != nil {
		return nil, err
	}
	h, err := e.readHistory(ctx)
	if err != nil {
		return nil, err
	}
	files, err := e.fileStates(ctx, d, h)
	if err != nil {
		return nil, err
	}
	drift, err := e.SchemaDrift(ctx)
	if err != nil {
		return nil, err
	}
	return &DirStatus{Status: st, Files: files, Warnings: d.Warnings, SchemaDrift: drift}, nil
}

// MigrateOptions say how Migrate applies a directory.
type MigrateOptions struct {
	// Complete completes the last file too; by default it is left in
	// progress so that the new application code can be deployed.
	Complete bool
	// Window applies all pending files as one expand/contract step. It
	// is what Migrate does by default with several pending files and
	// neither Complete nor OneByOne: the version applications use now
	// stays live until the window's complete.
	Window bool
	// OneByOne starts and completes each pending file before the next, the
	// last left in progress: every file's version is published in turn,
	// and the version applications use now is retired by the first
	// complete. With a migration in progress and files pending, it
	// completes the one in progress first.
	OneByOne bool
	// To, when set, is the last file to apply (a file name, with or
	// without its extension); the pending files after it are left pending.
	To string
	// OnFile, if set, is told about each file as it is started and completed.
	OnFile func(FileEvent)
}

// FileEvent is Migrate's progress, one per file and step.
type FileEvent struct {
	Files  []string `json:"files"` // one file, or the files of a window
	Action string   `json:"action"`
}

// Migrate actions.
const (
	ActionStarting   = "starting"
	ActionStarted    = "started" // published, in progress
	ActionCompleting = "completing"
	ActionCompleted  = "completed"
	ActionResuming   = "resuming"
)

// MigrateResult says what Migrate did.
type MigrateResult struct {
	// Applied lists the files started (and completed, unless InProgress
	// names them) by this run.
	Applied []string `json:"applied"`
	// Completed lists the files this run completed, Pending the ones it
	// found pending before it ran.
	Completed []string `json:"completed"`
	// InProgress is the migration left in progress, if any, with its
	// version schema: what the new application code sets its search_path to.
	InProgress    string        `json:"in_progress,omitempty"`
	VersionSchema string        `json:"version_schema,omitempty"`
	Latest        string        `json:"latest"`
	Warnings      []string      `json:"warnings,omitempty"`
	Elapsed       time.Duration `json:"elapsed_ns"`
}

// ForeignInProgressError is returned by Migrate when a migration that is not
// one of the directory's files is in progress.
type ForeignInProgressError struct{ phases.InProgressError }

func (e *ForeignInProgressError) Error() string {
	return fmt.Sprintf("migration %q is in progress and is not a file of this directory: complete it (online complete) or roll it back (online rollback), then run migrate again", e.Name)
}

func (e *ForeignInProgressError) Unwrap() error { return &e.InProgressError }

// Migrate applies the pending files of d in name order. Each file before
// the last is started and completed; the last is started and left in
// progress unless o.Complete. Running it again with nothing pending does
// nothing. A file of d already in progress is carried on: resumed if a
// process died in its start, completed first if files follow it, reported
// as it is if it is the last.
func (e *Engine) Migrate(ctx context.Context, d *Dir, o MigrateOptions) (*MigrateResult, error) {
	began := time.Now()
	res := &MigrateResult{Applied: []string{}, Completed: []string{}, Warnings: d.Warnings}
	event := func(action string, files ...string) {
		if o.OnFile != nil {
			o.OnFile(FileEvent{Files: files, Action: action})
		}
	}
	// The whole run holds the schema's lock (session advisory locks stack,
	// so Start and Complete inside take it again): two deploys of one
	// directory at once would otherwise interleave their files.
	err := e.Locked(ctx, func() error {
		h, err := e.readHistory(ctx)
		if err != nil {
			return err
		}
		states, err := e.fileStates(ctx, d, h)
		if err != nil {
			return err
		}
		var drift []FileStatus
		for _, s := range states {
			if s.State == FileModified || s.State == FileMissing {
				drift = append(drift, s)
			}
		}
		if len(drift) > 0 {
			return &DriftError{Files: drift}
		}
		if dc, err := e.SchemaDrift(ctx); err != nil {
			return err
		} else if len(dc.Drift) > 0 {
			// Warned, not refused: each file compiles against the live
			// catalog, drift included; the folder no longer says it all.
			res.Warnings = append(res.Warnings, (&SchemaDriftError{Schema: e.cfg.Schema, Since: dc.Since, Drift: dc.Drift}).Error())
		}
		var pending []DirFile
		lastApplied := ""
		var cur []DirFile // the files of the migration in progress
		for i, s := range states[:len(d.Files)] {
			switch s.State {
			case FilePending:
				pending = append(pending, d.Files[i])
			case FileInProgress:
				cur = append(cur, d.Files[i])
				lastApplied = d.Files[i].Name
			default:
				lastApplied = d.Files[i].Name
			}
		}
		for _, f := range pending {
			if f.Name < lastApplied {
				return &DirError{File: f.File, Err: fmt.Errorf("is pending but sorts before %s, which is applied: rename it to sort after the applied files", lastApplied)}
			}
		}
		if pending, err = keepUpTo(d, pending, o.To); err != nil {
			return err
		}
		if rec := h.inProgress; rec != nil {
			if len(cur) == 0 {
				return &ForeignInProgressError{phases.InProgressError{Name: rec.Name}}
			}
			names := fileNames(cur)
			if rec.Phase == state.Completing {
				// A complete that died midway is finished before anything else.
			} else if rec.Phase != state.Active {
				event(ActionResuming, names...)
				if _, err := e.Resume(ctx); err != nil {
					return err
				}
			}
			// Carried on first (a start that died is resumed): what it
			// began is finished either way.
			if len(pending) > 0 && !o.Complete && !o.OneByOne && rec.Phase != state.Completing {
				// Completing it would retire the version before it, which
				// applications may still use: migrate only says so.
				old := rec.Parent
				if old == "" {
					old = e.cfg.Schema
				}
				return &RefusedError{Reason: fmt.Sprintf("%s is in progress (versions %s and %s are live) and %d file(s) are pending after it: applying them means completing %s first, which retires %s. When no application uses %s any more, run online complete, then migrate again; or migrate --complete (or --one-by-one) to complete it now",
					strings.Join(names, ", "), old, rec.VersionSchema, len(pending), rec.Name, old, old)}
			}
			if len(pending) == 0 && !o.Complete && rec.Phase != state.Completing {
				event(ActionStarted, names...)
				res.InProgress, res.VersionSchema = rec.Name, rec.VersionSchema
				return nil
			}
			if err := e.completeTimed(ctx, rec.Name, names, event); err != nil {
				return err
			}
			res.Completed = append(res.Completed, names...)
		}
		if len(pending) == 0 {
			return nil
		}
		groups := make([][]DirFile, 0, len(pending))
		chosen := !o.Window && !o.Complete && !o.OneByOne && len(pending) > 1
		if (o.Window || chosen) && len(pending) > 1 {
			groups = append(groups, pending)
		} else {
			for _, f := range pending {
				groups = append(groups, []DirFile{f})
			}
		}
		for i, g := range groups {
			m, err := windowMigration(g)
			if err != nil {
				return err
			}
			names := fileNames(g)
			event(ActionStarting, names...)
			t0 := time.Now()
			before, err := e.SchemaModel(ctx)
			if err != nil {
				return err
			}
			// Start records the files with the migration as it inserts it,
			// so that status and a later run know whose it is from the
			// first step, even if this process dies in the backfill.
			sres, err := e.StartRecorded(ctx, m, state.Meta{Files: stateFiles(g), Before: before, OSUser: osUser()})
			if err != nil {
				var oe *operations.Error
				if chosen && sres == nil && errors.As(err, &oe) {
					return &RefusedError{Reason: fmt.Sprintf("the %d pending files run as one window by default, so that the version applications use now stays live until complete; the window cannot start: %v. If the files are right, apply fewer at a time (--to FILE), or one by one (--one-by-one), which retires the version applications use now at the first file's complete",
						len(g), windowError(g, err)), Err: windowError(g, err)}
				}
				return windowError(g, err)
			}
			if err := e.store.AddDuration(ctx, e.conn, e.cfg.Schema, m.Name, time.Since(t0)); err != nil {
				return err
			}
			res.Applied = append(res.Applied, names...)
			event(ActionStarted, names...)
			if i < len(groups)-1 || o.Complete {
				if err := e.completeTimed(ctx, m.Name, names, event); err != nil {
					return err
				}
				res.Completed = append(res.Completed, names...)
				continue
			}
			res.InProgress, res.VersionSchema = m.Name, sres.VersionSchema
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if res.Latest, err = e.Latest(ctx); err != nil {
		return res, err
	}
	res.Elapsed = time.Since(began)
	return res, nil
}

func (e *Engine) completeTimed(ctx context.Context, name string, files []string, event func(string, ...string)) error {
	event(ActionCompleting, files...)
	t0 := time.Now()
	if _, err := e.Complete(ctx); err != nil {
		return err
	}
	if err := e.store.AddDuration(ctx, e.conn, e.cfg.Schema, name, time.Since(t0)); err != nil {
		return err
	}
	event(ActionCompleted, files...)
	return nil
}

func fileNames(files []DirFile) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.File
	}
	return out
}

// windowMigration joins files into one migration named after the last:
// their operations in order, compiled as one. The compiler composes
// operations on one column (two alter_column become one rewrite), so the
// window has one backfill per table and one complete. One file is itself.
func windowMigration(files []DirFile) (*operations.Migration, error) {
	if len(files) == 1 {
		return files[0].Migration, nil
	}
	last := files[len(files)-1].Migration
	var ops []json.RawMessage
	for _, f := range files {
		var doc struct {
			Operations []json.RawMessage `json:"operations"`
		}
		if err := json.Unmarshal(f.Migration.Document, &doc); err != nil {
			return nil, &DirError{File: f.File, Err: fmt.Errorf("read its operations: %w", err)}
		}
		ops = append(ops, doc.Operations...)
	}
	doc, err := json.Marshal(map[string]any{"name": last.Name, "version_schema": last.VersionSchema, "operations": ops})
	if err != nil {
		return nil, fmt.Errorf("join the window's operations: %w", err)
	}
	label := fmt.Sprintf("window %s..%s", files[0].File, files[len(files)-1].File)
	return operations.Parse(label, doc)
}

// windowError names, in a compile error of a window, the file and its own
// operation number rather than the position in the joined list.
func windowError(files []DirFile, err error) error {
	var oe *operations.Error
	if len(files) < 2 || !errors.As(err, &oe) || oe.Op == 0 {
		return err
	}
	n := oe.Op
	for _, f := range files {
		if k := len(f.Migration.Operations); n > k {
			n -= k
			continue
		}
		c := *oe
		c.File, c.Op = f.File+" (in a window)", n
		return &c
	}
	return err
}

// RefusedError is returned by Migrate when doing what it was asked would
// break the applications of the version in use, and it changed nothing.
type RefusedError struct {
	Reason string
	Err    error // the error behind the refusal, if any
}

func (e *RefusedError) Error() string { return "migrate refused: " + e.Reason }

func (e *RefusedError) Unwrap() error { return e.Err }

// keepUpTo keeps the pending files up to the file to (all when to is "").
func keepUpTo(d *Dir, pending []DirFile, to string) ([]DirFile, error) {
	if to == "" {
		return pending, nil
	}
	found := false
	for _, f := range d.Files {
		if f.File == to || f.Name == to {
			found = true
			to = f.Name
		}
	}
	if !found {
		return nil, &DirError{File: to, Err: errors.New("--to names no migration file of the directory")}
	}
	var out []DirFile
	for _, f := range pending {
		if f.Name <= to {
			out = append(out, f)
		}
	}
	return out, nil
}
