package workflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/state"
)

// The workflow on the file system: what `online validate`, `online create`,
// `online pull` and `online plan` do with paths, for the CLI to print.

// LoadPath parses the migrations directory dir of the file system.
func LoadPath(dir string) (*Dir, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, &DirError{Err: fmt.Errorf("migrations directory %s: %w", dir, err)}
	} else if !st.IsDir() {
		return nil, &DirError{Err: fmt.Errorf("%s is not a directory", dir)}
	}
	d, err := LoadDir(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return d, nil
}

// ValidateReport is what ValidatePaths found, over every path given.
type ValidateReport struct {
	// Valid is true when no problem was found.
	Valid bool `json:"valid"`
	// Results has one entry per directory, and one for the loose files
	// given, together.
	Results []*ValidateResult `json:"results"`
	// Errors lists every problem, each naming the file (and the
	// operation and field).
	Errors []string `json:"errors"`
}

// ValidatePaths checks migration directories and loose files: each
// directory as a whole, the loose files together in the order given. With
// e nil it works offline (ValidateFS); with an engine, against the live
// catalog (ValidateDir, ValidateLoose). It changes nothing. Every problem
// found is in the report and in the *ValidationError it returns, each
// naming a path the reader can open.
func ValidatePaths(ctx context.Context, e *Engine, schemaName string, paths []string) (*ValidateReport, error) {
	out := &ValidateReport{Results: []*ValidateResult{}, Errors: []string{}}
	var errs []error
	var loose []DirFile
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		if !st.IsDir() {
			m, err := operations.ParseFile(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			f, err := NewDirFile(p, m)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			loose = append(loose, f)
			continue
		}
		res, err := validatePath(ctx, e, p, schemaName)
		if res != nil {
			out.Results = append(out.Results, res)
		}
		errs = append(errs, flatten(err)...)
	}
	if len(loose) > 0 {
		var res *ValidateResult
		var err error
		if e != nil {
			res, err = e.ValidateLoose(ctx, loose)
		} else {
			res, err = ValidateFiles(loose, schemaName)
		}
		if res != nil {
			out.Results = append(out.Results, res)
		}
		errs = append(errs, flatten(err)...)
	}
	for _, err := range errs {
		out.Errors = append(out.Errors, err.Error())
	}
	out.Valid = len(errs) == 0
	if len(errs) > 0 {
		return out, &ValidationError{Errs: errs}
	}
	return out, nil
}

func validatePath(ctx context.Context, e *Engine, dir, schemaName string) (*ValidateResult, error) {
	if e == nil {
		res, err := ValidateFS(os.DirFS(dir), schemaName)
		return res, prefixDir(dir, err)
	}
	d, err := LoadDir(os.DirFS(dir))
	if err != nil {
		// The format first: ValidateFS lists every file that fails it.
		_, verr := ValidateFS(os.DirFS(dir), schemaName)
		if verr == nil {
			verr = err
		}
		return nil, prefixDir(dir, verr)
	}
	res, err := e.ValidateDir(ctx, d)
	return res, prefixDir(dir, err)
}

// prefixDir puts the directory before the file names of a directory's
// problems, so that each message names a path the reader can open.
func prefixDir(dir string, err error) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, e := range flatten(err) {
		var oe *operations.Error
		var de *DirError
		switch {
		case errors.As(e, &oe) && !strings.Contains(oe.File, string(filepath.Separator)):
			c := *oe
			c.File = filepath.Join(dir, oe.File)
			out = append(out, &c)
		case errors.As(e, &de) && de.File != "":
			c := *de
			c.File = filepath.Join(dir, de.File)
			out = append(out, &c)
		default:
			out = append(out, fmt.Errorf("%s: %w", dir, e))
		}
	}
	return &ValidationError{Errs: out}
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Errs
	}
	return []error{err}
}

// CreateFile writes the next migration file of dir (created if missing),
// numbered after the last, from Template, and returns its path. It never
// overwrites a file.
func CreateFile(dir, name string, now time.Time) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create directory %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", &DirError{Err: fmt.Errorf("read directory %s: %w", dir, err)}
	}
	var names []string // os.ReadDir sorts by name
	for _, ent := range ents {
		if !ent.IsDir() && state.IsMigrationFile(ent.Name()) {
			names = append(names, strings.TrimSuffix(ent.Name(), filepath.Ext(ent.Name())))
		}
	}
	file, err := NextFileName(names, name, now)
	if err != nil {
		var de *DirError
		if !errors.As(err, &de) {
			err = &DirError{Err: err} // a bad name: the caller's input
		}
		return "", err
	}
	p := filepath.Join(dir, file)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", &DirError{File: p, Err: fmt.Errorf("create: %w", err)}
	}
	_, werr := io.WriteString(f, Template)
	if err := errors.Join(werr, f.Close()); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	return p, nil
}

