package web

import (
	"sync/atomic"

	"github.com/cccp-project/cccp/internal/index"
)

// IndexProjects serves a loaded index as Projects. Set swaps in a newly
// loaded index while the server runs.
type IndexProjects struct {
	cur atomic.Pointer[indexSnapshot]
}

type indexSnapshot struct {
	entries           []index.Entry
	parents, children map[string][]string
}

// NewIndexProjects returns the entries and dependency graph of idx.
func NewIndexProjects(idx *index.Index) *IndexProjects {
	p := &IndexProjects{}
	p.Set(idx)
	return p
}

// Set replaces the index served.
func (p *IndexProjects) Set(idx *index.Index) {
	s := &indexSnapshot{parents: map[string][]string{}, children: map[string][]string{}}
	if idx != nil {
		g, _ := index.NewGraph(idx)
		for _, e := range idx.Entries {
			s.entries = append(s.entries, *e)
			if g == nil {
				continue
			}
			for _, x := range g.Parents(e) {
				s.parents[e.Key()] = appendNew(s.parents[e.Key()], x.Key())
			}
			for _, x := range g.Children(e) {
				s.children[e.Key()] = appendNew(s.children[e.Key()], x.Key())
			}
		}
	}
	p.cur.Store(s)
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// Entries returns the index's entries in index order.
func (p *IndexProjects) Entries() []index.Entry { return p.cur.Load().entries }

// Parents are the keys of the entries the one keyed key is built FROM.
func (p *IndexProjects) Parents(key string) []string { return p.cur.Load().parents[key] }

// Children are the keys of the entries built FROM the one keyed key.
func (p *IndexProjects) Children(key string) []string { return p.cur.Load().children[key] }
