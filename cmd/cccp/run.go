package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/liveindex"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

func newRunCommand() *cobra.Command {
	var (
		f         envFlags
		indexPath string
		allowFile bool
		kind      string
		blocking  []string
		force     bool
	)
	cmd := &cobra.Command{
		Use:   "run --index PATH [APP-ID/JOB-ID...]",
		Short: "Build, test and deliver index entries on this machine",
		Long: `run builds, tests and delivers the named entries of the index (default: all of
them), parents before children, with buildah and podman on this machine. Images
go to the embedded registry unless --registry names another. Named entries
(of --kind branch) are followed by every descendant whose inputs changed: a
child is rebuilt, against its parents' new digests, once all of its rebuilt
parents delivered; the summary says which were rebuilt and which were up to
date. It exits 1 if any pipeline failed.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if indexPath == "" {
				return usageError{fmt.Errorf("--index is required")}
			}
			if k := types.RunKind(kind); k != types.KindBranch && k != types.KindPR {
				return usageError{fmt.Errorf("--kind must be %q or %q", types.KindBranch, types.KindPR)}
			}
			return runPipelines(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), &f, indexPath, allowFile, kind, blocking, args, force)
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&indexPath, "index", "", "the container index: a repository root, an index.d folder or one file")
	cmd.Flags().BoolVar(&allowFile, "allow-file-urls", false, "allow file:// git URLs in the index")
	cmd.Flags().BoolVar(&force, "force", false, "build even an entry whose inputs did not change since its last delivered run")
	cmd.Flags().StringVar(&kind, "kind", string(types.KindBranch), "branch (build, test, deliver) or pr (build and test only)")
	cmd.Flags().StringSliceVar(&blocking, "blocking", []string{string(types.CheckSmoke), string(types.CheckUserScript)},
		"checks whose failure fails the test stage: lint, capabilities, package-updates, rpm-verify, language-packages, smoke, user-script")
	return cmd
}

func runPipelines(ctx context.Context, stdout, stderr io.Writer, f *envFlags, indexPath string, allowFile bool, kind string, blocking, names []string, force bool) error {
	idx, findings, err := index.Load(ctx, indexPath, index.LoadOptions{})
	if err != nil {
		return err
	}
	findings = append(findings, index.Lint(idx, index.LintOptions{AllowFile: allowFile})...)
	if hasErrors(findings) {
		for _, fd := range findings {
			if fd.Severity == index.Error {
				fmt.Fprintln(stderr, fd)
			}
		}
		fmt.Fprintln(stderr, "cccp: the index has errors; fix them first (cccp index lint)")
		return exitError{exitFailure}
	}
	graph, _ := index.NewGraph(idx)
	selected, err := selectEntries(idx, names)
	if err != nil {
		return usageError{err}
	}

	// The same live index serve uses, loaded once: the runner looks its
	// entries up there.
	live := liveindex.New(func(context.Context) (*index.Index, error) { return idx, nil })
	if _, err := live.Reload(ctx); err != nil {
		return err
	}
	// Named entries of a branch run: run them, then every descendant whose
	// inputs changed, through the pipeline's cascade (run_cascade.go).
	cascading := len(names) > 0 && types.RunKind(kind) == types.KindBranch
	progress := newProgress(stderr)
	opts := pipelineOptions{blocking: blocking, entries: live.Entry}
	if cascading {
		opts.chainChildren, opts.graph = true, graphChildren(graph)
	}
	env, err := openPipeline(ctx, f, f.logger(stderr), progress.observe, opts)
	if err != nil {
		return err
	}
	defer env.Close(context.WithoutCancel(ctx))
	if err := env.runner.Start(ctx); err != nil {
		return err
	}
	if env.reg != nil {
		fmt.Fprintf(stderr, "cccp: embedded registry at %s (anonymous pulls; data in %s)\n", env.reg.Host(), f.data)
	}

	if cascading {
		return runCascades(ctx, stdout, stderr, env, f, graph, selected)
	}
	results := map[string]*store.Run{}
	skipped := map[string]string{}
	for _, layer := range graph.Layers() {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, e := range layer {
			if !selected[e.Key()] {
				continue
			}
			if why := failedParent(graph, e, results, skipped); why != "" {
				skipped[e.Key()] = why
				fmt.Fprintf(stderr, "%-28s skipped: %s\n", e.Key(), why)
				continue
			}
			run, err := env.runner.Enqueue(ctx, pipeline.Request{Project: e.Key(), Kind: types.RunKind(kind), Cause: store.Cause{Kind: types.CauseManual, Actor: "cccp run"}, Force: force})
			if err != nil {
				return err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				done, err := env.runner.Wait(ctx, run.ID)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					skipped[e.Key()] = err.Error()
					return
				}
				results[e.Key()] = done
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	failed := printSummary(stdout, idx, selected, results, skipped)
	if failed > 0 {
		fmt.Fprintf(stderr, "cccp: %d pipeline(s) did not pass; see `cccp logs RUN` (with --data %s)\n", failed, f.data)
		return exitError{exitFailure}
	}
	return nil
}

func hasErrors(fs []index.Finding) bool {
	for _, f := range fs {
		if f.Severity == index.Error {
			return true
		}
	}
	return false
}

// selectEntries returns the keys of the entries named (`app-id/job-id`
// selects every tag of that name, `app-id/job-id:tag` one entry), or of
// all entries.
func selectEntries(idx *index.Index, names []string) (map[string]bool, error) {
	sel := map[string]bool{}
	if len(names) == 0 {
		for _, e := range idx.Entries {
			sel[e.Key()] = true
		}
		return sel, nil
	}
	for _, n := range names {
		var found []*index.Entry
		if strings.Contains(n, ":") {
			if e, ok := idx.ByImage(n); ok {
				found = append(found, e)
			}
		} else {
			found = idx.ByName(n)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s is not in the index", n)
		}
		for _, e := range found {
			sel[e.Key()] = true
		}
	}
	return sel, nil
}

// failedParent names a parent of e that did not pass in this invocation.
func failedParent(g *index.Graph, e *index.Entry, results map[string]*store.Run, skipped map[string]string) string {
	for _, p := range g.Parents(e) {
		if r, ok := results[p.Key()]; ok && r.State != store.Passed {
			return fmt.Sprintf("parent %s %s", p.Key(), r.State)
		}
		if _, ok := skipped[p.Key()]; ok {
			return fmt.Sprintf("parent %s was skipped", p.Key())
		}
	}
	return ""
}

func printSummary(w io.Writer, idx *index.Index, selected map[string]bool, results map[string]*store.Run, skipped map[string]string) (failed int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\tRUN\tRESULT\tSTAGES\tTIME\tIMAGES")
	names := make([]string, 0, len(selected))
	for n := range selected {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r, ok := results[n]
		if !ok {
			failed++
			fmt.Fprintf(tw, "%s\t-\tskipped\t-\t-\t%s\n", n, skipped[n])
			continue
		}
		if r.State != store.Passed {
			failed++
		}
		var stages []string
		for _, s := range r.Stages {
			stages = append(stages, string(s.Name)+":"+string(s.State))
		}
		images := "-"
		if len(r.Images) > 0 {
			var refs []string
			for _, im := range r.Images {
				refs = append(refs, im.Ref)
			}
			images = strings.Join(refs, " ") + " @" + shortDigest(r.Images[0].Digest)
		}
		result := string(r.State)
		if r.UpToDate {
			result += " (" + pipeline.UpToDateNote + ")"
		}
		if r.Error != "" && r.State != store.Passed {
			result += " (" + r.Error + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n, r.ID, result, strings.Join(stages, " "), r.Finished.Sub(r.Started).Round(100*time.Millisecond), images)
	}
	tw.Flush()
	return failed
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

// progress prints each stage change of each run once, for a person
// watching the terminal.
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	seen map[string]string // run/stage -> last printed state
}

func newProgress(w io.Writer) *progress { return &progress{w: w, seen: map[string]string{}} }

func (p *progress) observe(r *store.Run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range r.Stages {
		key := r.ID + "/" + string(s.Name)
		if p.seen[key] == string(s.State) || s.State == store.Queued {
			continue
		}
		p.seen[key] = string(s.State)
		line := fmt.Sprintf("%-28s run %-4s %-8s %s", r.Project, r.ID, s.Name, s.State)
		if s.State.Done() && !s.Started.IsZero() && !s.Finished.IsZero() {
			line += fmt.Sprintf(" in %s", s.Finished.Sub(s.Started).Round(100*time.Millisecond))
		}
		if s.State == store.Failed && s.Error != "" {
			line += ": " + s.Error
		}
		fmt.Fprintln(p.w, line)
	}
}
