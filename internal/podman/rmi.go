package podman

import (
	"context"
	"errors"
	"fmt"
)

// RemoveUnusedImage removes a local image unless a container uses it (an
// error then, the image stays); one that is not there is not an error.
// Unlike RemoveImage it never removes a container.
func (r *Runner) RemoveUnusedImage(ctx context.Context, image string) error {
	if _, err := r.output(ctx, "rmi", image); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("remove image %s: %w", image, err)
	}
	return nil
}
