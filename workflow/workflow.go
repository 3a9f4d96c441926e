package workflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/schema"
	"github.com/onlinepg/online/state"
)

// ValidateResult is what ValidateDir checked.
type ValidateResult struct {
	// Checked lists the files compiled.
	Checked []string `json:"checked"`
	// Skipped lists the files already applied (with a database).
	Skipped []string `json:"skipped,omitempty"`
	// Warnings are what does not make a file invalid: a numbering gap, a
	// file that cannot be checked past a sql operation offline.
	Warnings []string `json:"warnings,omitempty"`
	// Offline is true when no database was used.
	Offline bool `json:"offline"`
}

// ValidationError holds every problem ValidateDir found, one per file (or
// more, for directory problems).
type ValidationError struct{ Errs []error }

func (e *ValidationError) Error() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d problem(s):", len(e.Errs))
	for _, err := range e.Errs {
		b.WriteString("\n  " + err.Error())
	}
	return b.String()
}

func (e *ValidationError) Unwrap() []error { return e.Errs }

// EmptySchema is the model of an empty schema, what offline validation
// assumes a directory starts from. ServerVersion is PostgreSQL 15, the
// oldest version where every operation of the format is available.
func EmptySchema(name string) *schema.Schema {
	return &schema.Schema{Name: name, Tables: map[string]*schema.Table{}, Indexes: map[string]string{}, Enums: map[string][]string{},
		EnumUses: map[string][]schema.TypeUse{}, Types: map[string]string{}, Relations: map[string]bool{}, ServerVersion: 150000}
}

// ValidateFS checks every migration file of fsys without a database: the
// format, then each file compiled, in order, against the model the files
// before it build, starting from an empty schema. A file that fails is left
// out of the model, and the next ones are still checked: all invalid
// files are reported, in one *ValidationError.
func ValidateFS(fsys fs.FS, schemaName string) (*ValidateResult, error) {
	d, errs := loadDir(fsys)
	res := &ValidateResult{Offline: true}
	if d != nil {
		res.Warnings = d.Warnings
		errs = append(errs, compileInOrder(d.Files, EmptySchema(schemaName), schemaName, res)...)
	}
	if len(errs) > 0 {
		return res, &ValidationError{Errs: errs}
	}
	return res, nil
}

// ValidateFiles is ValidateFS for loose files, compiled in the order given.
func ValidateFiles(files []DirFile, schemaName string) (*ValidateResult, error) {
	res := &ValidateResult{Offline: true}
	if errs := compileInOrder(files, EmptySchema(schemaName), schemaName, res); len(errs) > 0 {
		return res, &ValidationError{Errs: errs}
	}
	return res, nil
}

func compileInOrder(files []DirFile, model *schema.Schema, schemaName string, res *ValidateResult) []error {
	return compileChecked(files, model, schemaName, res, nil)
}

// compileChecked is compileInOrder with check, when not nil, called for
// each file that compiled (its position among files, and the models
// before and after it) before the next one: a live validation's catalog
// checks. An error it returns counts as the file's.
func compileChecked(files []DirFile, model *schema.Schema, schemaName string, res *ValidateResult, check func(i int, m *operations.Migration, before, next *schema.Schema) error) []error {
	var errs []error
	parent := ""
	// After a sql operation the model no longer says what the database
	// holds (the SQL may create or change anything): a later file that
	// does not compile is reported as unchecked, not as invalid.
	rawSQL := ""
	for i, f := range files {
		plan, next, err := operations.Compile(f.Migration, model, operations.Options{Schema: schemaName, StateSchema: "online", Parent: parent})
		res.Checked = append(res.Checked, f.File)
		if err == nil && check != nil {
			err = check(i, f.Migration, model, next)
		}
		if err != nil {
			if rawSQL != "" && isCompileError(err) {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s: cannot check past the sql operation in %s (what it made is unknown without a database): %v", f.File, rawSQL, err))
				continue
			}
			errs = append(errs, err)
			continue
		}
		if plan.RawSQL {
			rawSQL = f.File
		}
		model, parent = settle(next), plan.VersionSchema
	}
	return errs
}

// isCompileError reports whether err is about the schema a file is
// compiled against (an operations.Error naming a field or an operation),
// not about the file's own format.
func isCompileError(err error) bool {
	var oe *operations.Error
	return errors.As(err, &oe) && oe.Op > 0
}

