package pipeline

import (
	"context"
	"io"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// Attester gives a delivered image its evidence (internal/evidence through
// an adapter in cmd/cccp).
type Attester interface {
	// Attest signs and attaches the evidence of d.Image; an error fails
	// the deliver stage before any tag moves.
	Attest(ctx context.Context, d Delivery, log io.Writer) error
}

// Delivery is what the pipeline knows of an image it is about to deliver.
type Delivery struct {
	// Image is "host/repo@sha256:...".
	Image string
	Kind  types.RunKind
	Entry *index.Entry
	// GitURL, Commit and Branch are the source built.
	GitURL, Commit, Branch string
	// Parents are the pinned parents, "host/repo@sha256:...".
	Parents []string
	RunID   string
	Started time.Time
}

// ParentVerifier checks a parent image before a child is built FROM it.
type ParentVerifier interface {
	// Verify returns an error that says why digestRef may not be built
	// upon (unsigned, signed by another key).
	Verify(ctx context.Context, digestRef string) error
}

// pinnedRef is the pinned parent b as "host/repo@sha256:..." in the
// delivery registry.
func (ex *execution) pinnedRef(b store.Base) string {
	repo, _, ok := backend.OwnImage(b.Image, ex.r.cfg.OwnRegistries)
	if !ok {
		return b.Image + "@" + b.Digest
	}
	return ex.r.cfg.Target.DigestRef(repo, b.Digest)
}
