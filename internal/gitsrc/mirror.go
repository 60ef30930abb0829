package gitsrc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/types"
)

// Mirror keeps a bare, blob-less partial copy of each repository it is asked
// about under Dir, to answer object IDs at a commit (the tree of a folder,
// the blob of a file) without a checkout. A commit already fetched is
// answered from the copy alone (one `git rev-parse`, then from memory);
// another is fetched at depth 1 without blobs (trees only, a few kilobytes
// for most repositories).
//
// Each use of a copy is recorded in the mtime of its marker file (at most
// once per markEvery), so Prune can remove the copies no one used for a
// while, under the same lock their users take (mirror_prune.go).
type Mirror struct {
	Dir string
	// Now is the clock of the marker files (default time.Now).
	Now func() time.Time

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	// known caches answers: an object ID at a commit never changes.
	known map[string]string
	// marked is when this process last wrote each copy's marker.
	marked map[string]time.Time
	// misses remembers the commits found missing (NewMisses defaults).
	misses *Misses
}

func (m *Mirror) missesOf() *Misses {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.misses == nil {
		m.misses = NewMisses(0, 0)
	}
	return m.misses
}

// maxKnown bounds the cache of answers.
const maxKnown = 4096

func (m *Mirror) cached(url, commit string, paths []string) ([]string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, len(paths))
	for i, p := range paths {
		id, ok := m.known[url+"\x00"+commit+"\x00"+p]
		if !ok {
			return nil, false
		}
		ids[i] = id
	}
	return ids, true
}

func (m *Mirror) remember(url, commit string, paths, ids []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.known == nil || len(m.known)+len(paths) > maxKnown {
		m.known = map[string]string{}
	}
	for i, p := range paths {
		m.known[url+"\x00"+commit+"\x00"+p] = ids[i]
	}
}

// lock serialises the git commands on one repository's copy.
func (m *Mirror) lock(dir string) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.locks == nil {
		m.locks = map[string]*sync.Mutex{}
	}
	l, ok := m.locks[dir]
	if !ok {
		l = &sync.Mutex{}
		m.locks[dir] = l
	}
	return l
}

// ObjectIDs returns the object ID of each path (relative to the repository
// root; "" for the root tree) at commit in the repository at url.
func (m *Mirror) ObjectIDs(ctx context.Context, url, commit string, paths ...string) ([]string, error) {
	if err := CheckURL(url); err != nil {
		return nil, err
	}
	if !types.IsCommitID(commit) {
		return nil, fmt.Errorf("object ids in %s: commit %q is not a full object ID (40 or 64 lowercase hex digits)", redact.URL(url), commit)
	}
	dir := m.dirOf(url)
	if ids, ok := m.cached(url, commit, paths); ok {
		m.noteUse(dir, false)
		return ids, nil
	}
	l := m.lock(dir)
	l.Lock()
	defer l.Unlock()
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
		if err := m.create(ctx, dir, url); err != nil {
			return nil, err
		}
	}
	m.noteUse(dir, true)
	if _, err := run(ctx, dir, "cat-file", "-e", commit+"^{commit}"); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := fetchCommit(ctx, dir, url, commit, "", 1, m.missesOf(), "--filter=blob:none"); err != nil {
			return nil, fmt.Errorf("mirror: %w", err)
		}
	}
	// commit is hex, so no argument can read as an option.
	args := []string{"rev-parse"}
	for _, p := range paths {
		args = append(args, commit+":"+strings.Trim(p, "/"))
	}
	out, err := run(ctx, dir, args...)
	if err != nil {
		return nil, fmt.Errorf("object ids of %q in %s at %s: %w", paths, redact.URL(url), commit, err)
	}
	ids := strings.Fields(string(out))
	if len(ids) != len(paths) {
		return nil, fmt.Errorf("object ids of %q in %s at %s: got %d ids", paths, redact.URL(url), commit, len(ids))
	}
	m.remember(url, commit, paths, ids)
	return ids, nil
}

// dirOf is the folder of url's copy.
func (m *Mirror) dirOf(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(m.Dir, hex.EncodeToString(sum[:12])+".git")
}

// create makes the bare partial copy of url in dir (replacing what is left
// of a broken one).
func (m *Mirror) create(ctx context.Context, dir, url string) error {
	tmp := dir + ".new"
	os.RemoveAll(tmp)
	os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("mirror of %s: %w", redact.URL(url), err)
	}
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", "--", tmp},
		{"-C", tmp, "remote", "add", "origin", "--", url},
		{"-C", tmp, "config", "remote.origin.promisor", "true"},
		{"-C", tmp, "config", "remote.origin.partialclonefilter", "blob:none"},
		{"-C", tmp, "config", "extensions.partialClone", "origin"},
	} {
		if _, err := run(ctx, "", args...); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("mirror of %s: %w", redact.URL(url), err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("mirror of %s: %w", redact.URL(url), err)
	}
	return nil
}
