// Package gitsrc runs the git command line for cccp: shallow clones of
// application repositories, ls-remote, and the changes of an index
// repository. Every call takes a context, never prompts for credentials
// (GIT_TERMINAL_PROMPT=0), refuses option injection and remote-helper
// transports, and redacts URL userinfo in its errors.
package gitsrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"

	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/types"
)

// ErrUnsafeURL is returned for URLs git would read as an option (a
// leading '-') or hand to a remote helper (`ext::...`, any `x::y`).
var ErrUnsafeURL = errors.New("unsafe git URL")

// CloneOptions say what to check out. The zero value is a depth-1 clone of
// the remote's default branch.
type CloneOptions struct {
	// Branch to clone; "" for the remote's HEAD.
	Branch string
	// Commit, when set, is a full object ID (40 or 64 hex digits: git
	// would read an abbreviation as a ref first, which the repository
	// names), fetched and checked out exactly (detached),
	// with `git fetch --depth N origin <sha>`; a server that refuses a
	// commit by ID is asked for Branch (then every branch and tag) until
	// the commit is there (fetchCommit).
	Commit string
	// Depth of history; 0 means 1.
	Depth int
	// Misses, when set, remembers the commits found missing in a
	// repository for a while, so asking again fails fast (nil: none).
	Misses *Misses
}

// CheckURL refuses URLs that git would read as an option or pass to a
// remote helper.
func CheckURL(url string) error {
	if strings.HasPrefix(url, "-") {
		return fmt.Errorf("%w: %s starts with '-'", ErrUnsafeURL, redact.URL(url))
	}
	if i := strings.Index(url, "::"); i >= 0 && !strings.Contains(url[:i], "/") {
		return fmt.Errorf("%w: %s uses a remote helper transport", ErrUnsafeURL, redact.URL(url))
	}
	return nil
}

// Clone checks out url into dest (which must not exist or be empty).
func Clone(ctx context.Context, url, dest string, opts CloneOptions) error {
	if err := CheckURL(url); err != nil {
		return err
	}
	depth := opts.Depth
	if depth <= 0 {
		depth = 1
	}
	if opts.Commit != "" {
		if !types.IsCommitID(opts.Commit) {
			return fmt.Errorf("clone %s: commit %q is not a full object ID (40 or 64 lowercase hex digits)", redact.URL(url), opts.Commit)
		}
		if opts.Branch != "" && strings.HasPrefix(opts.Branch, "-") {
			return fmt.Errorf("clone %s: bad branch %q", redact.URL(url), opts.Branch)
		}
		for _, args := range [][]string{
			{"init", "--quiet", "--", dest},
			{"-C", dest, "remote", "add", "origin", "--", url},
		} {
			if _, err := run(ctx, "", args...); err != nil {
				return fmt.Errorf("clone %s at %s: %w", redact.URL(url), opts.Commit, err)
			}
		}
		if err := fetchCommit(ctx, dest, url, opts.Commit, opts.Branch, depth, opts.Misses); err != nil {
			return fmt.Errorf("clone: %w", err)
		}
		if _, err := run(ctx, dest, "checkout", "--quiet", "--detach", opts.Commit); err != nil {
			return fmt.Errorf("clone %s at %s: %w", redact.URL(url), opts.Commit, err)
		}
		if head, err := HeadCommit(ctx, dest); err != nil || head != opts.Commit {
			return fmt.Errorf("clone %s at %s: checked out %q instead (%v)", redact.URL(url), opts.Commit, head, err)
		}
		return nil
	}
	args := []string{"clone", "--quiet", "--no-tags", fmt.Sprintf("--depth=%d", depth)}
	if opts.Branch != "" {
		if strings.HasPrefix(opts.Branch, "-") {
			return fmt.Errorf("clone %s: bad branch %q", redact.URL(url), opts.Branch)
		}
		args = append(args, "--single-branch", "--branch", opts.Branch)
	}
	args = append(args, "--", url, dest)
	if _, err := run(ctx, "", args...); err != nil {
		return fmt.Errorf("clone %s: %w", redact.URL(url), err)
	}
	return nil
}

