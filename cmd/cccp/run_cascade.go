package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// graphChildren gives the pipeline the children of an entry in the
// index's graph.
func graphChildren(g *index.Graph) func(key string) []string {
	byKey := map[string][]string{}
	if g == nil {
		return func(string) []string { return nil }
	}
	for _, layer := range g.Layers() {
		for _, e := range layer {
			for _, c := range g.Children(e) {
				byKey[e.Key()] = append(byKey[e.Key()], c.Key())
			}
		}
	}
	return func(key string) []string { return byKey[key] }
}

// runCascades runs the selected entries that have no selected ancestor,
// waits for the cascade each one's new image starts, and prints what was
// rebuilt and what was up to date. A selected descendant is reached by its
// ancestor's cascade, or is up to date when nothing above it changed.
func runCascades(ctx context.Context, stdout, stderr io.Writer, env *pipelineEnv, f *envFlags, g *index.Graph, selected map[string]bool) error {
	below := map[string]bool{} // descendants of a selected entry
	for k := range selected {
		for _, d := range g.Descendants(k) {
			below[d.Key()] = true
		}
	}
	var roots []string
	for k := range selected {
		if !below[k] {
			roots = append(roots, k)
		}
	}
	sort.Strings(roots)
	var rows []cascadeRow
	for _, k := range roots {
		run, err := env.runner.Enqueue(ctx, pipeline.Request{Project: k, Kind: types.KindBranch, Cause: store.Cause{Kind: types.CauseManual, Actor: "cccp run"}})
		if err != nil {
			return err
		}
		done, err := env.runner.Wait(ctx, run.ID)
		if err != nil {
			return err
		}
		rows = append(rows, rowOf(k, done, ""))
		c, err := waitCascade(ctx, env.db, done.ID)
		if err != nil {
			return err
		}
		inCascade := map[string]bool{}
		if c != nil {
			for _, n := range c.Nodes {
				inCascade[n.Project] = true
				r, err := env.db.Run(ctx, n.Run)
				if err != nil {
					return fmt.Errorf("run %s of %s: %w", n.Run, n.Project, err)
				}
				rows = append(rows, rowOf(n.Project, r, n.State))
			}
		}
		for _, d := range g.Descendants(k) {
			if !inCascade[d.Key()] {
				rows = append(rows, cascadeRow{project: d.Key(), result: "up to date", detail: "no parent changed"})
			}
		}
	}
	failed := printCascadeSummary(stdout, rows)
	if failed > 0 {
		fmt.Fprintf(stderr, "cccp: %d pipeline(s) did not pass; see `cccp logs RUN` (with --data %s)\n", failed, f.data)
		return exitError{exitFailure}
	}
	return nil
}

// waitCascade waits until the cascade run started has settled; nil when
// run started none (it failed, or its digest did not change).
func waitCascade(ctx context.Context, db *store.DB, run string) (*store.Cascade, error) {
	for {
		c, err := db.CascadeStartedBy(ctx, run)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if !c.Finished.IsZero() {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type cascadeRow struct {
	project, run, result, detail string
	failed                       bool
}

// rowOf says what became of one entry: rebuilt (a new image), up to
// date, failed, or stopped below a failed parent.
func rowOf(project string, r *store.Run, node string) cascadeRow {
	row := cascadeRow{project: project, run: r.ID}
	switch {
	case node == store.CascadeStopped:
		row.result, row.detail, row.failed = "stopped", r.Error, true
	case r.State != store.Passed:
		row.result, row.detail, row.failed = string(r.State), r.Error, true
	case node == store.CascadeUnchanged || pipeline.UpToDate(r):
		row.result, row.detail = "up to date", "image unchanged"
	default:
		row.result = "rebuilt"
		if d := r.DeliveredDigest(); d != "" {
			row.detail = "@" + shortDigest(d)
		}
	}
	return row
}

func printCascadeSummary(w io.Writer, rows []cascadeRow) (failed int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\tRUN\tRESULT\tDETAIL")
	for _, r := range rows {
		if r.failed {
			failed++
		}
		run := r.run
		if run == "" {
			run = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.project, run, r.result, r.detail)
	}
	tw.Flush()
	return failed
}
