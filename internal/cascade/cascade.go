// Package cascade plans the rebuilds that follow a parent's new image: which
// descendants of the rebuilt entry build again, what each waits on, and
// which are ready, stopped or up to date as results come in. It is pure:
// it takes a graph and states and returns decisions; the pipeline stores
// them and queues the runs.
//
// The rules: a descendant waits on every one of its parents that is part
// of the cascade (the root or another descendant). It is queued once all of
// them have settled and at least one delivered a new image; when all of
// them ended up unchanged it is unchanged too and nothing is built. A
// parent that failed or was cancelled (or was stopped) stops the node, and the node's note
// names the parent that failed first. A diamond therefore builds once,
// after both of its parents.
package cascade

import "slices"

// State is where one node of a cascade is.
type State string

// The states of a node. Waiting and Queued are open; the others are final.
const (
	Waiting   State = "waiting"   // some parent in the cascade has not settled
	Queued    State = "queued"    // its run is queued or running
	Delivered State = "delivered" // its run delivered a new image
	Unchanged State = "unchanged" // its run, or every parent, left the image as it was
	Failed    State = "failed"    // its run failed
	Cancelled State = "cancelled" // its run was cancelled (superseded, or by a person)
	Stopped   State = "stopped"   // a parent failed; never queued
)

// Done reports whether s is final.
func (s State) Done() bool { return s != Waiting && s != Queued && s != "" }

// Node is one descendant to rebuild and the nodes of the cascade it waits
// on (the root's key among them when it is a direct child).
type Node struct {
	Key     string
	WaitsOn []string
}

// Plan returns the descendants of root in an order where every node comes
// after the nodes it waits on. children gives the direct children of a key.
// A node on a cycle (which the index's lint refuses) never becomes ready
// and is left out.
func Plan(root string, children func(key string) []string) []Node {
	// Collect the descendants and, for each, its parents inside the
	// cascade, in the order found.
	waits := map[string][]string{}
	seen := map[string]bool{root: true}
	order := []string{}
	queue := []string{root}
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		for _, c := range children(k) {
			if c == root {
				continue // a cycle through the root
			}
			if !slices.Contains(waits[c], k) {
				waits[c] = append(waits[c], k)
			}
			if !seen[c] {
				seen[c] = true
				order = append(order, c)
				queue = append(queue, c)
			}
		}
	}
	// Kahn's algorithm over the cascade, keeping the order of discovery
	// among nodes that are ready together.
	indeg := make(map[string]int, len(order))
	kids := map[string][]string{}
	for _, c := range order {
		for _, p := range waits[c] {
			if p != root {
				indeg[c]++
				kids[p] = append(kids[p], c)
			}
		}
	}
	var ready []string
	for _, c := range order {
		if indeg[c] == 0 {
			ready = append(ready, c)
		}
	}
	out := make([]Node, 0, len(order))
	for len(ready) > 0 {
		k := ready[0]
		ready = ready[1:]
		out = append(out, Node{Key: k, WaitsOn: waits[k]})
		for _, c := range kids[k] {
			if indeg[c]--; indeg[c] == 0 {
				ready = append(ready, c)
			}
		}
	}
	return out
}

// Decision is what Advance decided for one node.
type Decision struct {
	Key   string
	State State // Queued, Unchanged or Stopped
	// Blame is, for a stopped node, the key of the node that failed.
	Blame string
}

// Advance settles what follows from the states so far: every waiting node
// whose parents have all settled is queued (some parent delivered), or
// unchanged (none did); every waiting node with a failed or stopped parent
// is stopped. nodes must be in Plan's order; state holds the state of every
// settled or queued key (the root is Delivered); blame holds, for stopped
// keys, the failed key that stopped them. Decisions come in nodes' order and
// are also written into state and blame, so a decision further down sees
// the ones above it.
func Advance(nodes []Node, state map[string]State, blame map[string]string) []Decision {
	var out []Decision
	for _, n := range nodes {
		if s := state[n.Key]; s != "" && s != Waiting {
			continue
		}
		d, ok := Decide(n, state, blame)
		if !ok {
			continue
		}
		state[n.Key] = d.State
		if d.Blame != "" {
			blame[n.Key] = d.Blame
		}
		out = append(out, d)
	}
	return out
}

// Decide decides one waiting node from the states of the nodes it waits
// on (and, for stopped ones, their blame); false: it still waits.
func Decide(n Node, state map[string]State, blame map[string]string) (Decision, bool) {
	settled, changed := true, false
	for _, p := range n.WaitsOn {
		switch state[p] {
		case Failed, Cancelled:
			return Decision{Key: n.Key, State: Stopped, Blame: p}, true
		case Stopped:
			return Decision{Key: n.Key, State: Stopped, Blame: blame[p]}, true
		case Delivered:
			changed = true
		case Unchanged:
		default:
			settled = false
		}
	}
	if !settled {
		return Decision{}, false
	}
	if changed {
		return Decision{Key: n.Key, State: Queued}, true
	}
	return Decision{Key: n.Key, State: Unchanged}, true
}

// Waves groups nodes (in Plan's order) by depth: wave 0 waits only on the
// root, wave i on nodes of waves below i. It is what a person reads on the
// dashboard and in the command line's plan.
func Waves(root string, nodes []Node) [][]string {
	depth := map[string]int{root: -1}
	var out [][]string
	for _, n := range nodes {
		d := 0
		for _, p := range n.WaitsOn {
			if pd, ok := depth[p]; ok && pd+1 > d {
				d = pd + 1
			}
		}
		depth[n.Key] = d
		for len(out) <= d {
			out = append(out, nil)
		}
		out[d] = append(out[d], n.Key)
	}
	return out
}
