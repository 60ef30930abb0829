package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cccp-project/cccp/internal/redact"
)

// ErrCommitNotFound is wrapped by the error of a fetch that could not
// bring a commit: the server refused it by ID and no branch or tag of the
// repository reaches it.
var ErrCommitNotFound = errors.New("commit not found")

// fallbackDepth is how much of a branch's history the fallback fetches
// first: a run's commit is usually one of a branch's last commits.
const fallbackDepth = 64

// fetchCommit brings commit (a full object ID, types.IsCommitID) from the remote
// origin into the repository at dir, with extra fetch options (a filter).
//
// It asks for the commit by ID first, at depth. Servers speaking protocol
// v0 (git before 2.18, or an HTTP front that drops the Git-Protocol
// header) refuse an ID no ref points at unless uploadpack.allowReachable-
// SHA1InWant or allowAnySHA1InWant is set, which git daemon and git
// http-backend do not set by default. Then it fetches, until the commit is
// there: the last fallbackDepth commits of branch and then its whole
// history (when branch is set), then the last fallbackDepth commits of
// every branch and tag. A commit on no ref so costs at most one branch's
// history plus fallbackDepth commits a ref, never every ref's history,
// and the mirror (branch "") stays shallow. A fetch that fails (the branch
// was deleted) moves on to the next refs.
//
// A commit a complete search did not find is remembered in misses (may be
// nil): asking again for it in url and branch, once refused by ID, fails
// at once with the same error. The error names the commit and the URL.
func fetchCommit(ctx context.Context, dir, url, commit, branch string, depth int, misses *Misses, extra ...string) error {
	args := append([]string{"fetch", "--quiet", "--no-tags", fmt.Sprintf("--depth=%d", depth)}, extra...)
	_, byID := run(ctx, dir, append(args, "origin", commit)...)
	if byID == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("fetch %s at %s: %w", redact.URL(url), commit, ctx.Err())
	}
	scope := url + "\x00" + branch
	if err := misses.lookup(scope, commit); err != nil {
		return err
	}
	type pass struct {
		refspecs []string
		depth    string // "--unshallow": the whole history
	}
	all := []string{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}
	shallow := fmt.Sprintf("--depth=%d", fallbackDepth)
	where := fmt.Sprintf("the last %d commits of any branch or tag", fallbackDepth)
	var passes []pass
	if branch != "" {
		// The whole history of the branch before the other refs: asking
		// to unshallow once their shallow ends are known would deepen
		// every one of them to its root.
		named := []string{"+refs/heads/" + branch + ":refs/remotes/origin/" + branch}
		passes = []pass{{named, shallow}, {named, "--unshallow"}}
		where = fmt.Sprintf("the history of branch %s nor in %s", branch, where)
	}
	passes = append(passes, pass{all, shallow})
	var fetched bool  // some refs were fetched
	var refsErr error // the last ref fetch that failed
	for i, p := range passes {
		if p.depth == "--unshallow" {
			if refsErr != nil {
				continue // the branch is gone: asking for its history fails again
			}
			out, err := run(ctx, dir, "rev-parse", "--is-shallow-repository")
			if err != nil {
				return fmt.Errorf("fetch %s at %s: %w", redact.URL(url), commit, err)
			}
			if strings.TrimSpace(string(out)) != "true" {
				continue // the whole history is here already
			}
		}
		a := append([]string{"fetch", "--quiet", "--no-tags", p.depth}, extra...)
		if _, err := run(ctx, dir, append(append(a, "origin"), p.refspecs...)...); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("fetch %s at %s: %w", redact.URL(url), commit, ctx.Err())
			}
			refsErr = fmt.Errorf("pass %d: %w", i+1, err)
			continue
		}
		fetched = true
		if has(ctx, dir, commit) {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("fetch %s at %s: %w", redact.URL(url), commit, ctx.Err())
		}
	}
	if !fetched {
		return fmt.Errorf("fetch %s at %s: by commit: %v; by refs: %w", redact.URL(url), commit, byID, refsErr)
	}
	why := fmt.Sprintf("asked by commit: %v", byID)
	if refsErr != nil {
		why += fmt.Sprintf("; by refs: %v", refsErr)
	}
	err := fmt.Errorf("fetch %s at %s: %w: it is not in %s (%s)",
		redact.URL(url), commit, ErrCommitNotFound, where, why)
	if refsErr == nil { // only a complete search is remembered
		misses.add(scope, commit, err)
	}
	return err
}

// has reports whether the commit is in the repository at dir.
func has(ctx context.Context, dir, commit string) bool {
	_, err := run(ctx, dir, "cat-file", "-e", commit+"^{commit}")
	return err == nil
}
