package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cccp-project/cccp/bot"
	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/index"
)

// structureRules are the whole-index findings an index pull request is
// held to even when they concern entries it did not change.
var structureRules = map[string]bool{"duplicate-image": true, "cycle": true}

// indexPRChecker checks an index pull request: the head is fetched with
// git, compared with the index cccp tracks (the base), and linted; only the
// findings of the entries it changes, and whole-index structure, count, so
// one broken upstream never fails an unrelated pull request.
type indexPRChecker struct {
	cfg  *serveConfig
	work string
}

var _ bot.IndexPR = indexPRChecker{}

func (c indexPRChecker) Check(ctx context.Context, ev *event.Event) (*bot.IndexCheck, error) {
	if ev.PR == nil {
		return nil, fmt.Errorf("index check: event %s carries no pull request", ev.DeliveryID)
	}
	base, _, err := index.Load(ctx, c.cfg.Index.Path, index.LoadOptions{})
	if err != nil {
		return nil, fmt.Errorf("index check: base: %w", err)
	}
	dir, err := os.MkdirTemp(c.work, "index-pr-"+strconv.Itoa(ev.PR.Number)+"-")
	if err != nil {
		return nil, fmt.Errorf("index check: %w", err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	url := firstNonEmptyString(ev.PR.HeadCloneURL, ev.Repo.CloneURL)
	if err := gitsrc.Clone(ctx, url, src, gitsrc.CloneOptions{Branch: ev.PR.HeadRef, Commit: ev.PR.HeadSHA, Depth: 1}); err != nil {
		return nil, fmt.Errorf("index check: fetch head: %w", err)
	}
	head, findings, err := index.Load(ctx, src, index.LoadOptions{})
	if err != nil {
		return nil, fmt.Errorf("index check: head: %w", err)
	}
	findings = append(findings, index.Lint(head, index.LintOptions{AllowFile: c.cfg.Index.AllowFileURLs, Registries: c.cfg.Registry.Aliases})...)
	changed, removed := index.Compare(base, head)
	out := &bot.IndexCheck{}
	for _, e := range changed {
		fs := relative(src, index.FindingsOf(head, e, findings))
		ec := *e
		ec.Pos.File = relPath(src, ec.Pos.File)
		out.Changed = append(out.Changed, bot.IndexEntryCheck{Entry: &ec, Findings: fs})
	}
	for _, e := range removed {
		out.Removed = append(out.Removed, e.Key())
	}
	for _, f := range relative(src, findings) {
		if structureRules[f.Rule] || f.Rule == "yaml" {
			out.Structure = append(out.Structure, f)
		}
	}
	return out, nil
}

// relative makes finding positions relative to the repository root, as
// people read them.
func relative(root string, fs []index.Finding) []index.Finding {
	out := make([]index.Finding, len(fs))
	for i, f := range fs {
		out[i] = f
		out[i].Pos.File = relPath(root, f.Pos.File)
	}
	return out
}

func relPath(root, p string) string {
	if rel, err := filepath.Rel(root, p); err == nil {
		return filepath.ToSlash(rel)
	}
	return p
}

func firstNonEmptyString(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
