package web

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
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
