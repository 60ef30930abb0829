package attest

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
