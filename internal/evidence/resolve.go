package evidence

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cccp-project/cccp/internal/signing"
)

func headDigest(ctx context.Context, reg signing.Registry, r name.Reference) (string, error) {
	desc, err := remote.Head(r, reg.RemoteOptions(ctx)...)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", r, err)
	}
	return desc.Digest.String(), nil
}

// reusing hands out one Puller's options, so the several reads of one
// check share a connection and an authenticated transport per repository
// instead of each pinging the registry anew.
type reusing struct {
	signing.Registry
	opts []remote.Option
}

func (r reusing) RemoteOptions(context.Context) []remote.Option { return r.opts }

func reuse(ctx context.Context, reg signing.Registry) (signing.Registry, error) {
	opts := reg.RemoteOptions(ctx)
	p, err := remote.NewPuller(opts...)
	if err != nil {
		return nil, err
	}
	return reusing{Registry: reg, opts: append(opts, remote.Reuse(p))}, nil
}
