package retention_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend/local"
	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/retention"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/testimage"
)

// TestPruneBuildCache: retention prunes the local backend's own build
// storage (a real buildah storage) by BuildCacheUnusedFor: a dry run
// lists the image no build used and keeps it, 0 leaves the storage
// alone, and a prune removes it and reports it.
func TestPruneBuildCache(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	root, runRoot := testimage.Storage(t)
	bld := &buildah.Builder{Root: root, RunRoot: runRoot}
	be, err := local.New(local.Config{Dir: filepath.Join(dir, "local"), Buildah: bld, Podman: &podman.Runner{}})
	if err != nil {
		t.Fatal(err)
	}
	bctx := t.TempDir()
	testimage.CopyBusybox(t, bctx)
	if err := os.WriteFile(filepath.Join(bctx, "Dockerfile"), []byte("FROM scratch\nCOPY busybox /bin/busybox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const image = "localhost/storehyg-test/retention:1"
	if _, err := bld.Build(ctx, buildah.BuildRequest{ContextDir: bctx, Image: image}); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// The first prune sees the image today; a month later no build used it.
	later := time.Now().Add(30 * 24 * time.Hour)
	pruner := func(unusedFor time.Duration, now time.Time) *retention.Pruner {
		p, err := retention.New(retention.Config{Store: db, Logs: runlog.New(filepath.Join(dir, "logs"), 0),
			Registry:   registry.NewClient(registry.ClientConfig{AuthFiles: []string{}}),
			BuildCache: be, BuildCacheUnusedFor: unusedFor, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	has := func() bool {
		out, err := exec.Command("buildah", "--root", root, "--runroot", runRoot, "images", "-q", image).CombinedOutput()
		return err == nil && strings.TrimSpace(string(out)) != ""
	}

	if res, err := pruner(retention.DefaultBuildCacheUnusedFor, time.Now()).Prune(ctx, false); err != nil || res.Kept != nil || len(res.BuildCache) != 0 {
		t.Fatalf("first prune: %v, kept %v, removed %v; want nothing removed (the image is new to it)", err, res.Kept, res.BuildCache)
	}
	for _, tc := range []struct {
		name      string
		unusedFor time.Duration
		dryRun    bool
		listed    bool
		stays     bool
	}{
		{"off", 0, false, false, true},
		{"dry run", retention.DefaultBuildCacheUnusedFor, true, true, true},
		{"prune", retention.DefaultBuildCacheUnusedFor, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := pruner(tc.unusedFor, later).Prune(ctx, tc.dryRun)
			if err != nil || res.Kept != nil {
				t.Fatalf("prune: %v, kept %v", err, res.Kept)
			}
			listed := strings.Contains(strings.Join(res.BuildCache, "\n"), image)
			if listed != tc.listed || has() != tc.stays {
				t.Errorf("reported %v (listed %v, want %v); image there: %v, want %v", res.BuildCache, listed, tc.listed, has(), tc.stays)
			}
		})
	}
}