// LsRemote lists the remote's refs (refs/heads/..., refs/tags/..., HEAD)
// with the commit each points at.
func LsRemote(ctx context.Context, url string) (map[string]string, error) {
	if err := CheckURL(url); err != nil {
		return nil, err
	}
	out, err := run(ctx, "", "ls-remote", "--", url)
	if err != nil {
		return nil, fmt.Errorf("ls-remote %s: %w", redact.URL(url), err)
	}
	refs := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		sha, ref, ok := strings.Cut(line, "\t")
		if ok {
			refs[ref] = sha
		}
	}
	return refs, nil
}

// HeadCommit is the commit checked out in dir.
func HeadCommit(ctx context.Context, dir string) (string, error) {
	out, err := run(ctx, dir, "rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return "", fmt.Errorf("head of %s: %w", dir, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// ChangedFiles lists the files (relative to the repository root) that
// differ between fromRev and the working tree of dir, including untracked
// files that are not ignored.
func ChangedFiles(ctx context.Context, dir, fromRev string) ([]string, error) {
	if strings.HasPrefix(fromRev, "-") {
		return nil, fmt.Errorf("changed files since %q: bad revision", fromRev)
	}
	top, err := TopLevel(ctx, dir)
	if err != nil {
		return nil, err
	}
	dir = top
	diff, err := run(ctx, dir, "diff", "--name-only", "--no-renames", "-z", fromRev, "--")
	if err != nil {
		return nil, fmt.Errorf("changed files since %s: %w", fromRev, err)
	}
	untracked, err := run(ctx, dir, "ls-files", "--others", "--exclude-standard", "--full-name", "-z")
	if err != nil {
		return nil, fmt.Errorf("untracked files: %w", err)
	}
	var files []string
	seen := map[string]bool{}
	for _, f := range strings.Split(string(diff)+string(untracked), "\x00") {
		if f != "" && !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	return files, nil
}

// TopLevel is the root folder of the work tree that holds dir.
func TopLevel(ctx context.Context, dir string) (string, error) {
	out, err := run(ctx, dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return "", fmt.Errorf("top level of %s: %w", dir, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// ShowFile returns the content of path (relative to the repository root)
// at rev; ok is false when the file did not exist at rev.
func ShowFile(ctx context.Context, dir, rev, path string) ([]byte, bool, error) {
	if strings.HasPrefix(rev, "-") {
		return nil, false, fmt.Errorf("show %s: bad revision %q", path, rev)
	}
	if _, err := run(ctx, dir, "cat-file", "-e", rev+":"+path); err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, false, nil
	}
	out, err := run(ctx, dir, "show", rev+":"+path)
	if err != nil {
		return nil, false, fmt.Errorf("show %s:%s: %w", rev, path, err)
	}
	return out, true, nil
}

// userinfoRE finds the userinfo of URLs in git's messages (a token alone,
// https://TOKEN@host, is as secret as a password).
var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@`)

// maxStderr bounds the git error text kept in an error.
const maxStderr = 2048

// run runs git in dir and returns its standard output.
func run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	full := append([]string{"-c", "protocol.ext.allow=never", "-c", "credential.helper=", "-c", "core.askPass="}, args...)
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=", "GCM_INTERACTIVE=never",
		"GIT_SSH_COMMAND=ssh -o BatchMode=yes", "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("git %s: %w", args[0], ctx.Err())
		}
		msg := strings.TrimSpace(userinfoRE.ReplaceAllString(redact.NewMasker().String(stderr.String()), "${1}"+redact.Mask+"@"))
		msg = strings.Join(strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
		if len(msg) > maxStderr {
			msg = "..." + msg[len(msg)-maxStderr:]
		}
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, msg)
	}
	return stdout.Bytes(), nil
}

// Resolver resolves branches with ls-remote (the pipeline's Resolver).
type Resolver struct{}

// Resolve returns the commit branch points at on url now; "" is the
// remote's HEAD.
func (Resolver) Resolve(ctx context.Context, url, branch string) (string, error) {
	refs, err := LsRemote(ctx, url)
	if err != nil {
		return "", err
	}
	ref := "HEAD"
	if branch != "" {
		ref = "refs/heads/" + branch
	}
	sha, ok := refs[ref]
	if !ok {
		return "", fmt.Errorf("%s has no %s", redact.URL(url), ref)
	}
	return sha, nil
}
