package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/report"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

func noEntries() []*index.Entry { return nil }

// fakeForge is a recording double of a forge API (Client): the forges
// cannot run here. Calls are recorded as strings, Prow-style:
// "status org/app sha cccp/a/b success", "comment org/app#12 <marker>".
type fakeForge struct {
	mu       sync.Mutex
	calls    []string
	statuses map[string]event.Status // by repo sha name
	comments map[string]string       // by repo#n marker -> body
	bodies   []string                // every body sent (statuses and comments)
	writers  map[string]bool
	prs      map[int]*event.PullRequest
	limit    int
	fail     int   // fail the next fail calls of SetStatus/UpsertComment
	failErr  error // with this error
	// canWriteErrs fail the next CanWrite calls, one error each.
	canWriteErrs []error
	// canWriteErr, when set, is asked before every CanWrite call.
	canWriteErr func() error
}

func newFakeForge() *fakeForge {
	return &fakeForge{statuses: map[string]event.Status{}, comments: map[string]string{},
		writers: map[string]bool{}, prs: map[int]*event.PullRequest{}, limit: 65535}
}

func (f *fakeForge) failing() error {
	if f.fail > 0 {
		f.fail--
		if f.failErr != nil {
			return f.failErr
		}
		return fmt.Errorf("forge down")
	}
	return nil
}

func (f *fakeForge) SetStatus(ctx context.Context, repo string, st event.Status) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing(); err != nil {
		f.calls = append(f.calls, "status FAILED")
		return err
	}
	f.calls = append(f.calls, fmt.Sprintf("status %s %s %s %s", repo, st.SHA, st.Name, st.State))
	f.statuses[repo+" "+st.SHA+" "+st.Name] = st
	f.bodies = append(f.bodies, st.Title+"\n"+st.Summary+"\n"+st.Text)
	return nil
}

func (f *fakeForge) UpsertComment(ctx context.Context, repo string, number int, marker, body string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing(); err != nil {
		f.calls = append(f.calls, "comment FAILED")
		return 0, err
	}
	if len(body) > f.limit {
		return 0, fmt.Errorf("body of %d bytes over the limit %d", len(body), f.limit)
	}
	f.calls = append(f.calls, fmt.Sprintf("comment %s#%d %s", repo, number, marker))
	f.comments[fmt.Sprintf("%s#%d %s", repo, number, marker)] = body
	f.bodies = append(f.bodies, body)
	return 1, nil
}

func (f *fakeForge) CanWrite(ctx context.Context, repo, user string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.canWriteErr != nil {
		if err := f.canWriteErr(); err != nil {
			f.calls = append(f.calls, "can-write FAILED")
			return false, err
		}
	}
	if len(f.canWriteErrs) > 0 {
		err := f.canWriteErrs[0]
		f.canWriteErrs = f.canWriteErrs[1:]
		f.calls = append(f.calls, "can-write FAILED")
		return false, err
	}
	f.calls = append(f.calls, "can-write "+user)
	return f.writers[user], nil
}

func (f *fakeForge) PullRequest(ctx context.Context, repo string, number int) (*event.PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pr, ok := f.prs[number]
	if !ok {
		return nil, fmt.Errorf("pull request %s#%d not found", repo, number)
	}
	c := *pr
	return &c, nil
}

func (f *fakeForge) Limit() int { return f.limit }

func (f *fakeForge) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeForge) Comments() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for k, v := range f.comments {
		out[k] = v
	}
	return out
}

// fakePipeline creates runs in the real store, as pipeline.Runner does,
// without building anything, and tells the observer. Like the Runner it
// looks the request's project up by entry key (app-id/job-id:desired-tag)
// and refuses a project the index lacks, so a bare name fails here too,
// and returns the run a request's delivery already made
// (store.DB.DeliveryRun) instead of a new one.
type fakePipeline struct {
	db       *store.DB
	entries  func() []*index.Entry // the bot's Config.Entries
	observe  func(*store.Run)
	mu       sync.Mutex
	requests []pipeline.Request
	cancels  []string
}

func (p *fakePipeline) Enqueue(ctx context.Context, req pipeline.Request) (*store.Run, error) {
	e := req.Entry
	if e == nil && p.entries != nil {
		for _, c := range p.entries() {
			if c.Key() == req.Project {
				e = c
				break
			}
		}
	}
	if e == nil {
		return nil, fmt.Errorf("enqueue %s: %w", req.Project, pipeline.ErrUnknownProject)
	}
	if req.Cause.Forge != "" && req.Cause.DeliveryID != "" {
		r, err := p.db.DeliveryRun(ctx, req.Cause, e.Key(), cmp.Or(req.Kind, types.KindBranch))
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	r := &store.Run{Project: e.Key(), Kind: req.Kind, Cause: req.Cause,
		GitURL: cmp.Or(req.GitURL, e.GitURL), Branch: cmp.Or(req.Branch, e.GitBranch),
		Commit: req.Commit, State: store.Queued, Stages: []store.Stage{{Name: "build", State: store.Queued}, {Name: "test", State: store.Queued}}}
	if err := p.db.CreateRun(ctx, r); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.requests = append(p.requests, req) // the requests that made a run
	p.mu.Unlock()
	if p.observe != nil {
		p.observe(r)
	}
	return r, nil
}

func (p *fakePipeline) Cancel(ctx context.Context, id, reason string) error {
	p.mu.Lock()
	p.cancels = append(p.cancels, id)
	p.mu.Unlock()
	r, err := p.db.UpdateRun(ctx, id, func(r *store.Run) error {
		r.State, r.Error, r.Finished = store.Cancelled, reason, time.Now()
		return nil
	})
	if err == nil && p.observe != nil {
		p.observe(r)
	}
	return err
}

// finish moves a run to its final state as the pipeline would: build
// passes, test ends in state.
func (p *fakePipeline) finish(ctx context.Context, id string, state store.State) *store.Run {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	r, err := p.db.UpdateRun(ctx, id, func(r *store.Run) error {
		r.State, r.Started, r.Finished = state, t0, t0.Add(90*time.Second)
		r.Stages[0] = store.Stage{Name: "build", State: store.Passed, Started: t0, Finished: t0.Add(60 * time.Second)}
		r.Stages[1] = store.Stage{Name: "test", State: state, Started: t0.Add(60 * time.Second), Finished: t0.Add(90 * time.Second)}
		return nil
	})
	if err != nil {
		panic(err)
	}
	if p.observe != nil {
		p.observe(r)
	}
	return r
}

func (p *fakePipeline) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.requests {
		s := fmt.Sprintf("%s %s %s@%s", r.Kind, r.Project, r.Cause.Kind, report.Short(r.Cause.Commit))
		if r.GitURL != "" {
			s += " from " + r.GitURL
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// fakeIndexPR returns a fixed check result (internal/gitsrc and the index
// loader are another package's; the bot only consumes the result).
type fakeIndexPR struct{ res *IndexCheck }

func (f fakeIndexPR) Check(ctx context.Context, ev *event.Event) (*IndexCheck, error) {
	return f.res, nil
}
