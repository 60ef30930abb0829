package registry

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImageSize returns the sum of the layer sizes of the image ref names, as
// its manifest gives them (compressed, as stored). For an index, the
// image for this platform (linux/amd64 by default) is measured.
func (c *Client) ImageSize(ctx context.Context, ref string) (int64, error) {
	r, err := c.parseRef(ref)
	if err != nil {
		return 0, fmt.Errorf("size: %w", err)
	}
	p, err := c.puller()
	if err != nil {
		return 0, wrap("size of", ref, err)
	}
	desc, err := p.Get(ctx, r)
	if err != nil {
		return 0, wrap("size of", ref, err)
	}
	img, err := desc.Image()
	if err != nil {
		return 0, wrap("size of", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, wrap("size of", ref, err)
	}
	return layersSize(m), nil
}

func layersSize(m *v1.Manifest) int64 {
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}
