package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// A project page shows its scans with what changed; the dashboard and the
// API show a rescan's progress, the one under way from its live progress.
func TestRescansOnPagesAndAPI(t *testing.T) {
	var live *store.Rescan
	f := newFixture(t, func(c *Config) { c.RescanProgress = func() *store.Rescan { return live } })
	f.srv.cfg.Rescans = f.db
	ctx := context.Background()
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, sc := range []*store.Scan{
		{Project: "acme/base:latest", RunID: "7", Digest: digest, State: store.Passed},
		{Project: "acme/base:latest", RunID: "9", Digest: digest, State: store.Passed,
			Findings: []store.Finding{{Check: types.CheckPackageUpdates, Text: "musl-1.2.4-r2 < 1.2.4-r3 " + secret}},
			New:      []store.Finding{{Check: types.CheckPackageUpdates, Text: "musl-1.2.4-r2 < 1.2.4-r3 " + secret}}},
	} {
		if err := f.db.PutScan(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	r := &store.Rescan{Trigger: "schedule", Entries: []store.RescanEntry{
		{Project: "acme/base:latest", State: store.Passed, RunID: "9", Changed: true},
		{Project: "acme/web:latest", State: store.Skipped, Note: "nothing delivered yet"},
		{Project: "acme/api:latest", State: store.Running, RunID: "10"},
	}}
	if err := f.db.CreateRescan(ctx, r); err != nil {
		t.Fatal(err)
	}

	page := f.get("/projects/acme/base").Body.String()
	hasAll(t, "project page", page, []string{"<h2>Rescans</h2>", `<a href="/runs/9">#9</a>`, "new: <code>package-updates: musl-1.2.4-r2 &lt; 1.2.4-r3", "no change"}, nil)
	if strings.Contains(page, secret) {
		t.Errorf("project page shows the secret")
	}
	if dash := f.get("/").Body.String(); !strings.Contains(dash, "Rescan #1 (schedule), started ") || !strings.Contains(dash, ": 2 of 3 done, 1 with changed findings, 1 skipped.") {
		t.Errorf("dashboard lacks the rescan's progress:\n%s", dash)
	}

	// The rescan under way, ahead of the store.
	live = &store.Rescan{ID: r.ID, Trigger: r.Trigger, Started: r.Started, Entries: append([]store.RescanEntry(nil), r.Entries...)}
	live.Entries[2].State = store.Passed
	rec := f.get("/api/v1/rescans/" + r.ID)
	var got rescanView
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
		t.Fatalf("GET rescan: %d %s", rec.Code, rec.Body)
	}
	if got.Done != 3 || got.Total != 3 || len(got.Entries) != 3 || got.Entries[1].Note != "nothing delivered yet" {
		t.Errorf("rescan: %+v", got)
	}
	if rec := f.get("/api/v1/rescans/99"); rec.Code != http.StatusNotFound {
		t.Errorf("unknown rescan: %d", rec.Code)
	}
	rec = f.get("/api/v1/projects/acme/base/scans")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"RunID": "9"`) || strings.Contains(rec.Body.String(), secret) {
		t.Errorf("scans API: %d %s", rec.Code, rec.Body)
	}
}

// goneActions refuses to re-run what left the index, as cmd's runActions
// does.
type goneActions struct{ *recordingActions }

func (a goneActions) Rerun(context.Context, *store.Run, string) (*store.Run, error) {
	return nil, fmt.Errorf("acme/gone:latest: %w", ErrNotInIndex)
}

// A project removed from the index keeps its page, which says since when,
// and a re-run of its runs is refused with a clear answer.
func TestRemovedProjectPageAndRerun(t *testing.T) {
	removed := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	f := newFixture(t, func(c *Config) {
		c.RemovedOn = func(_ context.Context, p string) (time.Time, bool) { return removed, p == "acme/gone:latest" }
		c.Actions = goneActions{&recordingActions{}}
	})
	run := f.addRun("acme/gone:latest", types.KindBranch, store.Cause{Kind: types.CausePush},
		map[types.StageName]store.State{types.StageBuild: store.Passed, types.StageTest: store.Passed, types.StageDeliver: store.Passed}, "")
	page := f.get("/projects/acme/gone")
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "was removed from the index on 2026-11-30") ||
		!strings.Contains(page.Body.String(), `href="/runs/`+run.ID+`"`) {
		t.Errorf("removed project's page: %d\n%s", page.Code, page.Body)
	}
	req := httptest.NewRequest("POST", "/api/v1/runs/"+run.ID+"/rerun", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	rec := f.do(req)
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "acme/gone:latest is no longer in the index") {
		t.Errorf("re-run of a removed project: %d %s", rec.Code, rec.Body)
	}
}

func TestStartRescanByAPI(t *testing.T) {
	var started []string
	busy := false
	f := newFixture(t, func(c *Config) {
		c.StartRescan = func(actor string) (*store.Rescan, error) {
			if busy {
				return nil, fmt.Errorf("rescan 1: %w", ErrRescanBusy)
			}
			busy = true
			started = append(started, actor)
			return &store.Rescan{ID: "1", Trigger: "manual by " + actor, Entries: []store.RescanEntry{{Project: "acme/base:latest", State: store.Queued}}}, nil
		}
	})
	post := func(token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/api/v1/rescans", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return f.do(req)
	}
	if rec := post(""); rec.Code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", rec.Code)
	}
	rec := post(adminToken)
	if rec.Code != http.StatusAccepted || rec.Header().Get("Location") != "https://cccp.example.org/api/v1/rescans/1" || !strings.Contains(rec.Body.String(), `"total": 1`) {
		t.Errorf("start: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if rec := post(adminToken); rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "already under way") {
		t.Errorf("second start: %d %s", rec.Code, rec.Body)
	}
	if len(started) != 1 {
		t.Errorf("started %q", started)
	}
}