// PullResult says what WritePulled wrote.
type PullResult struct {
	// Written lists the paths written.
	Written []string `json:"written"`
	// UpToDate counts the files that were there with the applied content.
	UpToDate int `json:"up_to_date"`
}

// WritePulled writes the files Pull returned into dir (created if
// missing). A file there with the same document (same checksum) is left
// alone; one that differs is overwritten only with force: without it,
// every such file is named in a *ValidationError and nothing is written.
func WritePulled(dir string, files []PulledFile, force bool) (*PullResult, error) {
	var write []PulledFile
	var conflicts []error
	for _, f := range files {
		p := filepath.Join(dir, f.File)
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			write = append(write, f)
			continue
		}
		if err != nil {
			return nil, &DirError{File: p, Err: fmt.Errorf("read: %w", err)}
		}
		if m, perr := operations.Parse(p, data); perr == nil {
			if sum, _ := state.Checksum(m.Document); sum == f.Checksum {
				continue
			}
		}
		if !force {
			conflicts = append(conflicts, &DirError{File: p, Err: errors.New("differs from the applied version; pull --force overwrites it")})
			continue
		}
		write = append(write, f)
	}
	if len(conflicts) > 0 {
		return nil, &ValidationError{Errs: conflicts}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create directory %s: %w", dir, err)
	}
	res := &PullResult{Written: []string{}, UpToDate: len(files) - len(write)}
	for _, f := range write {
		p := filepath.Join(dir, f.File)
		if err := os.WriteFile(p, f.Content, 0o644); err != nil {
			return res, fmt.Errorf("write %s: %w", p, err)
		}
		res.Written = append(res.Written, p)
	}
	return res, nil
}

// PlanTarget says how `online plan PATH` plans: a directory's pending
// files (Dir, UpTo ""), a pending file of its directory in that context
// (UpTo its file name), or, with Dir nil, a file alone against the live
// catalog (a file outside a migrations directory, or not pending in it).
type PlanTarget struct {
	Dir  *Dir
	Path string // the directory
	UpTo string
}

// PlanTargetOf reads path for PlanPath. A directory that does not load is
// an error; a file whose directory does not load is planned alone.
func PlanTargetOf(path string) (*PlanTarget, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, &DirError{File: path, Err: err}
	}
	dir, upTo := path, ""
	if !st.IsDir() {
		dir, upTo = filepath.Dir(path), filepath.Base(path)
		if !state.IsMigrationFile(upTo) {
			return &PlanTarget{}, nil
		}
	}
	d, derr := LoadDir(os.DirFS(dir))
	if derr != nil {
		if st.IsDir() {
			return nil, prefixDir(dir, derr)
		}
		return &PlanTarget{}, nil // a loose file among others that are not migrations
	}
	return &PlanTarget{Dir: d, Path: dir, UpTo: upTo}, nil
}

// PlanPath plans t: the pending files of its directory (up to t.UpTo),
// each against the schema the ones before it build. alone is true when
// t.UpTo is not pending in its directory: that file is to be planned
// alone against the live catalog. It changes nothing.
func (e *Engine) PlanPath(ctx context.Context, t *PlanTarget) (plans []FilePlan, alone bool, err error) {
	if t.Dir == nil {
		return nil, true, nil
	}
	if t.UpTo != "" {
		h, err := e.readHistory(ctx)
		if err != nil {
			return nil, false, err
		}
		states, err := e.fileStates(ctx, t.Dir, h)
		if err != nil {
			return nil, false, err
		}
		pending := false
		for _, f := range states {
			pending = pending || f.File == t.UpTo && f.State == FilePending
		}
		if !pending {
			return nil, true, nil
		}
	}
	plans, err = e.PlanDir(ctx, t.Dir, t.UpTo)
	if err != nil {
		return nil, false, err
	}
	if t.UpTo != "" && len(plans) > 0 {
		plans = plans[len(plans)-1:]
	}
	return plans, false, nil
}