// liveChecks runs, for a live validation, the catalog checks start runs
// (types, collations, operator classes, access methods, expressions
// evaluated in a transaction rolled back): all of them for the first
// pending file, whose start would meet the catalog as it is; for the
// files after it, whose tables may come from the files before, the checks
// of names only, leaving out types that the files before create.
func (e *Engine) liveChecks(ctx context.Context) func(int, *operations.Migration, *schema.Schema, *schema.Schema) error {
	return func(i int, m *operations.Migration, before, next *schema.Schema) error {
		checks := operations.CatalogChecks(m, before, next)
		if i > 0 {
			var named []operations.CatalogCheck
			for _, k := range checks {
				if !k.Type {
					continue
				}
				if name, ok := k.Args[0].(string); ok && k.Missing == "" {
					n := strings.ToLower(strings.TrimSpace(name))
					if _, enum := before.Enums[n]; enum {
						continue
					}
					if _, typ := before.Types[n]; typ {
						continue
					}
				}
				named = append(named, k)
			}
			checks = named
		}
		return e.Preflight(ctx, checks)
	}
}

// settle turns the model a compile returns (the new version while the
// migration is in progress) into the model of the database after
// complete: what the next file is compiled against. Complete renames
// tables, columns and indexes to their visible names, and the tables
// created are no longer "created by this migration".
func settle(s *schema.Schema) *schema.Schema {
	s.Relations = map[string]bool{}
	for _, t := range s.Tables {
		phys := map[string]string{}
		for _, c := range t.Columns {
			phys[c.Physical] = c.Name
			c.Physical = c.Name
		}
		rename := func(cols []string) {
			for i, c := range cols {
				if n, ok := phys[c]; ok {
					cols[i] = n
				}
			}
		}
		for _, ix := range t.Indexes {
			ix.Physical = ""
			rename(ix.Columns)
			s.Relations[ix.Name] = true
		}
		for _, con := range t.Constraints {
			rename(con.Columns)
		}
		t.Created, t.Physical = false, t.Name
		s.Relations[t.Name] = true
	}
	return s
}

// ValidateDir checks the files of d against the live catalog, changing
// nothing: applied files are skipped, pending ones compiled in order
// against the live model (and the one each pending file before it builds).
// Drift (a modified or missing applied file) is reported too.
func (e *Engine) ValidateDir(ctx context.Context, d *Dir) (*ValidateResult, error) {
	return e.validate(ctx, d, false)
}

// ValidateLoose is ValidateDir for files given one by one (`online validate
// dir/02_b.yaml`): they are not a whole directory, so the applied files
// they do not include are not reported missing.
func (e *Engine) ValidateLoose(ctx context.Context, files []DirFile) (*ValidateResult, error) {
	return e.validate(ctx, &Dir{Files: files}, true)
}

func (e *Engine) validate(ctx context.Context, d *Dir, loose bool) (*ValidateResult, error) {
	res := &ValidateResult{Warnings: d.Warnings}
	h, err := e.readHistory(ctx)
	if err != nil {
		return nil, err
	}
	states, err := e.fileStates(ctx, d, h)
	if err != nil {
		return nil, err
	}
	var errs []error
	var pending []DirFile
	if loose {
		states = states[:len(d.Files)]
	}
	for i, s := range states {
		switch s.State {
		case FileModified, FileMissing:
			errs = append(errs, &DriftError{Files: []FileStatus{s}})
		case FilePending:
			pending = append(pending, d.Files[i])
		default:
			res.Skipped = append(res.Skipped, s.File)
		}
	}
	if dc, err := e.SchemaDrift(ctx); err != nil {
		return nil, err
	} else if len(dc.Drift) > 0 {
		errs = append(errs, &SchemaDriftError{Schema: e.cfg.Schema, Since: dc.Since, Drift: dc.Drift})
	}
	cur, err := schema.Read(ctx, e.conn, e.cfg.Schema)
	if err != nil {
		return nil, err
	}
	errs = append(errs, compileChecked(pending, cur, e.cfg.Schema, res, e.liveChecks(ctx))...)
	if len(errs) > 0 {
		return res, &ValidationError{Errs: errs}
	}
	return res, nil
}

// BaselineResult says what Baseline recorded.
type BaselineResult struct {
	// Baseline is the name the starting point is recorded under.
	Baseline string `json:"baseline"`
	// Marked lists the files recorded as applied without running them.
	Marked []string `json:"marked,omitempty"`
}

