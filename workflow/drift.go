package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/schema"
	"github.com/onlinepg/online/state"
)

// Drift beyond files: online records the model of the migrated schema
// right after each migration completes. Until the next one starts, the
// live catalog should read as that model; a difference is a change made
// outside online (an ALTER TABLE by hand, another tool). Status and
// validate report it, so that the team records it as a migration or
// undoes it before going on.

// SchemaDrift is one difference between the schema online recorded after
// the last migration and the live catalog.
type SchemaDrift struct {
	// Object is what changed: "table users", "column users.nick", "index
	// users_email_idx", "constraint users_email_key", "enum mood".
	Object string `json:"object"`
	// Change is "added", "dropped" or "changed".
	Change string `json:"change"`
	// Recorded and Live describe the object as online left it and as it
	// is now ("" when absent).
	Recorded string `json:"recorded,omitempty"`
	Live     string `json:"live,omitempty"`
}

func (d SchemaDrift) String() string {
	switch d.Change {
	case "added":
		return fmt.Sprintf("%s was added outside online (%s)", d.Object, d.Live)
	case "dropped":
		return fmt.Sprintf("%s was dropped outside online (it was %s)", d.Object, d.Recorded)
	default:
		return fmt.Sprintf("%s was changed outside online: %s, online left %s", d.Object, d.Live, d.Recorded)
	}
}

// SchemaDriftError is what validate reports for a drifted schema.
type SchemaDriftError struct {
	Schema string
	Since  string // the migration after which the model was recorded
	Drift  []SchemaDrift
}

func (e *SchemaDriftError) Error() string {
	parts := make([]string, len(e.Drift))
	for i, d := range e.Drift {
		parts[i] = d.String()
	}
	return fmt.Sprintf("schema %s changed outside online since %s: %s. Record the change as a migration file (or undo it) so that the folder says what the database is", e.Schema, e.Since, strings.Join(parts, "; "))
}

// DriftCheck is the result of comparing the live schema with the one
// recorded after the last migration.
type DriftCheck struct {
	// Since is the migration whose recorded model was compared; "" when
	// nothing could be (NotChecked says why).
	Since      string        `json:"since,omitempty"`
	Drift      []SchemaDrift `json:"drift"`
	NotChecked string        `json:"not_checked,omitempty"`
}

// SchemaDrift compares the live schema with the model recorded after the
// last completed migration. It changes nothing. While a migration is in
// progress the live schema is between two models, and nothing is compared.
func (e *Engine) SchemaDrift(ctx context.Context) (*DriftCheck, error) {
	out := &DriftCheck{Drift: []SchemaDrift{}}
	if rec, err := e.store.InProgress(ctx, e.conn, e.cfg.Schema); err != nil {
		return nil, err
	} else if rec != nil {
		out.NotChecked = fmt.Sprintf("migration %s is in progress; drift is checked when none is", rec.Name)
		return out, nil
	}
	last, err := e.store.LatestComplete(ctx, e.conn, e.cfg.Schema)
	if err != nil {
		return nil, err
	}
	if last == nil {
		out.NotChecked = "no migration has completed yet"
		return out, nil
	}
	recorded, err := e.store.After(ctx, e.conn, e.cfg.Schema, last.Name)
	if err != nil {
		return nil, err
	}
	if len(recorded) == 0 {
		out.NotChecked = fmt.Sprintf("no schema was recorded after %s (completed by an older online); the next migration records one", last.Name)
		return out, nil
	}
	var want schema.Schema
	if err := json.Unmarshal(recorded, &want); err != nil {
		return nil, fmt.Errorf("read the schema recorded after %s: %w", last.Name, err)
	}
	live, err := schema.Read(ctx, e.conn, e.cfg.Schema)
	if err != nil {
		return nil, err
	}
	out.Since = last.Name
	out.Drift = compareSchemas(&want, live)
	return out, nil
}

// compareSchemas lists what differs between two models of one schema:
// tables, their columns (type, null, default), indexes and constraints,
// and enum types. Physical names, OIDs and the maintained-column
// bookkeeping are online's own and not compared.
func compareSchemas(want, live *schema.Schema) []SchemaDrift {
	out := []SchemaDrift{}
	add := func(object, change, recorded, now string) {
		out = append(out, SchemaDrift{Object: object, Change: change, Recorded: recorded, Live: now})
	}
	diffMaps := func(kind string, a, b map[string]string) {
		for _, k := range sortedKeys(a, b) {
			x, inA := a[k]
			y, inB := b[k]
			switch {
			case !inB:
				add(kind+" "+k, "dropped", x, "")
			case !inA:
				add(kind+" "+k, "added", "", y)
			case x != y:
				add(kind+" "+k, "changed", x, y)
			}
		}
	}
	tables := func(s *schema.Schema) map[string]string {
		m := map[string]string{}
		for n, t := range s.Tables {
			m[n] = fmt.Sprintf("%d column(s)", len(t.Columns))
		}
		return m
	}
	wt, lt := tables(want), tables(live)
	for _, n := range sortedKeys(wt, lt) {
		a, b := want.Tables[n], live.Tables[n]
		switch {
		case b == nil:
			add("table "+n, "dropped", wt[n], "")
			continue
		case a == nil:
			add("table "+n, "added", "", lt[n])
			continue
		}
		diffMaps("column "+n+".", columns(a), columns(b))
		diffMaps("index", indexes(a), indexes(b))
		diffMaps("constraint", constraints(a), constraints(b))
	}
	enums := func(s *schema.Schema) map[string]string {
		m := map[string]string{}
		for n, v := range s.Enums {
			m[n] = strings.Join(v, ", ")
		}
		return m
	}
	diffMaps("enum", enums(want), enums(live))
	// "column users." + "nick" reads "column users. nick": join them.
	for i := range out {
		out[i].Object = strings.Replace(out[i].Object, ". ", ".", 1)
	}
	slices.SortStableFunc(out, func(a, b SchemaDrift) int { return strings.Compare(a.Object, b.Object) })
	return out
}

