package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// metaRemoved is the store's meta namespace of entries removed from the
// index: project key -> when cccp saw it gone (RFC 3339).
const metaRemoved = "removed-entries"

// The clean-ups of index.removed.
const (
	removedKeep       = "keep"        // delivered images stay (the original policy)
	removedDeleteTags = "delete-tags" // the tags the entry's runs pushed are deleted
)

// removals notes entries that left the index (and came back), and cleans
// up after them as index.removed says.
type removals struct {
	db interface {
		LatestRuns(ctx context.Context, kind string) (map[string]*store.Run, error)
		Runs(ctx context.Context, f store.RunFilter) ([]*store.Run, error)
		PutMeta(ctx context.Context, ns, key string, val []byte) error
		GetMeta(ctx context.Context, ns, key string) ([]byte, error)
		DeleteMeta(ctx context.Context, ns, key string) error
	}
	images interface {
		Delete(ctx context.Context, ref string) error
	}
	policy string
	keys   func() []string
	log    *slog.Logger
	now    func() time.Time
}

// note compares the projects that have runs with the index now: one with
// runs and no entry is recorded as removed (once, with today's date), one
// back in the index loses its record. It runs after every load of the
// index, so a removal made while cccp was stopped is seen at its start.
func (r *removals) note(ctx context.Context) {
	latest, err := r.db.LatestRuns(ctx, "")
	if err != nil && latest == nil {
		r.log.Warn("index changes: list projects", "err", err)
		return
	}
	inIndex := map[string]bool{}
	for _, k := range r.keys() {
		inIndex[k] = true
		if _, err := r.db.GetMeta(ctx, metaRemoved, k); err == nil {
			r.log.Info("entry is back in the index", "project", k)
			if err := r.db.DeleteMeta(ctx, metaRemoved, k); err != nil {
				r.log.Warn("index changes", "project", k, "err", err)
			}
		}
	}
	for project := range latest {
		if inIndex[project] {
			continue
		}
		if _, err := r.db.GetMeta(ctx, metaRemoved, project); !errors.Is(err, store.ErrNotFound) {
			continue // already noted (or unreadable: not noted twice)
		}
		when := r.now().UTC()
		if err := r.db.PutMeta(ctx, metaRemoved, project, []byte(when.Format(time.RFC3339))); err != nil {
			r.log.Warn("index changes: note removal", "project", project, "err", err)
			continue
		}
		r.log.Info("entry removed from the index: no longer triggered; its history stays", "project", project, "clean-up", r.policy)
		if r.policy == removedDeleteTags {
			r.deleteTags(ctx, project)
		}
	}
}

// deleteTags deletes every tag the project's runs pushed (:test, :rc, the
// final tags, pull-request run tags), tag by tag: the manifests stay for
// the registry's garbage collection, and another tag of the same digest
// (another entry's) is not touched.
func (r *removals) deleteTags(ctx context.Context, project string) {
	runs, err := r.db.Runs(ctx, store.RunFilter{Project: project})
	if err != nil && runs == nil {
		r.log.Warn("removed entry: list runs", "project", project, "err", err)
		return
	}
	done := map[string]bool{}
	for _, run := range runs {
		if run.Kind == types.KindRescan {
			continue
		}
		for _, im := range run.Images {
			if done[im.Ref] {
				continue
			}
			done[im.Ref] = true
			if err := r.images.Delete(ctx, im.Ref); err != nil {
				r.log.Warn("removed entry: delete tag", "project", project, "ref", im.Ref, "err", err)
				continue
			}
			r.log.Info("removed entry: deleted tag", "project", project, "ref", im.Ref)
		}
	}
}

// removedOn is when project was seen removed from the index, for its page.
func (r *removals) removedOn(ctx context.Context, project string) (time.Time, bool) {
	v, err := r.db.GetMeta(ctx, metaRemoved, project)
	if err != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, string(v))
	return t, err == nil
}

// validRemovedPolicy checks index.removed.
func validRemovedPolicy(p string) error {
	switch p {
	case "", removedKeep, removedDeleteTags:
		return nil
	}
	return fmt.Errorf("index.removed: %q is not %s or %s", p, removedKeep, removedDeleteTags)
}

// testedDigest is the digest a rescan run tested (what a re-run of it
// tests again); "" for other runs.
func testedDigest(run *store.Run) string {
	if run.Kind != types.KindRescan {
		return ""
	}
	for _, st := range run.Stages {
		if st.Name == types.StageTest {
			return st.Digest
		}
	}
	return ""
}
