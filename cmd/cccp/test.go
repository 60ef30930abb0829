package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/backend/local"
	"github.com/cccp-project/cccp/internal/backend/testreport"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/sandbox"
)

// exitChecksFailed is `cccp test`'s exit code when every check ran and at
// least one failed: the results file is written, and the Jenkins job marks
// the build UNSTABLE rather than FAILURE.
const exitChecksFailed = 3

// imageChecker runs cccp's checks on one image in a checkout
// (local.CheckImage, the local backend's test stage without its clone).
type imageChecker func(ctx context.Context, c local.ImageCheck, log io.Writer) ([]backend.CheckResult, error)

// newImageChecker builds the checks runner `cccp test` uses.
type newImageChecker func(log *slog.Logger, insecure func(host string) bool) imageChecker

// localImageChecker runs the checks as the local backend does: the
// containers and the repository's test script in a sandbox box as the
// unprivileged sandbox user (hack/install-deps.sh sets it up; a Jenkins
// agent needs the same, see deploy/jenkins/README.md).
func localImageChecker(log *slog.Logger, insecure func(string) bool) imageChecker {
	return func(ctx context.Context, c local.ImageCheck, w io.Writer) ([]backend.CheckResult, error) {
		sb, err := sandbox.New(sandbox.Config{Logger: log, Scope: "test"})
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		cfg := local.Config{Podman: &podman.Runner{Logger: log}, Insecure: insecure, Logger: log, Sandbox: sb}
		return local.CheckImage(ctx, cfg, c, w)
	}
}

type testOptions struct {
	image      string
	dir        string
	dockerfile string
	script     string
	entry      string
	runID      string
	results    string
	insecure   []string
	verbose    bool
}

func newTestCommand(newChecker newImageChecker) *cobra.Command {
	var o testOptions
	cmd := &cobra.Command{
		Use:   "test IMAGE --results FILE [--dir DIR] [--script PATH] [--entry KEY]",
		Short: "Run cccp's checks on an image and write their results as JSON",
		Long: `test runs cccp's own checks (Dockerfile lint, capabilities, package
updates, rpm verification, language packages, the smoke run and the
repository's test script) on IMAGE with podman on this machine, and writes
their results to --results in the JSON form cccp's test backends read back.
It is what cccp's Jenkins job (deploy/jenkins/Jenkinsfile) runs on its agent.

--dir is the entry's git-path in a checkout of its repository: the Dockerfile
(--dockerfile, relative to --dir) and cccp.yaml are read there, and the test
script runs there. --script overrides cccp.yaml's test-script.

Exit status: 0 when every check passed or was skipped, 3 when every check ran
and one failed (the results are written), 1 when the checks could not run
(no results are written), 2 for a wrong command line.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{errors.New("test needs exactly one IMAGE")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.image = args[0]
			if o.results == "" {
				return usageError{errors.New("--results is required")}
			}
			log := slog.New(slog.DiscardHandler)
			if o.verbose {
				log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelDebug}))
			}
			insecure := func(host string) bool { return registry.IsLoopback(host) || slices.Contains(o.insecure, host) }
			return runTest(cmd.Context(), cmd.OutOrStdout(), o, newChecker(log, insecure))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", ".", "the entry's git-path in a checkout of its repository")
	f.StringVar(&o.dockerfile, "dockerfile", "Dockerfile", "the entry's target-file, relative to --dir")
	f.StringVar(&o.script, "script", "", "the test script, relative to --dir (default: cccp.yaml's test-script)")
	f.StringVar(&o.entry, "entry", "", "the entry's key (app-id/job-id:desired-tag), recorded in the results")
	f.StringVar(&o.runID, "run", "", "cccp's run ID, recorded in the results")
	f.StringVar(&o.results, "results", "", "write the results here (JSON)")
	f.StringArrayVar(&o.insecure, "insecure-registry", nil, "pull from this registry host over plain HTTP (loopback hosts always are)")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log what cccp does to stderr")
	return cmd
}

func runTest(ctx context.Context, out io.Writer, o testOptions, check imageChecker) error {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	cfg, findings, err := index.LoadRepoConfig(dir)
	if err != nil {
		return fmt.Errorf("cccp.yaml: %w", err)
	}
	for _, f := range findings {
		fmt.Fprintf(out, "cccp: %s\n", f)
	}
	if o.script != "" {
		cfg.TestScript, cfg.TestSkip = o.script, false
	}
	c := local.ImageCheck{
		Image:      o.image,
		Dockerfile: filepath.Join(dir, filepath.Clean("/"+o.dockerfile)),
		RepoDir:    dir,
		Config:     cfg,
	}
	fmt.Fprintf(out, "cccp: testing %s\n", o.image)
	got, err := check(ctx, c, out)
	if err != nil {
		return fmt.Errorf("test %s: %w", o.image, err)
	}
	rep := testreport.Report{Image: o.image, Entry: o.entry, RunID: o.runID, Checks: testreport.FromCheckResults(got)}
	failed := slices.ContainsFunc(got, func(c backend.CheckResult) bool { return c.State == backend.CheckFailed })
	if err := writeResults(o.results, rep); err != nil {
		return err
	}
	fmt.Fprintf(out, "cccp: results in %s\n", o.results)
	if failed {
		return exitError{exitChecksFailed}
	}
	return nil
}

// writeResults writes the report next to path and renames it into place,
// so a reader never sees half a file.
func writeResults(path string, rep testreport.Report) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".results-*.json")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := testreport.Write(tmp, rep); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}
