package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/schema"
	"github.com/onlinepg/online/state"
)

// ErrNothingToRevert is returned by Revert when no completed migration can
// be the one undone.
var ErrNothingToRevert = errors.New("no completed migration to revert")

// Revert starts the inverse of the last completed migration as an ordinary
// migration: both versions are live until Complete, and Rollback abandons
// it. It refuses, naming each operation and why, a migration that cannot
// be undone without losing data (*operations.IrreversibleError). Once the
// revert completes, the files the migration applied count as pending again.
func (e *Engine) Revert(ctx context.Context) (*phases.Result, error) {
	if err := e.Init(ctx); err != nil {
		return nil, err
	}
	if rec, err := e.store.InProgress(ctx, e.conn, e.cfg.Schema); err != nil {
		return nil, err
	} else if rec != nil {
		return nil, &phases.InProgressError{Name: rec.Name}
	}
	h, err := e.readHistory(ctx)
	if err != nil {
		return nil, err
	}
	// The last completed migration still in effect (a revert that
	// completed is itself the last, and reverting it re-applies).
	var last *state.Record
	for i := len(h.records) - 1; i >= 0; i-- {
		if h.records[i].Phase == state.Complete {
			last = &h.records[i]
			break
		}
	}
	if last == nil {
		return nil, ErrNothingToRevert
	}
	return e.startRevert(ctx, h, last)
}

// RevertTo starts the revert of the last migration in effect after the
// migration to (its name, or the name of one of its files), so that
// migrations are undone one at a time, each online: complete it, then
// RevertTo again, until to is the last in effect. It returns how many
// reverts remain after this one. Unlike Revert, it never re-applies: a
// completed revert is passed over, and the migration in effect before it
// is the one undone.
func (e *Engine) RevertTo(ctx context.Context, to string) (*phases.Result, int, error) {
	if err := e.Init(ctx); err != nil {
		return nil, 0, err
	}
	if rec, err := e.store.InProgress(ctx, e.conn, e.cfg.Schema); err != nil {
		return nil, 0, err
	} else if rec != nil {
		return nil, 0, &phases.InProgressError{Name: rec.Name}
	}
	h, err := e.readHistory(ctx)
	if err != nil {
		return nil, 0, err
	}
	var effective []*state.Record
	at := -1
	for i := range h.records {
		r := &h.records[i]
		if h.effective[r.Name] != r {
			continue
		}
		effective = append(effective, r)
		if r.Name == to {
			at = len(effective) - 1
		}
		for _, f := range r.Files {
			if f.Name == to || strings.TrimSuffix(f.Name, extOf(f.Name)) == to {
				at = len(effective) - 1
			}
		}
	}
	if at < 0 {
		return nil, 0, &DirError{File: to, Err: errors.New("names no migration in effect (online history lists them)")}
	}
	after := effective[at+1:]
	if len(after) == 0 {
		return nil, 0, fmt.Errorf("%w: %s is already the last migration in effect", ErrNothingToRevert, to)
	}
	res, err := e.startRevert(ctx, h, after[len(after)-1])
	return res, len(after) - 1, err
}

// startRevert starts the inverse of last, a completed migration in effect
// (or a completed revert, which re-applies what it undid).
func (e *Engine) startRevert(ctx context.Context, h *history, last *state.Record) (*phases.Result, error) {
	if last.Kind == state.KindBaseline {
		return nil, fmt.Errorf("%w: the last one, %s, is a baseline (recorded, never run by online)", ErrNothingToRevert, last.Name)
	}
	m, err := operations.Parse("migration "+last.Name+" (stored)", last.Document)
	if err != nil {
		return nil, err
	}
	var before *schema.Schema
	if len(last.Before) > 0 {
		before = &schema.Schema{}
		if err := json.Unmarshal(last.Before, before); err != nil {
			return nil, fmt.Errorf("read the schema model kept with %s: %w", last.Name, err)
		}
		before.Name = e.cfg.Schema
	}
	name := "revert_" + last.Name
	for n := 2; ; n++ {
		if r, err := e.store.Get(ctx, e.conn, e.cfg.Schema, name); err != nil {
			return nil, err
		} else if r == nil {
			break
		}
		name = fmt.Sprintf("revert_%s_%d", last.Name, n)
	}
	doc, _, err := operations.InverseDocument(m, before, name)
	if err != nil {
		return nil, err
	}
	if doc, err = e.revertVersion(ctx, h, last, doc); err != nil {
		return nil, err
	}
	inv, err := operations.Parse("revert of "+last.Name, doc)
	if err != nil {
		return nil, fmt.Errorf("build the inverse of %s: %w", last.Name, err)
	}
	model, err := e.SchemaModel(ctx)
	if err != nil {
		return nil, err
	}
	return e.StartRecorded(ctx, inv, state.Meta{Kind: state.KindRevert, Reverts: last.Name, OSUser: osUser(), Before: model})
}

// Reversibility says, for each operation of m, whether revert could undo
// it once m completes, with the live schema as the model before m.
func (e *Engine) Reversibility(ctx context.Context, m *operations.Migration) ([]operations.Reversal, error) {
	cur, err := schema.Read(ctx, e.conn, e.cfg.Schema)
	if err != nil {
		return nil, err
	}
	return operations.Invert(m, cur), nil
}

// revertVersion names the version a revert publishes after the files: the
// version of the migration in effect once last is undone (the file before
// it), so that an application built for that file is served again and
// the live version is never a name no file has. When that version cannot
// be published under its name (a baseline or nothing before last, or its
// schema still exists), the revert keeps its own name.
func (e *Engine) revertVersion(ctx context.Context, h *history, last *state.Record, doc []byte) ([]byte, error) {
	var target *state.Record
	if last.Kind == state.KindRevert {
		target = h.effective[last.Reverts]
		if target == nil {
			for i := range h.records {
				if h.records[i].Name == last.Reverts {
					target = &h.records[i]
				}
			}
		}
	} else {
		for i := len(h.records) - 1; i >= 0; i-- {
			r := &h.records[i]
			if r.Name != last.Name && h.effective[r.Name] == r {
				target = r
				break
			}
		}
	}
	if target == nil || target.VersionSchema == "" || target.Kind == state.KindBaseline {
		return doc, nil
	}
	var names struct {
		Name          string `json:"name"`
		VersionSchema string `json:"version_schema"`
	}
	if err := json.Unmarshal(target.Document, &names); err != nil {
		return nil, fmt.Errorf("read the document of %s: %w", target.Name, err)
	}
	suffix := names.VersionSchema
	if suffix == "" {
		suffix = names.Name
	}
	if suffix == "" {
		suffix = target.Name
	}
	if operations.VersionSchemaName(e.cfg.Schema, suffix) != target.VersionSchema {
		return doc, nil
	}
	if exists, err := e.schemaExists(ctx, target.VersionSchema); err != nil || exists {
		return doc, err
	}
	var d map[string]any
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("read the inverse of %s: %w", last.Name, err)
	}
	d["version_schema"] = suffix
	out, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode the inverse of %s: %w", last.Name, err)
	}
	return out, nil
}
