package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

type deletedRefs struct{ refs []string }

func (d *deletedRefs) Delete(_ context.Context, ref string) error {
	d.refs = append(d.refs, ref)
	return nil
}

func TestRemovalsNotedOnceAndCleanedUpByPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy      string
		wantDeleted []string
	}{
		{policy: "", wantDeleted: nil},
		{policy: removedKeep, wantDeleted: nil},
		{policy: removedDeleteTags, wantDeleted: []string{"reg/acme/gone:test", "reg/acme/gone:rc", "reg/acme/gone:latest"}},
	} {
		t.Run("policy="+tc.policy, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(filepath.Join(t.TempDir(), "cccp.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, p := range []string{"acme/gone:latest", "acme/stays:latest"} {
				run := &store.Run{Project: p, Kind: types.KindBranch, State: store.Passed, Images: []store.Image{
					{Ref: "reg/" + p[:len(p)-len(":latest")] + ":test"}, {Ref: "reg/" + p[:len(p)-len(":latest")] + ":rc"},
					{Ref: "reg/" + p[:len(p)-len(":latest")] + ":latest"}}}
				if err := db.CreateRun(ctx, run); err != nil {
					t.Fatal(err)
				}
			}
			keys := []string{"acme/gone:latest", "acme/stays:latest"}
			day := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
			del := &deletedRefs{}
			r := &removals{db: db, images: del, policy: tc.policy, keys: func() []string { return keys },
				log: slog.New(slog.DiscardHandler), now: func() time.Time { return day }}

			r.note(ctx)
			if _, ok := r.removedOn(ctx, "acme/gone:latest"); ok {
				t.Fatalf("an entry in the index is noted removed")
			}
			keys = keys[1:] // acme/gone leaves the index
			r.note(ctx)
			day = day.AddDate(0, 0, 3)
			r.note(ctx) // a later load does not move the date or clean up again
			if got, ok := r.removedOn(ctx, "acme/gone:latest"); !ok || !got.Equal(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)) {
				t.Errorf("removed on %v %v, want 2026-11-30", got, ok)
			}
			if _, ok := r.removedOn(ctx, "acme/stays:latest"); ok {
				t.Errorf("acme/stays noted removed")
			}
			if !slices.Equal(del.refs, tc.wantDeleted) {
				t.Errorf("deleted %q, want %q", del.refs, tc.wantDeleted)
			}
			keys = append(keys, "acme/gone:latest") // back in the index
			r.note(ctx)
			if _, ok := r.removedOn(ctx, "acme/gone:latest"); ok {
				t.Errorf("an entry back in the index is still noted removed")
			}
		})
	}
}

func TestTestedDigestOfARescanRun(t *testing.T) {
	run := &store.Run{Kind: types.KindRescan, Stages: []store.Stage{{Name: types.StageTest, Digest: "sha256:ab"}}}
	if got := testedDigest(run); got != "sha256:ab" {
		t.Errorf("rescan run: %q", got)
	}
	run.Kind = types.KindBranch
	if got := testedDigest(run); got != "" {
		t.Errorf("branch run: %q", got)
	}
}
