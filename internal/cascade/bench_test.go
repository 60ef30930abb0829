package cascade

import (
	"strconv"
	"testing"
)

// BenchmarkPlanAndSettle1000Depth6 is the planning share of a parent
// change across 1,000 entries in a tree of depth 6: plan the cascade, then
// settle it wave by wave, every queued node delivering.
func BenchmarkPlanAndSettle1000Depth6(b *testing.B) {
	g := graph{}
	level, next := []int{0}, 1
	for d := 1; d <= 6 && next < 1000; d++ {
		var below []int
		for _, p := range level {
			for range 3 {
				if next >= 1000 {
					break
				}
				g["e"+strconv.Itoa(p)] = append(g["e"+strconv.Itoa(p)], "e"+strconv.Itoa(next))
				below = append(below, next)
				next++
			}
		}
		level = below
	}
	for b.Loop() {
		nodes := Plan("e0", g.children)
		state := map[string]State{"e0": Delivered}
		blame := map[string]string{}
		queued := 0
		for {
			ds := Advance(nodes, state, blame)
			if len(ds) == 0 {
				break
			}
			for _, d := range ds {
				queued++
				state[d.Key] = Delivered
			}
		}
		if queued != 999 {
			b.Fatalf("queued %d", queued)
		}
	}
}
