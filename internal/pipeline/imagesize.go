package pipeline

import (
	"context"
	"fmt"
	"io"
)

// imageSizer is implemented by an Images that can tell an image's size
// (registry.Client does): the sum of its manifest's layer sizes.
type imageSizer interface {
	ImageSize(ctx context.Context, ref string) (int64, error)
}

// imageSize is the delivered image's size for the project page's chart;
// 0 when the Images cannot tell. Not knowing it fails nothing.
func (ex *execution) imageSize(ctx context.Context, ref string, log io.Writer) int64 {
	s, ok := ex.r.cfg.Images.(imageSizer)
	if !ok {
		return 0
	}
	n, err := s.ImageSize(ctx, ref)
	if err != nil {
		fmt.Fprintf(log, "cccp: size of %s unknown: %v\n", ref, err)
		return 0
	}
	return n
}
