package gitsrc

import (
	"fmt"
	"sync"
	"time"
)

// Default bounds of a Misses.
const (
	DefaultMissTTL   = 2 * time.Minute
	DefaultMaxMisses = 1024
)

// Misses remembers, for a while, the commits a complete search could not
// find in a repository's refs (ErrCommitNotFound), keyed by the URL and
// the branch searched (a search with a branch goes deeper into that
// branch, so one scope never answers for another), so a run asking again
// (a retry, the next build of the same commit) fails at once with the same
// error instead of fetching every branch and tag of the repository again.
// The commit is still asked for by ID first, which is cheap: a server that
// serves it then is not held back by the memory. It holds at most
// max entries, in memory. Safe for concurrent use; a nil *Misses
// remembers nothing.
type Misses struct {
	ttl time.Duration
	max int
	// now is the clock (time.Now; a test sets it).
	now func() time.Time

	mu sync.Mutex
	m  map[string]miss
}

type miss struct {
	at  time.Time
	err error
}

// NewMisses remembers a missing commit for ttl (DefaultMissTTL when 0),
// at most max of them (DefaultMaxMisses when 0).
func NewMisses(ttl time.Duration, max int) *Misses {
	if ttl <= 0 {
		ttl = DefaultMissTTL
	}
	if max <= 0 {
		max = DefaultMaxMisses
	}
	return &Misses{ttl: ttl, max: max, now: time.Now, m: map[string]miss{}}
}

func missKey(scope, commit string) string { return scope + "\x00" + commit }

// lookup returns the error of the fetch that found commit missing in url,
// if that was less than ttl ago.
func (ms *Misses) lookup(url, commit string) error {
	if ms == nil {
		return nil
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e, ok := ms.m[missKey(url, commit)]
	if !ok {
		return nil
	}
	age := ms.now().Sub(e.at)
	if age >= ms.ttl {
		delete(ms.m, missKey(url, commit))
		return nil
	}
	return fmt.Errorf("%w (found missing %v ago; not fetched again for %v)",
		e.err, age.Round(time.Second), (ms.ttl - age).Round(time.Second))
}

// add remembers that commit is missing in url, with the error saying so.
// When full it drops the expired entries, then the oldest.
func (ms *Misses) add(url, commit string, err error) {
	if ms == nil {
		return
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	now := ms.now()
	if len(ms.m) >= ms.max {
		oldest, oldestAt := "", now
		for k, e := range ms.m {
			if now.Sub(e.at) >= ms.ttl {
				delete(ms.m, k)
			} else if !e.at.After(oldestAt) {
				oldest, oldestAt = k, e.at
			}
		}
		if len(ms.m) >= ms.max {
			delete(ms.m, oldest)
		}
	}
	ms.m[missKey(url, commit)] = miss{at: now, err: err}
}
