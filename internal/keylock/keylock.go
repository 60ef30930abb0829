// Package keylock serialises work per key inside one process: one lock
// per key, made when a caller first waits for it and dropped when the
// last one is done, so the map holds only keys in use and work on one
// key never waits for another's. Waiting ends with the caller's context.
package keylock

import (
	"context"
	"sync"
)

// Map is a set of locks by key. The zero value is ready; a Map must not
// be copied after first use.
type Map struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	held  chan struct{} // one slot: full while someone holds the lock
	users int           // holders and waiters; guarded by Map.mu
}

// Lock takes the lock of key, waiting at most as long as ctx, and
// returns its release (calling it again does nothing).
func (l *Map) Lock(ctx context.Context, key string) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*entry{}
	}
	e := l.m[key]
	if e == nil {
		e = &entry{held: make(chan struct{}, 1)}
		l.m[key] = e
	}
	e.users++
	l.mu.Unlock()

	select {
	case e.held <- struct{}{}:
	case <-ctx.Done():
		l.release(key, e)
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-e.held
			l.release(key, e)
		})
	}, nil
}

func (l *Map) release(key string, e *entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.users--; e.users == 0 {
		delete(l.m, key)
	}
}
