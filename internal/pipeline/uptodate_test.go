package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/digestcache"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// movingResolver is a branch whose head can move.
type movingResolver struct {
	mu     sync.Mutex
	commit string
}

func (r *movingResolver) Resolve(context.Context, string, string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.commit, nil
}

func (r *movingResolver) set(c string) { r.mu.Lock(); r.commit = c; r.mu.Unlock() }

// fakeTrees answers object IDs from a map of path -> ID, the same at every
// commit unless changed.
type fakeTrees struct {
	mu  sync.Mutex
	ids map[string]string
}

func (f *fakeTrees) ObjectIDs(_ context.Context, _, _ string, paths ...string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range paths {
		id, ok := f.ids[p]
		if !ok {
			return nil, fmt.Errorf("no %q", p)
		}
		out = append(out, id)
	}
	return out, nil
}

func (f *fakeTrees) set(p, id string) { f.mu.Lock(); f.ids[p] = id; f.mu.Unlock() }

func buildCount(h *harness) int {
	n := 0
	for _, c := range h.rec.list() {
		if strings.HasPrefix(c, "build ") {
			n++
		}
	}
	return n
}

func TestUnchangedRetriggerBuildsNothing(t *testing.T) {
	h := newHarness(t)
	res := &movingResolver{commit: "c0ffee"}
	trees := &fakeTrees{ids: map[string]string{"": "tree1", "Dockerfile": "blob1"}}
	h.cfg.Resolver, h.cfg.Trees = res, trees
	h.images.digests["reg.test:5000/demo/base:latest"] = digestA
	r := h.start(t)
	const digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	push := store.Cause{Kind: types.CausePush}

	// Steps run in order against one runner and store: each changes one
	// input (or none) and triggers the child entry again.
	for _, step := range []struct {
		name      string
		change    func()
		req       Request
		wantBuild bool
	}{
		{"first run builds", func() {}, Request{Cause: push}, true},
		{"unchanged re-trigger", func() {}, Request{Cause: push}, false},
		{"again unchanged (the up-to-date run counts as delivered)", func() {}, Request{Cause: push}, false},
		{"forced", func() {}, Request{Cause: store.Cause{Kind: types.CauseManual}, Force: true}, true},
		{"retest forces", func() {}, Request{Cause: store.Cause{Kind: types.CauseRetest}}, true},
		{"manual run without force", func() {}, Request{Cause: store.Cause{Kind: types.CauseManual}}, false},
		{"new commit", func() { res.set("beef") }, Request{Cause: push}, true},
		{"context changed", func() { trees.set("", "tree2") }, Request{Cause: push}, true},
		{"dockerfile changed", func() { trees.set("Dockerfile", "blob2") }, Request{Cause: push}, true},
		{"parent delivered a new digest", func() { h.images.digests["reg.test:5000/demo/base:latest"] = digestB }, Request{Cause: push}, true},
		{"unchanged after all that", func() {}, Request{Cause: push}, false},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.change()
			before := buildCount(h)
			req := step.req
			req.Project = "demo/child:latest"
			run := runAndWait(t, r, req)
			built := buildCount(h) > before
			if built != step.wantBuild {
				t.Fatalf("built = %v, want %v (run %s %s, up to date %v)", built, step.wantBuild, run.ID, stageStates(run), run.UpToDate)
			}
			if run.State != store.Passed {
				t.Fatalf("run %s: %s %s", run.ID, run.State, run.Error)
			}
			if run.BuildKey == "" {
				t.Errorf("run %s has no build key", run.ID)
			}
			if run.UpToDate == step.wantBuild {
				t.Errorf("UpToDate = %v, want %v", run.UpToDate, !step.wantBuild)
			}
			if step.wantBuild {
				return
			}
			if got := stageStates(run); got != "build=skipped test=skipped deliver=skipped" {
				t.Errorf("stages %s", got)
			}
			for _, s := range run.Stages {
				if s.Reason != ReasonUpToDate || !strings.Contains(s.Error, UpToDateNote) {
					t.Errorf("stage %s: reason %q note %q", s.Name, s.Reason, s.Error)
				}
			}
			// The delivered image stays as it was: same digest, final tag.
			if len(run.Images) != 1 || run.Images[0].Ref != "reg.test:5000/demo/child:latest" || run.Images[0].Digest != digestA {
				t.Errorf("images %+v", run.Images)
			}
			if d := run.Stages[0].Digest; d != digestA {
				t.Errorf("build digest %q", d)
			}
		})
	}
}

func TestStageConfigChangesTheKey(t *testing.T) {
	h := newHarness(t)
	r := h.start(t)
	first := runAndWait(t, r, Request{Project: "demo/base:latest"})
	h2 := *h
	h2.cfg.Blocking = DefaultBlocking()
	h2.cfg.Blocking[types.CheckLint] = true
	ex := &execution{r: &Runner{cfg: h2.cfg}, run: first, entry: h.entries["demo/base:latest"]}
	ex0 := &execution{r: r, run: first, entry: h.entries["demo/base:latest"]}
	a, b := ex0.stageConfig(), ex.stageConfig()
	if a["blocking"] == b["blocking"] {
		t.Errorf("blocking %q in both configurations", a["blocking"])
	}
}

