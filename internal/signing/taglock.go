package signing

import (
	"context"
	"sync"
)

// tagLocks serialises the read-modify-write of cosign's artifact tags
// (sha256-<hex>.sig, .att) inside one process: one lock per tag, made
// when a caller first waits for it and dropped when the last one is
// done, so the map holds only tags in use and a delivery never waits
// for another digest's. The zero value is ready.
type tagLocks struct {
	mu sync.Mutex
	m  map[string]*tagLock
}

type tagLock struct {
	held  chan struct{} // one slot: full while someone holds the lock
	users int           // holders and waiters; guarded by tagLocks.mu
}

// lock takes the lock of key, waiting at most as long as ctx, and
// returns its release.
func (l *tagLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*tagLock{}
	}
	e := l.m[key]
	if e == nil {
		e = &tagLock{held: make(chan struct{}, 1)}
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

func (l *tagLocks) release(key string, e *tagLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.users--; e.users == 0 {
		delete(l.m, key)
	}
}
