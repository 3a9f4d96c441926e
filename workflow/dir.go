package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/state"
)

// A migrations directory holds one migration per file, applied in the order
// of their names. Only *.yaml, *.yml and *.json files at its top level are
// migrations; anything else (a README, a subdirectory) is left alone.

// DirFile is one migration file of a directory.
type DirFile struct {
	// File is the file name with its extension ("003_rename.yaml"), Name
	// without it ("003_rename"): the name status reports.
	File string
	Name string
	// Migration is the parsed file. Its Name is the file's "name" field,
	// or Name when it has none.
	Migration *operations.Migration
	// Checksum is the SHA-256 of the normalized document (see Checksum).
	Checksum string
}

// Dir is a parsed migrations directory, files in name order.
type Dir struct {
	Files []DirFile
	// Warnings are problems that do not stop a run: a gap in the numbering.
	Warnings []string
}

// DirError is a problem with a migrations directory itself: a duplicate, an
// unreadable file, a file out of order. It names the file.
type DirError struct {
	File string // "" when it is about the directory as a whole
	Err  error
}

func (e *DirError) Error() string {
	if e.File == "" {
		return e.Err.Error()
	}
	return e.File + ": " + e.Err.Error()
}

func (e *DirError) Unwrap() error { return e.Err }

// migrationExts are the extensions of migration files.
var migrationExts = state.MigrationExts

func isMigrationFile(name string) bool { return state.IsMigrationFile(name) }

// LoadDir reads and parses every migration file of fsys's top level. An
// app can pass an embed.FS (fs.Sub it to the directory), a CLI os.DirFS.
// It stops at the first file that does not parse; ValidateDir reports all.
func LoadDir(fsys fs.FS) (*Dir, error) {
	d, errs := loadDir(fsys)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return d, nil
}

// loadDir parses every file, returning the files that parsed and one error
// per problem. A file that does not parse is left out of d.
func loadDir(fsys fs.FS) (*Dir, []error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, []error{&DirError{Err: fmt.Errorf("read the migrations directory: %w", err)}}
	}
	d := &Dir{}
	// Problems of the directory come first, then those of file contents:
	// a duplicate is what the reader must fix first.
	var errs, parseErrs []error
	stems := map[string]string{}
	numbers := map[string]string{}
	for _, ent := range entries {
		if ent.IsDir() || !isMigrationFile(ent.Name()) {
			continue
		}
		file := ent.Name()
		stem := strings.TrimSuffix(file, path.Ext(file))
		if other, dup := stems[stem]; dup {
			errs = append(errs, &DirError{File: file, Err: fmt.Errorf("has the same name as %s: each migration needs a name of its own; remove or rename one", other)})
			continue
		}
		stems[stem] = file
		if n := numberOf(stem); n != "" {
			if other, dup := numbers[n]; dup {
				errs = append(errs, &DirError{File: file, Err: fmt.Errorf("has the same number %s as %s (two branches each added a migration?); renumber one with the next free number", n, other)})
				continue
			}
			numbers[n] = file
		}
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			parseErrs = append(parseErrs, &DirError{File: file, Err: fmt.Errorf("read: %w", err)})
			continue
		}
		m, err := operations.Parse(file, data)
		if err != nil {
			parseErrs = append(parseErrs, err)
			continue
		}
		sum, err := Checksum(m.Document)
		if err != nil {
			parseErrs = append(parseErrs, &DirError{File: file, Err: err})
			continue
		}
		d.Files = append(d.Files, DirFile{File: file, Name: stem, Migration: m, Checksum: sum})
	}
	if len(d.Files) == 0 && len(errs)+len(parseErrs) == 0 {
		errs = append(errs, &DirError{Err: errors.New("the migrations directory holds no migration files (*.yaml, *.yml, *.json)")})
	}
	// fs.ReadDir sorts by file name; order by name without the extension so
	// that "1_a.yaml" and "1_a_b.json" sort as their names do.
	slices.SortFunc(d.Files, func(a, b DirFile) int { return strings.Compare(a.Name, b.Name) })
	seen := map[string]string{}
	for _, f := range d.Files {
		if other, dup := seen[f.Migration.Name]; dup {
			errs = append(errs, &DirError{File: f.File, Err: fmt.Errorf("its migration name %q is also the name of %s", f.Migration.Name, other)})
		}
		seen[f.Migration.Name] = f.File
	}
	d.Warnings = numberingGaps(d.Files)
	return d, append(errs, parseErrs...)
}

// Checksum is the SHA-256 of a migration document in a canonical JSON form
// (keys sorted, no whitespace), so that comments, formatting, key order and
// YAML-versus-JSON do not count as a change; only what the document says.
// It is state.Checksum, what the history records.
func Checksum(doc json.RawMessage) (string, error) { return state.Checksum(doc) }

