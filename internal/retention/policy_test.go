package retention

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// run makes run id of project "a" created age ago.
func run(id int, kind types.RunKind, state store.State, age time.Duration) *store.Run {
	r := &store.Run{ID: strconv.Itoa(id), Project: "a", Kind: kind, State: state, Created: now.Add(-age)}
	ref := "reg/a:test"
	if kind != types.KindBranch {
		ref = "reg/a:run-" + r.ID
	}
	r.Images = []store.Image{{Ref: ref, Digest: "sha256:d" + r.ID}}
	return r
}

func TestSelect(t *testing.T) {
	day := 24 * time.Hour
	const (
		br = types.KindBranch
		pr = types.KindPR
		tr = types.KindTrial
	)
	tests := []struct {
		name   string
		policy Policy
		runs   []*store.Run
		live   []string
		want   []string // run IDs pruned, oldest first
	}{
		{
			name:   "disabled policy keeps everything",
			policy: Policy{},
			runs:   []*store.Run{run(1, pr, store.Failed, 90*day), run(2, pr, store.Failed, 80*day)},
		},
		{
			name:   "keep last 2 per project",
			policy: Policy{KeepLast: 2},
			runs: []*store.Run{run(1, br, store.Passed, 9*day), run(2, pr, store.Failed, 8*day),
				run(3, pr, store.Passed, 7*day), run(4, br, store.Failed, 6*day), run(5, pr, store.Failed, 5*day),
				run(6, br, store.Failed, 4*day)},
			// 6, 5 newest; 4 not (branch 6 is newer); 3 is older pr; 1 is
			// the newest delivered (passed branch) run.
			want: []string{"2", "3", "4"},
		},
		{
			name:   "keep last N or younger than D",
			policy: Policy{KeepLast: 1, KeepFor: 7 * day},
			runs: []*store.Run{run(1, pr, store.Failed, 30*day), run(2, pr, store.Failed, 10*day),
				run(3, pr, store.Failed, 6*day), run(4, pr, store.Failed, 1*day)},
			want: []string{"1", "2"},
		},
		{
			name:   "unfinished runs stay",
			policy: Policy{KeepLast: 1},
			runs: []*store.Run{run(1, pr, store.Running, 30*day), run(2, pr, store.Queued, 20*day),
				run(3, pr, store.Failed, 10*day), run(4, pr, store.Failed, 1*day)},
			want: []string{"3"},
		},
		{
			name:   "a run a delivered tag points at stays",
			policy: Policy{KeepLast: 1},
			runs: []*store.Run{run(1, br, store.Passed, 30*day), run(2, br, store.Passed, 20*day),
				run(3, br, store.Passed, 10*day)},
			live: []string{"sha256:d1"},
			want: []string{"2"},
		},
		{
			name:   "only the chosen kinds, which alone count",
			policy: Policy{KeepLast: 1, Kinds: []types.RunKind{pr, tr}},
			runs: []*store.Run{run(1, br, store.Failed, 30*day), run(2, pr, store.Failed, 20*day),
				run(3, tr, store.Failed, 15*day), run(4, pr, store.Failed, 10*day), run(5, br, store.Failed, 1*day)},
			// 4 is the newest counted run; 3 is the newest trial.
			want: []string{"2"},
		},
		{
			name:   "newest run of each kind stays",
			policy: Policy{KeepLast: 1},
			runs: []*store.Run{run(1, tr, store.Failed, 30*day), run(2, pr, store.Failed, 20*day),
				run(3, pr, store.Failed, 10*day), run(4, br, store.Failed, 1*day)},
			want: []string{"2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := map[string]bool{}
			for _, d := range tt.live {
				live[d] = true
			}
			var got []string
			for _, p := range tt.policy.Select(tt.runs, now, live) {
				got = append(got, p.Run.ID)
				wantTags := []string(nil)
				if p.Run.Kind != types.KindBranch {
					wantTags = []string{"reg/a:run-" + p.Run.ID}
				}
				if !slices.Equal(p.Tags, wantTags) {
					t.Errorf("run %s tags %v, want %v", p.Run.ID, p.Tags, wantTags)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("pruned %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSplitRef(t *testing.T) {
	tests := []struct{ ref, repo, tag string }{
		{"127.0.0.1:5000/ns/app:run-3", "127.0.0.1:5000/ns/app", "run-3"},
		{"reg/app:latest", "reg/app", "latest"},
		{"127.0.0.1:5000/ns/app", "", ""},
		{"reg/app@sha256:abc", "", ""},
	}
	for _, tt := range tests {
		repo, tag, ok := SplitRef(tt.ref)
		if repo != tt.repo || tag != tt.tag || ok != (tt.tag != "") {
			t.Errorf("SplitRef(%q) = %q, %q, %v", tt.ref, repo, tag, ok)
		}
	}
}
