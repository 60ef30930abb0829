package cascade

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// graph is children by key.
type graph map[string][]string

func (g graph) children(k string) []string { return g[k] }

// chain: base -> mid -> leaf1; mid -> leaf2; other -> leaf2 (a diamond
// when other is also below base).
var diamond = graph{
	"base":  {"mid", "side"},
	"mid":   {"leaf1", "leaf2"},
	"side":  {"leaf2"},
	"other": {"leaf2"},
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name string
		g    graph
		root string
		want []Node
	}{
		{"no children", graph{}, "base", []Node{}},
		{"chain", graph{"a": {"b"}, "b": {"c"}}, "a", []Node{{"b", []string{"a"}}, {"c", []string{"b"}}}},
		{"diamond waits on both parents, once", diamond, "base", []Node{
			{"mid", []string{"base"}}, {"side", []string{"base"}},
			{"leaf1", []string{"mid"}}, {"leaf2", []string{"mid", "side"}},
		}},
		{"a parent outside the cascade is not waited on", diamond, "mid", []Node{
			{"leaf1", []string{"mid"}}, {"leaf2", []string{"mid"}},
		}},
		{"a grandchild found before its other parent comes after it", graph{
			"a": {"c", "b"}, "b": {"d"}, "c": {"d"}, "d": {}, // d is found below c, but waits on b too
		}, "a", []Node{{"c", []string{"a"}}, {"b", []string{"a"}}, {"d", []string{"c", "b"}}}},
		{"a deeper edge orders its target after the path", graph{
			"a": {"b", "d"}, "b": {"c"}, "c": {"d"},
		}, "a", []Node{{"b", []string{"a"}}, {"c", []string{"b"}}, {"d", []string{"a", "c"}}}},
		{"a cycle below the root is left out", graph{"a": {"b"}, "b": {"c"}, "c": {"b"}}, "a", []Node{}},
		{"a cycle through the root stops at the root", graph{"a": {"b"}, "b": {"a"}}, "a", []Node{{"b", []string{"a"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.root, tt.g.children)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Plan(%s) = %v, want %v", tt.root, got, tt.want)
			}
		})
	}
}

func TestAdvance(t *testing.T) {
	nodes := Plan("base", diamond.children)
	tests := []struct {
		name  string
		state map[string]State
		blame map[string]string
		want  []Decision
	}{
		{"the root delivered: its children are queued, no grandchild", map[string]State{"base": Delivered},
			nil, []Decision{{"mid", Queued, ""}, {"side", Queued, ""}}},
		{"queued nodes are not decided again", map[string]State{"base": Delivered, "mid": Queued, "side": Queued},
			nil, nil},
		{"the diamond waits on its second parent", map[string]State{"base": Delivered, "mid": Delivered, "side": Queued},
			nil, []Decision{{"leaf1", Queued, ""}}},
		{"the diamond is queued once both delivered", map[string]State{"base": Delivered, "mid": Delivered, "side": Delivered, "leaf1": Queued},
			nil, []Decision{{"leaf2", Queued, ""}}},
		{"one changed parent is enough", map[string]State{"base": Delivered, "mid": Unchanged, "side": Delivered},
			nil, []Decision{{"leaf1", Unchanged, ""}, {"leaf2", Queued, ""}}},
		{"a failed middle stops its subtree, naming it", map[string]State{"base": Delivered, "mid": Failed, "side": Queued},
			nil, []Decision{{"leaf1", Stopped, "mid"}, {"leaf2", Stopped, "mid"}}},
		{"a cancelled middle stops its subtree too", map[string]State{"base": Delivered, "mid": Cancelled, "side": Delivered},
			nil, []Decision{{"leaf1", Stopped, "mid"}, {"leaf2", Stopped, "mid"}}},
		{"a stop passes the failed node's name down", map[string]State{"base": Delivered, "mid": Stopped, "side": Delivered},
			map[string]string{"mid": "x"}, []Decision{{"leaf1", Stopped, "x"}, {"leaf2", Stopped, "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blame := tt.blame
			if blame == nil {
				blame = map[string]string{}
			}
			got := Advance(nodes, tt.state, blame)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Advance = %v, want %v", got, tt.want)
			}
			for _, d := range got {
				if tt.state[d.Key] != d.State {
					t.Errorf("state[%s] = %s, want %s", d.Key, tt.state[d.Key], d.State)
				}
			}
		})
	}
}

func TestWaves(t *testing.T) {
	got := Waves("base", Plan("base", diamond.children))
	want := [][]string{{"mid", "side"}, {"leaf1", "leaf2"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Waves = %v, want %v", got, want)
	}
}

// TestWholeCascade runs a cascade to its end the way the pipeline does:
// Advance queues the ready nodes, and the queued runs finish one at a
// time, each finish followed by Advance. Every node is queued exactly once,
// and no node starts before every parent it waits on has finished: a
// flat order of queueing would not tell a child released by its first
// parent from one released by its last.
func TestWholeCascade(t *testing.T) {
	g := tree(4, 3)
	// An edge that skips a level: the grandchild waits on a parent of the
	// first wave and one of the second.
	g["n"] = append(g["n"], "n.2.1.0")
	nodes := Plan("n", g.children)
	orders := []struct {
		name string
		pick func(running []string, rnd *rand.Rand) int
	}{
		{"first queued finishes first", func([]string, *rand.Rand) int { return 0 }},
		{"last queued finishes first", func(running []string, _ *rand.Rand) int { return len(running) - 1 }},
		{"shuffled", func(running []string, rnd *rand.Rand) int { return rnd.IntN(len(running)) }},
	}
	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(1, 2))
			state := map[string]State{"n": Delivered}
			blame := map[string]string{}
			clock := 0
			started, finished := map[string]int{}, map[string]int{"n": clock}
			var running []string
			for {
				clock++
				for _, d := range Advance(nodes, state, blame) {
					if d.State != Queued {
						t.Fatalf("%s decided %s, want queued: every parent delivers", d.Key, d.State)
					}
					if _, dup := started[d.Key]; dup {
						t.Fatalf("%s queued twice", d.Key)
					}
					started[d.Key] = clock
					running = append(running, d.Key)
				}
				if len(running) == 0 {
					break
				}
				clock++
				i := o.pick(running, rnd)
				k := running[i]
				running = slices.Delete(running, i, i+1)
				state[k], finished[k] = Delivered, clock
			}
			if len(started) != len(nodes) {
				t.Fatalf("queued %d nodes, want %d", len(started), len(nodes))
			}
			for _, n := range nodes {
				for _, p := range n.WaitsOn {
					if f, ok := finished[p]; !ok || started[n.Key] <= f {
						t.Errorf("%s started at %d, before its parent %s finished (at %d)", n.Key, started[n.Key], p, f)
					}
				}
			}
		})
	}
}

// tree is a tree of the given depth and fan-out below "n", with an extra
// edge from each node's first child to its second child's first child, so
// nodes have two parents.
func tree(depth, fan int) graph {
	g := graph{}
	var grow func(k string, d int)
	grow = func(k string, d int) {
		if d == depth {
			return
		}
		for i := range fan {
			c := fmt.Sprintf("%s.%d", k, i)
			g[k] = append(g[k], c)
			grow(c, d+1)
		}
		if d+2 <= depth {
			g[k+".0"] = append(g[k+".0"], k+".1.0")
		}
	}
	grow("n", 0)
	return g
}
