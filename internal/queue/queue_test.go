package queue

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/types"
)

func TestClassOf(t *testing.T) {
	for _, tc := range []struct {
		kind  types.RunKind
		cause types.CauseKind
		want  Class
	}{
		{types.KindPR, types.CausePullRequest, ClassPerson},
		{types.KindPR, types.CauseRetest, ClassPerson},
		{types.KindPR, types.CauseParent, ClassPerson}, // a PR run is a person's, whatever started it
		{types.KindTrial, types.CauseIndex, ClassPerson},
		{types.KindBranch, types.CauseRetest, ClassPerson},
		{types.KindBranch, types.CauseManual, ClassPerson},
		{types.KindBranch, types.CausePush, ClassPush},
		{types.KindBranch, types.CauseIndex, ClassPush},
		{types.KindBranch, "", ClassPush},
		{types.KindBranch, "something-new", ClassPush},
		{types.KindBranch, types.CauseParent, ClassParent},
		{types.KindBranch, types.CauseBaseImage, ClassParent},
		{types.KindBranch, types.CauseRescan, ClassBackground},
		{types.KindBranch, types.CausePoll, ClassBackground},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.kind, tc.cause), func(t *testing.T) {
			if got := ClassOf(tc.kind, tc.cause); got != tc.want {
				t.Errorf("ClassOf(%s, %s) = %s, want %s", tc.kind, tc.cause, got, tc.want)
			}
		})
	}
}

func TestClassOrder(t *testing.T) {
	// The order the issue asks for: a person waiting, a push, a parent's
	// rebuild, a rescan or poll.
	got := []Class{
		ClassOf(types.KindBranch, types.CauseRescan),
		ClassOf(types.KindBranch, types.CauseParent),
		ClassOf(types.KindBranch, types.CausePush),
		ClassOf(types.KindPR, types.CausePullRequest),
	}
	want := []Class{ClassBackground, ClassParent, ClassPush, ClassPerson}
	if !slices.Equal(got, want) {
		t.Errorf("classes %v, want %v", got, want)
	}
	// Pick takes the lowest class first.
	if !slices.IsSorted([]Class{ClassPerson, ClassPush, ClassParent, ClassBackground}) {
		t.Errorf("classes out of order: person %d, push %d, parent %d, background %d", ClassPerson, ClassPush, ClassParent, ClassBackground)
	}
}

func TestProjectOf(t *testing.T) {
	for in, want := range map[string]string{"org/app:latest": "org", "org": "org", "": ""} {
		if got := ProjectOf(in); got != want {
			t.Errorf("ProjectOf(%q) = %q, want %q", in, got, want)
		}
	}
}

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func TestPick(t *testing.T) {
	for _, tc := range []struct {
		name  string
		items []Item
		st    State
		want  string // ID
	}{
		{name: "empty", want: ""},
		{
			name:  "oldest of one project",
			items: []Item{{ID: "3", Seq: 3, Project: "a"}, {ID: "1", Seq: 1, Project: "a"}, {ID: "2", Seq: 2, Project: "a"}},
			want:  "1",
		},
		{
			name:  "pull request before an older push",
			items: []Item{{ID: "1", Seq: 1, Project: "a", Class: ClassPush}, {ID: "2", Seq: 2, Project: "a", Class: ClassPerson}},
			want:  "2",
		},
		{
			name:  "push before an older parent rebuild",
			items: []Item{{ID: "1", Seq: 1, Project: "a", Class: ClassParent}, {ID: "2", Seq: 2, Project: "b", Class: ClassPush}},
			want:  "2",
		},
		{
			name:  "parent rebuild before an older rescan",
			items: []Item{{ID: "1", Seq: 1, Project: "a", Class: ClassBackground}, {ID: "2", Seq: 2, Project: "a", Class: ClassParent}},
			want:  "2",
		},
		{
			name: "a rescan that waited three age steps goes before a new push",
			items: []Item{{ID: "1", Seq: 1, Project: "b", Class: ClassBackground, Queued: t0.Add(-3 * time.Hour)},
				{ID: "2", Seq: 2, Project: "a", Class: ClassPush, Queued: t0}},
			st:   State{Now: t0, AgeStep: time.Hour},
			want: "1",
		},
		{
			name: "a rescan that waited one age step still waits for a push",
			items: []Item{{ID: "1", Seq: 1, Project: "b", Class: ClassBackground, Queued: t0.Add(-90 * time.Minute)},
				{ID: "2", Seq: 2, Project: "a", Class: ClassPush, Queued: t0}},
			st:   State{Now: t0, AgeStep: time.Hour},
			want: "2",
		},
		{
			name: "without an age step nothing ages",
			items: []Item{{ID: "1", Seq: 1, Project: "b", Class: ClassBackground, Queued: t0.Add(-300 * time.Hour)},
				{ID: "2", Seq: 2, Project: "a", Class: ClassPush, Queued: t0}},
			st:   State{Now: t0},
			want: "2",
		},
		{
			name: "resumed run before everything",
			items: []Item{{ID: "1", Seq: 1, Project: "a", Class: ClassPerson},
				{ID: "9", Seq: 9, Project: "b", Class: ClassBackground, Resumed: true}},
			want: "9",
		},
		{
			name:  "project with fewer running runs first",
			items: []Item{{ID: "1", Seq: 1, Project: "a"}, {ID: "2", Seq: 2, Project: "b"}},
			st:    State{Running: map[string]int{"a": 1}},
			want:  "2",
		},
		{
			name:  "next project after the one served last",
			items: []Item{{ID: "1", Seq: 1, Project: "a"}, {ID: "2", Seq: 2, Project: "b"}, {ID: "3", Seq: 3, Project: "c"}},
			st:    State{Last: "a"},
			want:  "2",
		},
		{
			name:  "round robin wraps around",
			items: []Item{{ID: "1", Seq: 1, Project: "a"}, {ID: "2", Seq: 2, Project: "b"}, {ID: "3", Seq: 3, Project: "c"}},
			st:    State{Last: "c"},
			want:  "1",
		},
		{
			name:  "the project served last waits when another waits",
			items: []Item{{ID: "1", Seq: 1, Project: "b"}, {ID: "2", Seq: 2, Project: "a"}},
			st:    State{Last: "b"},
			want:  "2",
		},
		{
			name:  "class beats fairness",
			items: []Item{{ID: "1", Seq: 1, Project: "b", Class: ClassPush}, {ID: "2", Seq: 2, Project: "a", Class: ClassPerson}},
			st:    State{Last: "a", Running: map[string]int{"a": 3}},
			want:  "2",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := Pick(tc.items, tc.st)
			got := ""
			if i >= 0 {
				got = tc.items[i].ID
			}
			if got != tc.want {
				t.Errorf("Pick = %q, want %q", got, tc.want)
			}
		})
	}
}

