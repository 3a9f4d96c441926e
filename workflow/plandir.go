package workflow

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/schema"
)

// FilePlan is the plan of one pending file of a folder.
type FilePlan struct {
	File string           `json:"file"`
	Plan *operations.Plan `json:"plan"`
	// Reversals say, per operation, whether revert could undo it once
	// the file completes.
	Reversals []operations.Reversal `json:"reversals"`
}

// PlanDir plans the pending files of d in order, each compiled against the
// schema the files before it build: the live catalog (or, while a file of
// d is in progress, the schema its complete leaves), then each pending
// file as complete leaves it. upTo, when set, is the last file planned. It
// changes nothing.
func (e *Engine) PlanDir(ctx context.Context, d *Dir, upTo string) ([]FilePlan, error) {
	h, err := e.readHistory(ctx)
	if err != nil {
		return nil, err
	}
	states, err := e.fileStates(ctx, d, h)
	if err != nil {
		return nil, err
	}
	var pending []DirFile
	for i, s := range states[:len(d.Files)] {
		if upTo != "" && s.File == upTo && s.State != FilePending {
			return nil, &DirError{File: upTo, Err: fmt.Errorf("is %s (migration %s): there is nothing to plan", s.State, s.Migration)}
		}
		if s.State == FilePending {
			pending = append(pending, d.Files[i])
		}
	}
	if pending, err = keepUpTo(d, pending, upTo); err != nil {
		return nil, err
	}
	model, parent, err := e.modelAfterInProgress(ctx, h)
	if err != nil {
		return nil, err
	}
	out := []FilePlan{}
	for _, f := range pending {
		plan, next, err := operations.Compile(f.Migration, model, operations.Options{Schema: e.cfg.Schema, StateSchema: e.cfg.StateSchema, Parent: parent})
		if err != nil {
			return out, err
		}
		before := model
		out = append(out, FilePlan{File: f.File, Plan: plan, Reversals: operations.Invert(f.Migration, before)})
		model, parent = settle(next), plan.VersionSchema
	}
	return out, nil
}

// modelAfterInProgress is the schema the next migration starts from: the
// live catalog, or while a migration is in progress, the catalog as its
// complete will leave it, modelled from the schema kept with it.
func (e *Engine) modelAfterInProgress(ctx context.Context, h *history) (*schema.Schema, string, error) {
	rec := h.inProgress
	if rec == nil || len(rec.Before) == 0 {
		cur, err := schema.Read(ctx, e.conn, e.cfg.Schema)
		if err != nil {
			return nil, "", err
		}
		parent, err := e.PublishedParent(ctx)
		return cur, parent, err
	}
	before := &schema.Schema{}
	if err := json.Unmarshal(rec.Before, before); err != nil {
		return nil, "", fmt.Errorf("read the schema model kept with %s: %w", rec.Name, err)
	}
	before.Name = e.cfg.Schema
	m, err := operations.Parse(rec.Name+".yaml", rec.Document)
	if err != nil {
		return nil, "", err
	}
	_, next, err := operations.Compile(m, before, operations.Options{Schema: e.cfg.Schema, StateSchema: e.cfg.StateSchema, Parent: rec.Parent})
	if err != nil {
		return nil, "", fmt.Errorf("model the schema after %s, in progress: %w", rec.Name, err)
	}
	return settle(next), rec.VersionSchema, nil
}
