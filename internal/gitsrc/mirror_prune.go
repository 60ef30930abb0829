package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/redact"
)

// usedMarker is the file in a copy whose mtime is the copy's last use.
const usedMarker = "cccp-used"

// markEvery is how often one process rewrites a copy's marker: the last
// use Prune sees is at most this old.
const markEvery = time.Hour

func (m *Mirror) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// noteUse records that the copy in dir was used now, unless this process
// did so less than markEvery ago. locked says whether the caller holds
// the copy's lock; without it noteUse takes it, so it never writes into a
// copy Prune is removing. A copy that is gone is not recreated.
func (m *Mirror) noteUse(dir string, locked bool) {
	now := m.now()
	m.mu.Lock()
	last, ok := m.marked[dir]
	m.mu.Unlock()
	if ok && now.Sub(last) < markEvery && !now.Before(last) {
		return
	}
	if !locked {
		l := m.lock(dir)
		l.Lock()
		defer l.Unlock()
	}
	p := filepath.Join(dir, usedMarker)
	if err := os.Chtimes(p, now, now); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
			return // removed meanwhile
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return // the next use tries again
		}
		if err := os.Chtimes(p, now, now); err != nil {
			return
		}
	} else if err != nil {
		return
	}
	m.mu.Lock()
	if m.marked == nil {
		m.marked = map[string]time.Time{}
	}
	m.marked[dir] = now
	m.mu.Unlock()
}

// lastUse is when the copy in dir was last used: its marker's mtime, or,
// for a copy made before markers, that of its last fetch or creation.
func lastUse(dir string) (time.Time, error) {
	var last time.Time
	var errs []error
	for _, name := range []string{usedMarker, "FETCH_HEAD", "HEAD"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if fi.ModTime().After(last) {
			last = fi.ModTime()
		}
		if name == usedMarker {
			return last, nil
		}
	}
	return last, errors.Join(errs...)
}

// Prune removes the copies last used before unusedSince and those that
// keep refuses, given their URL and last use (keep nil: any URL stays), each under the lock its users
// take, so a copy in use is removed only after that use, and only for its
// URL. It also removes what a crash left of a copy being made. It returns
// what it removed (dryRun: would remove), each as the copy's URL without
// credentials and its folder, sorted.
func (m *Mirror) Prune(ctx context.Context, unusedSince time.Time, keep func(url string, lastUsed time.Time) bool, dryRun bool) ([]string, error) {
	ents, err := os.ReadDir(m.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("prune mirrors: %w", err)
	}
	var removed []string
	var errs []error
	for _, ent := range ents {
		if err := ctx.Err(); err != nil {
			return removed, fmt.Errorf("prune mirrors: %w", err)
		}
		name := ent.Name()
		if !ent.IsDir() || !strings.HasSuffix(name, ".git") && !strings.HasSuffix(name, ".git.new") {
			continue
		}
		what, err := m.pruneOne(ctx, filepath.Join(m.Dir, name), unusedSince, keep, dryRun)
		if err != nil {
			errs = append(errs, err)
		}
		if what != "" {
			removed = append(removed, what)
		}
	}
	slices.Sort(removed)
	return removed, errors.Join(errs...)
}

// pruneOne removes the copy (or leftover) at p if it is to go, and says
// what it removed.
func (m *Mirror) pruneOne(ctx context.Context, p string, unusedSince time.Time, keep func(string, time.Time) bool, dryRun bool) (string, error) {
	dir := strings.TrimSuffix(p, ".new")
	l := m.lock(dir)
	l.Lock()
	defer l.Unlock()
	var what string
	if dir != p {
		// A copy's creation holds the lock until it renames its .new
		// folder: one seen under the lock is a crash's leftover.
		what = "unfinished copy (" + filepath.Base(p) + ")"
	} else {
		last, err := lastUse(dir)
		if err != nil {
			return "", fmt.Errorf("prune mirror %s: %w", dir, err)
		}
		out, err := run(ctx, dir, "config", "--get", "remote.origin.url")
		url := strings.TrimSpace(string(out))
		switch {
		case err != nil && ctx.Err() != nil:
			return "", fmt.Errorf("prune mirror %s: %w", dir, ctx.Err())
		case err != nil || url == "":
			// Not a copy git can use: it goes once unused.
			if !last.Before(unusedSince) {
				return "", nil
			}
			what = "unreadable copy (" + filepath.Base(dir) + ")"
		case last.Before(unusedSince):
			what = fmt.Sprintf("%s (%s, unused since %s)", redact.URL(url), filepath.Base(dir), last.UTC().Format(time.DateOnly))
		case keep != nil && !keep(url, last):
			what = fmt.Sprintf("%s (%s, not in the index, unused since %s)", redact.URL(url), filepath.Base(dir), last.UTC().Format(time.DateOnly))
		default:
			return "", nil
		}
	}
	if dryRun {
		return what, nil
	}
	if err := os.RemoveAll(p); err != nil {
		return "", fmt.Errorf("prune mirror %s: %w", p, err)
	}
	m.mu.Lock()
	delete(m.marked, dir)
	m.mu.Unlock()
	return what, nil
}
