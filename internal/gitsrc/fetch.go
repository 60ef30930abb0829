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

// fetchCommit brings commit (a full object ID, isFullID) from the remote
// origin into the repository at dir, with extra fetch options (a filter).
//
// It asks for the commit by ID first, at depth. Servers speaking protocol
// v0 (git before 2.18, or an HTTP front that drops the Git-Protocol
// header) refuse an ID no ref points at unless uploadpack.allowReachable-
// SHA1InWant or allowAnySHA1InWant is set, which git daemon and git
// http-backend do not set by default. Then it fetches branch (or, with
// branch "" or when branch does not reach the commit, every branch and
// tag), first the last fallbackDepth commits and then the whole history,
// until the commit is there; a fetch that fails (the branch was deleted)
// moves on to the next refs. The error names the commit and the URL.
func fetchCommit(ctx context.Context, dir, url, commit, branch string, depth int, extra ...string) error {
	args := append([]string{"fetch", "--quiet", "--no-tags", fmt.Sprintf("--depth=%d", depth)}, extra...)
	_, byID := run(ctx, dir, append(args, "origin", commit)...)
	if byID == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("fetch %s at %s: %w", redact.URL(url), commit, ctx.Err())
	}
	all := []string{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}
	tries := [][]string{all}
	where := "any branch or tag"
	if branch != "" {
		tries = [][]string{{"+refs/heads/" + branch + ":refs/remotes/origin/" + branch}, all}
	}
	var fetched bool  // some refs were fetched
	var refsErr error // the last ref fetch that failed
	for _, refspecs := range tries {
		for _, deep := range []string{fmt.Sprintf("--depth=%d", fallbackDepth), "--unshallow"} {
			if deep == "--unshallow" {
				out, err := run(ctx, dir, "rev-parse", "--is-shallow-repository")
				if err != nil {
					return fmt.Errorf("fetch %s at %s: %w", redact.URL(url), commit, err)
				}
				if strings.TrimSpace(string(out)) != "true" {
					deep = "" // whole already: fetch the refs' full history
				}
			}
			a := append([]string{"fetch", "--quiet", "--no-tags"}, extra...)
			if deep != "" {
				a = append(a, deep)
			}
			if _, err := run(ctx, dir, append(append(a, "origin"), refspecs...)...); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("fetch %s at %s: %w", redact.URL(url), commit, ctx.Err())
				}
				// The branch may be gone (deleted after a merge): the
				// other refs may still reach the commit.
				refsErr = err
				break
			}
			fetched = true
			if has(ctx, dir, commit) {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("fetch %s at %s: %w", redact.URL(url), commit, ctx.Err())
			}
		}
	}
	if !fetched {
		return fmt.Errorf("fetch %s at %s: by commit: %v; by refs: %w", redact.URL(url), commit, byID, refsErr)
	}
	if branch != "" {
		where = fmt.Sprintf("branch %s nor on %s", branch, where)
	}
	return fmt.Errorf("fetch %s at %s: %w: it is not on %s (asked by commit: %v)",
		redact.URL(url), commit, ErrCommitNotFound, where, byID)
}

// has reports whether the commit is in the repository at dir.
func has(ctx context.Context, dir, commit string) bool {
	_, err := run(ctx, dir, "cat-file", "-e", commit+"^{commit}")
	return err == nil
}

// isFullID reports whether s is a whole object ID: 40 (SHA-1) or 64
// (SHA-256) lowercase hex digits. git resolves a shorter hex string to a
// ref of that name before an object, so an abbreviation could name
// whatever the repository's tags say; and none can read as an option.
func isFullID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
