// Package idpool hands out the members of a fixed pool (a sandbox user, a
// range of subordinate ids) to one holder at a time, across every process
// on the machine: holding a member is holding an exclusive flock(2) on a
// file of its own, Dir/<key>.lock. The kernel drops the lock when the
// holder releases it or dies, so a crashed cccp leaks nothing, and two cccp
// processes that share a machine (and its users and id ranges) never hand
// out the same member at once.
//
// Cleared builds on a Pool whose members run as host ids of their own (a
// sandbox user and its subordinate ids, a build's range): it hands a
// member out only when no process runs as any of its ids, killing the
// ones left by a holder that crashed (through pidfds, so that a process
// that took a reaped pid is never signalled), and clears it again when it
// is given back.
//
// Ranges builds on a Cleared pool: the subordinate uid and gid ranges of
// one user (/etc/subuid, /etc/subgid), cut into ranges of RangeSize ids,
// so that two builds at the same time map their root to different host
// ids. Ranges that hold an id of a user or group of the machine, or of a
// process outside any container, are refused at start (CheckUnowned):
// clearing them would kill that user's processes.
package idpool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultDir is where the lock files live unless a Pool is given another
// folder: a tmpfs, emptied at boot, when nothing can hold a lock anyway.
const DefaultDir = "/run/cccp/idpool"

// Pool is a fixed set of members, each named by a key.
type Pool struct {
	dir  string
	keys []string
	// Poll is how often Acquire looks again while every member is taken;
	// default 200ms.
	Poll time.Duration
}

// New makes a pool of keys (file-name safe, distinct) whose locks live in
// dir (default DefaultDir), which it creates.
func New(dir string, keys []string) (*Pool, error) {
	if dir == "" {
		dir = DefaultDir
	}
	if len(keys) == 0 {
		return nil, errors.New("id pool: no members")
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if k == "" || k == "." || k == ".." || strings.ContainsAny(k, `/\`) || seen[k] {
			return nil, fmt.Errorf("id pool: bad or repeated key %q", k)
		}
		seen[k] = true
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("id pool: %w", err)
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	return &Pool{dir: dir, keys: append([]string(nil), keys...)}, nil
}

// checkDir refuses a lock folder that someone else could change: who can
// replace a lock file can hand a member to two holders at once.
func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("id pool: %w", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("id pool: lock folder %s is not a folder (%v)", dir, fi.Mode().Type())
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("id pool: lock folder %s is owned by uid %d, not by this process's uid %d", dir, st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("id pool: lock folder %s is writable by group or others (%v); make it 0700", dir, fi.Mode().Perm())
	}
	return nil
}

// Size is the number of members.
func (p *Pool) Size() int { return len(p.keys) }

// Lease is a member held; Release it.
type Lease struct {
	// Index is the member's place in the pool's keys.
	Index int
	Key   string
	f     *os.File
}

// Release gives the member back. A second call does nothing.
func (l *Lease) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	// Closing the file drops the lock; the file stays for the next holder
	// (removing it would let two holders lock two different files).
	return f.Close()
}

// TryAcquire takes the first free member, in the pool's order (so that a
// lightly used pool keeps handing out the same few: a build's mapped copy
// of its base image is reused). ok is false when every member is held.
func (p *Pool) TryAcquire() (l *Lease, ok bool, err error) {
	for i, k := range p.keys {
		f, err := p.lock(k)
		if err != nil {
			return nil, false, err
		}
		if f == nil {
			continue
		}
		return &Lease{Index: i, Key: k, f: f}, true, nil
	}
	return nil, false, nil
}

// lock takes key's lock without waiting: its file, nil when another
// holder has it. The file is never a symlink, and the lock is taken on
// the file that is at the path once locked (one put there meanwhile
// would be a second lock for the same member): otherwise it tries again.
func (p *Pool) lock(key string) (*os.File, error) {
	path := filepath.Join(p.dir, key+".lock")
	for range 10 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, fmt.Errorf("id pool: lock file: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, nil
			}
			return nil, fmt.Errorf("id pool: lock %s: %w", key, err)
		}
		var held, now syscall.Stat_t
		if syscall.Fstat(int(f.Fd()), &held) == nil && syscall.Lstat(path, &now) == nil && held.Dev == now.Dev && held.Ino == now.Ino {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("id pool: lock file %s keeps being replaced", path)
}

// Acquire takes the first free member, waiting while all are held, until
// ctx ends.
func (p *Pool) Acquire(ctx context.Context) (*Lease, error) {
	poll := p.Poll
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	for {
		l, ok, err := p.TryAcquire()
		if err != nil || ok {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("id pool: all %d members in use: %w", len(p.keys), ctx.Err())
		case <-time.After(poll):
		}
	}
}
