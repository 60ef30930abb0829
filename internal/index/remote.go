package index

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Git is what the remote checks need from git (internal/gitsrc provides it
// through a small adapter in cmd/cccp).
type Git interface {
	// LsRemote lists the remote's refs and their commits.
	LsRemote(ctx context.Context, url string) (map[string]string, error)
	// Clone makes a shallow checkout of branch into dest.
	Clone(ctx context.Context, url, branch, dest string) error
}

// RemoteOptions tune LintRemote.
type RemoteOptions struct {
	Git Git
	// WorkDir holds the temporary clones; default os.TempDir(). Each clone
	// is removed when checked.
	WorkDir string
	// Concurrency bounds the repositories checked at once; default 4.
	Concurrency int
	// Only, when set, limits the checks to the entries it accepts (see
	// ChangedEntries).
	Only func(*Entry) bool
}

// LintRemote checks what needs the network, per entry: the repository
// answers, the branch exists, git-path/target-file exists, and a cccp.yaml
// sits next to it with the entry's job-id. Entries that share a repository
// and branch share one clone. Findings are sorted by position.
func LintRemote(ctx context.Context, idx *Index, opts RemoteOptions) []Finding {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	type key struct{ url, branch string }
	groups := map[key][]*Entry{}
	var order []key
	for _, e := range idx.Entries {
		if e.GitURL == "" || (opts.Only != nil && !opts.Only(e)) {
			continue
		}
		if CheckGitURL(e.GitURL, true) != nil {
			continue // Lint reports it; never hand it to git
		}
		k := key{e.GitURL, e.GitBranch}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	var (
		mu  sync.Mutex
		fs  []Finding
		wg  sync.WaitGroup
		sem = make(chan struct{}, opts.Concurrency)
	)
	for _, k := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			got := checkRepo(ctx, opts, k.url, k.branch, groups[k])
			mu.Lock()
			fs = append(fs, got...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		fs = append(fs, errorf(Pos{File: idx.Root}, "remote", "remote checks stopped: %v", err))
	}
	SortFindings(fs)
	return fs
}

func checkRepo(ctx context.Context, opts RemoteOptions, url, branch string, entries []*Entry) []Finding {
	var fs []Finding
	each := func(rule, key, format string, args ...any) {
		for _, e := range entries {
			fs = append(fs, errorf(e.PosOf(key), rule, format, args...))
		}
	}
	refs, err := opts.Git.LsRemote(ctx, url)
	if err != nil {
		each("remote-clone", "git-url", "repository does not answer: %v", err)
		return fs
	}
	if _, ok := refs["refs/heads/"+branch]; !ok {
		var have []string
		for r := range refs {
			if b, ok := strings.CutPrefix(r, "refs/heads/"); ok {
				have = append(have, b)
			}
		}
		sort.Strings(have)
		if len(have) > 10 {
			have = append(have[:10], "...")
		}
		each("remote-branch", "git-branch", "branch %q does not exist (branches: %s)", branch, strings.Join(have, ", "))
		return fs
	}
	dir, err := os.MkdirTemp(opts.WorkDir, "cccp-lint-")
	if err != nil {
		each("remote-clone", "git-url", "cannot make a work folder: %v", err)
		return fs
	}
	defer os.RemoveAll(dir)
	dest := filepath.Join(dir, "repo")
	if err := opts.Git.Clone(ctx, url, branch, dest); err != nil {
		each("remote-clone", "git-url", "clone failed: %v", err)
		return fs
	}
	for _, e := range entries {
		gitPath, ok := inRepo("", e.GitPath)
		if !ok {
			continue
		}
		target, ok := inRepo(gitPath, e.TargetFile)
		if !ok {
			continue
		}
		st, err := os.Stat(filepath.Join(dest, filepath.FromSlash(target)))
		switch {
		case err != nil:
			fs = append(fs, errorf(e.PosOf("target-file"), "remote-target", "%s does not exist on branch %s", target, branch))
			continue
		case !st.Mode().IsRegular():
			fs = append(fs, errorf(e.PosOf("target-file"), "remote-target", "%s is not a file on branch %s", target, branch))
			continue
		}
		cfg, cf, err := LoadRepoConfig(filepath.Join(dest, filepath.FromSlash(gitPath)))
		if err != nil {
			fs = append(fs, errorf(e.PosOf("git-path"), "remote-config", "%v", err))
			continue
		}
		if cfg.File == "" {
			fs = append(fs, errorf(e.PosOf("git-path"), "remote-config", "no cccp.yaml (or cccp.yml, .cccp.yaml, .cccp.yml) in %s on branch %s", gitPath, branch))
			continue
		}
		name, _ := filepath.Rel(dest, cfg.File)
		for _, f := range cf {
			f.Message = fmt.Sprintf("%s:%d: %s", filepath.ToSlash(name), f.Pos.Line, f.Message)
			f.Pos = e.PosOf("git-path")
			fs = append(fs, f)
		}
		if cfg.JobID != e.JobID {
			fs = append(fs, errorf(e.PosOf("job-id"), "remote-config", "job-id %q in %s does not match the entry's job-id %q", cfg.JobID, filepath.ToSlash(name), e.JobID))
		}
	}
	return fs
}

// ChangedEntries returns the entries that are new or differ from what
// their file held before: changed lists the files (relative to repoRoot,
// with '/' separators) that differ between a revision and now, and
// previous returns a file's content at that revision (ok false when it did
// not exist). An entry that only moved within its file is not changed.
func ChangedEntries(idx *Index, repoRoot string, changed []string, previous func(rel string) ([]byte, bool, error)) ([]*Entry, error) {
	var out []*Entry
	byFile := map[string][]*Entry{}
	for _, e := range idx.Entries {
		byFile[e.Pos.File] = append(byFile[e.Pos.File], e)
	}
	for _, f := range idx.Files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		rootAbs, err := filepath.Abs(repoRoot)
		if err != nil {
			return nil, err
		}
		rel, err := filepath.Rel(rootAbs, abs)
		if err != nil {
			return nil, err
		}
		rel = filepath.ToSlash(rel)
		if !slices.Contains(changed, rel) {
			continue
		}
		old := map[string]bool{}
		data, ok, err := previous(rel)
		if err != nil {
			return nil, fmt.Errorf("previous %s: %w", rel, err)
		}
		if ok {
			prev, _ := ParseFile(f, data)
			for _, e := range prev {
				old[fingerprint(e)] = true
			}
		}
		for _, e := range byFile[f] {
			if !old[fingerprint(e)] {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// fingerprint is an entry's content without positions and without its
// `id`, which only numbers entries within a file.
func fingerprint(e *Entry) string {
	c := *e
	c.Pos, c.FieldPos, c.ID = Pos{}, nil, ""
	b, _ := json.Marshal(&c)
	return string(b)
}
