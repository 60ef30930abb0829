// Package liveindex holds the one live container index of a running cccp:
// its entries and dependency graph, read by the pipeline, the bot and the
// web UI, and replaced atomically on reload. Reloads are serialised, so two
// of them (a push to the index and an onboarding, say) never work on the
// same checkout at once.
package liveindex

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cccp-project/cccp/internal/index"
)

// Loader reads the index afresh (pulling its repository first, when
// there is one). Live calls it with its reload lock held.
type Loader func(ctx context.Context) (*index.Index, error)

// Live is the current index. The zero value is not usable; use New.
type Live struct {
	load Loader
	mu   sync.Mutex // serialises Reload
	cur  atomic.Pointer[snapshot]
}

type snapshot struct {
	idx               *index.Index
	byKey             map[string]*index.Entry
	values            []index.Entry // for readers that want copies
	parents, children map[string][]string
}

// New returns a Live holding no entry until the first Reload.
func New(load Loader) *Live {
	l := &Live{load: load}
	l.cur.Store(build(nil))
	return l
}

func build(idx *index.Index) *snapshot {
	s := &snapshot{idx: idx, byKey: map[string]*index.Entry{}, parents: map[string][]string{}, children: map[string][]string{}}
	if idx == nil {
		return s
	}
	g, _ := index.NewGraph(idx) // a cycle is a lint error; the entries are still served
	for _, e := range idx.Entries {
		s.byKey[e.Key()] = e
		s.values = append(s.values, *e)
		if g == nil {
			continue
		}
		for _, p := range g.Parents(e) {
			s.parents[e.Key()] = append(s.parents[e.Key()], p.Key())
		}
		for _, c := range g.Children(e) {
			s.children[e.Key()] = append(s.children[e.Key()], c.Key())
		}
	}
	return s
}

// Reload loads the index and swaps it in; it returns the keys of the
// entries that are new since the previous load (none on the first).
func (l *Live) Reload(ctx context.Context) (added []string, err error) {
	return l.ReloadAfter(ctx, nil)
}

// ReloadAfter is Reload with before (pulling the index repository, say)
// run first under the same lock; an error of before stops the reload.
func (l *Live) ReloadAfter(ctx context.Context, before func(context.Context) error) (added []string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if before != nil {
		if err := before(ctx); err != nil {
			return nil, err
		}
	}
	idx, err := l.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("reload index: %w", err)
	}
	old := l.cur.Load()
	next := build(idx)
	l.cur.Store(next)
	if old.idx == nil {
		return nil, nil
	}
	for _, e := range idx.Entries {
		if _, ok := old.byKey[e.Key()]; !ok {
			added = append(added, e.Key())
		}
	}
	return added, nil
}

// Entries are the current entries; callers must not change them.
func (l *Live) Entries() []*index.Entry {
	if s := l.cur.Load(); s.idx != nil {
		return s.idx.Entries
	}
	return nil
}

// Entry returns the entry keyed key (index.Entry.Key).
func (l *Live) Entry(key string) (*index.Entry, bool) {
	e, ok := l.cur.Load().byKey[key]
	return e, ok
}

// Keys are the keys of the current entries.
func (l *Live) Keys() []string {
	var out []string
	for _, e := range l.Entries() {
		out = append(out, e.Key())
	}
	return out
}

// Parents are the keys of the entries the one keyed key is built FROM.
func (l *Live) Parents(key string) []string { return l.cur.Load().parents[key] }

// Children are the keys of the entries built FROM the one keyed key.
func (l *Live) Children(key string) []string { return l.cur.Load().children[key] }

// Values is the view of the web UI: copies of the entries.
type Values struct{ l *Live }

// Values returns the web UI's view (internal/web.Projects).
func (l *Live) Values() Values { return Values{l} }

// Entries are copies of the current entries.
func (v Values) Entries() []index.Entry { return v.l.cur.Load().values }

// Parents are as Live.Parents.
func (v Values) Parents(key string) []string { return v.l.Parents(key) }

// Children are as Live.Children.
func (v Values) Children(key string) []string { return v.l.Children(key) }