// numberOf returns the leading digits of a file name, "" when it has none.
func numberOf(stem string) string {
	i := 0
	for i < len(stem) && stem[i] >= '0' && stem[i] <= '9' {
		i++
	}
	return stem[:i]
}

// timestampDigits is the length from which a leading number is taken for a
// timestamp (20060102150405) rather than a sequence number.
const timestampDigits = 12

// numberingGaps warns about missing sequence numbers. A gap is only a
// warning: a migration deleted before it ever ran, or squashed, leaves one,
// and refusing would force renaming files that other databases applied.
func numberingGaps(files []DirFile) []string {
	var out []string
	prev := -1
	for _, f := range files {
		n := numberOf(f.Name)
		if n == "" || len(n) >= timestampDigits {
			prev = -1
			continue
		}
		v, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if prev >= 0 && v > prev+1 {
			out = append(out, fmt.Sprintf("%s: numbering gap: no migration numbered %d to %d before it", f.File, prev+1, v-1))
		}
		prev = v
	}
	return out
}

// NextFileName returns the name of the next migration file of a directory
// whose files are names (stems, sorted): numbered after the last, in the
// directory's style. Sequence numbers keep the last file's zero padding;
// a directory numbered by timestamps gets the current UTC time.
func NextFileName(names []string, name string, now time.Time) (string, error) {
	if err := checkNewName(name); err != nil {
		return "", err
	}
	last := ""
	if len(names) > 0 {
		last = numberOf(names[len(names)-1])
	}
	switch {
	case len(names) == 0 || last == "":
		if len(names) > 0 {
			return "", &DirError{File: names[len(names)-1], Err: errors.New("the last migration's name does not start with a number, so online cannot number the next one; name the file yourself")}
		}
		return "001_" + name + ".yaml", nil
	case len(last) >= timestampDigits:
		return now.UTC().Format("20060102150405") + "_" + name + ".yaml", nil
	default:
		v, err := strconv.Atoi(last)
		if err != nil {
			return "", &DirError{File: names[len(names)-1], Err: fmt.Errorf("read its number: %w", err)}
		}
		return fmt.Sprintf("%0*d_%s.yaml", len(last), v+1, name), nil
	}
}

func checkNewName(name string) error {
	if name == "" {
		return errors.New("the migration needs a name")
	}
	for _, r := range name {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return fmt.Errorf("migration name %q: use letters, digits, _ and - only (it becomes part of the file and version schema names)", name)
		}
	}
	return nil
}

// Template is the content of a new migration file: the operations used most,
// commented out, in online's format.
const Template = `# A migration: its operations run in order as one expand/contract step.
# online validate checks it; online migrate applies it. Uncomment and edit.
# The full format: https://github.com/onlinepg/online/blob/main/docs/reference/file-format.md
operations:
  # - create_table:
  #     name: items
  #     columns:
  #       - { name: id, type: bigserial, pk: true }
  #       - { name: title, type: text, nullable: false }
  #
  # - add_column:
  #     table: items
  #     column: { name: price, type: "numeric(10,2)", nullable: true }
  #
  # - rename_column: { table: items, from: title, to: name }
  #
  # - alter_column:            # a type change: both versions see their own type
  #     table: items
  #     column: price
  #     type: bigint
  #     up: (price * 100)::bigint       # old value -> new column
  #     down: (price / 100.0)::numeric  # new value -> old column
  #
  # - create_index: { table: items, name: items_name_idx, columns: [name] }
  #
  # - drop_column: { table: items, column: legacy }
  #
  # - sql:                     # raw SQL must be alone in its migration
  #     up: CREATE EXTENSION IF NOT EXISTS pg_trgm
  #     down: DROP EXTENSION IF EXISTS pg_trgm
`

// stateFiles turns directory files into the records kept in the state schema.
func stateFiles(files []DirFile) []state.File {
	out := make([]state.File, len(files))
	for i, f := range files {
		out[i] = state.File{Name: f.File, Checksum: f.Checksum, Document: f.Migration.Document}
	}
	return out
}

// NewDirFile makes a loose file, parsed already, into a DirFile, so that
// files given one by one can be checked like a directory's.
func NewDirFile(file string, m *operations.Migration) (DirFile, error) {
	sum, err := Checksum(m.Document)
	if err != nil {
		return DirFile{}, &DirError{File: file, Err: err}
	}
	base := path.Base(file)
	return DirFile{File: base, Name: strings.TrimSuffix(base, path.Ext(base)), Migration: m, Checksum: sum}, nil
}