// drain picks until items is empty, as the pipeline does with one worker,
// and returns the projects in the order served.
func drain(items []Item) []string {
	var order []string
	st := State{}
	for len(items) > 0 {
		i := Pick(items, st)
		order = append(order, items[i].Project)
		st.Last = items[i].Project
		items = slices.Delete(items, i, i+1)
	}
	return order
}

func TestFairness(t *testing.T) {
	// Project "big" queued 100 runs before "x" and "y" queued one each.
	var items []Item
	for i := range 100 {
		items = append(items, Item{ID: fmt.Sprint(i), Seq: uint64(i), Project: "big"})
	}
	items = append(items, Item{ID: "x", Seq: 100, Project: "x"}, Item{ID: "y", Seq: 101, Project: "y"})
	order := drain(items)
	if pos := slices.Index(order, "x"); pos > 2 {
		t.Errorf("x served at position %d of %v; want within the first round", pos, order[:5])
	}
	if pos := slices.Index(order, "y"); pos > 2 {
		t.Errorf("y served at position %d of %v; want within the first round", pos, order[:5])
	}
}

func TestFairnessRounds(t *testing.T) {
	// Three projects with several runs each take turns.
	var items []Item
	seq := uint64(0)
	for _, p := range []string{"c", "a", "b"} {
		for range 3 {
			seq++
			items = append(items, Item{ID: fmt.Sprint(seq), Seq: seq, Project: p})
		}
	}
	got := drain(items)
	want := []string{"a", "b", "c", "a", "b", "c", "a", "b", "c"}
	if !slices.Equal(got, want) {
		t.Errorf("served %v, want %v", got, want)
	}
}

// BenchmarkPick10kAcross300Projects picks the next run among 10,000 queued
// runs of 300 projects in every class, with some running.
func BenchmarkPick10kAcross300Projects(b *testing.B) {
	items := make([]Item, 10000)
	running := map[string]int{}
	for i := range items {
		p := fmt.Sprintf("project-%03d", i%300)
		items[i] = Item{ID: fmt.Sprint(i), Seq: uint64(i), Project: p, Class: Class(i % 4)}
		if i%7 == 0 {
			running[p] = i % 3
		}
	}
	for i := range items {
		items[i].Queued = t0.Add(-time.Duration(i) * time.Second)
	}
	st := State{Running: running, Last: "project-150", Now: t0, AgeStep: time.Hour}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if Pick(items, st) < 0 {
			b.Fatal("nothing picked")
		}
	}
}
