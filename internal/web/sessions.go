package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cccp-project/cccp/internal/store"
)

// SessionEpochs keeps the generation of sign-in sessions. A session carries
// the generation it was signed under; revoking raises the generation, so
// every session signed before ends at once, long before it expires.
type SessionEpochs interface {
	SessionEpoch(ctx context.Context) (uint64, error)
	RevokeSessions(ctx context.Context) (uint64, error)
}

// MetaStore is the part of internal/store the session generation lives in.
type MetaStore interface {
	GetMeta(ctx context.Context, ns, key string) ([]byte, error)
	PutMeta(ctx context.Context, ns, key string, val []byte) error
}

// Where the generation is stored: meta bucket "web", key "session-epoch",
// a decimal number.
const (
	nsWeb           = "web"
	keySessionEpoch = "session-epoch"
)

// StoreSessions keeps the session generation in the store, so revocation
// outlives a restart (with a configured session key, sessions do too).
func StoreSessions(db MetaStore) SessionEpochs { return storeEpochs{db} }

type storeEpochs struct{ db MetaStore }

func (s storeEpochs) SessionEpoch(ctx context.Context) (uint64, error) {
	v, err := s.db.GetMeta(ctx, nsWeb, keySessionEpoch)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the session generation: %w", err)
	}
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("session generation %q: %w", v, err)
	}
	return n, nil
}

func (s storeEpochs) RevokeSessions(ctx context.Context) (uint64, error) {
	n, err := s.SessionEpoch(ctx)
	if err != nil {
		return 0, err
	}
	n++
	if err := s.db.PutMeta(ctx, nsWeb, keySessionEpoch, []byte(strconv.FormatUint(n, 10))); err != nil {
		return 0, fmt.Errorf("store the session generation: %w", err)
	}
	return n, nil
}

// memEpochs is the default: sessions end with the process anyway when the
// session key is random.
type memEpochs struct {
	mu sync.Mutex
	n  uint64
}

func (m *memEpochs) SessionEpoch(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n, nil
}

func (m *memEpochs) RevokeSessions(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	return m.n, nil
}

// revokeSessions signs everyone out (the admin's "Sign out everywhere").
func (s *Server) revokeSessions(w http.ResponseWriter, r *http.Request) {
	if _, err := s.revoke(r.Context()); err != nil {
		s.serverError(w, r, "revoking sessions", err)
		return
	}
	http.SetCookie(w, s.auth.cookie("", -1))
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// apiRevokeSessions is POST /api/v1/sessions/revoke.
func (s *Server) apiRevokeSessions(w http.ResponseWriter, r *http.Request) {
	n, err := s.revoke(r.Context())
	if err != nil {
		s.serverError(w, r, "revoking sessions", err)
		return
	}
	s.apiJSON(w, http.StatusOK, struct {
		Epoch uint64 `json:"epoch"`
	}{n})
}

func (s *Server) revoke(ctx context.Context) (uint64, error) {
	n, err := s.cfg.Sessions.RevokeSessions(ctx)
	if err != nil {
		return 0, err
	}
	s.auth.epoch.Store(n)
	s.log.Info("all sessions revoked", "epoch", n, "at", s.now().Format(time.RFC3339))
	return n, nil
}
