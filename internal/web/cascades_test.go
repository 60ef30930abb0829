package web

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -run %s -update rewrites it):\n%s", path, t.Name(), got)
	}
}

// The dashboard's queue: queued runs, and a cascade in the middle, where
// mid runs, side delivered, leaf1 waits on mid, leaf2 waits on mid (not on
// side, which delivered), and a stopped node says which parent failed.
func TestDashboardQueueGolden(t *testing.T) {
	c := &store.Cascade{ID: "3", Root: "acme/base:latest", RootRun: "40",
		Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Nodes: []store.CascadeNode{
			{Project: "acme/mid:latest", WaitsOn: []string{"acme/base:latest"}, State: store.CascadeQueued, Run: "41"},
			{Project: "acme/side:latest", WaitsOn: []string{"acme/base:latest"}, State: store.CascadeDelivered, Run: "42"},
			{Project: "acme/odd:latest", WaitsOn: []string{"acme/base:latest"}, State: store.CascadeFailed, Run: "43"},
			{Project: "acme/leaf1:latest", WaitsOn: []string{"acme/mid:latest"}, State: store.CascadeWaiting},
			{Project: "acme/leaf2:latest", WaitsOn: []string{"acme/mid:latest", "acme/side:latest"}, State: store.CascadeWaiting},
			{Project: "acme/below-odd:latest", WaitsOn: []string{"acme/odd:latest"}, State: store.CascadeStopped, Run: "44",
				Note: "waiting on acme/odd:latest, which failed", Blame: "acme/odd:latest"},
		}}
	v := queueView{
		Runs: []runRow{
			{ID: "41", Project: "acme/mid:latest", State: "running", Cause: "parent acme/base:latest rebuilt", When: "1m ago"},
			{ID: "45", Project: "acme/api:latest", State: "queued", Cause: "push to main at 0123abc", When: "10s ago"},
		},
		Cascades: []cascadeView{cascadeOf(c)},
	}
	tmpls, err := parseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tmpls["dashboard"].ExecuteTemplate(&buf, "queue", v); err != nil {
		t.Fatal(err)
	}
	golden(t, "dashboard-queue.html", buf.Bytes())
	if err := tmpls["dashboard"].ExecuteTemplate(&buf, "queue", queueView{}); err != nil {
		t.Fatal(err)
	}
}

// The served dashboard reads the open cascades from the store: a stopped
// leaf's skipped run says why on its project page, and the queue shows
// what still waits.
func TestDashboardShowsOpenCascadeFromTheStore(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	base := &store.Run{Project: "acme/base:latest", Kind: types.KindBranch, State: store.Running, Stages: []store.Stage{
		{Name: types.StageBuild, State: store.Passed, Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{Name: types.StageDeliver, State: store.Passed}}}
	if err := f.db.CreateRun(ctx, base); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.db.FinishRun(ctx, base.ID, func(r *store.Run) error { r.State = store.Passed; return nil },
		func(r *store.Run, prev string, part *store.CascadePart) *store.Cascade {
			return &store.Cascade{Digest: r.DeliveredDigest(), Nodes: []store.CascadeNode{
				{Project: "acme/web:latest", WaitsOn: []string{"acme/base:latest"}, State: store.CascadeFailed},
				{Project: "acme/api:latest", WaitsOn: []string{"acme/base:latest"}, State: store.CascadeQueued},
				{Project: "acme/leaf:latest", WaitsOn: []string{"acme/api:latest"}, State: store.CascadeWaiting},
				{Project: "acme/below:latest", WaitsOn: []string{"acme/web:latest"}, State: store.CascadeStopped,
					Note: "waiting on acme/web:latest, which failed"},
			}}
		})
	if err != nil {
		t.Fatal(err)
	}
	f.cfg.Cascades = f.db
	if f.srv, err = New(f.cfg); err != nil {
		t.Fatal(err)
	}
	f.h = f.srv.Handler()
	body := f.get("/").Body.String()
	hasAll(t, "dashboard", body, []string{`id="cascade-1"`, "waits on acme/api:latest", "waiting on acme/web:latest, which failed"}, nil)
	// The stopped node's skipped run says why in the run list.
	runs, err := f.db.Runs(ctx, store.RunFilter{Project: "acme/below:latest"})
	if err != nil || len(runs) != 1 || runs[0].State != store.Skipped {
		t.Fatalf("runs of the stopped node: %v, %v", runs, err)
	}
	if page := f.get("/runs/" + runs[0].ID).Body.String(); !strings.Contains(page, "waiting on acme/web:latest, which failed") {
		t.Errorf("the skipped run's page does not say why:\n%s", page)
	}
}