// Baseline adopts a database another tool built: it records the current
// schema as the starting point of the history, and marks the files of d up
// to upTo (a file name, with or without its extension) as applied, with
// their checksums, without running them. d may be nil when upTo is "".
// It refuses when online has already run migrations on the schema.
func (e *Engine) Baseline(ctx context.Context, d *Dir, upTo string) (*BaselineResult, error) {
	var mark []DirFile
	if upTo != "" {
		if d == nil {
			return nil, &DirError{File: upTo, Err: errors.New("--up-to needs the migrations directory")}
		}
		found := false
		for _, f := range d.Files {
			mark = append(mark, f)
			if f.File == upTo || f.Name == upTo {
				found = true
				break
			}
		}
		if !found {
			return nil, &DirError{File: upTo, Err: errors.New("--up-to names no migration file of the directory")}
		}
	}
	res := &BaselineResult{}
	err := e.Locked(ctx, func() error {
		recs, err := e.store.History(ctx, e.conn, e.cfg.Schema)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Kind != state.KindBaseline {
				return fmt.Errorf("baseline: schema %q already has migrations online ran (%s): a baseline is for adopting online on a database another tool built", e.cfg.Schema, r.Name)
			}
		}
		model, err := e.SchemaModel(ctx)
		if err != nil {
			return err
		}
		res.Baseline = "baseline_" + time.Now().UTC().Format("20060102150405")
		return e.InTx(ctx, func(q state.Querier) error {
			if err := e.store.InsertApplied(ctx, q, &state.Record{Schema: e.cfg.Schema, Name: res.Baseline, Kind: state.KindBaseline,
				Document: []byte(`{"operations":[]}`), OSUser: osUser(), Before: model}); err != nil {
				return err
			}
			for _, f := range mark {
				if err := e.store.InsertApplied(ctx, q, &state.Record{Schema: e.cfg.Schema, Name: f.Migration.Name, Kind: state.KindBaseline,
					Document: f.Migration.Document, Files: stateFiles([]DirFile{f}), OSUser: osUser()}); err != nil {
					return err
				}
				res.Marked = append(res.Marked, f.File)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// PulledFile is one applied file as the history keeps it.
type PulledFile struct {
	File      string `json:"file"`
	Checksum  string `json:"checksum"`
	Migration string `json:"migration"`
	// Content is the stored document as YAML, keys in the file's order.
	// Comments and formatting are not stored, so they are not restored.
	Content []byte `json:"-"`
}

// Pull returns the applied files of the history (reverted ones left out),
// oldest first, with their stored documents: what a directory should hold.
func (e *Engine) Pull(ctx context.Context) ([]PulledFile, error) {
	h, err := e.readHistory(ctx)
	if err != nil {
		return nil, err
	}
	var out []PulledFile
	for _, r := range h.records {
		if len(r.Files) == 0 && r.Kind == state.KindMigration && h.byName[r.Name] != nil && h.byName[r.Name].Name == r.Name {
			// Started by an online that did not record the file: its
			// name is the file's, less the extension.
			sum, err := Checksum(r.Document)
			if err != nil {
				return nil, fmt.Errorf("pull %s: %w", r.Name, err)
			}
			r.Files = []state.File{{Name: r.Name + ".yaml", Checksum: sum, Document: r.Document}}
			h.byFile[r.Name+".yaml"] = h.byName[r.Name]
		}
		for _, f := range r.Files {
			if h.byFile[f.Name] == nil || h.byFile[f.Name].Name != r.Name {
				continue
			}
			content, err := DocumentYAML(f.Document)
			if err != nil {
				return nil, fmt.Errorf("pull %s: %w", f.Name, err)
			}
			out = append(out, PulledFile{File: f.Name, Checksum: f.Checksum, Migration: r.Name, Content: content})
		}
	}
	return out, nil
}

// DocumentYAML renders a stored JSON document as block-style YAML with its
// keys in the stored order. JSON is YAML, so yaml.v3 reads it into nodes
// that keep the order; clearing the flow style makes it read like a file a
// person wrote. Its checksum is the document's.
func DocumentYAML(doc []byte) ([]byte, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(doc, &n); err != nil {
		return nil, fmt.Errorf("read the stored document: %w", err)
	}
	var unflow func(*yaml.Node)
	unflow = func(n *yaml.Node) {
		n.Style &^= yaml.FlowStyle
		if n.Kind == yaml.ScalarNode && n.Style&yaml.DoubleQuotedStyle != 0 && n.Tag == "!!str" {
			// Quoted only because JSON quotes every string; yaml.v3 quotes
			// again where a plain scalar would read as another type.
			n.Style &^= yaml.DoubleQuotedStyle
		}
		for _, c := range n.Content {
			unflow(c)
		}
	}
	unflow(&n)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("write the document as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write the document as YAML: %w", err)
	}
	return b.Bytes(), nil
}
