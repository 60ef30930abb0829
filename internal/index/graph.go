package index

import (
	"fmt"
	"slices"
	"strings"
)

// Which depends-on references are "this index's images"
//
// A reference names an image built by this index when it has no registry
// host (or a host listed in LintOptions.Registries) and its namespace, the
// first path component (`library` for a one-part name such as `centos:7`),
// is an app-id used by some entry of the index. Such a reference must
// resolve to an entry with that app-id/job-id that delivers the tag
// (`latest` when none is written; a digest reference matches any tag).
// Every other reference (docker.io/..., quay.io/..., or a namespace this
// index does not have) is external: only its syntax is checked.

// Graph is the build order implied by depends-on: an edge goes from a
// parent (the image depended on) to its child.
type Graph struct {
	idx      *Index
	parents  map[*Entry][]*Entry
	children map[*Entry][]*Entry
	cycles   [][]*Entry
}

// NewGraph builds the dependency graph of idx. Findings are the
// depends-on problems: references that do not parse, references to this
// index's images that resolve to no entry, and cycles.
func NewGraph(idx *Index) (*Graph, []Finding) { return buildGraph(idx, nil) }

func buildGraph(idx *Index, registries []string) (*Graph, []Finding) {
	g := &Graph{idx: idx, parents: map[*Entry][]*Entry{}, children: map[*Entry][]*Entry{}}
	var fs []Finding
	for _, e := range idx.Entries {
		seen := map[*Entry]bool{}
		for i, d := range e.DependsOn {
			p := e.ItemPos("depends-on", i)
			r, err := parseImageRef(d)
			if err != nil {
				fs = append(fs, errorf(p, "depends-on", "%q is not an image reference: %v", d, err))
				continue
			}
			if !idx.isOwn(r, registries) {
				continue
			}
			parent, ok := idx.resolve(r)
			if !ok {
				fs = append(fs, errorf(p, "unresolved-dependency", "%s: %s", d, idx.whyUnresolved(r)))
				continue
			}
			if seen[parent] {
				continue
			}
			seen[parent] = true
			g.parents[e] = append(g.parents[e], parent)
			g.children[parent] = append(g.children[parent], e)
		}
	}
	fs = append(fs, g.findCycles()...)
	return g, fs
}

func (idx *Index) isOwn(r imageRef, registries []string) bool {
	if r.host != "" && !slices.ContainsFunc(registries, func(h string) bool { return strings.EqualFold(h, r.host) }) {
		return false
	}
	ns, _, _ := strings.Cut(r.name, "/")
	return idx.appIDs[ns]
}

func (idx *Index) whyUnresolved(r imageRef) string {
	es := idx.byName[r.name]
	if len(es) == 0 {
		return fmt.Sprintf("no entry builds %s in this index", r.name)
	}
	var tags []string
	for _, e := range es {
		for _, t := range e.Tags() {
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
	}
	return fmt.Sprintf("no entry delivers %s:%s (tags built: %s)", r.name, r.tag, strings.Join(tags, ", "))
}

// findCycles reports every cycle once, at the depends-on of the entry
// where the depth-first search closed it, with the full path.
func (g *Graph) findCycles() []Finding {
	const (
		white = iota
		grey
		black
	)
	color := make(map[*Entry]int, len(g.idx.Entries))
	var fs []Finding
	type frame struct {
		e *Entry
		i int
	}
	for _, start := range g.idx.Entries {
		if color[start] != white {
			continue
		}
		stack := []frame{{start, 0}}
		color[start] = grey
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			ps := g.parents[top.e]
			if top.i == len(ps) {
				color[top.e] = black
				stack = stack[:len(stack)-1]
				continue
			}
			next := ps[top.i]
			top.i++
			switch color[next] {
			case white:
				color[next] = grey
				stack = append(stack, frame{next, 0})
			case grey:
				j := len(stack) - 1
				for stack[j].e != next {
					j--
				}
				var cyc []*Entry
				var names []string
				for _, f := range stack[j:] {
					cyc = append(cyc, f.e)
					names = append(names, imageName(f.e))
				}
				names = append(names, imageName(next))
				g.cycles = append(g.cycles, cyc)
				fs = append(fs, errorf(top.e.PosOf("depends-on"), "cycle", "dependency cycle: %s", strings.Join(names, " -> ")))
			}
		}
	}
	return fs
}

func imageName(e *Entry) string { return e.Name() + ":" + e.DesiredTag }

// Cycles are the dependency cycles found, each as its entries in order.
func (g *Graph) Cycles() [][]*Entry { return g.cycles }

// Parents are the entries e depends on, in depends-on order.
func (g *Graph) Parents(e *Entry) []*Entry { return g.parents[e] }

// Children are the entries that depend on e, in index order.
func (g *Graph) Children(e *Entry) []*Entry { return g.children[e] }

// Descendants returns every entry that must be rebuilt after the image
// named by name changes: `app-id/job-id:tag` names one entry, plain
// `app-id/job-id` all its entries. Breadth-first, each entry once, the
// named entries themselves excluded.
func (g *Graph) Descendants(name string) []*Entry {
	var start []*Entry
	if strings.Contains(name, ":") {
		if e, ok := g.idx.ByImage(name); ok {
			start = []*Entry{e}
		}
	} else {
		start = g.idx.ByName(name)
	}
	seen := map[*Entry]bool{}
	for _, e := range start {
		seen[e] = true
	}
	var out []*Entry
	queue := slices.Clone(start)
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		for _, c := range g.children[e] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// Layers orders the entries for building: every entry's parents are in an
// earlier layer. Entries within a layer are in index order. Entries on a
// cycle, and everything that depends on them, are left out.
func (g *Graph) Layers() [][]*Entry {
	indeg := make(map[*Entry]int, len(g.idx.Entries))
	var layer []*Entry
	for _, e := range g.idx.Entries {
		indeg[e] = len(g.parents[e])
		if indeg[e] == 0 {
			layer = append(layer, e)
		}
	}
	pos := make(map[*Entry]int, len(g.idx.Entries))
	for i, e := range g.idx.Entries {
		pos[e] = i
	}
	var layers [][]*Entry
	for len(layer) > 0 {
		layers = append(layers, layer)
		var next []*Entry
		for _, e := range layer {
			for _, c := range g.children[e] {
				if indeg[c]--; indeg[c] == 0 {
					next = append(next, c)
				}
			}
		}
		slices.SortFunc(next, func(a, b *Entry) int { return pos[a] - pos[b] })
		layer = next
	}
	return layers
}

// DOT renders the graph in Graphviz DOT: one node per entry, an edge from
// each parent to its child.
func (g *Graph) DOT() string {
	var b strings.Builder
	b.WriteString("digraph index {\n\trankdir=LR;\n\tnode [shape=box];\n")
	for _, e := range g.idx.Entries {
		fmt.Fprintf(&b, "\t%q;\n", imageName(e))
	}
	for _, e := range g.idx.Entries {
		for _, p := range g.parents[e] {
			fmt.Fprintf(&b, "\t%q -> %q;\n", imageName(p), imageName(e))
		}
	}
	b.WriteString("}\n")
	return b.String()
}