func columns(t *schema.Table) map[string]string {
	m := map[string]string{}
	for _, c := range t.Columns {
		d := c.Type
		if !c.Nullable {
			d += " NOT NULL"
		}
		if c.Default != nil {
			d += " DEFAULT " + *c.Default
		}
		if c.Identity != "" {
			d += " IDENTITY"
		}
		if c.Generated {
			d += " GENERATED AS " + c.GeneratedExpr
		}
		m[c.Name] = d
	}
	return m
}

func indexes(t *schema.Table) map[string]string {
	m := map[string]string{}
	for _, ix := range t.Indexes {
		if ix.Constraint != "" {
			continue // reported as its constraint
		}
		m[ix.PhysicalName()] = ix.Definition
	}
	return m
}

func constraints(t *schema.Table) map[string]string {
	m := map[string]string{}
	for _, c := range t.Constraints {
		m[c.Name] = c.Definition
	}
	return m
}

func sortedKeys(a, b map[string]string) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// DriftWriter writes the migration that takes schema from to schema to,
// and lists what no operation expresses.
type DriftWriter func(from, to *schema.Schema) (content []byte, unsupported []string, err error)

// ErrNoDrift is returned by RecordDrift when there is no drift to record,
// or it cannot be measured now (a migration in progress).
var ErrNoDrift = errors.New("no drift to record")

// DriftFile is the migration file RecordDrift wrote for the drift.
type DriftFile struct {
	File    string `json:"file"`
	Content []byte `json:"-"`
	// Unsupported lists the differences no operation of the format
	// expresses: they are in the file as comments, to write by hand.
	Unsupported []string `json:"unsupported,omitempty"`
}

// RecordDrift makes the folder say what the database is again after a
// change made outside online: it writes the change as the next migration
// file of d (name is its name, "drift" by default) and records that file
// as applied on this database without running it, as a baseline would,
// the live schema becoming the one drift is measured against. Other
// databases apply the file as any other. It refuses while a migration is
// in progress, and when there is no drift.
//
// write turns the recorded schema and the live one into the file's content
// and the differences it cannot express: online diff's comparison, which
// the caller passes in, as package diff runs migrations through this one.
func (e *Engine) RecordDrift(ctx context.Context, d *Dir, name string, write DriftWriter) (*DriftFile, error) {
	if name == "" {
		name = "drift"
	}
	var out *DriftFile
	err := e.Locked(ctx, func() error {
		dc, err := e.SchemaDrift(ctx)
		if err != nil {
			return err
		}
		if dc.NotChecked != "" {
			return fmt.Errorf("%w: %s", ErrNoDrift, dc.NotChecked)
		}
		if len(dc.Drift) == 0 {
			return fmt.Errorf("%w: schema %s has not changed outside online since %s", ErrNoDrift, e.cfg.Schema, dc.Since)
		}
		recorded, err := e.store.After(ctx, e.conn, e.cfg.Schema, dc.Since)
		if err != nil {
			return err
		}
		var from schema.Schema
		if err := json.Unmarshal(recorded, &from); err != nil {
			return fmt.Errorf("read the schema recorded after %s: %w", dc.Since, err)
		}
		live, err := schema.Read(ctx, e.conn, e.cfg.Schema)
		if err != nil {
			return err
		}
		content, unsupported, err := write(&from, live)
		if err != nil {
			return err
		}
		stems := make([]string, len(d.Files))
		for i, f := range d.Files {
			stems[i] = f.Name
		}
		file, err := NextFileName(stems, name, time.Now())
		if err != nil {
			return err
		}
		m, err := operations.Parse(file, content)
		if err != nil {
			return fmt.Errorf("the migration written for the drift does not read back (%w); write it by hand with online create", err)
		}
		sum, err := Checksum(m.Document)
		if err != nil {
			return err
		}
		model, err := e.SchemaModel(ctx)
		if err != nil {
			return err
		}
		if err := e.InTx(ctx, func(q state.Querier) error {
			if err := e.store.InsertApplied(ctx, q, &state.Record{Schema: e.cfg.Schema, Name: m.Name, Kind: state.KindBaseline,
				Document: m.Document, Files: []state.File{{Name: file, Checksum: sum, Document: m.Document}}, OSUser: osUser(), Before: recorded}); err != nil {
				return err
			}
			return e.store.SetAfter(ctx, q, e.cfg.Schema, m.Name, model)
		}); err != nil {
			return err
		}
		out = &DriftFile{File: file, Content: content, Unsupported: unsupported}
		return nil
	})
	return out, err
}
