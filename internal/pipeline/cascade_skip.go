package pipeline

import (
	"context"
	"errors"
	"slices"

	"github.com/cccp-project/cccp/internal/store"
)

// mayStartCascade tells, before a branch run's final result is stored,
// whether that result may start a cascade: run (as stored now) with fn
// applied passes and delivers a digest other than the one delivered
// before it. When it cannot tell (the store cannot say what was delivered
// before), it says yes.
func (r *Runner) mayStartCascade(ctx context.Context, run *store.Run, fn func(*store.Run) error) bool {
	after := *run
	after.Stages = slices.Clone(run.Stages)
	for i := range after.Stages {
		after.Stages[i].Bases = slices.Clone(run.Stages[i].Bases)
	}
	if err := fn(&after); err != nil {
		return true // FinishRun fails the same way and starts nothing
	}
	digest := after.DeliveredDigest()
	if digest == "" || UpToDate(&after) {
		return false
	}
	finder, ok := r.cfg.Store.(deliveredFinder)
	if !ok {
		return true
	}
	last, err := finder.LastDelivered(ctx, run.Project)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return true
	case err != nil:
		return true
	}
	return last.ID == run.ID || last.DeliveredDigest() != digest
}
