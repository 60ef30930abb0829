package local

import (
	"context"
	"io"

	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/runlog"
)

// GitSource fetches repositories with git: shallow, at a branch or an
// exact commit.
type GitSource struct{}

var _ pipeline.Source = GitSource{}

// Fetch checks url out into dest and returns the commit checked out.
func (GitSource) Fetch(ctx context.Context, url, branch, commit, dest string) (string, error) {
	if err := gitsrc.Clone(ctx, url, dest, gitsrc.CloneOptions{Branch: branch, Commit: commit, Depth: 1}); err != nil {
		return "", err
	}
	return gitsrc.HeadCommit(ctx, dest)
}

// Logs gives the pipeline stage logs kept by runlog.
type Logs struct{ Logs *runlog.Logs }

var _ pipeline.Logs = Logs{}

// Create opens a new stage log.
func (l Logs) Create(runID, stage string) (io.WriteCloser, error) { return l.Logs.Create(runID, stage) }

// Seal completes the log of a stage that a crash cut off.
func (l Logs) Seal(runID, stage string) error { return l.Logs.Seal(runID, stage) }
