package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/index"
)

func newIndexCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "index",
		Short: "Check and inspect a container index",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("index needs a subcommand (lint, graph, add)")}
		},
	}
	cmd.AddCommand(newIndexLintCommand(), newIndexGraphCommand(), newIndexAddCommand())
	return cmd
}

// usageArgs makes cobra's argument checks exit with the usage code.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// loadIndex loads path; a path that is not there or holds no index is a
// usage error.
func loadIndex(ctx context.Context, path string) (*index.Index, []index.Finding, error) {
	idx, fs0, err := index.Load(ctx, path, index.LoadOptions{})
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, index.ErrNoIndex) {
		return nil, nil, usageError{err}
	}
	return idx, fs0, err
}

func newIndexLintCommand() *cobra.Command {
	var (
		format       string
		remote       bool
		changedSince string
		allowFile    bool
		registries   []string
		concurrency  int
	)
	cmd := &cobra.Command{
		Use:   "lint [PATH...]",
		Short: "Check a container index and print one line per finding",
		Long: `Check container indexes: PATH is an index repository root (holding index.d/
or index.yml), an index.d folder, or one index file (default: the current folder).

Every finding is printed as FILE:LINE:COL: error|warning: MESSAGE (RULE).
With --remote, each entry's repository is also cloned to check the branch,
git-path/target-file and its cccp.yaml; with --changed-since REV only the
entries that changed since REV get these remote checks.

Exit status: 0 no errors, 1 errors found, 2 usage error.`,
		Args: usageArgs(cobra.ArbitraryArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return usageError{fmt.Errorf("--format must be text or json, not %q", format)}
			}
			if changedSince != "" && !remote {
				return usageError{errors.New("--changed-since only limits the remote checks; use it with --remote")}
			}
			if len(args) == 0 {
				args = []string{"."}
			}
			ctx := cmd.Context()
			var all []index.Finding
			entries := 0
			for _, p := range args {
				idx, found, err := loadIndex(ctx, p)
				if err != nil {
					return err
				}
				entries += len(idx.Entries)
				found = append(found, index.Lint(idx, index.LintOptions{AllowFile: allowFile, Registries: registries})...)
				if remote {
					rf, err := lintRemote(ctx, idx, changedSince, concurrency)
					if err != nil {
						return err
					}
					found = append(found, rf...)
				}
				index.SortFindings(found)
				all = append(all, found...)
			}
			if err := writeFindings(cmd.OutOrStdout(), format, all); err != nil {
				return err
			}
			nerr := 0
			for _, f := range all {
				if f.Severity == index.Error {
					nerr++
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d entries, %d errors, %d warnings\n", entries, nerr, len(all)-nerr)
			if nerr > 0 {
				return exitError{exitFailure}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "text", "output format: text or json")
	f.BoolVar(&remote, "remote", false, "also clone each entry's repository and check branch, target file and cccp.yaml")
	f.StringVar(&changedSince, "changed-since", "", "with --remote, check only the entries changed since this git revision of the index")
	f.BoolVar(&allowFile, "allow-file-urls", false, "accept file:// git URLs (for local test indexes)")
	f.StringSliceVar(&registries, "registry", nil, "registry host that names this index's own images in depends-on (repeatable)")
	f.IntVar(&concurrency, "concurrency", 4, "repositories checked at once with --remote")
	return cmd
}

func writeFindings(w io.Writer, format string, fs []index.Finding) error {
	if format == "json" {
		if fs == nil {
			fs = []index.Finding{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(fs)
	}
	for _, f := range fs {
		if _, err := fmt.Fprintln(w, f); err != nil {
			return err
		}
	}
	return nil
}

func lintRemote(ctx context.Context, idx *index.Index, since string, concurrency int) ([]index.Finding, error) {
	opts := index.RemoteOptions{Git: gitCLI{}, Concurrency: concurrency}
	if since != "" {
		top, err := gitsrc.TopLevel(ctx, idx.Root)
		if err != nil {
			return nil, usageError{fmt.Errorf("--changed-since: %w", err)}
		}
		changed, err := gitsrc.ChangedFiles(ctx, top, since)
		if err != nil {
			return nil, usageError{fmt.Errorf("--changed-since: %w", err)}
		}
		es, err := index.ChangedEntries(idx, top, changed, func(rel string) ([]byte, bool, error) {
			return gitsrc.ShowFile(ctx, top, since, rel)
		})
		if err != nil {
			return nil, err
		}
		only := map[*index.Entry]bool{}
		for _, e := range es {
			only[e] = true
		}
		opts.Only = func(e *index.Entry) bool { return only[e] }
	}
	return index.LintRemote(ctx, idx, opts), nil
}

// gitCLI adapts internal/gitsrc to index.Git.
type gitCLI struct{}

func (gitCLI) LsRemote(ctx context.Context, url string) (map[string]string, error) {
	return gitsrc.LsRemote(ctx, url)
}

func (gitCLI) Clone(ctx context.Context, url, branch, dest string) error {
	return gitsrc.Clone(ctx, url, dest, gitsrc.CloneOptions{Branch: branch})
}

func newIndexGraphCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "graph PATH",
		Short: "Print the build order implied by depends-on",
		Long: `Print the build order of a container index: topological layers (every
entry's parents are in an earlier layer) as text, or the graph as Graphviz DOT.
Dependency problems (unresolved references, cycles) go to standard error;
cycles exit with status 1.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "dot" {
				return usageError{fmt.Errorf("--format must be text or dot, not %q", format)}
			}
			idx, _, err := loadIndex(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			g, found := index.NewGraph(idx)
			for _, f := range found {
				fmt.Fprintln(cmd.ErrOrStderr(), f)
			}
			out := cmd.OutOrStdout()
			if format == "dot" {
				fmt.Fprint(out, g.DOT())
			} else {
				n := 0
				for i, layer := range g.Layers() {
					names := make([]string, len(layer))
					for j, e := range layer {
						names[j] = e.Name() + ":" + e.DesiredTag
					}
					n += len(layer)
					fmt.Fprintf(out, "layer %d: %s\n", i+1, strings.Join(names, " "))
				}
				if n < len(idx.Entries) {
					fmt.Fprintf(out, "not ordered (on or after a dependency cycle): %d entries\n", len(idx.Entries)-n)
				}
			}
			if len(g.Cycles()) > 0 {
				return exitError{exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or dot")
	return cmd
}
