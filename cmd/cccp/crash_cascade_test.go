package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/liveindex"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/testimage"
	"github.com/cccp-project/cccp/internal/types"
)

// TestCascadeResumesAfterStopMidCascade builds real images: cccp stops
// while the middle of a cascade builds, and the next start finishes the
// cascade: every entry ran once (the middle's run resumed, not doubled),
// no leaf was lost, and each leaf is built on the middle's delivered image.
func TestCascadeResumesAfterStopMidCascade(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with buildah; not in -short")
	}
	testimage.Require(t)
	dir := t.TempDir()
	reg := testimage.Registry(t, "", "")
	cascadeFixture(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	idx, _, err := index.Load(ctx, filepath.Join(dir, "index"), index.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	graph, _ := index.NewGraph(idx)
	live := liveindex.New(func(context.Context) (*index.Index, error) { return idx, nil })
	if _, err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	open := func(obs pipeline.Observer) *pipelineEnv {
		var f envFlags
		cmd := &cobra.Command{Use: "test"}
		f.register(cmd, true)
		if err := cmd.Flags().Parse([]string{"--data", filepath.Join(dir, "data"), "--registry", reg}); err != nil {
			t.Fatal(err)
		}
		env, err := openPipeline(ctx, &f, slog.New(slog.DiscardHandler), obs,
			pipelineOptions{blocking: []string{"user-script"}, chainChildren: true, graph: graphChildren(graph), entries: live.Entry})
		if err != nil {
			t.Fatal(err)
		}
		return env
	}

	midBuilds := make(chan struct{})
	var once sync.Once
	env := open(func(r *store.Run) {
		if r.Project == "acme/mid:latest" && r.State == store.Running {
			once.Do(func() { close(midBuilds) })
		}
	})
	first, stop := context.WithCancel(ctx)
	if err := env.runner.Start(first); err != nil {
		t.Fatal(err)
	}
	root, err := env.runner.Enqueue(ctx, pipeline.Request{Project: "acme/base:latest", Cause: store.Cause{Kind: types.CauseManual}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-midBuilds:
	case <-ctx.Done():
		t.Fatal("the middle never started")
	}
	stop() // cccp stops in the middle of the cascade
	<-env.runner.Stopped()
	env.Close(ctx)

	env = open(nil)
	defer env.Close(context.WithoutCancel(ctx))
	if err := env.runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := waitCascade(ctx, env.db, root.ID)
	if err != nil || c == nil {
		t.Fatalf("cascade of run %s: %v, %v", root.ID, c, err)
	}
	for _, n := range c.Nodes {
		if n.State != store.CascadeDelivered {
			t.Errorf("node %s: %s", n.Project, n.State)
		}
	}
	runs, err := env.db.Runs(ctx, store.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range runs {
		count[r.Project]++
		if r.State != store.Passed {
			t.Errorf("run %s of %s: %s %s", r.ID, r.Project, r.State, r.Error)
		}
	}
	for _, job := range []string{"base", "mid", "leaf1", "leaf2"} {
		if count["acme/"+job+":latest"] != 1 {
			t.Errorf("acme/%s ran %d times, want once", job, count["acme/"+job+":latest"])
		}
	}
	ml := layers(t, reg+"/acme/mid:latest")
	for _, leaf := range []string{"leaf1", "leaf2"} {
		if ll := layers(t, reg+"/acme/"+leaf+":latest"); len(ll) != len(ml)+1 || !equalHashes(ll[:len(ml)], ml) {
			t.Errorf("acme/%s layers %v do not extend acme/mid's %v", leaf, ll, ml)
		}
	}
}
