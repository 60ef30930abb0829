package bot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/report"
	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/redact"
)

// GitIndexPR checks index pull requests by cloning their head commit.
type GitIndexPR struct {
	// WorkDir holds the clones while a check runs (default os.TempDir()).
	WorkDir string
	// Current returns the entries of the index as merged, to tell new and
	// changed entries from untouched ones.
	Current func() []*index.Entry
	// Lint tunes the lint (e.g. AllowFile for local indexes).
	Lint index.LintOptions
}

// structureRules are whole-index findings, reported whichever entry they
// are attached to.
var structureRules = []string{"duplicate-id", "duplicate-image", "duplicate-key", "cycle"}

// Check clones the pull request's head, loads and lints the index there,
// and returns the findings of new and changed entries plus the structure
// findings of the whole index.
func (g *GitIndexPR) Check(ctx context.Context, ev *event.Event) (*IndexCheck, error) {
	if ev.PR == nil || ev.PR.HeadSHA == "" {
		return nil, fmt.Errorf("index check: no pull request head")
	}
	url := ev.PR.HeadCloneURL
	if url == "" {
		url = ev.Repo.CloneURL
	}
	dir, err := os.MkdirTemp(g.WorkDir, "index-pr-")
	if err != nil {
		return nil, fmt.Errorf("index check: %w", err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	if err := gitsrc.Clone(ctx, url, src, gitsrc.CloneOptions{Commit: ev.PR.HeadSHA}); err != nil {
		return nil, fmt.Errorf("index check: clone %s at %s: %w", redact.URL(url), report.Short(ev.PR.HeadSHA), err)
	}
	idx, loadFindings, err := index.Load(ctx, src, index.LoadOptions{})
	if err != nil {
		return nil, fmt.Errorf("index check: %w", err)
	}
	var current []*index.Entry
	if g.Current != nil {
		current = g.Current()
	}
	return compareIndex(idx, current, append(loadFindings, index.Lint(idx, g.Lint)...), src), nil
}

// compareIndex sorts findings into those of new or changed entries and
// those of the index's structure. Findings of untouched entries are left
// out: they are not the pull request's doing. Paths are made relative to
// root.
func compareIndex(idx *index.Index, current []*index.Entry, findings []index.Finding, root string) *IndexCheck {
	res := &IndexCheck{}
	changedEntries, removed := index.Compare(current, idx.Entries)
	changed := map[*index.Entry]int{} // entry -> position in res.Changed
	for _, e := range changedEntries {
		changed[e] = len(res.Changed)
		res.Changed = append(res.Changed, IndexEntryCheck{Entry: e})
	}
	for _, e := range removed {
		res.Removed = append(res.Removed, e.Key())
	}
	sort.Strings(res.Removed)
	owner := entryAt(idx.Entries)
	for _, f := range findings {
		e := owner(f.Pos)
		if rel, err := filepath.Rel(root, f.Pos.File); err == nil && filepath.IsLocal(rel) {
			f.Pos.File = rel
		}
		if slices.Contains(structureRules, f.Rule) {
			res.Structure = append(res.Structure, f)
			continue
		}
		if e != nil {
			if i, ok := changed[e]; ok {
				res.Changed[i].Findings = append(res.Changed[i].Findings, f)
			}
		} else if f.Severity == index.Error {
			res.Structure = append(res.Structure, f) // a file that did not parse at all
		}
	}
	return res
}

// entryAt returns a function finding the entry a position lies in: the
// last entry of that file starting at or before it.
func entryAt(entries []*index.Entry) func(p index.Pos) *index.Entry {
	byFile := map[string][]*index.Entry{}
	for _, e := range entries {
		byFile[e.Pos.File] = append(byFile[e.Pos.File], e)
	}
	for _, es := range byFile {
		sort.SliceStable(es, func(i, j int) bool { return es[i].Pos.Line < es[j].Pos.Line })
	}
	return func(p index.Pos) *index.Entry {
		var found *index.Entry
		for _, e := range byFile[p.File] {
			if e.Pos.Line <= p.Line {
				found = e
			}
		}
		return found
	}
}