func TestRepoPath(t *testing.T) {
	for _, tc := range []struct{ gitPath, p, want string }{
		{"/", "./", ""},
		{"/", "Dockerfile", "Dockerfile"},
		{"/app/", "./", "app"},
		{"app", "docker/Dockerfile", "app/docker/Dockerfile"},
		{"/app", "../x", "x"},
		{"/", "../../etc", "etc"},
	} {
		if got := repoPath(tc.gitPath, tc.p); got != tc.want {
			t.Errorf("repoPath(%q, %q) = %q, want %q", tc.gitPath, tc.p, got, tc.want)
		}
	}
}

func TestFullRef(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"centos:7", "docker.io/library/centos:7"},
		{"alpine", "docker.io/library/alpine:latest"},
		{"org/img", "docker.io/org/img:latest"},
		{"quay.io/org/img:1", "quay.io/org/img:1"},
		{"127.0.0.1:5000/library/busybox", "127.0.0.1:5000/library/busybox:latest"},
		{"localhost/x:2", "localhost/x:2"},
	} {
		if got := fullRef(tc.in); got != tc.want {
			t.Errorf("fullRef(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The newest delivered image decides: when the newest passed run has no
// key (a base digest could not be learnt), an older run's equal key must
// not make the trigger up to date, since the tags point at the newer image.
func TestOnlyTheNewestDeliveredRunCounts(t *testing.T) {
	h := newHarness(t)
	h.images.digests["reg.test:5000/demo/base:latest"] = digestA
	r := h.start(t)
	req := Request{Project: "demo/child:latest", Cause: store.Cause{Kind: types.CausePush}}
	if run := runAndWait(t, r, req); run.BuildKey == "" || run.UpToDate {
		t.Fatalf("first run: key %q up to date %v", run.BuildKey, run.UpToDate)
	}
	// A forced run whose key could not be stored.
	forcedRun := runAndWait(t, r, Request{Project: req.Project, Force: true, Cause: store.Cause{Kind: types.CauseManual}})
	if _, err := h.db.UpdateRun(context.Background(), forcedRun.ID, func(r *store.Run) error { r.BuildKey = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	before := buildCount(h)
	if run := runAndWait(t, r, req); run.UpToDate || buildCount(h) == before {
		t.Errorf("run %s up to date %v, built %v: an older run's key decided", run.ID, run.UpToDate, buildCount(h) > before)
	}
}

// A FROM image outside the index is part of the key by the digest its tag
// points at: a moved tag that basewatch reports builds again at once, one
// nobody reported within the digest cache's TTL, and a registry that
// cannot be asked never makes a run look up to date past the TTL.
func TestExternalBaseDigestIsInTheKey(t *testing.T) {
	h := newHarness(t)
	e := entry("demo", "ext", "file:///git/external")
	h.entries[e.Key()] = e
	h.images.digests["quay.io/org/img:1"] = digestA
	clk := &testClock{now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	bases, err := digestcache.New(digestcache.Config{Head: h.images.Digest, TTL: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.cfg.BaseDigests = bases
	r := h.start(t)
	const digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	const digestC = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	move := func(d string) { h.images.mu.Lock(); h.images.digests["quay.io/org/img:1"] = d; h.images.mu.Unlock() }
	for _, step := range []struct {
		name      string
		change    func()
		wantBuild bool
	}{
		{"first run", func() {}, true},
		{"unchanged", func() {}, false},
		{"tag moved, basewatch saw it", func() { move(digestB); bases.Head(context.Background(), "quay.io/org/img:1") }, true},
		{"unchanged again", func() {}, false},
		{"tag moved unseen, within the TTL", func() { move(digestC) }, false},
		{"past the TTL", func() { clk.add(time.Minute) }, true},
		{"registry cannot be asked, past the TTL", func() {
			h.images.mu.Lock()
			delete(h.images.digests, "quay.io/org/img:1")
			h.images.mu.Unlock()
			clk.add(time.Minute)
		}, true},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.change()
			before := buildCount(h)
			run := runAndWait(t, r, Request{Project: e.Key(), Cause: store.Cause{Kind: types.CauseBaseImage}})
			if built := buildCount(h) > before; built != step.wantBuild {
				t.Errorf("built = %v, want %v (%s)", built, step.wantBuild, buildLog(t, h, run.ID))
			}
			// What the build started FROM is recorded with its digest
			// (basewatch's baseline).
			want := h.images.digests["quay.io/org/img:1"]
			if b := run.Stages[0].Bases; step.wantBuild && (len(b) != 1 || b[0].Digest != want) {
				t.Errorf("bases %+v, want quay.io/org/img:1 at %q", b, want)
			}
		})
	}
}
